from __future__ import annotations

import pytest

from pipelines.catalog import SHIPPED, shipped
from pipelines.spec import GiB, InputSlot, Param, PipelineSpec


def make_spec() -> PipelineSpec:
    return PipelineSpec(
        name="demo",
        description="",
        inputs=(
            InputSlot("pre", accept=(".las", ".laz"), max_bytes=2 * GiB),
            InputSlot("shp", accept=(".shp",), group="stable"),
            InputSlot("dbf", required=False, accept=(".dbf",), group="stable"),
        ),
        params=(
            Param("grid", float, 0.5, minimum=0.05, maximum=10.0),
            Param("iterations", int, 30, minimum=1, maximum=200),
            Param("method", str, "m3c2", choices=("m3c2", "dod")),
            Param("plots", bool, True),
        ),
    )


def test_defaults_fill_missing_params() -> None:
    assert make_spec().validate_params(None) == {
        "grid": 0.5,
        "iterations": 30,
        "method": "m3c2",
        "plots": True,
    }


def test_int_is_accepted_for_float_and_coerced() -> None:
    assert make_spec().validate_params({"grid": 2})["grid"] == 2.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"grid": 0.01}, "'grid' must be >= 0.05"),
        ({"grid": 11}, "'grid' must be <= 10.0"),
        ({"grid": "1"}, "'grid' must be a number"),
        ({"grid": float("nan")}, "'grid' must be finite"),
        ({"iterations": 2.5}, "'iterations' must be an integer"),
        ({"iterations": True}, "'iterations' must be an integer"),
        ({"method": "icp"}, "'method' must be one of"),
        ({"plots": 1}, "'plots' must be a boolean"),
        ({"colour": "red"}, "unknown parameter(s) for pipeline 'demo': colour"),
    ],
)
def test_bad_params_name_the_problem(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        make_spec().validate_params(params)
    assert message in str(err.value)


def test_accept_is_case_insensitive_and_empty_accepts_anything() -> None:
    spec = make_spec()
    pre = spec.slot("pre")
    assert pre is not None
    assert pre.accepts("SURVEY.LAZ") and not pre.accepts("survey.txt")
    assert InputSlot("any").accepts("whatever.bin")


def test_file_name_groups_shapefile_parts_under_one_stem() -> None:
    spec = make_spec()
    shp, dbf, pre = spec.slot("shp"), spec.slot("dbf"), spec.slot("pre")
    assert shp and dbf and pre
    assert shp.file_name("Stable Areas.SHP") == "stable.shp"
    assert dbf.file_name("x.dbf") == "stable.dbf"
    assert pre.file_name("epoch1.laz") == "pre.laz"
    # Unknown or hostile extensions never leak path characters into the run directory.
    assert InputSlot("first").file_name("../../etc/passwd") == "first"
    assert InputSlot("first").file_name("data.tar.gz") == "first.gz"


def test_required_slots() -> None:
    assert make_spec().required_slots == ("pre", "shp")


def test_the_shipped_pipelines_are_files_beside_their_dockerfiles() -> None:
    specs = shipped()
    assert set(specs) == {"checksum", "volcal_baseline"}
    for spec in specs.values():
        assert spec.image and spec.command and spec.version, spec.name
        assert spec.source == str(SHIPPED / spec.name / "pipeline.toml")
        assert (SHIPPED / spec.name / "Dockerfile").exists(), spec.name
