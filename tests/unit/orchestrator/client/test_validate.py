"""`orchestrator pipelines validate FILE...`: the server's checks, offline, with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.client import exits
from orchestrator.client.cli import run
from pipelines.catalog import SHIPPED

GOOD = """name = "tool"
version = "0.1"
description = "d"
image = "tool:1"
command = ["tool", "{in:data}", "{out}"]
[inputs.data]
"""


def test_the_shipped_files_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(SHIPPED / n / "pipeline.toml") for n in ("checksum", "volcal_baseline")]
    assert run(["pipelines", "validate", *files]) == exits.OK
    out = capsys.readouterr().out
    assert "ok" in out and "checksum 1.0.0" in out and "volcal_baseline 2.0.0" in out


def test_problems_name_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text(
        GOOD.replace('"{in:data}"', '"{in:dta}"').replace(
            "[inputs.data]", "[inputs.data]\nsize = 1"
        )
    )
    assert run(["pipelines", "validate", str(good), str(bad)]) == exits.USAGE
    captured = capsys.readouterr()
    assert f"{good}: tool 0.1" in captured.out
    err = " ".join(captured.err.split())
    assert f"{bad}: inputs.data.size: unknown key" in err
    assert f"{bad}: command[1]: {{in:dta}} names no input slot 'dta'" in err


def test_a_name_given_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(GOOD)
    b.write_text(GOOD)
    assert run(["--json", "pipelines", "validate", str(a), str(b)]) == exits.USAGE
    verdicts = json.loads(capsys.readouterr().out)
    assert [v["ok"] for v in verdicts] == [True, False]
    assert verdicts[1]["problems"] == [
        {"field": "name", "message": f"'tool' is already defined by {a}"}
    ]
    assert len(verdicts[0]["sha256"]) == 64


def test_validate_needs_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["pipelines", "validate"]) == exits.USAGE
    assert "at least one FILE" in capsys.readouterr().err
