from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain.lifecycle import Retention, cutoff, expiry_reason, whole_days

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DAY = 86_400


def test_dates_count_from_the_end_and_zero_keeps_for_ever() -> None:
    r = Retention(input_s=DAY, result_s=30 * DAY, waiting_s=7 * DAY, multipart_s=2 * DAY)
    assert r.inputs_expire_at(NOW) == NOW + timedelta(days=1)
    assert r.results_expire_at(NOW) == NOW + timedelta(days=30)
    assert r.results_expire_at(None) is None  # not ended yet
    forever = Retention(input_s=0, result_s=0, waiting_s=0, multipart_s=0)
    assert forever.results_expire_at(NOW) is None and forever.inputs_expire_at(NOW) is None
    assert cutoff(NOW, 0) is None
    assert cutoff(NOW, 60) == NOW - timedelta(minutes=1)


@pytest.mark.parametrize(
    ("seconds", "days"), [(1, 1), (DAY, 1), (DAY + 1, 2), (30 * DAY, 30), (0.5, 1)]
)
def test_bucket_rules_count_whole_days_rounding_up(seconds: float, days: int) -> None:
    assert whole_days(seconds) == days


@pytest.mark.parametrize(
    ("seconds", "reason"),
    [
        (7 * DAY, "expired: no uploads for 7 days"),
        (DAY, "expired: no uploads for 1 day"),
        (7200, "expired: no uploads for 2 hours"),
        (120, "expired: no uploads for 2 minutes"),
        (90, "expired: no uploads for 90 seconds"),
    ],
)
def test_the_expiry_reason_says_how_long(seconds: float, reason: str) -> None:
    assert expiry_reason(seconds) == reason
