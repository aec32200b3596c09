"""The task listing's filter parsing and opaque keyset cursor."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.domain.listing import (
    DEFAULT_LIMIT,
    Cursor,
    decode_cursor,
    encode_cursor,
    parse_filter,
    parse_statuses,
    parse_time,
)
from orchestrator.domain.status import TaskStatus


def test_cursor_round_trips_to_the_microsecond() -> None:
    at = datetime(2026, 11, 22, 9, 30, 1, 123456, tzinfo=UTC)
    token = encode_cursor(Cursor(at, "0b6f6c52-3f0e-4d8e-9b8e-0d6b1a1c2d3e"))
    assert "=" not in token and "/" not in token and "+" not in token  # URL-safe as is
    back = decode_cursor(token)
    assert back == Cursor(at, "0b6f6c52-3f0e-4d8e-9b8e-0d6b1a1c2d3e")


def test_cursor_keeps_the_offset() -> None:
    at = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert decode_cursor(encode_cursor(Cursor(at, "x"))).created_at == at


@pytest.mark.parametrize(
    "token",
    [
        "nonsense!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "id"]').decode(),  # no offset
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", 5]').decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_foreign_cursors_are_refused_naming_the_parameter(token: str) -> None:
    with pytest.raises(ValueError, match=r"^cursor: "):
        decode_cursor(token)


def test_statuses_repeatable_and_comma_separated() -> None:
    got = parse_statuses(["done,error", "pending", " DONE ", ""])
    assert got == (TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.PENDING)


def test_unknown_status_names_the_parameter_and_the_known_states() -> None:
    with pytest.raises(ValueError, match=r"^status: unknown state 'finished' \(known: waiting"):
        parse_statuses(["done,finished"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T10:00:00Z", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T10:00:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22", datetime(2026, 11, 22, tzinfo=UTC)),
        # "+02:00" with its "+" decoded to a space by a careless query string
        ("2026-11-22T12:00:00 02:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T12:00:00+02:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
    ],
)
def test_times_parse(text: str, expected: datetime) -> None:
    assert parse_time(text, "created_after") == expected


def test_defaults() -> None:
    f = parse_filter()
    assert f.statuses == () and f.pipeline is None and f.after is None
    assert f.limit == DEFAULT_LIMIT


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": "0"}, "^limit: "),
        ({"limit": "501"}, "^limit: "),
        ({"limit": "ten"}, "^limit: "),
        ({"limit": "1_0"}, "^limit: "),
        ({"limit": ""}, "^limit: "),
        ({"limit": " 5"}, "^limit: "),
        ({"limit": "\u0665"}, "^limit: "),  # an Arabic-Indic 5: int() would take it
        ({"created_after": "yesterday"}, "^created_after: "),
        ({"created_before": "2026-13-01"}, "^created_before: "),
        (
            {"created_after": "2026-02-01", "created_before": "2026-01-01"},
            "^created_after: must be earlier",
        ),
        ({"cursor": "abc"}, "^cursor: "),
        ({"status": ["nope"]}, "^status: "),
    ],
)
def test_bad_values_name_the_parameter(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_filter(**kwargs)  # type: ignore[arg-type]


def test_a_full_filter() -> None:
    cursor = encode_cursor(Cursor(datetime(2026, 1, 1, tzinfo=UTC), "t"))
    f = parse_filter(
        status=["running"],
        pipeline="checksum",
        created_after="2025-01-01",
        cursor=cursor,
        limit="500",
    )
    assert f.statuses == (TaskStatus.RUNNING,)
    assert f.pipeline == "checksum" and f.limit == 500
    assert f.after == Cursor(datetime(2026, 1, 1, tzinfo=UTC), "t")
