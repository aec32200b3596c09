from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipelines.catalog import shipped
from pipelines.checksum.__main__ import main
from pipelines.checksum.spec import SPEC


def test_spec_is_registered_and_sane() -> None:
    assert shipped()["checksum"] == SPEC
    assert SPEC.source.endswith("pipelines/checksum/pipeline.toml") and len(SPEC.digest) == 64
    assert SPEC.required_slots == ("first", "second")
    assert all(s.accept == () and s.max_bytes == 1024**3 for s in SPEC.inputs)
    assert SPEC.validate_params(None) == {
        "algorithm": "sha256",
        "sleep_s": 0,
        "allocate_mb": 0,
        "tick_s": 0,
    }
    with pytest.raises(ValueError, match="sleep_s"):
        SPEC.validate_params({"sleep_s": 3601})
    with pytest.raises(ValueError, match="algorithm"):
        SPEC.validate_params({"algorithm": "md5"})


def test_writes_sha256_and_bytes_per_slot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b.bin"
    a.write_bytes(b"")
    data = os.urandom(2 * 1024 * 1024 + 3)
    b.write_bytes(data)
    params = tmp_path / "params.json"
    params.write_text(json.dumps(SPEC.validate_params({})))
    out = tmp_path / "out"
    assert (
        main(["--first", str(a), "--second", str(b), "--params", str(params), "--out", str(out)])
        == 0
    )
    result = json.loads((out / "checksums.json").read_text())
    assert result == {
        "first": {"sha256": hashlib.sha256(b"").hexdigest(), "bytes": 0},
        "second": {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)},
    }
    assert sorted(p.name for p in out.iterdir()) == ["checksums.json"]


def test_missing_input_is_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = tmp_path / "a"
    a.write_text("x")
    code = main(["--first", str(a), "--second", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: input 'second' is missing"


def test_bad_params_file_is_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = tmp_path / "a"
    a.write_text("x")
    p = tmp_path / "p.json"
    p.write_text("[1, 2]")
    assert (
        main(["--first", str(a), "--second", str(a), "--params", str(p), "--out", str(tmp_path)])
        == 2
    )
    assert "error: parameters must be a JSON object" in capsys.readouterr().err
