"""Webhook notifications, the pure part: URL rules, the signed request, the retry schedule.

A delivery is one POST of the task (the ``query_task`` body) to the task's ``notify_url``:

    Content-Type: application/json
    X-Orchestrator-Event: task.<status>
    X-Orchestrator-Delivery: <uuid, the same for every retry of one notification>
    X-Orchestrator-Timestamp: <unix seconds of this attempt>
    X-Orchestrator-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

The timestamp is inside the signed message so that a receiver can refuse an old request that
was recorded and replayed; the delivery id lets it drop a retry of something it already took.
No I/O here: the notifier (``orchestrator.notifier``) does the requests and the bookkeeping.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from orchestrator.domain.status import TaskStatus

MAX_URL_LENGTH = 2000
# A receiver down for hours should not be hammered, nor left waiting for days between tries.
BACKOFF_CAP_S = 3600.0
# How far a receiver should trust a timestamp (the verification snippet in the README uses it).
DEFAULT_TOLERANCE_S = 300

EVENT_HEADER = "X-Orchestrator-Event"
DELIVERY_HEADER = "X-Orchestrator-Delivery"
TIMESTAMP_HEADER = "X-Orchestrator-Timestamp"
SIGNATURE_HEADER = "X-Orchestrator-Signature"
SIGNATURE_PREFIX = "sha256="


class DeliveryState(StrEnum):
    PENDING = "pending"  # not yet delivered, another attempt is due at next_attempt_at
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # gave up after the last attempt


def validate_notify_url(url: str) -> str:
    """The URL as given when it is an absolute http(s) URL of at most 2000 characters.

    Raises ``ValueError`` with a message naming ``notify_url`` otherwise.
    """
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"notify_url: longer than {MAX_URL_LENGTH} characters")
    # Whitespace or control characters would be re-encoded (or refused) by the HTTP client, so
    # the request would not go to exactly the URL the user gave.
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError("notify_url: must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"notify_url: not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("notify_url: must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("notify_url: has no host")
    return url


def forbidden_address(address: str) -> bool:
    """Whether a webhook may not be sent to this IP: anything but a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def event_of(status: TaskStatus) -> str:
    """``task.done`` / ``task.error`` / ``task.killed``; only terminal states notify."""
    if not status.terminal:
        raise ValueError(f"{status.value} is not a terminal state")
    return f"task.{status.value}"


def encode_payload(document: Mapping[str, Any]) -> bytes:
    """The JSON body sent: compact and with a stable key order, so a signature computed over it
    is reproducible from the document."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``"<timestamp>." + body``)."""
    message = str(timestamp).encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a receiver does: the signature matches (constant time) and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


@dataclass(frozen=True)
class Request:
    """One signed delivery attempt, ready to POST."""

    headers: dict[str, str]
    body: bytes


def build_request(
    secret: str, event: str, delivery_id: str, timestamp: int, document: Mapping[str, Any]
) -> Request:
    body = encode_payload(document)
    return Request(
        headers={
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        },
        body=body,
    )


def delivered(status_code: int | None) -> bool:
    """Only a 2xx counts; a redirect is not followed, so it is a failure too."""
    return status_code is not None and 200 <= status_code < 300


def backoff_s(attempt: int, base_s: float, cap_s: float = BACKOFF_CAP_S) -> float:
    """Delay after failed attempt number ``attempt`` (1-based): base, 2·base, 4·base, … capped."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    # Bound the exponent so a large attempt count cannot overflow the float.
    return float(min(cap_s, base_s * 2 ** min(attempt - 1, 64)))


def schedule(base_s: float, max_attempts: int, cap_s: float = BACKOFF_CAP_S) -> list[float]:
    """The delays between the ``max_attempts`` attempts (one fewer than attempts)."""
    return [backoff_s(n, base_s, cap_s) for n in range(1, max_attempts)]


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState
    next_attempt_at: datetime | None


def after_attempt(
    attempt: int,
    ok: bool,
    *,
    now: datetime,
    max_attempts: int,
    base_s: float,
    cap_s: float = BACKOFF_CAP_S,
) -> Outcome:
    """Where a notification stands after its attempt number ``attempt`` (1-based)."""
    if ok:
        return Outcome(DeliveryState.DELIVERED, None)
    if attempt >= max_attempts:
        return Outcome(DeliveryState.FAILED, None)
    return Outcome(
        DeliveryState.PENDING, now + timedelta(seconds=backoff_s(attempt, base_s, cap_s))
    )
