"""Slot snapshots: when an upload counts as stalled, and what query_task shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain.task import InputView

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AFTER = timedelta(seconds=120)


@pytest.mark.parametrize(
    ("state", "idle_s", "shown"),
    [
        ("uploading", 0, "uploading"),
        ("uploading", 119, "uploading"),
        ("uploading", 120, "stalled"),
        ("uploading", 86400, "stalled"),
        ("empty", 86400, "empty"),
        ("done", 86400, "done"),
    ],
)
def test_an_upload_quiet_for_the_limit_is_stalled(state: str, idle_s: int, shown: str) -> None:
    view = InputView(
        slot="a", required=True, state=state, updated_at=NOW - timedelta(seconds=idle_s)
    )
    assert view.shown_state(NOW, AFTER) == shown
    assert view.stalled(NOW, AFTER) is (shown == "stalled")


def test_a_slot_without_activity_time_is_never_stalled() -> None:
    view = InputView(slot="a", required=True, state="uploading")
    assert view.shown_state(NOW, AFTER) == "uploading"
