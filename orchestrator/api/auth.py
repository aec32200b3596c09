"""Guards: the API key for client endpoints, the hook secret for /tusd_hook."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from orchestrator.bootstrap import Services

API_KEY_HEADER = "X-API-Key"
# Route handlers with this opt carry their own authentication (or none: /health).
PUBLIC = "public"
SCHEMA_PREFIX = "/schema"


def _services(connection: ASGIConnection) -> Services:
    services: Services = connection.app.state.services
    return services


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def api_key_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide: every route needs the key unless marked public, so a new route is closed."""
    expected = _services(connection).settings.api_key
    if not expected or handler.opt.get(PUBLIC):
        return
    # The OpenAPI routes are registered by Litestar itself and cannot carry our opt.
    if connection.scope["path"].startswith(SCHEMA_PREFIX):
        return
    if not _equal(connection.headers.get(API_KEY_HEADER, ""), expected):
        raise NotAuthorizedException(f"missing or invalid {API_KEY_HEADER}")


def bearer_or_key_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The API key as X-API-Key or as ``Authorization: Bearer <key>``: what Prometheus sends
    with ``authorization: {credentials: <key>}`` in a scrape config (GET /metrics)."""
    expected = _services(connection).settings.api_key
    if not expected:
        return
    auth = connection.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    given = given or connection.headers.get(API_KEY_HEADER, "")
    if not _equal(given, expected):
        raise NotAuthorizedException(
            f"missing or invalid {API_KEY_HEADER} or Authorization: Bearer"
        )


def hook_secret_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """tusd passes the secret in the hook URL (``-hooks-http .../tusd_hook?secret=...``)."""
    given = connection.query_params.get("secret")
    if not given:
        raise NotAuthorizedException("missing hook secret")
    if not _equal(given, _services(connection).settings.hook_secret):
        raise PermissionDeniedException("invalid hook secret")
