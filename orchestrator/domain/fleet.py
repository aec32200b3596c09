"""How the fleet looks from the registry: a worker's listed state. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

WorkerState = Literal["up", "lost", "stopped"]
WORKER_STATES: tuple[WorkerState, ...] = ("up", "lost", "stopped")


def worker_state(
    recorded: str, last_seen_at: datetime, now: datetime, lost_after_s: float
) -> WorkerState:
    """``stopped`` (it said goodbye), ``lost`` (up but silent for more than ``lost_after_s``
    seconds by the database's clock ``now``) or ``up``."""
    if recorded == "stopped":
        return "stopped"
    if now - last_seen_at > timedelta(seconds=lost_after_s):
        return "lost"
    return "up"
