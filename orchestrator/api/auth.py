"""Who may call what: an API key for client endpoints (who holds it: ``principal_of``); the
internal listener and the hook secret for /tusd_hook. ``AccessMiddleware`` applies the listener
and the key to every route; the others are route guards. Routes marked ``ADMIN`` (the fleet,
the metrics) answer 403 to a project member's key.

The checks are coroutines although they do no I/O: Litestar runs a plain function guard in the
thread pool, so every request, even one that needs no database, would wait for a free thread
behind the requests that are waiting on PostgreSQL."""

from __future__ import annotations

import base64
import binascii
import hmac

import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from orchestrator.bootstrap import Services
from orchestrator.domain.access import Principal
from orchestrator.service.access import BOOTSTRAP, bootstrap, digest_of

API_KEY_HEADER = "X-API-Key"
_API_KEY_NAME = API_KEY_HEADER.lower().encode()
# Route handlers with this opt carry their own authentication (or none: /health).
PUBLIC = "public"
# Route handlers with this opt are served on the internal hook listener only, and the internal
# listener serves nothing else.
INTERNAL = "internal"
# Route handlers with this opt answer admin keys only.
ADMIN = "admin"
SCHEMA_PREFIX = "/schema"
# Where the caller's Principal is kept in the request's scope state.
_PRINCIPAL = "orchestrator.principal"


def _services(connection: ASGIConnection) -> Services:
    services: Services = connection.app.state.services
    return services


def _equal(given: str, expected: str) -> bool:  # the hook secret
    return hmac.compare_digest(given.encode(), expected.encode())


class AccessMiddleware:
    """App-wide, on every route: the listener, then the key (``listener_guard``, then
    ``api_key_guard``). A middleware, not app-level guards: Litestar copies the route handler
    for every guard it calls, on every request, which cost a cached query_task a fifth of its
    CPU. Litestar has routed the request already (``scope["route_handler"]``), and what is
    raised here is answered by the app's exception handlers like a guard's refusal."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            connection: ASGIConnection = ASGIConnection(scope)
            handler: BaseRouteHandler = scope["route_handler"]
            await listener_guard(connection, handler)
            await api_key_guard(connection, handler)
        await self.app(scope, receive, send)


def header_of(scope: Scope, name: bytes) -> str:
    """The first ``name`` header of the request ("" if none), as Litestar's own lookup answers
    it; ``name`` in lower case, as uvicorn (and Litestar's test client) give header names.
    Read from the scope's list: ``connection.headers`` parses every header into a multidict
    first, about 4 % of a listing request's CPU."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def principal_of(connection: ASGIConnection) -> Principal:
    """Who is calling (set by ``AccessMiddleware``; the bootstrap admin on public routes)."""
    return principal_in(connection.scope)


def principal_in(scope: Scope) -> Principal:
    """``principal_of`` for middleware, which has the ASGI scope and no connection."""
    found: Principal = scope["state"].get(_PRINCIPAL, BOOTSTRAP)
    return found


async def identify(connection: ASGIConnection, given: str) -> Principal | None:
    """The holder of ``given``: the bootstrap admin, or a key looked up (once per KEY_CACHE_S,
    in a worker thread) in PostgreSQL; None for an unknown or revoked key."""
    services = _services(connection)
    api_key = services.settings.api_key
    found = bootstrap(given, api_key)
    if found is not None or not given:
        return found
    digest = digest_of(given)
    known, principal = services.keys.remembered(digest)
    if not known:
        principal = await anyio.to_thread.run_sync(services.keys.look_up, digest)
    if principal is None and not api_key:
        return BOOTSTRAP  # no API_KEY configured: an open stack, whatever key is sent
    return principal


def _admit(connection: ASGIConnection, handler: BaseRouteHandler, who: Principal) -> None:
    connection.scope["state"][_PRINCIPAL] = who
    if handler.opt.get(ADMIN) and not who.is_admin:
        raise PermissionDeniedException(
            f"an admin key is required (this key is a member of project '{who.project_name}')"
        )


async def api_key_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Every route needs a key unless marked public, so a new route is closed."""
    if handler.opt.get(PUBLIC):
        return
    # The OpenAPI routes are registered by Litestar itself and cannot carry our opt.
    if connection.scope["path"].startswith(SCHEMA_PREFIX):
        return
    who = await identify(connection, header_of(connection.scope, _API_KEY_NAME))
    if who is None:
        raise NotAuthorizedException(f"missing, unknown or revoked {API_KEY_HEADER}")
    _admit(connection, handler, who)


async def bearer_or_key_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """An API key as X-API-Key or as ``Authorization: Bearer <key>``: what Prometheus sends
    with ``authorization: {credentials: <key>}`` in a scrape config (GET /metrics)."""
    auth = connection.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    given = given or connection.headers.get(API_KEY_HEADER, "")
    who = await identify(connection, given)
    if who is None:
        raise NotAuthorizedException(
            f"missing, unknown or revoked {API_KEY_HEADER} or Authorization: Bearer"
        )
    _admit(connection, handler, who)


def _local_port(connection: ASGIConnection) -> int | None:
    server = connection.scope.get("server")
    return int(server[1]) if server and server[1] is not None else None


async def listener_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """/tusd_hook exists only on the internal listener, the rest only on the public one.

    A 404, not a 403: the public port does not even admit that a hook endpoint exists.
    """
    on_internal = _local_port(connection) == _services(connection).settings.hook_port
    if bool(handler.opt.get(INTERNAL)) != on_internal:
        raise NotFoundException()


def _basic_password(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


async def hook_secret_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """tusd sends the secret as the password of the hook URL's userinfo
    (``-hooks-http=http://tusd:SECRET@api:8001/tusd_hook``), i.e. as ``Authorization: Basic``."""
    given = _basic_password(connection.headers.get("Authorization", ""))
    if given is None:
        raise NotAuthorizedException(
            "missing hook secret: give it as the password of the -hooks-http URL "
            "(http://tusd:SECRET@host:port/tusd_hook)"
        )
    if not _equal(given, _services(connection).settings.hook_secret):
        raise PermissionDeniedException("invalid hook secret")
