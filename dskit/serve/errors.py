"""Errors answered to HTTP clients: the one table mapping dskit errors to HTTP statuses, and
the error body in each API's shape."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError, DskitError, ModelNotFound


class ApiError(Exception):
    """An error sent as `{"error": message}` (OpenAI shape under /v1) with `status`."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class ServerBusy(ApiError):
    """The model is busy and the queue is full: 503, retry later."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


class ClientGone(Exception):
    """The client closed the request while its work was queued or running (answered 499,
    which nobody reads)."""


class BodyTooLarge(ApiError):
    """413: the request body is over the limit."""


#: dskit's errors as HTTP statuses, most specific first; anything else is a 500.
STATUS_OF: tuple[tuple[type[DskitError], int], ...] = (
    (ModelNotFound, 404),
    (ConfigurationError, 400),
    (DskitError, 500),
)


def api_error(exc: BaseException) -> ApiError:
    """`exc` as the ApiError a client is answered with (status from `STATUS_OF`)."""
    if isinstance(exc, ApiError):
        return exc
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            return ApiError(status, str(exc))
    return ApiError(500, f"{type(exc).__name__}: {exc}")


def openai_error(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error body."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
            413: "invalid_request_error", 503: "server_busy"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
