"""The pipelines a process offers, read from the pipeline files of ``PIPELINES_PATH``.

Each directory of the path contributes its ``*.toml`` files and its ``*/pipeline.toml`` files
(a pipeline kept in a folder with its Dockerfile, as the shipped ones are). Files are read in
path order, then by name; a name defined twice keeps its first file.

A file that cannot be used is reported (``problems``, logged) and left out; it never takes the
others down. A file that was valid and becomes invalid keeps its last good version until it is
fixed, so a half-saved edit does not withdraw a pipeline that tasks are waiting for.

``current()`` re-reads the files when they changed: it compares their names, sizes and
modification times at most every ``check_every_s`` seconds (0: never by itself). ``invalidate()``
makes the next ``current()`` re-read whatever the clock says; processes call it on SIGHUP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.pipefile import PipelineFileError, load
from pipelines.spec import PipelineSpec

log = logging.getLogger(__name__)

# The folder of the shipped pipelines: PIPELINES_PATH's default.
SHIPPED = Path(__file__).parent

Fingerprint = tuple[tuple[str, int, int], ...]


def pipeline_files(dirs: Iterable[Path]) -> list[Path]:
    """The pipeline files under ``dirs``, in the order they are read."""
    found: list[Path] = []
    for d in dirs:
        found += sorted(d.glob("*.toml")) + sorted(d.glob("*/pipeline.toml"))
    return found


@dataclass(frozen=True)
class Loaded:
    """One reading of the path: the usable specs by name, and every file refused, with why."""

    specs: Mapping[str, PipelineSpec]
    problems: tuple[PipelineFileError, ...] = ()
    # file → spec read from it, to keep a last good version when the file breaks.
    by_file: Mapping[str, PipelineSpec] = field(default_factory=dict)


def read(dirs: Sequence[Path], previous: Loaded | None = None) -> Loaded:
    """Read every pipeline file under ``dirs``; ``previous`` lends last good versions."""
    problems: list[PipelineFileError] = []
    for d in dirs:
        if not d.is_dir():
            problems.append(
                PipelineFileError(str(d), [("", "is not a directory (PIPELINES_PATH)")])
            )
    specs: dict[str, PipelineSpec] = {}
    by_file: dict[str, PipelineSpec] = {}
    for path in pipeline_files(dirs):
        key = str(path)
        try:
            spec = load(path)
        except PipelineFileError as exc:
            problems.append(exc)
            kept = previous.by_file.get(key) if previous is not None else None
            if kept is None:
                continue
            spec = kept
            log.warning(
                "pipeline file refused; its last good version stays",
                extra={"path": key, "pipeline": spec.name},
            )
        if spec.name in specs:
            first = specs[spec.name].source
            problems.append(
                PipelineFileError(key, [("name", f"'{spec.name}' is already defined by {first}")])
            )
            continue
        specs[spec.name] = spec
        by_file[key] = spec
    return Loaded(specs, tuple(problems), by_file)


def fingerprint(dirs: Sequence[Path]) -> Fingerprint:
    out: list[tuple[str, int, int]] = []
    for path in pipeline_files(dirs):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


class PipelineCatalog:
    """The pipelines of ``dirs``, re-read when their files change; safe across threads."""

    def __init__(
        self,
        dirs: Sequence[Path],
        *,
        check_every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dirs = tuple(dirs)
        self._check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stale = False
        self._print: Fingerprint = fingerprint(self._dirs)
        self._loaded = read(self._dirs)
        self._checked = clock()
        _report(self._loaded)

    @property
    def dirs(self) -> tuple[Path, ...]:
        return self._dirs

    @property
    def problems(self) -> tuple[PipelineFileError, ...]:
        return self._loaded.problems

    def invalidate(self) -> None:
        """Re-read at the next ``current()`` (async-signal safe: it only sets a flag)."""
        self._stale = True

    def current(self) -> Mapping[str, PipelineSpec]:
        """The pipelines now; re-read first when the files changed (see the module's doc)."""
        now = self._clock()
        due = self._check_every_s > 0 and now - self._checked >= self._check_every_s
        if self._stale or due:
            with self._lock:
                self._refresh(now)
        return self._loaded.specs

    def get(self, name: str) -> PipelineSpec | None:
        return self.current().get(name)

    def _refresh(self, now: float) -> None:
        forced, self._stale = self._stale, False
        self._checked = now
        current = fingerprint(self._dirs)
        if current == self._print and not forced:
            return
        self._print = current
        loaded = read(self._dirs, self._loaded)
        before = {n: s.digest for n, s in self._loaded.specs.items()}
        after = {n: s.digest for n, s in loaded.specs.items()}
        self._loaded = loaded
        if before != after or forced:
            log.info(
                "pipelines reloaded",
                extra={
                    "added": sorted(set(after) - set(before)),
                    "removed": sorted(set(before) - set(after)),
                    "changed": sorted(n for n in after if n in before and after[n] != before[n]),
                },
            )
        _report(loaded)


class FixedCatalog:
    """A catalog that never changes: tests, and callers that hold specs built in code."""

    def __init__(self, specs: Mapping[str, PipelineSpec]) -> None:
        self._specs = dict(specs)
        self.problems: tuple[PipelineFileError, ...] = ()

    def invalidate(self) -> None:
        pass

    def current(self) -> Mapping[str, PipelineSpec]:
        return self._specs

    def get(self, name: str) -> PipelineSpec | None:
        return self._specs.get(name)


def _report(loaded: Loaded) -> None:
    for problem in loaded.problems:
        log.error("pipeline file refused", extra={"path": problem.source, "error": str(problem)})


def shipped() -> Mapping[str, PipelineSpec]:
    """The pipelines that come with the package (tests, benchmarks, tools)."""
    return read([SHIPPED]).specs
