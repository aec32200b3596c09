"""``UploadChecks``: which quiet uploads each reconciler pass checks against storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.reconciler import UploadChecks
from orchestrator.service.uploads import RECENT_QUIET_S, RECOVER_AFTER_S, Recovery

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SWEEP = timedelta(minutes=10)
WINDOW = timedelta(seconds=RECENT_QUIET_S)


def _checked(
    at: datetime, *, after: tuple[str, str] | None = None, failed: bool = False
) -> Recovery:
    """What a check at ``at`` returns (the slots quiet before RECOVER_AFTER_S earlier)."""
    return Recovery([], after, at - timedelta(seconds=RECOVER_AFTER_S), interrupted=failed)


def test_a_new_process_sweeps_and_checks_the_last_minute() -> None:
    checks = UploadChecks(SWEEP)
    assert checks.sweep_due(T0)
    assert checks.recent_since(T0) == T0 - WINDOW


def test_a_late_pass_checks_back_to_where_the_last_check_ended() -> None:
    checks = UploadChecks(SWEEP)
    checks.recent_checked(_checked(T0))
    late = T0 + timedelta(minutes=5)  # a slow pass, or another replica held the lock
    assert checks.recent_since(late) == T0 - timedelta(seconds=RECOVER_AFTER_S)
    soon = T0 + timedelta(seconds=10)  # on time: the last minute, checked again
    assert checks.recent_since(soon) == soon - WINDOW


def test_a_check_that_storage_cut_short_moves_nothing_on() -> None:
    checks = UploadChecks(SWEEP)
    checks.recent_checked(_checked(T0))
    checks.recent_checked(_checked(T0 + timedelta(minutes=1), failed=True))
    later = T0 + timedelta(minutes=30)
    assert checks.recent_since(later) == T0 - timedelta(seconds=RECOVER_AFTER_S)


def test_a_sweep_goes_on_page_by_page_then_is_due_again_after_its_period() -> None:
    checks = UploadChecks(SWEEP)
    assert not checks.swept(T0, _checked(T0, after=("t1", "a")))  # more pages to go
    assert checks.sweep_due(T0 + timedelta(seconds=10))
    assert checks.sweep_after == ("t1", "a")
    ended = T0 + timedelta(seconds=10)
    assert checks.swept(ended, _checked(ended))
    assert checks.sweep_after is None
    assert not checks.sweep_due(ended + SWEEP - timedelta(seconds=1))
    assert checks.sweep_due(ended + SWEEP)


def test_a_sweep_that_storage_cut_short_stays_due() -> None:
    checks = UploadChecks(SWEEP)
    assert not checks.swept(T0, _checked(T0, failed=True))
    assert checks.sweep_due(T0 + timedelta(seconds=10))
