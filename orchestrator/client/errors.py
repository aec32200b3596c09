"""Errors of the Python client.

    ClientError
    ├── ApiError             the API answered with an error status (``status``, ``detail``)
    │   ├── InvalidRequest   400 / 422: bad body, unknown pipeline, bad parameters
    │   ├── Unauthorized     401 / 403: missing or wrong API key
    │   ├── NotFound         404: unknown task (or endpoint)
    │   │   └── Gone         410: a deleted task (``extra``: deleted_at, reason)
    │   ├── Conflict         409: the task's state forbids the call (``extra`` has e.g. missing)
    │   └── ServerError      5xx: the service or one of its backing services is unavailable
    ├── Unreachable          no answer at all: connection refused, DNS, timeout
    ├── UploadError          a tus upload failed (``status`` when the tus server answered)
    └── IntegrityError       a downloaded file's size or sha256 differs from the manifest

Foreign exceptions (requests, tuspy) are re-raised as one of these ``from`` the original, so
callers catch one family and still see the cause in tracebacks.
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base of every error the client raises on purpose."""


class ApiError(ClientError):
    """The API answered ``status`` (an HTTP error code) with ``detail`` (its message)."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        # The whole decoded JSON body when there was one: Litestar puts validation details in
        # "extra", Conflict answers name e.g. the "missing" slots.
        self.body = body

    @property
    def extra(self) -> dict[str, Any]:
        if isinstance(self.body, dict):
            return {k: v for k, v in self.body.items() if k not in ("status_code", "detail")}
        return {}


class InvalidRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class NotFound(ApiError):
    pass


class Gone(NotFound):
    pass


class Conflict(ApiError):
    pass


class ServerError(ApiError):
    pass


class Unreachable(ClientError):
    """No HTTP answer: the server is down, the name does not resolve, or it timed out."""


class UploadError(ClientError):
    """A tus upload failed; ``status`` is the tus server's answer, None when there was none."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class IntegrityError(ClientError):
    """A downloaded file does not match the size or sha256 the server published for it."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: InvalidRequest,
}


def api_error(status: int, detail: str, body: Any = None) -> ApiError:
    """The most specific ``ApiError`` for an HTTP ``status``."""
    if status >= 500:
        return ServerError(status, detail, body)
    return _BY_STATUS.get(status, ApiError)(status, detail, body)
