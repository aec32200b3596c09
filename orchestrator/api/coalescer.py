"""Identical reads at once share one trip to the database, and none reads stale.

A request may join a read of its key only until that read *seals*: the moment just before its
statement goes to PostgreSQL, which takes its snapshot after that. Every request it answers
therefore arrived before its snapshot was taken, and sees at least every change committed
before it arrived (a worker's ``done`` its client already read in query_task), as if it had
been read alone. A request that finds no open read of its key starts one at once, beside any
sealed ones still running. N clients polling the same page cost the database one read per
window between a read's start and its seal (the thread hop and the pool's checkout), instead
of N reads.

A reader that goes away (its client disconnected) leaves the read to the others; a read that
fails fails every request that joined it, with the same error.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What a read is given: ``seal``, to call (from any thread) right before its statement is sent.
Seal = Callable[[], None]


class _Read(Generic[V]):
    """One read in flight: the future its requests share."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        # A read every requester left must not log "exception was never retrieved".
        self.answer.add_done_callback(_retrieve)


class Coalescer(Generic[K, V]):
    """``read(key, load)`` from one event loop: ``load(seal)`` answers every request for
    ``key`` that arrives before it calls ``seal``."""

    def __init__(self) -> None:
        self._open: dict[K, _Read[V]] = {}
        # Sealing happens in a worker thread while the loop joins requests to the open read.
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: K, load: Callable[[Seal], Awaitable[V]]) -> V:
        with self._lock:
            read = self._open.get(key)
            if read is None:
                read = self._open[key] = _Read()
                task = asyncio.create_task(self._run(key, read, load))
                self._tasks.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(self._tasks.discard)
        # shield: a requester cancelled (its client gone) must not cancel the others' answer.
        return await asyncio.shield(read.answer)

    def _seal(self, key: K, read: _Read[V]) -> None:
        with self._lock:
            if self._open.get(key) is read:
                del self._open[key]

    async def _run(self, key: K, read: _Read[V], load: Callable[[Seal], Awaitable[V]]) -> None:
        def seal() -> None:
            self._seal(key, read)

        try:
            value = await load(seal)
        except asyncio.CancelledError:
            seal()
            read.answer.cancel()
            raise
        except Exception as exc:  # every requester gets it, as its own read would
            seal()
            read.answer.set_exception(exc)
        else:
            seal()  # load sealed before its statement; this one changes nothing then
            read.answer.set_result(value)


def _retrieve(answer: asyncio.Future[Any]) -> None:
    if not answer.cancelled():
        answer.exception()
