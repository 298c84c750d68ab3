"""The one exception type that becomes an API error response."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API reports as {"Code", "Message", "RequestId", "HostId"} with an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def missing(name: str) -> ApiError:
    return ApiError("MissingParameter", f"The input parameter \"{name}\" that is mandatory for processing this request is not supplied.", 400)


def invalid(name: str, why: str, code: str | None = None) -> ApiError:
    return ApiError(code or f"InvalidParameter.{name}", f"The specified parameter \"{name}\" is not valid: {why}", 400)
