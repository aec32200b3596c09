"""The catalog of PIPELINES_PATH: isolation of bad files, duplicates, reloads on change."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from pipelines.catalog import SHIPPED, PipelineCatalog, pipeline_files, read


def pipefile(name: str, *, version: str = "1", extra: str = "") -> str:
    return f'''name = "{name}"
version = "{version}"
description = "d"
image = "img-{name}:latest"
command = ["run", "{{in:data}}", "{{out}}"]
{extra}
[inputs.data]
'''


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, *, tick: int) -> None:
    path.write_text(text)
    # Distinct modification times whatever the filesystem's resolution.
    os.utime(path, ns=(tick * 10**9, tick * 10**9))


def test_files_of_a_directory_and_of_its_folders(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text(pipefile("b"))
    (tmp_path / "a.toml").write_text(pipefile("a"))
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "pipeline.toml").write_text(pipefile("tool"))
    (tmp_path / "tool" / "other.toml").write_text("not read")
    assert pipeline_files([tmp_path]) == [
        tmp_path / "a.toml",
        tmp_path / "b.toml",
        tmp_path / "tool" / "pipeline.toml",
    ]
    assert set(read([tmp_path]).specs) == {"a", "b", "tool"}


def test_an_invalid_file_is_reported_and_the_others_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.toml").write_text(pipefile("good"))
    (tmp_path / "bad.toml").write_text(pipefile("bad", extra="colour = 1"))
    with caplog.at_level(logging.ERROR):
        catalog = PipelineCatalog([tmp_path])
    assert set(catalog.current()) == {"good"}
    [problem] = catalog.problems
    assert str(problem) == f"{tmp_path / 'bad.toml'}: colour: unknown key"
    assert "pipeline file refused" in caplog.text


def test_a_name_defined_twice_keeps_its_first_file(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "x.toml").write_text(pipefile("same", version="first"))
    (second / "y.toml").write_text(pipefile("same", version="second"))
    loaded = read([first, second])
    assert loaded.specs["same"].version == "first"
    [problem] = loaded.problems
    assert str(problem) == (
        f"{second / 'y.toml'}: name: 'same' is already defined by {first / 'x.toml'}"
    )


def test_a_missing_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    loaded = read([tmp_path / "absent", SHIPPED])
    assert "checksum" in loaded.specs
    assert "is not a directory" in str(loaded.problems[0])


def test_changes_are_seen_after_the_check_interval(tmp_path: Path) -> None:
    clock = Clock()
    write(tmp_path / "a.toml", pipefile("a", version="1"), tick=1)
    catalog = PipelineCatalog([tmp_path], check_every_s=2.0, clock=clock)
    write(tmp_path / "a.toml", pipefile("a", version="2"), tick=2)
    write(tmp_path / "b.toml", pipefile("b"), tick=2)
    clock.now = 1.9
    assert catalog.current()["a"].version == "1" and "b" not in catalog.current()
    clock.now = 2.0
    assert catalog.current()["a"].version == "2" and "b" in catalog.current()
    (tmp_path / "b.toml").unlink()
    clock.now = 4.0
    assert set(catalog.current()) == {"a"}


def test_invalidate_rereads_at_once_and_zero_disables_the_clock(tmp_path: Path) -> None:
    clock = Clock()
    write(tmp_path / "a.toml", pipefile("a", version="1"), tick=1)
    catalog = PipelineCatalog([tmp_path], check_every_s=0, clock=clock)
    write(tmp_path / "a.toml", pipefile("a", version="2"), tick=2)
    clock.now = 1000.0
    assert catalog.current()["a"].version == "1"
    catalog.invalidate()  # what SIGHUP does
    assert catalog.current()["a"].version == "2"


def test_a_broken_edit_keeps_the_last_good_version_until_fixed(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "a.toml"
    write(path, pipefile("a", version="1"), tick=1)
    catalog = PipelineCatalog([tmp_path], check_every_s=1.0, clock=clock)
    write(path, pipefile("a", version="2", extra="[resources]\ncpus = -1"), tick=2)
    clock.now = 1.0
    assert catalog.current()["a"].version == "1"
    assert "resources.cpus" in str(catalog.problems[0])
    write(path, pipefile("a", version="3"), tick=3)
    clock.now = 2.0
    assert catalog.current()["a"].version == "3" and catalog.problems == ()
