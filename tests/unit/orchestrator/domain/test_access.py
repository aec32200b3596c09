from __future__ import annotations

import hashlib

import pytest

from orchestrator.domain.access import (
    KEY_PREFIX,
    Principal,
    Quota,
    Role,
    check_project_name,
    key_digest,
    may_start,
    new_key,
    shown,
    upload_refusal,
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


def test_upload_refusals_name_the_limit() -> None:
    q = Quota(max_stored_bytes=1000, max_upload_bytes=600)
    assert upload_refusal(q, "a", adding=100, task_bytes=500, stored_bytes=900) is None
    per_task = upload_refusal(q, "a", adding=101, task_bytes=500, stored_bytes=0)
    assert per_task is not None and "max_upload_bytes" in per_task and "601" in per_task
    stored = upload_refusal(q, "a", adding=101, task_bytes=0, stored_bytes=900)
    assert stored is not None and "max_stored_bytes" in stored and "project 'a'" in stored
    assert upload_refusal(Quota(), "a", adding=10**15, task_bytes=0, stored_bytes=10**15) is None


def test_running_quota() -> None:
    assert may_start(Quota(), 10**6)
    assert may_start(Quota(max_running=2), 1) and not may_start(Quota(max_running=2), 2)
    assert not may_start(Quota(max_running=0), 0)
