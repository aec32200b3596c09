"""Requests share a read only until it seals; after that they get a read of their own.

Each load below is driven by events the test sets, so the order of arrivals, seals and answers
is exact: nothing waits on the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from orchestrator.api.coalescer import Coalescer, Seal


class Database:
    """A value that changes, read by loads that the test steps through."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.sealed = asyncio.Event()
        self.release = asyncio.Event()

    def load(self, fail: Exception | None = None) -> Callable[[Seal], asyncio.Future[int]]:
        async def read(seal: Seal) -> int:
            self.reads += 1
            await asyncio.sleep(0)  # the thread hop: requests may still join
            seal()
            snapshot = self.value  # the statement's snapshot, taken after the seal
            self.sealed.set()
            await self.release.wait()
            if fail is not None:
                raise fail
            return snapshot

        return read  # type: ignore[return-value]


async def settle() -> None:
    """Let every task that can run do so (each step of a load is one loop turn here)."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_requests_before_the_seal_share_one_read() -> None:
    async def run() -> None:
        db, reads = Database(), Coalescer[str, int]()
        first = [asyncio.create_task(reads.read("page", db.load())) for _ in range(5)]
        await settle()
        db.release.set()
        assert await asyncio.gather(*first) == [0] * 5
        assert db.reads == 1

    asyncio.run(run())


def test_a_request_after_the_seal_is_not_answered_with_the_older_snapshot() -> None:
    async def run() -> None:
        db, reads = Database(), Coalescer[str, int]()
        early = asyncio.create_task(reads.read("page", db.load()))
        await db.sealed.wait()
        db.value = 1  # committed after the first read's snapshot, before the next request
        late = asyncio.create_task(reads.read("page", db.load()))
        await settle()
        db.release.set()
        assert await early == 0
        assert await late == 1
        assert db.reads == 2

    asyncio.run(run())


def test_other_keys_are_read_apart() -> None:
    async def run() -> None:
        db, reads = Database(), Coalescer[str, int]()
        db.release.set()
        answers = await asyncio.gather(reads.read("a", db.load()), reads.read("b", db.load()))
        assert answers == [0, 0] and db.reads == 2

    asyncio.run(run())


def test_a_failed_read_fails_those_who_joined_it_and_the_next_request_reads_again() -> None:
    async def run() -> None:
        db, reads = Database(), Coalescer[str, int]()
        joined = [
            asyncio.create_task(reads.read("page", db.load(RuntimeError("database down"))))
            for _ in range(3)
        ]
        await settle()
        db.release.set()
        for task in joined:
            with pytest.raises(RuntimeError, match="database down"):
                await task
        assert await reads.read("page", db.load()) == 0
        assert db.reads == 2

    asyncio.run(run())


def test_a_requester_that_goes_away_leaves_the_answer_to_the_others() -> None:
    async def run() -> None:
        db, reads = Database(), Coalescer[str, int]()
        gone = asyncio.create_task(reads.read("page", db.load()))
        stays = asyncio.create_task(reads.read("page", db.load()))
        await settle()
        gone.cancel()
        await settle()
        db.release.set()
        assert await stays == 0
        assert gone.cancelled() and db.reads == 1

    asyncio.run(run())
