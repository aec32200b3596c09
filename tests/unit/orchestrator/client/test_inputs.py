"""Command-line input of ``submit``: --param values and input files per slot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.client.inputs import (
    UsageError,
    check_files,
    choose_siblings,
    find_siblings,
    option_names,
    parse_param,
    parse_params,
    parse_slot_args,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sleep_s=300", ("sleep_s", 300)),
        ("ratio=0.5", ("ratio", 0.5)),
        ("flag=true", ("flag", True)),
        ("nothing=null", ("nothing", None)),
        ("list=[1, 2]", ("list", [1, 2])),
        ('obj={"a": 1}', ("obj", {"a": 1})),
        ("name=hello world", ("name", "hello world")),
        ('quoted="300"', ("quoted", "300")),
        ("empty=", ("empty", "")),
        ("eq=a=b", ("eq", "a=b")),
        (" spaced =1", ("spaced", 1)),
    ],
)
def test_values_are_json_when_they_parse_else_text(raw: str, expected: tuple) -> None:
    assert parse_param(raw) == expected


@pytest.mark.parametrize("raw", ["novalue", "=5", ""])
def test_a_param_needs_name_and_equals(raw: str) -> None:
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_param(raw)


def test_declared_strings_keep_their_text() -> None:
    assert parse_param("algorithm=123", "str") == ("algorithm", "123")
    assert parse_param('algorithm="x y"', "str") == ("algorithm", "x y")
    assert parse_param("algorithm=true", "string") == ("algorithm", "true")
    # Other declared types still go through JSON (the API checks the type).
    assert parse_param("n=12", "int") == ("n", 12)


def test_params_against_declared_ones() -> None:
    declared = {"sleep_s": {"type": "int"}, "algorithm": {"type": "str"}}
    assert parse_params(["sleep_s=3", "algorithm=0"], declared) == {
        "sleep_s": 3,
        "algorithm": "0",
    }
    with pytest.raises(UsageError, match=r"unknown parameter 'colour'.*algorithm, sleep_s"):
        parse_params(["colour=red"], declared)
    # Without a catalogue every name goes to the API, which judges.
    assert parse_params(["colour=red", "n=1"]) == {"colour": "red", "n": 1}
    # The last of a repeated name wins, as with any repeated option.
    assert parse_params(["n=1", "n=2"]) == {"n": 2}


def test_option_names_offer_dashes_for_underscores() -> None:
    assert option_names("pre") == ["--pre"]
    assert option_names("shape_file") == ["--shape_file", "--shape-file"]


def test_generic_slot_args() -> None:
    assert parse_slot_args(["--first", "a.bin", "--second=b c.bin", "--shape-file", "x.shp"]) == {
        "first": "a.bin",
        "second": "b c.bin",
        "shape_file": "x.shp",
    }
    with pytest.raises(UsageError, match="--first needs a file"):
        parse_slot_args(["--first"])
    with pytest.raises(UsageError, match="--first needs a file"):
        parse_slot_args(["--first", "--second", "b"])
    with pytest.raises(UsageError, match="unexpected argument 'stray'"):
        parse_slot_args(["stray"])


INPUTS = {
    "pre": {"required": True, "accept": [".las", ".laz"], "max_bytes": 100},
    "prj": {"required": False, "accept": [], "max_bytes": 10},
}


def test_checked_files_are_absolute_with_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "Survey.LAZ"
    f.write_bytes(b"x" * 50)
    (local,) = check_files({"pre": str(f)}, INPUTS)
    assert local.slot == "pre" and local.path == f.resolve() and local.size == 50
    assert local.mtime_ns == f.stat().st_mtime_ns


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"pre": "missing.las"}, "--pre: no such file: missing.las"),
        ({"pre": "big.las"}, "--pre: big.las is 101 bytes; at most 100"),
        ({"pre": "notes.txt"}, "--pre: notes.txt is not one of .las, .laz"),
        ({"prj": "small.prj"}, r"missing required input\(s\): --pre FILE"),
        ({"pre": "ok.las", "dbf": "ok.las"}, "unknown input --dbf; this pipeline takes: --pre"),
        ({"pre": "."}, "--pre: no such file: ."),
    ],
)
def test_bad_files_are_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "big.las").write_bytes(b"x" * 101)
    (tmp_path / "ok.las").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    (tmp_path / "small.prj").write_bytes(b"x")
    with pytest.raises(UsageError, match=message):
        check_files(files, INPUTS)


def test_without_a_catalogue_only_existence_is_checked(tmp_path: Path) -> None:
    f = tmp_path / "any.thing"
    f.write_bytes(b"")
    assert [x.slot for x in check_files({"whatever": str(f)}, None)] == ["whatever"]


SHAPEFILE: dict[str, dict[str, Any]] = {
    "pre": {"required": True, "accept": [".las", ".laz"]},
    "shp": {"required": True, "accept": [".shp"], "group": "stable"},
    "shx": {"required": True, "accept": [".shx"], "group": "stable"},
    "dbf": {"required": False, "accept": [".dbf"], "group": "stable"},
    "prj": {"required": False, "accept": [".prj"], "group": "stable"},
}


def chosen(files: dict[str, str], listing: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    return {s.slot: (s.path, s.beside) for s in choose_siblings(files, SHAPEFILE, listing)}


def test_the_rest_of_a_group_is_found_beside_the_given_part() -> None:
    listing = {
        "site": [
            "stable.shp",
            "stable.SHX",
            "stable.dbf",
            "stable.prj",
            "other.prj",
            "stable.txt",
            "a.las",
        ]
    }
    assert chosen({"pre": "a.las", "shp": "site/stable.shp"}, listing) == {
        "shx": ("site/stable.SHX", "site/stable.shp"),
        "dbf": ("site/stable.dbf", "site/stable.shp"),
        "prj": ("site/stable.prj", "site/stable.shp"),
    }
    (sibling,) = choose_siblings(
        {"shp": "stable.SHP", "dbf": "x.dbf", "prj": "y.prj"},
        SHAPEFILE,
        {".": ["stable.SHP", "stable.shx"]},
    )
    assert sibling.message() == "using stable.shx for 'shx' (beside stable.SHP)"


def test_given_files_win_and_any_part_can_lead() -> None:
    listing = {"site": ["stable.shp", "stable.shx", "stable.dbf"], "other": ["mine.shx"]}
    # shx given elsewhere: kept; only the optional dbf is added; no prj is not an error.
    assert chosen({"shp": "site/stable.shp", "shx": "other/mine.shx"}, listing) == {
        "dbf": ("site/stable.dbf", "site/stable.shp"),
    }
    # The index given alone brings the .shp along.
    assert chosen({"shx": "site/stable.shx"}, listing) == {
        "shp": ("site/stable.shp", "site/stable.shx"),
        "dbf": ("site/stable.dbf", "site/stable.shx"),
    }
    # The basename must match exactly; only the extension's case is free.
    assert (
        chosen(
            {"shp": "site/stable.shp", "shx": "site/stable.shx"},
            {"site": ["Stable.dbf", "stable.dbf.bak", "stable2.prj"]},
        )
        == {}
    )


def test_nothing_is_guessed_without_a_given_part_of_the_group() -> None:
    assert chosen({"pre": "a.las"}, {".": ["stable.shp", "stable.shx"]}) == {}
    # Slots without a group are never filled from the directory.
    assert (
        choose_siblings(
            {"shp": "stable.shp", "shx": "stable.shx"}, SHAPEFILE, {".": ["stable.las"]}
        )
        == []
    )


def test_a_missing_required_part_is_named() -> None:
    with pytest.raises(
        UsageError,
        match=r"missing required input --shx FILE: "
        r"no stable\.shx beside site/stable\.shp",
    ):
        chosen({"shp": "site/stable.shp"}, {"site": ["stable.shp", "stable.dbf"]})


def test_two_candidates_are_refused() -> None:
    with pytest.raises(UsageError, match=r"--shx: both stable\.SHX and stable\.shx .*--shx FILE"):
        chosen({"shp": "stable.shp"}, {".": ["stable.shp", "stable.shx", "stable.SHX"]})


def test_find_siblings_lists_the_given_files_directory(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for name in ("stable.shp", "stable.SHX", "stable.prj"):
        (site / name).write_bytes(b"x")
    (site / "stable.dbf").mkdir()  # not a file: not a candidate
    found = find_siblings({"shp": str(site / "stable.shp")}, SHAPEFILE)
    assert {s.slot: s.path for s in found} == {
        "shx": str(site / "stable.SHX"),
        "prj": str(site / "stable.prj"),
    }
    # A directory that cannot be listed finds nothing; the required shx is then missing.
    with pytest.raises(UsageError, match="--shx"):
        find_siblings({"shp": str(tmp_path / "gone" / "stable.shp")}, SHAPEFILE)
