"""Toloka API errors, translated from HTTP answers into the project's hierarchy.

The real API maps failures by the JSON ``code`` field, not by the HTTP status
(a 409 with ``CONFLICT_STATE`` and one with ``INAPPROPRIATE_STATUS`` mean
different things), so :func:`error_from_response` does the same and falls back
on the status only when the body is empty or not JSON. Messages name the HTTP
method, the path (never the query string) the status and the code; they never
carry headers, so the token cannot leak through them.

Whether retrying can help (``retryable``, see :mod:`common.errors`) is a class
attribute: 429 (:class:`TooManyRequests`), 5xx (:class:`ServerError`) and
:class:`TransportError` are retryable, everything else is not. For an HTTP
answer the status decides it (408, 429 and 5xx, as
:func:`toloka_client.retry.is_retryable_status` says), so the rare answer whose
code and status disagree (a 503 carrying ``DOES_NOT_EXIST``) keeps its class
but is marked by its status; the transport's retry loop asks the same
attribute, so the client and the daemon never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from common.errors import PipelineError
from toloka_client.retry import is_retryable_status

# Longest server message we quote in our own exception texts.
_MAX_QUOTED = 300


class TolokaError(PipelineError):
    """Any failure talking to Toloka; the attributes say which call and why."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        code: str | None,
        message: str = "",
        *,
        request_id: str | None = None,
        payload: Any = None,
        retryable: bool | None = None,
    ) -> None:
        if retryable is not None:
            self.retryable = retryable
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.server_message = message
        self.request_id = request_id
        self.payload = payload
        super().__init__(self._text())

    def _text(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        head = f"Toloka {self.method} {self.path}: {status}"
        if self.code:
            head += f" {self.code}"
        quoted = self.server_message.strip()
        if len(quoted) > _MAX_QUOTED:
            quoted = quoted[:_MAX_QUOTED] + "..."
        return f"{head}: {quoted}" if quoted else head

    def __reduce__(self) -> Any:
        # Exceptions with keyword-only arguments do not pickle by default.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[TolokaError], state: dict[str, Any]) -> TolokaError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._text())
    return err


class AuthenticationError(TolokaError):
    """The token was refused (401): a wrong, expired or revoked token."""


class AccessDenied(TolokaError):
    """The token is valid but may not touch this object (403)."""


class NotFound(TolokaError):
    """The object does not exist (404 ``DOES_NOT_EXIST``)."""


class ValidationError(TolokaError):
    """The request body or query was invalid (400 ``VALIDATION_ERROR``)."""

    @property
    def invalid_fields(self) -> list[str]:
        """Paths of the fields the server refused (the keys of the payload)."""
        return list(self.payload) if isinstance(self.payload, Mapping) else []


class IncorrectAction(TolokaError):
    """The action does not fit the object's state (409 and the "internal" codes).

    ``current_status``: for a refused accept or reject, the status the assignment
    was found in afterwards (the client reads it once), so callers need not read it again.
    """

    current_status: str | None = None


class ConflictState(IncorrectAction):
    """409 ``CONFLICT_STATE``."""


class InappropriateStatus(IncorrectAction):
    """An assignment (or pool) is not in a status that allows this change."""


class OperationAlreadyExists(IncorrectAction):
    """A create with an ``operation_id`` that was used before (a retried request)."""


class TooManyRequests(TolokaError):
    """Rate limit or quota hit (429); ``retry_after_s``/``interval`` say how long to wait."""

    retryable = True

    @property
    def interval(self) -> str | None:
        """The quota window from ``payload.interval`` (``MIN``, ``HOUR``, ``DAY``) if any."""
        if isinstance(self.payload, Mapping):
            value = self.payload.get("interval")
            return str(value) if value is not None else None
        return None


class ServerError(TolokaError):
    """Toloka failed (5xx); retried, and raised only once the retries are used up."""

    retryable = True


class TransportError(TolokaError):
    """No usable HTTP answer: connection refused or dropped, timeout, truncated body."""

    retryable = True


class UnexpectedResponse(TolokaError):
    """A 2xx answer whose body is not what the API documents (not JSON, wrong shape).

    Not retryable: the same request gets the same answer. The one exception is
    marked by the client: objects just created that a search does not return
    yet (``retryable=True``), since the next try resumes the same operation.
    """


class AttachmentTooLarge(TolokaError):
    """An attachment is larger than the configured download limit."""


class OperationFailed(TolokaError):
    """An asynchronous operation ended in ``FAIL`` or did not finish in time.

    Not retryable when it failed; retryable (set by the client) when it only
    did not finish in time, since a repeat with the same ``operation_id``
    resumes it.
    """


# Codes the API documents, mapped to our classes. Every other code that comes
# with a 409 is one of Toloka's ~70 "incorrect action" codes.
_BY_CODE: dict[str, type[TolokaError]] = {
    "VALIDATION_ERROR": ValidationError,
    "AUTHENTICATION_ERROR": AuthenticationError,
    "OAUTH_AUTHENTICATION_ERROR": AuthenticationError,
    "ACCESS_DENIED": AccessDenied,
    "DOES_NOT_EXIST": NotFound,
    "CONFLICT_STATE": ConflictState,
    "INAPPROPRIATE_STATUS": InappropriateStatus,
    "OPERATION_ALREADY_EXISTS": OperationAlreadyExists,
    "TOO_MANY_REQUESTS": TooManyRequests,
    "INTERNAL_ERROR": ServerError,
    "REMOTE_SERVICE_UNAVAILABLE": ServerError,
}

_BY_STATUS: dict[int, type[TolokaError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: AccessDenied,
    404: NotFound,
    409: IncorrectAction,
    429: TooManyRequests,
}


def error_class(status: int, code: str | None) -> type[TolokaError]:
    """The exception class for an error answer: by code first, then by status."""
    if code and code in _BY_CODE:
        return _BY_CODE[code]
    if status == 409 and code:
        return IncorrectAction
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, TolokaError)


def error_from_response(method: str, path: str, status: int, body: bytes) -> TolokaError:
    """Build the exception for a non-2xx answer, whatever its body looks like."""
    code: str | None = None
    message = ""
    request_id: str | None = None
    payload: Any = None
    doc: Any = None
    if body.strip():
        try:
            doc = json.loads(body.decode("utf-8", errors="replace"))
        except ValueError:
            doc = None
    if isinstance(doc, Mapping):
        raw_code = doc.get("code")
        code = str(raw_code) if raw_code is not None else None
        message = str(doc.get("message") or "")
        rid = doc.get("request_id")
        request_id = str(rid) if rid is not None else None
        payload = doc.get("payload")
    elif body.strip():
        message = "(the error body is not JSON)"
    else:
        message = "(empty error body)"
    cls = error_class(status, code)
    return cls(method, path, status, code, message, request_id=request_id, payload=payload,
               retryable=is_retryable_status(status))
