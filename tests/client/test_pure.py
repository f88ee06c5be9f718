"""Pure parts of the client: error mapping, backoff, JSON with Decimals, times, records."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from common.errors import ConfigError, PipelineError
from common.secrets import Secret
from toloka_client import errors as E
from toloka_client import jsonio
from toloka_client.client import operation_id_for
from toloka_client.http import auth_header, build_query, is_api_key, resolve_base_url
from toloka_client.records import Assignment, Pool, UserSkill
from toloka_client.retry import RetryPolicy, parse_retry_after, retry_delay
from toloka_client.timefmt import format_datetime, parse_datetime


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (400, b'{"code": "VALIDATION_ERROR", "message": "bad", "payload": {"a.b": {"code": "X"}}}',
         E.ValidationError, "VALIDATION_ERROR"),
        (401, b'{"code": "AUTHENTICATION_ERROR", "message": "no"}', E.AuthenticationError, "AUTHENTICATION_ERROR"),
        (403, b'{"code": "ACCESS_DENIED"}', E.AccessDenied, "ACCESS_DENIED"),
        (404, b'{"code": "DOES_NOT_EXIST"}', E.NotFound, "DOES_NOT_EXIST"),
        (409, b'{"code": "INAPPROPRIATE_STATUS"}', E.InappropriateStatus, "INAPPROPRIATE_STATUS"),
        (409, b'{"code": "OPERATION_ALREADY_EXISTS"}', E.OperationAlreadyExists, "OPERATION_ALREADY_EXISTS"),
        (409, b'{"code": "EMPTY_POOL"}', E.IncorrectAction, "EMPTY_POOL"),
        (409, b'{"code": "CONFLICT_STATE"}', E.ConflictState, "CONFLICT_STATE"),
        # Mapping is by code, whatever the status (as toloka-kit does).
        (404, b'{"code": "INAPPROPRIATE_STATUS"}', E.InappropriateStatus, "INAPPROPRIATE_STATUS"),
        (429, b'{"code": "TOO_MANY_REQUESTS", "payload": {"interval": "MIN"}}', E.TooManyRequests, "TOO_MANY_REQUESTS"),
        (500, b'{"code": "INTERNAL_ERROR"}', E.ServerError, "INTERNAL_ERROR"),
        (503, b'{"code": "REMOTE_SERVICE_UNAVAILABLE"}', E.ServerError, "REMOTE_SERVICE_UNAVAILABLE"),
        (500, b"", E.ServerError, None),
        (502, b"<html>Bad gateway</html>", E.ServerError, None),
        (404, b"", E.NotFound, None),
        (418, b'{"code": "SOMETHING_NEW"}', E.TolokaError, "SOMETHING_NEW"),
        (400, b"[1, 2]", E.ValidationError, None),
    ],
)
def test_error_mapping(status: int, body: bytes, cls: type, code: str | None) -> None:
    err = E.error_from_response("PATCH", "/assignments/42", status, body)
    assert type(err) is cls
    assert isinstance(err, PipelineError)
    assert err.code == code
    text = str(err)
    assert "PATCH /assignments/42" in text and f"HTTP {status}" in text
    if code:
        assert code in text


def test_error_details_and_pickle() -> None:
    err = E.error_from_response("POST", "/tasks", 400,
                                b'{"request_id": "r1", "code": "VALIDATION_ERROR", "message": "m",'
                                b' "payload": {"input_values.image": {"code": "VALUE_REQUIRED"}}}')
    assert isinstance(err, E.ValidationError)
    assert err.invalid_fields == ["input_values.image"]
    assert err.request_id == "r1"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is E.ValidationError and str(again) == str(err)
    quota = E.error_from_response("GET", "/pools", 429, b'{"code": "TOO_MANY_REQUESTS", "payload": {"interval": "HOUR"}}')
    assert isinstance(quota, E.TooManyRequests) and quota.interval == "HOUR"


def test_empty_and_non_json_bodies_say_so() -> None:
    assert "empty error body" in str(E.error_from_response("GET", "/x", 500, b""))
    assert "not JSON" in str(E.error_from_response("GET", "/x", 500, b"oops"))


def test_retry_delay_backoff_and_hints() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, max_server_wait_s=120.0)
    top = [retry_delay(policy, n, rand=lambda: 1.0) for n in range(1, 7)]
    assert top == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    low = retry_delay(policy, 3, rand=lambda: 0.0)
    assert low == pytest.approx(0.4)  # a tenth of the ceiling at least
    assert retry_delay(policy, 1, retry_after_s=7.0) == 7.0
    assert retry_delay(policy, 1, quota_interval="MIN") == 60.0
    assert retry_delay(policy, 1, quota_interval="HOUR") == 120.0  # capped
    assert retry_delay(policy, 1, retry_after_s=3.0, quota_interval="MIN") == 60.0
    assert retry_delay(policy, 1, quota_interval="WEEK", rand=lambda: 1.0) == 1.0
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(("value", "seconds"), [("5", 5.0), (" 2.5 ", 2.5), ("-1", None),
                                                 ("Wed, 21 Oct 2015 07:28:00 GMT", None), (None, None)])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_json_decimals_round_trip() -> None:
    doc = jsonio.loads('{"amount": 0.05, "n": 3, "x": [1.10, null, true]}')
    assert doc == {"amount": Decimal("0.05"), "n": 3, "x": [Decimal("1.10"), None, True]}
    assert isinstance(doc["amount"], Decimal)
    text = jsonio.dumps({"amount": Decimal("0.10"), "big": Decimal("1E+2"), "s": "é\t\"",
                         "at": datetime(2026, 1, 2, 3, 4, 5, 6000)})
    assert text == '{"amount":0.10,"big":1E+2,"s":"\\u00e9\\t\\"","at":"2026-01-02T03:04:05.006000"}'
    assert jsonio.loads(text)["amount"] == Decimal("0.10")
    with pytest.raises(ValueError):
        jsonio.dumps({"x": Decimal("NaN")})
    with pytest.raises(TypeError):
        jsonio.dumps({1: 2})
    with pytest.raises(TypeError):
        jsonio.dumps({"x": [{"ok": 1}, {2: "nested"}]})
    with pytest.raises(TypeError):
        jsonio.dumps({("a", "b"): 2})
    with pytest.raises(TypeError):
        jsonio.dumps({("a", "b"): Decimal("0.10")})
    assert jsonio.dumps({"s": "é", "n": [1, 2.5, None, True]}) == '{"s":"\\u00e9","n":[1,2.5,null,true]}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-09-22T08:58:40", datetime(2020, 9, 22, 8, 58, 40)),
        ("2020-09-22T08:58:40.9", datetime(2020, 9, 22, 8, 58, 40, 900000)),
        ("2020-09-22T08:58:40.913", datetime(2020, 9, 22, 8, 58, 40, 913000)),
        ("2020-09-22T08:58:40.91300", datetime(2020, 9, 22, 8, 58, 40, 913000)),
        ("2020-09-22T08:58:40.671442", datetime(2020, 9, 22, 8, 58, 40, 671442)),
        ("2020-09-22T08:58:40Z", datetime(2020, 9, 22, 8, 58, 40)),
        ("2020-09-22T11:58:40.5+03:00", datetime(2020, 9, 22, 8, 58, 40, 500000)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


def test_format_datetime_is_naive_utc() -> None:
    aware = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(aware) == "2026-01-01T10:00:00.000000"
    with pytest.raises(ValueError):
        parse_datetime("yesterday")


def test_records_keep_unknown_fields_and_money() -> None:
    doc = jsonio.loads("""{
      "id": "0000082301--5f69bcc046757f5cf86c12ff", "pool_id": "533249", "user_id": "u1",
      "status": "SUBMITTED", "reward": 0.01, "bonus_ids": ["b1"], "mistakes": 5,
      "tasks": [{"id": "t1", "pool_id": "533249", "input_values": {"image": "http://x"}, "new_key": 1}],
      "solutions": [{"output_values": {"result": "OK", "score": 0.5}}],
      "created": "2020-09-22T08:58:40.913", "submitted": "2020-09-22T08:58:46.207", "accepted": null
    }""")
    a = Assignment.from_json(doc)
    assert a.reward == Decimal("0.01") and isinstance(a.reward, Decimal)
    assert a.extra == {"mistakes": 5}
    assert a.tasks[0].extra == {"new_key": 1}
    assert a.solutions[0].output_values["score"] == Decimal("0.5")
    assert a.event_time("submitted") == datetime(2020, 9, 22, 8, 58, 46, 207000)
    assert a.event_time("accepted") is None
    assert a.pairs()[0][1] is a.solutions[0]
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(ValueError):
        a.event_time("mistaken")
    pool = Pool.from_json({"id": "100", "status": "OPEN"})
    assert pool.is_open and pool.reward_per_assignment is None and pool.defaults == {}
    skill = UserSkill.from_json({"id": "1", "value": 85, "exact_value": Decimal("85.42")})
    assert skill.score == Decimal("85.42")


def test_base_url_and_auth_scheme() -> None:
    assert resolve_base_url("PRODUCTION") == "https://toloka.dev"
    assert resolve_base_url("sandbox") == "https://sandbox.toloka.dev"
    assert resolve_base_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    with pytest.raises(ConfigError) as info:
        resolve_base_url("staging")
    assert "[Toloka] environment" in str(info.value)
    api_key = "a" * 23 + ".bbbb.cccc"
    assert is_api_key(api_key)
    assert not is_api_key("a" * 21 + ".b.c") and not is_api_key("a" * 25 + ".b.c")
    assert not is_api_key("AQAAAAAAtoken") and not is_api_key("a" * 23 + ".b.c.d")
    assert auth_header(Secret("t", api_key)) == f"ApiKey {api_key}"
    assert auth_header(Secret("t", "plain-oauth")) == "OAuth plain-oauth"


def test_query_formatting() -> None:
    q = build_query({"status": ["SUBMITTED", "ACCEPTED"], "flag": True, "off": False, "none": None,
                     "at": datetime(2026, 1, 1), "sort": ["submitted", "id"]})
    assert q == {"status": "SUBMITTED,ACCEPTED", "flag": "true", "off": "false",
                 "at": "2026-01-01T00:00:00.000000", "sort": "submitted,id"}


def test_operation_ids_are_deterministic_uuids() -> None:
    a = operation_id_for("visit", "asg-1")
    assert a == operation_id_for("visit", "asg-1")
    assert a != operation_id_for("visit", "asg-2")
    assert a != operation_id_for("visit-asg", "1")
    import uuid

    assert uuid.UUID(a).version == 5
