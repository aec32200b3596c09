from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from worker.logpump import LineSplitter, LogPump, follow_file


def test_splitter_keeps_partial_lines_for_the_next_chunk() -> None:
    s = LineSplitter()
    assert s.feed(b"one\ntw") == ["one"]
    assert s.feed(b"o\r\nthree") == ["two"]
    assert s.finish() == ["three"]
    assert s.finish() == []


def test_splitter_cuts_endless_lines_and_survives_bad_utf8() -> None:
    s = LineSplitter(max_line_bytes=4)
    assert s.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert s.feed(b"\xff\n") == ["ij\ufffd"]


class Sink:
    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.fail_first = fail_first
        self.calls = 0

    def __call__(self, lines: list[str]) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise ConnectionError("redis down")
        self.batches.append(list(lines))

    @property
    def lines(self) -> list[str]:
        return [line for batch in self.batches for line in batch]


def test_pump_batches_by_count_and_flushes_the_tail_on_close() -> None:
    sink = Sink()
    source = [f"line {i}\n".encode() for i in range(250)] + [b"no newline"]
    with LogPump(iter(source), sink, flush_s=10, max_lines=100) as pump:
        pass
    assert sink.lines == [f"line {i}" for i in range(250)] + ["no newline"]
    assert all(len(b) <= 100 for b in sink.batches)
    assert pump.sent == 251 and pump.dropped == 0


def test_pump_sends_lines_while_the_source_is_still_open() -> None:
    sink = Sink()
    release = threading.Event()

    def slow() -> Iterator[bytes]:
        yield b"early\n"
        release.wait(10)
        yield b"late\n"

    with LogPump(slow(), sink, flush_s=0.05):
        deadline = time.monotonic() + 5
        while not sink.lines and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sink.lines == ["early"]  # before the source ended
        release.set()
    assert sink.lines == ["early", "late"]


def test_a_failing_sink_loses_lines_but_never_raises() -> None:
    sink = Sink(fail_first=1)
    with LogPump(iter([b"a\n", b"b\n"]), sink, flush_s=10, max_lines=1) as pump:
        pass
    assert pump.dropped == 1 and sink.lines == ["b"]


def test_a_failing_source_ends_the_pump_quietly() -> None:
    def broken() -> Iterator[bytes]:
        yield b"before\n"
        raise ConnectionResetError("engine hung up")

    sink = Sink()
    with LogPump(broken(), sink, flush_s=10):
        pass
    assert sink.lines == ["before"]


def test_follow_file_reads_appended_bytes_until_done(tmp_path: Path) -> None:
    path = tmp_path / "log"
    done = threading.Event()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(follow_file(path, done, poll_s=0.01)))
    reader.start()
    with path.open("ab") as f:
        f.write(b"one\n")
        f.flush()
        time.sleep(0.1)
        f.write(b"two\n")
    done.set()
    reader.join(5)
    assert b"".join(got) == b"one\ntwo\n"


def test_follow_file_of_a_file_never_written(tmp_path: Path) -> None:
    done = threading.Event()
    done.set()
    assert list(follow_file(tmp_path / "absent", done, poll_s=0.01)) == []
