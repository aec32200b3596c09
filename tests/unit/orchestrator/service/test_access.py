"""The key ring: one database read per key and interval; the bootstrap key without any."""

from __future__ import annotations

from orchestrator.domain.access import Principal, Role
from orchestrator.service.access import BOOTSTRAP, KeyRing, bootstrap

WHO = Principal("k1", Role.MEMBER, "p1", "mine-a")


class CountingLookup:
    def __init__(self, known: dict[str, Principal]) -> None:
        self.known = known
        self.reads = 0

    def principal(self, digest: str) -> Principal | None:
        self.reads += 1
        return self.known.get(digest)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_read_once_per_interval_unknown_ones_too() -> None:
    lookup, clock = CountingLookup({"d1": WHO}), Clock()
    ring = KeyRing(lookup, ttl_s=5.0, clock=clock)
    assert ring.remembered("d1") == (False, None)
    assert ring.look_up("d1") == WHO
    assert ring.look_up("nope") is None
    clock.now = 4.9
    assert ring.remembered("d1") == (True, WHO)
    assert ring.remembered("nope") == (True, None)
    assert lookup.reads == 2
    clock.now = 5.0  # a revocation shows within the interval
    assert ring.remembered("d1") == (False, None)


def test_the_ring_holds_at_most_its_capacity() -> None:
    ring = KeyRing(CountingLookup({}), ttl_s=60.0, clock=Clock(), capacity=2)
    for d in ("a", "b", "c"):
        ring.look_up(d)
    assert ring.remembered("a") == (False, None)
    assert ring.remembered("c") == (True, None)


def test_bootstrap_key() -> None:
    assert bootstrap("s3cret", "s3cret") is BOOTSTRAP
    assert bootstrap("other", "s3cret") is None
    assert bootstrap("", "s3cret") is None
    # No API_KEY configured: an open stack for the caller without a key.
    assert bootstrap("", "") is BOOTSTRAP
    assert bootstrap("ok_x", "") is None  # a key given is still looked up
    assert BOOTSTRAP.is_admin and BOOTSTRAP.project_id == "default"
