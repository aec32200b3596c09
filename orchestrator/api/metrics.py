"""GET /metrics (Prometheus text format) and the HTTP request counter."""

from __future__ import annotations

from typing import cast

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.types import HTTPScope, Message, Scope
from prometheus_client import CollectorRegistry, Counter

from orchestrator.api.auth import ADMIN, PUBLIC, bearer_or_key_guard
from orchestrator.api.openapi import KEY_OR_BEARER, errors
from orchestrator.service.metrics import CONTENT_TYPE, HTTP_REQUESTS, render

# Litestar appends the charset to a text/ media type itself: without it here, it is sent once.
MEDIA_TYPE = CONTENT_TYPE.replace("; charset=utf-8", "")


class MetricsController(Controller):
    tags = ["metrics"]
    security = KEY_OR_BEARER

    @get(
        "/metrics",
        operation_id="metrics",
        sync_to_thread=True,
        # The key is still required, but also as "Authorization: Bearer": what Prometheus sends.
        guards=[bearer_or_key_guard],
        opt={PUBLIC: True, ADMIN: True},
        summary="Prometheus metrics: tasks, queues, workers, durations, hooks, requests",
        description="Admin keys only (403 for a project member's key): every project's counts.",
        media_type=MEDIA_TYPE,
        responses=errors(401, 403, 503),
    )
    def metrics(self, metrics: NamedDependency[CollectorRegistry]) -> Response[bytes]:
        return Response(render(metrics), media_type=MEDIA_TYPE)


def _handler_name(scope: Scope) -> str:
    handler = scope.get("route_handler")
    if handler is None:
        return "unmatched"
    operation_id = getattr(handler, "operation_id", None)
    return operation_id if isinstance(operation_id, str) else str(handler.handler_name)


# The counter of each (method, handler, status): ``labels()`` checks and joins its values
# under a lock on every call. As many as the counter's own children: the handlers are the
# app's, status codes are few, and httptools (uvicorn's parser here) admits known methods only.
_counters: dict[tuple[str, str, int], Counter] = {}


async def count_request(message: Message, scope: Scope) -> None:
    """``before_send`` hook: one count per HTTP response, error responses included."""
    if message["type"] == "http.response.start" and scope["type"] == "http":
        method = cast("HTTPScope", scope)["method"]
        handler = _handler_name(scope)
        key = (method, handler, message["status"])
        counter = _counters.get(key)
        if counter is None:
            counter = _counters[key] = HTTP_REQUESTS.labels(method, handler, str(key[2]))
        counter.inc()
