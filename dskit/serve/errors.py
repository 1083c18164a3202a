"""Errors answered to HTTP clients, with the status code Ollama uses for them."""

from __future__ import annotations


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
