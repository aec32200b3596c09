from __future__ import annotations

import hashlib

import pytest

from orchestrator.domain.access import (
    KEY_PREFIX,
    Principal,
    Role,
    check_project_name,
    key_digest,
    new_key,
    shown,
)

ADMIN = Principal("k1", Role.ADMIN, "p1", "mine-a")
MEMBER = Principal("k2", Role.MEMBER, "p2", "contractor")


def test_members_see_their_project_only_admins_see_all() -> None:
    assert MEMBER.scope == "p2" and MEMBER.sees("p2") and not MEMBER.sees("p1")
    assert ADMIN.scope is None and ADMIN.sees("p2") and ADMIN.sees("p1")


def test_keys_are_random_and_stored_as_their_sha256() -> None:
    a, b = new_key(), new_key()
    assert a != b and a.startswith(KEY_PREFIX) and len(a) > 40
    assert key_digest(a) == hashlib.sha256(a.encode()).hexdigest()
    assert shown(a) == a[:11] and a not in key_digest(a)


@pytest.mark.parametrize("bad", ["", " lead", "trail ", "x" * 101, "tab\there"])
def test_project_names(bad: str) -> None:
    assert check_project_name("Mine A / pit 3") == "Mine A / pit 3"
    with pytest.raises(ValueError, match="project name"):
        check_project_name(bad)
