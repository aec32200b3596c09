from __future__ import annotations

import pytest

from pipelines.checksum.spec import SPEC
from worker.command import CommandError, expand


def test_expands_slots_out_and_params_to_the_given_roots() -> None:
    cmd = expand(
        SPEC.command,
        {"first": "first.bin", "second": "second"},
        in_root="/in",
        out_dir="/out",
        params_file="/in/params.json",
    )
    assert cmd == [
        "python3",
        "-m",
        "pipelines.checksum",
        "--first",
        "/in/first.bin",
        "--second",
        "/in/second",
        "--params",
        "/in/params.json",
        "--out",
        "/out",
    ]


def test_empty_optional_slot_drops_its_flag() -> None:
    cmd = expand(
        ("run", "--pre", "{in:pre}", "--mask", "{in:mask}", "--out", "{out}"),
        {"pre": "pre.las", "mask": None},
        in_root="/work/in/",
        out_dir="/work/out",
        params_file="p.json",
    )
    assert cmd == ["run", "--pre", "/work/in/pre.las", "--out", "/work/out"]


def test_empty_positional_slot_is_dropped_alone() -> None:
    cmd = expand(
        ("run", "{in:a}", "{in:b}"),
        {"a": None, "b": "b.txt"},
        in_root="/in",
        out_dir="/o",
        params_file="/p",
    )
    assert cmd == ["run", "/in/b.txt"]


def test_placeholder_inside_an_argument() -> None:
    cmd = expand(
        ("tool", "--input={in:a}", "--log={out}/log.txt"),
        {"a": "a.csv"},
        in_root="/in",
        out_dir="/out",
        params_file="/p",
    )
    assert cmd == ["tool", "--input=/in/a.csv", "--log=/out/log.txt"]


def test_unknown_slot_is_an_authoring_error() -> None:
    with pytest.raises(CommandError, match="unknown input slot 'nope'"):
        expand(("x", "{in:nope}"), {"a": "a"}, in_root="/in", out_dir="/o", params_file="/p")


def test_params_expand_to_their_values_as_text() -> None:
    cmd = expand(
        ("tool", "-t_srs", "{param:crs}", "--n={param:n}", "{param:on}", "{param:f}"),
        {},
        in_root="/in",
        out_dir="/out",
        params_file="/in/params.json",
        params={"crs": "EPSG:3857", "n": 3, "on": True, "f": 0.5},
    )
    assert cmd == ["tool", "-t_srs", "EPSG:3857", "--n=3", "true", "0.5"]


def test_an_unknown_param_is_an_error() -> None:
    with pytest.raises(CommandError, match="unknown parameter 'nope'"):
        expand(("x", "{param:nope}"), {}, in_root="/in", out_dir="/o", params_file="/p")
