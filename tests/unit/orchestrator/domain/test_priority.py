from __future__ import annotations

import pytest

from orchestrator.domain.priority import (
    Band,
    band_and_queue,
    band_of,
    band_queue,
    listening_order,
    name_of,
    parse_priority,
)


@pytest.mark.parametrize(
    ("given", "number"),
    [(None, 0), ("high", 10), ("NORMAL", 0), (" low ", -10), (7, 7), ("-3", -3), (100, 100)],
)
def test_names_and_numbers(given: str | int | None, number: int) -> None:
    assert parse_priority(given) == number


@pytest.mark.parametrize("bad", ["urgent", "", "1.5", 101, -101, True])
def test_anything_else_is_refused_naming_the_forms(bad: object) -> None:
    with pytest.raises(ValueError, match="not high, normal, low or an integer from -100 to 100"):
        parse_priority(bad)  # type: ignore[arg-type]


def test_bands_and_their_names() -> None:
    assert [band_of(n) for n in (-100, -1, 0, 1, 100)] == [
        Band.LOW,
        Band.LOW,
        Band.NORMAL,
        Band.HIGH,
        Band.HIGH,
    ]
    assert [name_of(n) for n in (10, 0, -10, 3, -7)] == [
        "high",
        "normal",
        "low",
        "high (3)",
        "low (-7)",
    ]


def test_ageing_moves_one_band_up_and_stops_at_the_top() -> None:
    assert (Band.LOW.higher, Band.NORMAL.higher, Band.HIGH.higher) == (
        Band.NORMAL,
        Band.HIGH,
        None,
    )


def test_queues_of_bands_round_trip_and_the_normal_band_keeps_the_plain_name() -> None:
    for band in Band:
        assert band_and_queue(band_queue("gpu", band)) == (band, "gpu")
    assert band_queue("default", Band.NORMAL) == "default"


def test_workers_take_every_queue_high_band_first() -> None:
    assert listening_order(["default", "gpu"]) == [
        "default.high",
        "gpu.high",
        "default",
        "gpu",
        "default.low",
        "gpu.low",
    ]
