"""Exception handlers: the orchestrator's own errors as JSON (adapters and repositories raise
those, ``from`` the foreign error, so nothing here knows SQLAlchemy, Redis or MinIO).

Bodies follow Litestar's own error shape, ``{"status_code", "detail", ...extra}``.
"""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions.responses import ExceptionResponseContent
from litestar.types import ExceptionHandlersMap

from orchestrator.errors import (
    Conflict,
    DependencyError,
    Gone,
    HookRefused,
    InvalidRequest,
    NotFound,
)

log = logging.getLogger(__name__)


def _json(code: int, detail: str, **extra: object) -> Response[dict[str, object]]:
    return Response(
        {"status_code": code, "detail": detail, **extra},
        status_code=code,
        media_type=MediaType.JSON,
    )


def http_error(request: Request, exc: Exception) -> Response[object]:
    """Litestar's own errors (401 from a guard, 400 from validation, 405, ...) in its own shape,
    but always as JSON: its default takes the media type of the route, which is text/plain on
    /metrics and the logs, and would label a JSON body as text."""
    assert isinstance(exc, HTTPException)
    internal = exc.status_code >= 500
    return ExceptionResponseContent(
        status_code=exc.status_code,
        # As Litestar's own handler: a server error's text is for the log, not the client.
        detail="Internal Server Error" if internal else exc.detail,
        media_type=MediaType.JSON,
        headers=exc.headers,
        extra=exc.extra,
    ).to_response(request)


def not_found(_: Request, exc: Exception) -> Response[dict[str, object]]:
    return _json(404, str(exc))


def gone(_: Request, exc: Exception) -> Response[dict[str, object]]:
    extra = exc.extra if isinstance(exc, Gone) else {}
    return _json(410, str(exc), **extra)


def conflict(_: Request, exc: Exception) -> Response[dict[str, object]]:
    extra = exc.extra if isinstance(exc, Conflict) else {}
    return _json(409, str(exc), **extra)


def invalid(_: Request, exc: Exception) -> Response[dict[str, object]]:
    return _json(422, str(exc))


def refused_hook(request: Request, exc: Exception) -> Response[dict[str, object]]:
    # tusd logs a 4xx hook answer; nothing was recorded.
    log.warning("tusd hook refused: %s", exc)
    return _json(403, str(exc))


def unavailable(request: Request, exc: Exception) -> Response[dict[str, object]]:
    # Transient by definition: callers (tusd included) retry on 503.
    log.warning("%s %s: backing service unavailable: %s", request.method, request.url.path, exc)
    return _json(503, f"service unavailable: {exc}")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: http_error,
    NotFound: not_found,
    Gone: gone,
    Conflict: conflict,
    InvalidRequest: invalid,
    HookRefused: refused_hook,
    DependencyError: unavailable,
}
