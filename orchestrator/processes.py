"""Process helpers shared by the supervisor, the worker and the test fixtures."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (owned by us or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just not ours to signal
        return True
    return True


def on_sighup(callback: Callable[[], None]) -> bool:
    """Call ``callback`` on SIGHUP, then any Python handler that was there before.

    SIGHUP's default action ends the process; with this it re-reads what the callback marks
    stale instead. Signals can be set from the main thread only: elsewhere (an app run by a
    test client) this does nothing and returns False.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGHUP)

    def handler(signum: int, frame: FrameType | None) -> None:
        callback()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGHUP, handler)
    return True
