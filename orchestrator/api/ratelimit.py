"""Requests per key and second, with Litestar's rate-limit middleware: past the limit, 429
with ``Retry-After`` (and the draft RateLimit-* headers on every answer).

Counted per process, in memory: with N API processes a key gets up to N times the limit.
Public routes (health, pages, tusd's hooks) and the bootstrap API_KEY, the operator's own, are
not counted.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.types import Receive, Scope, Send

from orchestrator.api.auth import PUBLIC, principal_in, principal_of

STORE = "rate_limit"


class KeyRateLimit(RateLimitMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _counted_scope(scope):
            # Straight through: Litestar's middleware would build a Request and await its
            # checks first, on every request, for requests it never counts.
            await self.app(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as exc:
            headers = dict(exc.headers or {})
            # RFC 9110's header, which clients and proxies know: when this key's window resets.
            headers["Retry-After"] = str(max(int(headers.get("RateLimit-Reset", "1")), 1))
            raise TooManyRequestsException(
                detail="too many requests for this API key; retry after "
                f"{headers['Retry-After']} s",
                headers=headers,
            ) from None


def _key_of(request: Request[Any, Any, Any]) -> str:
    return principal_of(request).key_id or "bootstrap"


def _counted_scope(scope: Scope) -> bool:
    handler = scope["route_handler"]
    return not handler.opt.get(PUBLIC) and principal_in(scope).key_id is not None


async def _counted(request: Request[Any, Any, Any]) -> bool:
    return _counted_scope(request.scope)


def rate_limit(per_s: int) -> RateLimitConfig:
    return RateLimitConfig(
        rate_limit=("second", per_s),
        identifier_for_request=_key_of,
        check_throttle_handler=_counted,
        middleware_class=KeyRateLimit,
        store=STORE,
    )
