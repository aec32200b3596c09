"""Room in the work dir: may a task's inputs and outputs be staged here now?

A run needs ``Resources.disk_bytes(input bytes)`` in the work dir: its inputs (times the
pipeline's ``disk_per_input``) and a margin for outputs. Runs already admitted may not have
written all of theirs yet (they are still downloading, or writing outputs), so the room for a
new task is the file system's free space less what the running ones may still write: their need
less what their run directories already hold.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from orchestrator.db.repository import RunningTask


def tree_bytes(path: Path) -> int:
    """Bytes the files under ``path`` take (0 if it is gone: the run ended meanwhile)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


class WorkDir:
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _usage(self) -> shutil._ntuple_diskusage:
        # A fresh host has no work dir before its first run stages one: make it, or every
        # admission would fail on it and no task would ever start here.
        self.path.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.path)

    def size(self) -> int:
        """The file system's whole size: a task needing more never runs here."""
        return self._usage().total

    def room(self, running: Iterable[RunningTask]) -> int:
        """Free bytes, less what the running tasks may still write."""
        free = self._usage().free
        owed = 0
        for task in running:
            need = task.resources.disk_bytes(task.input_bytes)
            # Run dirs are ``<task id>-<random>`` (``worker.staging.RunDir``).
            held = sum(tree_bytes(d) for d in self.path.glob(f"{task.id}-*"))
            owed += max(0, need - held)
        return free - owed
