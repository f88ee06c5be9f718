"""Toloka-shaped errors: every failure is JSON ``{request_id, code, message, payload}``."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ..store import json_dumps


class ApiError(Exception):
    """An error answer; the app's middleware turns it into a JSON response."""

    def __init__(self, status: int, code: str, message: str, payload: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.payload = payload


def error_response(status: int, code: str, message: str, payload: Any = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """Build the JSON error body Toloka sends (the client maps errors by ``code``)."""
    body: dict[str, Any] = {"request_id": uuid.uuid4().hex, "code": code, "message": message}
    if payload is not None:
        body["payload"] = payload
    return web.Response(status=status, text=json_dumps(body), content_type="application/json",
                        headers=headers)


def not_found(what: str, object_id: str) -> ApiError:
    return ApiError(404, "DOES_NOT_EXIST", f"{what} {object_id} does not exist")


def validation(payload: dict[str, Any], message: str = "Validation failed") -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, payload)


def field_error(code: str, message: str, params: list[Any] | None = None) -> dict[str, Any]:
    """A FieldValidationError ``{code, message[, params]}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if params is not None:
        error["params"] = params
    return error
