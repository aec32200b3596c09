"""The response cache of finished tasks' answers: bounded, and only for marked answers."""

from __future__ import annotations

from typing import Any, cast

import anyio
from litestar.types import HTTPScope

from orchestrator.api.cache import BoundedMemoryStore, response_cache


def scope(**state: Any) -> HTTPScope:
    return cast("HTTPScope", {"type": "http", "state": state})


def test_only_marked_ok_answers_are_kept() -> None:
    keep = response_cache(60).cache_response_filter
    assert keep(scope(**{"orchestrator.finished_task": True}), 200)
    assert not keep(scope(), 200)  # a task that may still change
    assert not keep(scope(**{"orchestrator.finished_task": True}), 404)


def test_nothing_is_kept_when_links_are_not_reused_for_a_second() -> None:
    config = response_cache(0.5)
    assert not config.cache_response_filter(scope(**{"orchestrator.finished_task": True}), 200)


def test_the_store_holds_at_most_its_capacity_oldest_out_first() -> None:
    async def fill() -> BoundedMemoryStore:
        store = BoundedMemoryStore(capacity=2)
        for key in ("a", "b", "c"):
            await store.set(key, key.encode(), expires_in=60)
        return store

    store = anyio.run(fill)

    async def held() -> list[str]:
        return [k for k in ("a", "b", "c") if await store.get(k) is not None]

    assert anyio.run(held) == ["b", "c"]


def test_expired_answers_make_room_before_live_ones_go() -> None:
    async def run() -> list[str]:
        store = BoundedMemoryStore(capacity=2)
        await store.set("live", b"1", expires_in=60)
        await store.set("old", b"2", expires_in=-1)  # already expired
        await store.set("new", b"3", expires_in=60)
        return [k for k in ("live", "old", "new") if await store.get(k) is not None]

    assert anyio.run(run) == ["live", "new"]
