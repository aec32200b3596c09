"""Whole answers about finished tasks, kept in memory by Litestar's response cache.

A task in a terminal state never changes, so its query_task answer is served again for half of
``link_reuse_s`` without routing it through the handler, its dependencies and the serialiser
(about half of what a finished task's answer costs). Its links were signed at most the other
half earlier (``service/finished.py``), so none handed out is older than ``link_reuse_s``.
An input still uploading when its task ended turns from uploading to stalled in the answers up
to that long late. Only answers a handler marks (``mark_finished``: a finished task
without webhooks, whose deliveries change after the end, and with at most ``INLINE_RESULTS``
results) are kept; the key is the path and the caller's project scope (an admin's answer is
never served to a member's key, nor one project's to another's), after the key was checked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.config.response_cache import ResponseCacheConfig
from litestar.connection import ASGIConnection
from litestar.stores.memory import MemoryStore
from litestar.types import HTTPScope

from orchestrator.api.auth import principal_of

STORE = "finished_answers"
# Answers kept per process; the oldest go first. An answer is a few KiB.
CAPACITY = 10_000
_FINISHED = "orchestrator.finished_task"
# Results a task may have for its answer to be made in the event loop: signing a link costs
# about 70 µs, and a task with thousands of outputs would hold every request up meanwhile.
INLINE_RESULTS = 100


def mark_finished(connection: ASGIConnection) -> None:
    """This request's answer is about a finished task without webhooks: it may be kept."""
    connection.scope["state"][_FINISHED] = True


def _path(request: Request[Any, Any, Any]) -> str:
    scope = principal_of(request).scope
    # A task forgotten (deleted, its results expired) retires every kept answer: deletes are
    # rare, and a key per generation needs no lookup of which answers were about the task.
    generation = request.app.state.services.finished.generation
    return f"{request.url.path}|{scope or '*'}|{generation}"


def _only_finished(scope: HTTPScope, status_code: int) -> bool:
    return status_code == 200 and bool(scope["state"].get(_FINISHED))


class BoundedMemoryStore(MemoryStore):
    """Litestar's ``MemoryStore``, which never forgets an expired key nobody asks for again,
    holding at most ``capacity`` keys: expired ones go first, then the oldest."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__()
        self._capacity = capacity

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        if len(self._store) >= self._capacity and key not in self._store:
            await self.delete_expired()
            async with self._lock:
                while len(self._store) >= self._capacity:
                    self._store.pop(next(iter(self._store)))
        await super().set(key, value, expires_in)


def response_cache(reuse_s: float) -> ResponseCacheConfig:
    """Answers kept for ``reuse_s`` seconds, whole ones only (0: none are kept)."""
    return ResponseCacheConfig(
        default_expiration=max(int(reuse_s), 0),
        store=STORE,
        # The path alone: query strings mean nothing to these routes, and must not make keys.
        key_builder=_path,
        cache_response_filter=_only_finished if int(reuse_s) >= 1 else lambda *_: False,
    )
