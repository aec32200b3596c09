"""The docker executor's log capture: the followed output written as it passes, and whether
it is the whole log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.executors.docker import _LogCapture


def test_a_stream_that_ends_is_the_whole_log(tmp_path: Path) -> None:
    capture = _LogCapture(tmp_path / "logs.txt")
    passed = list(capture.tee(iter([b"one\n", b"two\n"])))
    assert passed == [b"one\n", b"two\n"]
    assert (tmp_path / "logs.txt").read_bytes() == b"one\ntwo\n"
    assert capture.complete


def test_a_stream_cut_short_is_not(tmp_path: Path) -> None:
    def cut() -> Iterator[bytes]:
        yield b"one\n"
        raise ConnectionError("engine hung up")

    capture = _LogCapture(tmp_path / "logs.txt")
    with pytest.raises(ConnectionError):
        list(capture.tee(cut()))
    assert not capture.complete


def test_a_stream_left_unfinished_is_not(tmp_path: Path) -> None:
    capture = _LogCapture(tmp_path / "logs.txt")
    chunks = capture.tee(iter([b"one\n", b"two\n"]))
    next(chunks)
    chunks.close()
    assert not capture.complete
