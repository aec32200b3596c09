"""Task listing: filter parsing and the opaque keyset cursor. Pure."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.domain.status import TaskStatus

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Cursor:
    """The position after which the next page starts: the last item's (created_at, id)."""

    created_at: datetime
    task_id: str


@dataclass(frozen=True)
class TaskFilter:
    statuses: tuple[TaskStatus, ...] = ()
    pipeline: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    after: Cursor | None = None
    limit: int = DEFAULT_LIMIT
    project_id: str | None = None  # None: every project's (an admin's listing)


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps([cursor.created_at.isoformat(), cursor.task_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    """Raise ``ValueError`` naming the ``cursor`` parameter for anything we did not issue."""
    try:
        padded = token + "=" * (-len(token) % 4)
        created, task_id = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        at = datetime.fromisoformat(created)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor this API issued") from exc
    if not isinstance(task_id, str) or at.tzinfo is None:
        raise ValueError("cursor: not a cursor this API issued")
    return Cursor(created_at=at, task_id=task_id)


def parse_statuses(values: Iterable[str]) -> tuple[TaskStatus, ...]:
    """Repeatable and/or comma-separated task states, deduplicated in the order given."""
    out: list[TaskStatus] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            try:
                status = TaskStatus(name)
            except ValueError as exc:
                known = ", ".join(s.value for s in TaskStatus)
                raise ValueError(f"status: unknown state {name!r} (known: {known})") from exc
            if status not in out:
                out.append(status)
    return tuple(out)


def parse_time(value: str, name: str) -> datetime:
    """ISO 8601; no offset means UTC. A '+' that a query string turned into ' ' is restored."""
    text = value.strip()
    candidates = [text]
    if " " in text:
        head, _, tail = text.rpartition(" ")
        candidates.append(f"{head}+{tail}")
    for candidate in candidates:
        try:
            at = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    raise ValueError(f"{name}: not an ISO 8601 time: {value!r}")


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    # Decimal digits only, as the OpenAPI document's integer: int() would also take " 5", "+5",
    # "1_0" and other scripts' digits.
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"limit: must be an integer from 1 to {MAX_LIMIT}, got {value!r}")
    limit = int(value)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


def parse_filter(
    *,
    status: Iterable[str] = (),
    pipeline: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    cursor: str | None = None,
    limit: str | None = None,
    project_id: str | None = None,
) -> TaskFilter:
    """The listing's query parameters, checked; ``ValueError`` names the bad parameter.
    ``project_id``: the one project whose tasks are listed (None: every project's)."""
    after = parse_time(created_after, "created_after") if created_after else None
    before = parse_time(created_before, "created_before") if created_before else None
    if after is not None and before is not None and after >= before:
        raise ValueError("created_after: must be earlier than created_before")
    return TaskFilter(
        statuses=parse_statuses(status),
        pipeline=pipeline or None,
        created_after=after,
        created_before=before,
        after=decode_cursor(cursor) if cursor else None,
        limit=parse_limit(limit),
        project_id=project_id,
    )
