"""Who is calling: the bootstrap API_KEY, or a key from PostgreSQL, remembered for a while.

A key's lookup is one indexed read; remembered for ``KEY_CACHE_S`` (5 s) per process, it is
made about once per key and interval, not once per request. The price: a revoked key keeps
working that long in a process that saw it just before.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from orchestrator.domain.access import DEFAULT_PROJECT, Principal, Role, key_digest

# The bootstrap API_KEY (and every call when no API_KEY is set): admin, creating in "default".
BOOTSTRAP = Principal(None, Role.ADMIN, DEFAULT_PROJECT, DEFAULT_PROJECT)
# Keys remembered per process at most (a few hundred bytes each): the oldest go first.
CAPACITY = 10_000


class KeyLookup(Protocol):
    """The one call the key ring makes (``AccessRepository`` has it)."""

    def principal(self, digest: str) -> Principal | None: ...


class KeyRing:
    """Principals by key digest, unknown keys included, each for ``ttl_s`` seconds."""

    def __init__(
        self,
        lookup: KeyLookup,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = CAPACITY,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._clock = clock
        self._capacity = capacity
        self._known: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._lock = threading.Lock()

    def remembered(self, digest: str) -> tuple[bool, Principal | None]:
        """(True, who) when known and fresh; (False, None) when it must be looked up. No I/O:
        safe in the event loop."""
        hit = self._known.get(digest)
        if hit is None or self._clock() >= hit[0]:
            return False, None
        return True, hit[1]

    def look_up(self, digest: str) -> Principal | None:
        """Read it from the database and remember it (blocking: call it in a thread)."""
        principal = self._lookup.principal(digest)
        with self._lock:
            self._known[digest] = (self._clock() + self._ttl_s, principal)
            self._known.move_to_end(digest)
            while len(self._known) > self._capacity:
                self._known.popitem(last=False)
        return principal


def bootstrap(given: str, api_key: str) -> Principal | None:
    """The bootstrap admin when ``given`` is the API_KEY, or when none is configured and none
    was given (an open development stack); else None (look the key up)."""
    if not api_key:
        return BOOTSTRAP if not given else None
    if given and hmac.compare_digest(given.encode(), api_key.encode()):
        return BOOTSTRAP
    return None


def digest_of(given: str) -> str:
    return key_digest(given)
