"""The exception tree says whether retrying can help: class defaults, instance overrides, OS errors.

The client, file store and table tests show each adapter setting the flag at its own
boundary over real I/O; these tests pin the tree itself and its drawing.
"""

from __future__ import annotations

import errno
import pickle
import re

import pytest

import common.errors
from common.errors import (
    ConfigError,
    MissingObjectError,
    PipelineError,
    SecretError,
    StateError,
    StorageError,
    retryable_os_error,
)
from common.ini import ConfigErrors
from file_store.keys import InvalidKeyError
from tables.tsv import TableError
from toloka_client import errors as E


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


# Every class of the tree in the lower layers, with its class-level answer.
CLASS_FLAGS: dict[type[PipelineError], bool] = {
    PipelineError: False,
    ConfigError: False,
    ConfigErrors: False,
    SecretError: False,
    StateError: False,
    StorageError: False,
    InvalidKeyError: False,
    MissingObjectError: False,
    TableError: False,
    E.TolokaError: False,
    E.AuthenticationError: False,
    E.AccessDenied: False,
    E.NotFound: False,
    E.ValidationError: False,
    E.IncorrectAction: False,
    E.ConflictState: False,
    E.InappropriateStatus: False,
    E.OperationAlreadyExists: False,
    E.TooManyRequests: True,
    E.ServerError: True,
    E.TransportError: True,
    E.UnexpectedResponse: False,
    E.AttachmentTooLarge: False,
    E.OperationFailed: False,
}


@pytest.mark.parametrize(("cls", "retryable"), CLASS_FLAGS.items(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_class_says_whether_retrying_can_help(cls: type[PipelineError], retryable: bool) -> None:
    """The class attribute is the documented answer (docs/errors.md)."""
    assert cls.retryable is retryable


def test_the_table_covers_every_class_of_the_lower_layers() -> None:
    """A new exception class in common, toloka_client, file_store or tables gets a row above."""
    lower = {
        cls
        for cls in _subclasses(PipelineError)
        if cls.__module__.split(".")[0] in {"common", "toloka_client", "file_store", "tables"}
    }
    assert lower <= set(CLASS_FLAGS)


def test_the_drawn_tree_names_every_class_with_its_flag() -> None:
    """The module docstring of common.errors draws each class of the table, with its flag."""
    doc = common.errors.__doc__
    assert doc is not None
    row = re.compile(r"^\s*[*+\-·]\s+(\w+)(?:\s+\(\+\w+\))?\s+(no|YES|per instance)\b")
    drawn = {m.group(1): m.group(2) for m in map(row.match, doc.splitlines()) if m}
    for cls, retryable in CLASS_FLAGS.items():
        assert cls.__name__ in drawn, f"{cls.__name__} is missing from the tree in common/errors.py"
        if cls in (StorageError, TableError):
            assert drawn[cls.__name__] == "per instance"
        else:
            assert drawn[cls.__name__] == ("YES" if retryable else "no"), cls.__name__


def test_an_instance_overrides_its_class_and_keeps_its_message() -> None:
    """``retryable=`` changes one instance only; messages stay exactly as given."""
    slow = StorageError("cannot reach S3 at http://s3: fix [S3] url", retryable=True)
    assert slow.retryable is True and str(slow) == "cannot reach S3 at http://s3: fix [S3] url"
    assert StorageError("bucket 'x' does not exist").retryable is False
    assert StorageError.retryable is False
    timed_out = E.OperationFailed("GET", "/operations/1", None, "RUNNING", "not finished after 600 s", retryable=True)
    assert timed_out.retryable is True and E.OperationFailed.retryable is False
    assert str(timed_out) == "Toloka GET /operations/1: no HTTP answer RUNNING: not finished after 600 s"


def test_the_flag_survives_pickling() -> None:
    """Errors cross process boundaries (test workers, a future executor pool) with their flag."""
    for err in (
        StorageError("throttled", retryable=True),
        TableError("cannot write t.tsv: No space left on device", retryable=False),
        E.UnexpectedResponse("GET", "/search", 200, None, "created tasks not found", retryable=True),
        E.error_from_response("GET", "/pools/1", 503, b'{"code": "DOES_NOT_EXIST"}'),
    ):
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and str(again) == str(err) and again.retryable is err.retryable


def test_config_error_message_is_unchanged() -> None:
    """ConfigError keeps its one message format and is never retryable."""
    err = ConfigError("S3", "region", "a region name", None)
    assert str(err) == "toloka.ini [S3] region: expected a region name, found nothing (the key is missing)"
    assert err.retryable is False


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (errno.ENOSPC, False),  # a full disk waits for a person
        (errno.EDQUOT, False),
        (errno.EACCES, False),
        (errno.EPERM, False),
        (errno.EROFS, False),
        (errno.ENOENT, False),
        (errno.ENOTDIR, False),
        (errno.EIO, False),
        (errno.EAGAIN, True),  # busy or interrupted: the next attempt may pass
        (errno.EINTR, True),
        (errno.EBUSY, True),
        (errno.ETIMEDOUT, True),
        (errno.ESTALE, True),
        (errno.EMFILE, True),
        (errno.ECONNRESET, True),
    ],
    ids=lambda v: errno.errorcode.get(v, str(v)) if isinstance(v, int) and not isinstance(v, bool) else str(v),
)
def test_os_errors_are_retryable_only_when_transient(code: int, retryable: bool) -> None:
    """The one rule for disk errors, shared by tables and the local file store."""
    assert retryable_os_error(OSError(code, "x")) is retryable


def test_an_os_error_without_errno_is_not_retryable() -> None:
    """A short write (no errno; only a full disk causes it on a regular file) needs a person."""
    assert retryable_os_error(OSError("short write (3 of 10 bytes)")) is False
    assert retryable_os_error(BlockingIOError(errno.EAGAIN, "busy")) is True
