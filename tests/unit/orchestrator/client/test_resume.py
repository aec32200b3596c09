"""What ``submit`` remembers so that a re-run resumes: where, under which keys, how safely."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from orchestrator.client.resume import (
    LocalFile,
    ResumeStore,
    cache_dir,
    submission_key,
    upload_key,
)


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_dir({"ORCHESTRATOR_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")
    assert cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/orchestrator")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir({}) == tmp_path / ".cache" / "orchestrator"
    assert cache_dir({"XDG_CACHE_HOME": ""}) == tmp_path / ".cache" / "orchestrator"
    assert ResumeStore.default({"ORCHESTRATOR_CACHE_DIR": "/c"}).path == Path("/c/uploads.json")


def files(tmp_path: Path) -> list[LocalFile]:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"aaa")
    b.write_bytes(b"bb")
    return [LocalFile.of("first", a), LocalFile.of("second", b)]


def test_same_command_same_key_whatever_the_order(tmp_path: Path) -> None:
    fs = files(tmp_path)
    key = submission_key("http://api/", "checksum", {"x": 1, "y": 2}, fs)
    assert key == submission_key("http://api", "checksum", {"y": 2, "x": 1}, fs[::-1])


def test_anything_that_changes_the_work_changes_the_key(tmp_path: Path) -> None:
    fs = files(tmp_path)
    key = submission_key("http://api", "checksum", {}, fs)
    assert key != submission_key("http://other", "checksum", {}, fs)
    assert key != submission_key("http://api", "volcal", {}, fs)
    assert key != submission_key("http://api", "checksum", {"sleep_s": 1}, fs)
    assert key != submission_key("http://api", "checksum", {}, fs, "https://hooks.example/")
    assert key == submission_key("http://api", "checksum", {}, fs, None)
    # Slots swapped: a different task.
    swapped = [
        LocalFile("second", fs[0].path, fs[0].size, fs[0].mtime_ns),
        LocalFile("first", fs[1].path, fs[1].size, fs[1].mtime_ns),
    ]
    assert key != submission_key("http://api", "checksum", {}, swapped)
    # The file was rewritten: its half-uploaded bytes are stale.
    st = fs[0].path.stat()
    os.utime(fs[0].path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    touched = [LocalFile.of("first", fs[0].path), fs[1]]
    assert key != submission_key("http://api", "checksum", {}, touched)
    fs[0].path.write_bytes(b"longer")
    grown = [LocalFile.of("first", fs[0].path), fs[1]]
    assert key != submission_key("http://api", "checksum", {}, grown)


def test_upload_key_is_task_slot_path_size_mtime(tmp_path: Path) -> None:
    a, _ = files(tmp_path)
    assert upload_key("t1", a) == upload_key("t1", LocalFile.of("first", a.path))
    assert upload_key("t1", a) != upload_key("t2", a)
    assert upload_key("t1", a) != upload_key("t1", LocalFile("second", a.path, a.size, a.mtime_ns))
    assert upload_key("t1", a) != upload_key("t1", LocalFile("first", a.path, 9, a.mtime_ns))
    assert upload_key("t1", a) != upload_key("t1", LocalFile("first", a.path, a.size, 1))


def test_relative_paths_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_bytes(b"1")
    assert LocalFile.of("s", "f").path == tmp_path / "f"


def test_store_round_trip_and_forget(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path / "cache" / "uploads.json")
    a, b = files(tmp_path)
    assert store.submission("k") is None and store.upload_url("t1", a) is None
    store.remember_submission("k", {"task_id": "t1", "upload_urls": {"first": "u"}})
    store.remember_upload("t1", a, "http://tus/files/1")
    store.remember_upload("t1", b, "http://tus/files/2")
    store.remember_upload("t2", a, "http://tus/files/3")

    again = ResumeStore(store.path)  # another process, later
    assert again.submission("k") == {"task_id": "t1", "upload_urls": {"first": "u"}}
    assert again.upload_url("t1", a) == "http://tus/files/1"
    again.forget_upload("t1", b)
    assert again.upload_url("t1", b) is None

    again.forget_submission("k")
    assert again.submission("k") is None
    assert again.upload_url("t1", a) is None
    assert again.upload_url("t2", a) == "http://tus/files/3"  # another task's stays
    again.forget_submission("never-there")


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", '{"uploads": {}}'])
def test_a_damaged_file_is_forgotten_not_fatal(tmp_path: Path, content: str) -> None:
    path = tmp_path / "uploads.json"
    path.write_text(content)
    store = ResumeStore(path)
    assert store.submission("k") is None
    store.remember_submission("k", {"task_id": "t"})
    assert store.submission("k") == {"task_id": "t"}


def test_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path / "uploads.json")
    (a,) = files(tmp_path)[:1]
    variants = [LocalFile(f"s{i}", a.path, a.size, a.mtime_ns) for i in range(40)]
    threads = [
        threading.Thread(target=store.remember_upload, args=("t", f, f"u{i}"))
        for i, f in enumerate(variants)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [store.upload_url("t", f) for f in variants] == [f"u{i}" for i in range(40)]
    assert not list(tmp_path.glob("*.tmp"))
