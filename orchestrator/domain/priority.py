"""Task priorities: what a client may ask for, and the queue band a task waits in.

A priority is an integer from ``LOWEST`` to ``HIGHEST``; ``high``, ``normal`` and ``low`` name
``HIGH``, ``NORMAL`` and ``LOW``. Workers take work band by band: every task of the high band
before any of the normal band, and the normal band before the low one (RQ's queue order).
Within a band tasks start in the order they were queued, whatever their numbers.

Ageing keeps low work from starving: a task that has waited ``ageing_s`` in its band moves up
one band (low → normal → high), to the back of it. A task therefore competes as high after at
most twice ``ageing_s`` in the queue, and then waits only for the high tasks queued before it.
"""

from __future__ import annotations

from enum import StrEnum

LOWEST = -100
HIGHEST = 100
HIGH = 10
NORMAL = 0
LOW = -10

NAMES: dict[str, int] = {"high": HIGH, "normal": NORMAL, "low": LOW}


class Band(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def higher(self) -> Band | None:
        """The band a task ages into; None for the top one."""
        return {Band.LOW: Band.NORMAL, Band.NORMAL: Band.HIGH}.get(self)


# Highest first: the order in which a worker listens to the bands of a queue.
BANDS: tuple[Band, ...] = (Band.HIGH, Band.NORMAL, Band.LOW)


def parse_priority(value: str | int | None) -> int:
    """``high`` / ``normal`` / ``low`` or an integer in [LOWEST, HIGHEST]; None is normal.

    Raises ``ValueError`` naming the accepted forms."""
    if value is None:
        return NORMAL
    if isinstance(value, bool):  # a JSON true is not a number here
        raise ValueError(_accepted(value))
    if isinstance(value, int):
        number = value
    else:
        named = NAMES.get(value.strip().lower())
        if named is not None:
            return named
        try:
            number = int(value)
        except ValueError:
            raise ValueError(_accepted(value)) from None
    if not LOWEST <= number <= HIGHEST:
        raise ValueError(_accepted(value))
    return number


def _accepted(value: object) -> str:
    return f"priority {value!r} is not high, normal, low or an integer from {LOWEST} to {HIGHEST}"


def band_of(priority: int) -> Band:
    if priority > NORMAL:
        return Band.HIGH
    if priority < NORMAL:
        return Band.LOW
    return Band.NORMAL


def name_of(priority: int) -> str:
    """How listings show a priority: its band's name, with the number when it is not the
    band's own (``high``, ``low (-3)``)."""
    band = band_of(priority)
    return band.value if NAMES[band.value] == priority else f"{band.value} ({priority})"


def band_queue(queue: str, band: Band) -> str:
    """The RQ queue that holds ``queue``'s tasks of ``band``; the normal band keeps the plain
    name, so that a queue without priorities is what it always was."""
    return queue if band is Band.NORMAL else f"{queue}.{band.value}"


def band_and_queue(rq_queue: str) -> tuple[Band, str]:
    """The band and queue an RQ queue holds: ``band_queue``'s inverse."""
    for band in (Band.HIGH, Band.LOW):
        suffix = f".{band.value}"
        if rq_queue.endswith(suffix) and len(rq_queue) > len(suffix):
            return band, rq_queue[: -len(suffix)]
    return Band.NORMAL, rq_queue


def listening_order(queues: list[str]) -> list[str]:
    """The RQ queues a worker of ``queues`` takes work from, in order: every queue's high band,
    then their normal bands, then their low bands."""
    return [band_queue(q, band) for band in BANDS for q in queues]
