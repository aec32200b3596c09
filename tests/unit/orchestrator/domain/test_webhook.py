"""Webhook signing, payload, URL rules and retry schedule (pure, no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain.status import TaskStatus
from orchestrator.domain.webhook import (
    BACKOFF_CAP_S,
    DeliveryState,
    Outcome,
    after_attempt,
    backoff_s,
    build_request,
    delivered,
    encode_payload,
    event_of,
    forbidden_address,
    schedule,
    sign,
    validate_notify_url,
    verify,
)

SECRET = "s3cret"


def test_signature_matches_a_reference_hmac() -> None:
    body = b'{"status":"done","task_id":"t1"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"


def test_signature_known_vector() -> None:
    # Computed outside Python: printf '1.{}' | openssl dgst -sha256 -hmac key
    assert sign("key", 1, b"{}") == (
        "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
    )


def test_verify_accepts_fresh_and_refuses_tampered_or_stale() -> None:
    body = encode_payload({"task_id": "t1", "status": "killed"})
    sig = sign(SECRET, 1000, body)
    assert verify(SECRET, "1000", body, sig, now=1010)
    assert not verify(SECRET, "1000", body + b" ", sig, now=1010)
    assert not verify("other", "1000", body, sig, now=1010)
    assert not verify(SECRET, "1001", body, sig, now=1010)  # timestamp is signed
    assert not verify(SECRET, "1000", body, sig, now=1000 + 301)  # replayed later
    assert not verify(SECRET, "soon", body, sig, now=1000)


def test_request_headers_and_body() -> None:
    doc = {"task_id": "t1", "status": "done", "results": [{"name": "a", "bytes": 1}]}
    req = build_request(SECRET, "task.done", "d-1", 1234, doc)
    assert json.loads(req.body) == doc
    assert req.headers == {
        "Content-Type": "application/json",
        "X-Orchestrator-Event": "task.done",
        "X-Orchestrator-Delivery": "d-1",
        "X-Orchestrator-Timestamp": "1234",
        "X-Orchestrator-Signature": sign(SECRET, 1234, req.body),
    }


def test_payload_is_compact_stable_and_utf8() -> None:
    a = encode_payload({"b": 1, "a": "é"})
    assert a == encode_payload({"a": "é", "b": 1})
    assert a == '{"a":"é","b":1}'.encode()


def test_events_only_for_terminal_states() -> None:
    assert event_of(TaskStatus.DONE) == "task.done"
    assert event_of(TaskStatus.ERROR) == "task.error"
    assert event_of(TaskStatus.KILLED) == "task.killed"
    with pytest.raises(ValueError):
        event_of(TaskStatus.RUNNING)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "https://example.org/a?b=c", "HTTPS://Example.org"],
)
def test_valid_urls(url: str) -> None:
    assert validate_notify_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "example.org/hook",
        "/relative",
        "http://",
        "http://exa mple.org/",
        "http://example.org/\n",
        "http://example.org:99999/",
        "javascript:alert(1)",
        "http://example.org/" + "a" * 2000,
    ],
)
def test_invalid_urls_name_the_field(url: str) -> None:
    with pytest.raises(ValueError, match="notify_url"):
        validate_notify_url(url)


def test_backoff_doubles_and_is_capped() -> None:
    assert schedule(2.0, 5) == [2.0, 4.0, 8.0, 16.0]
    assert backoff_s(1, 0.5) == 0.5
    assert backoff_s(30, 2.0) == BACKOFF_CAP_S
    assert backoff_s(10_000, 2.0) == BACKOFF_CAP_S  # no overflow
    assert schedule(1.0, 1) == []
    with pytest.raises(ValueError):
        backoff_s(0, 1.0)


def test_only_2xx_counts_as_delivered() -> None:
    assert delivered(200) and delivered(204) and delivered(299)
    assert not any(delivered(c) for c in (None, 199, 301, 302, 400, 500))


def test_after_attempt() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def after(attempt: int, ok: bool) -> Outcome:
        return after_attempt(attempt, ok, now=now, max_attempts=3, base_s=2.0)

    ok = after(1, True)
    assert ok.state is DeliveryState.DELIVERED and ok.next_attempt_at is None
    first = after(1, False)
    assert first.state is DeliveryState.PENDING
    assert first.next_attempt_at == now + timedelta(seconds=2)
    second = after(2, False)
    assert second.next_attempt_at == now + timedelta(seconds=4)
    last = after(3, False)
    assert last.state is DeliveryState.FAILED and last.next_attempt_at is None


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("0.0.0.0", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("::ffff:127.0.0.1", True),
        ("fd00::1", True),
        ("224.0.0.1", True),
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
    ],
)
def test_only_public_unicast_addresses_may_receive_webhooks(address: str, forbidden: bool) -> None:
    assert forbidden_address(address) is forbidden
