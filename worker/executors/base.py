"""What every executor takes and gives back; executors differ only in how they isolate a run."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from orchestrator.domain.task import RunStats
from pipelines.spec import Resources
from worker.logpump import LineSink

# How much of a run's combined log an outcome carries (the full log goes to logs.txt).
LOG_TAIL_CHARS = 4000


class OutcomeKind(StrEnum):
    EXITED = "exited"  # the pipeline ended by itself with ``exit_code``
    OOM = "oom"  # killed for exceeding its memory limit
    TIMEOUT = "timeout"  # stopped at its wall-clock limit
    KILLED = "killed"  # stopped because the stop event was set (kill request, task lost)
    FAILED = "failed"  # never ran or could not be run; ``reason`` says why


@dataclass(frozen=True)
class RunRequest:
    """One run of a pipeline command.

    ``command`` still holds its placeholders; each executor expands them to the paths the
    process sees. ``inputs`` maps every slot to its file name inside ``in_dir`` (None: empty
    optional slot). The combined stdout/stderr goes to ``log_path``, and line by line to
    ``log_sink`` while the run goes on when one is given (live logs; best effort). Setting
    ``stop`` ends the run as KILLED. ``params`` fill ``{param:<name>}``; ``environment`` is
    the pipeline's own, set in the run's environment.
    """

    task_id: str
    image: str
    command: tuple[str, ...]
    inputs: dict[str, str | None]
    in_dir: Path
    out_dir: Path
    params_file: str
    log_path: Path
    resources: Resources
    stop: threading.Event = field(default_factory=threading.Event)
    log_sink: LineSink | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    kind: OutcomeKind
    exit_code: int | None = None
    reason: str | None = None
    log_tail: str = ""
    # The run's stderr alone where the executor can separate it, else the combined tail.
    stderr_tail: str = ""
    stats: RunStats = field(default_factory=RunStats)
    # What ran, for provenance: the command after expansion, and the image's ID (docker).
    command: tuple[str, ...] = ()
    image_id: str | None = None


class Executor(Protocol):
    def has_image(self, image: str) -> bool:
        """Whether ``image`` can run here now (the local executor runs commands: always)."""
        ...

    def images(self, wanted: Iterable[str]) -> list[str] | None:
        """Those of ``wanted`` that can run here; None: any (no images involved)."""
        ...

    def run(self, request: RunRequest) -> RunOutcome:
        """Run to completion, timeout or stop; raise ``ExecutorError`` only when the engine
        itself failed (a broken run is an outcome, not an exception)."""
        ...


def read_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``chars`` characters of a log file, read from its end (logs can be large)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - chars * 4))
            return f.read().decode("utf-8", errors="replace")[-chars:]
    except OSError:
        return ""
