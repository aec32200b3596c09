"""Live logs: a run's output, line by line, into a sink (the task's Redis log stream) as it comes.

``LogPump`` reads byte chunks from a source iterator in one thread (the docker SDK's
``container.logs(stream=True, follow=True)``, or ``follow_file`` for the local executor) and
hands complete lines to the sink in batches, every ``flush_s`` or every ``max_lines`` lines.
The pump is best effort by design: a failing sink (Redis down) loses that batch with a warning
and the run goes on; the complete log is stored with the results anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

LineSink = Callable[[list[str]], None]

FLUSH_S = 0.5
MAX_LINES = 100
# A "line" without a newline for this long (binary output, a progress bar) is cut and sent.
MAX_LINE_BYTES = 16 * 1024


class LineSplitter:
    """Bytes in, complete text lines out; keeps the unfinished tail for the next chunk."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._partial = b""
        self._max = max_line_bytes

    def feed(self, chunk: bytes) -> list[str]:
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        lines = [_text(line) for line in complete]
        while len(self._partial) >= self._max:
            lines.append(_text(self._partial[: self._max]))
            self._partial = self._partial[self._max :]
        return lines

    def finish(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [_text(rest)] if rest else []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


class LogPump:
    """``with LogPump(source, sink): ...`` pumps ``source`` while the block runs; leaving the
    block waits up to ``drain_s`` for the source to end, then flushes what is left."""

    def __init__(
        self,
        source: Iterable[bytes],
        sink: LineSink,
        *,
        flush_s: float = FLUSH_S,
        max_lines: int = MAX_LINES,
        drain_s: float = 5.0,
    ) -> None:
        self._source = source
        self._sink = sink
        self._flush_s = flush_s
        self._max_lines = max_lines
        self._drain_s = drain_s
        self._splitter = LineSplitter()
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._source_done = threading.Event()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name="logpump-read", daemon=True)
        self._flusher = threading.Thread(target=self._flush_loop, name="logpump-send", daemon=True)
        self.sent = 0  # lines handed to the sink successfully
        self.dropped = 0  # lines lost to sink failures
        self._warned = False

    def __enter__(self) -> LogPump:
        self._reader.start()
        self._flusher.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._source_done.wait(self._drain_s)
        self._closing.set()
        self._wake.set()
        self._flusher.join(timeout=self._drain_s + 5)

    def _read(self) -> None:
        try:
            for chunk in self._source:
                lines = self._splitter.feed(chunk)
                if lines:
                    self._add(lines)
        except Exception as exc:  # the engine hung up, the container vanished
            log.info("live log source ended early", extra={"error": str(exc)})
        finally:
            self._add(self._splitter.finish())
            self._source_done.set()
            self._wake.set()

    def _add(self, lines: list[str]) -> None:
        if not lines:
            return
        with self._lock:
            self._pending.extend(lines)
            full = len(self._pending) >= self._max_lines
        if full:
            self._wake.set()

    def _flush_loop(self) -> None:
        while True:
            self._wake.wait(self._flush_s)
            self._wake.clear()
            closing = self._closing.is_set()
            self._flush()
            if closing:
                self._flush()  # anything the reader added meanwhile
                return

    def _flush(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = (
                    self._pending[: self._max_lines],
                    self._pending[self._max_lines :],
                )
            if not batch:
                return
            try:
                self._sink(batch)
                self.sent += len(batch)
            except Exception as exc:
                self.dropped += len(batch)
                if not self._warned:
                    log.warning(
                        "live log lines lost (the stored log is complete)",
                        extra={"error": str(exc)},
                    )
                    self._warned = True


def follow_file(
    path: Path, done: threading.Event, poll_s: float = 0.2, chunk: int = 64 * 1024
) -> Iterator[bytes]:
    """The bytes appended to ``path`` until ``done`` is set (then whatever is left)."""
    while not path.exists():
        if done.wait(poll_s):
            break
    try:
        f = path.open("rb")
    except OSError:
        return
    with f:
        while True:
            data = f.read(chunk)
            if data:
                yield data
                continue
            if done.is_set():
                # One last read: the writer may have added bytes just before ``done``.
                rest = f.read()
                if rest:
                    yield rest
                return
            time.sleep(poll_s)
