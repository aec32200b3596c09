from __future__ import annotations

import pytest

from pipelines.spec import GiB
from pipelines.volcal_baseline.spec import SPEC


def test_contract_with_orchestrator() -> None:
    assert SPEC.name == "volcal_baseline"
    assert SPEC.image == "pipeline-volcal_baseline:latest"
    assert SPEC.command == (
        "python3",
        "-m",
        "pipelines.volcal_baseline",
        "--pre",
        "{in:pre}",
        "--post",
        "{in:post}",
        "--stable",
        "{in:shp}",
        "--params",
        "{params}",
        "--out",
        "{out}",
    )
    assert SPEC.required_slots == ("pre", "post", "shp", "shx")
    for name in ("pre", "post"):
        slot = SPEC.slot(name)
        assert slot is not None
        assert slot.accept == (".las", ".laz") and slot.max_bytes == 20 * GiB
        assert slot.accepts("Survey.LAZ") and not slot.accepts("survey.txt")


@pytest.mark.parametrize(
    ("slot", "upload", "stored"),
    [
        ("shp", "Pit_Stable.SHP", "stable.shp"),
        ("shx", "x.shx", "stable.shx"),
        ("dbf", "x.dbf", "stable.dbf"),
        ("prj", "x.prj", "stable.prj"),
        ("pre", "a.laz", "pre.laz"),
    ],
)
def test_shapefile_parts_land_beside_each_other(slot: str, upload: str, stored: str) -> None:
    s = SPEC.slot(slot)
    assert s is not None
    assert s.file_name(upload) == stored


def test_params_defaults_and_bounds() -> None:
    params = SPEC.validate_params({})
    assert params["lod_quantile"] == 0.99
    assert SPEC.validate_params({"region_buffer_m": 2})["region_buffer_m"] == 2.0
    with pytest.raises(ValueError, match="lod_quantile"):
        SPEC.validate_params({"lod_quantile": 1.5})
    with pytest.raises(ValueError, match="unknown"):
        SPEC.validate_params({"nope": 1})


def test_default_resources() -> None:
    assert SPEC.resources.cpus == 2.0
    assert SPEC.resources.memory_bytes == 4 * GiB
    assert SPEC.resources.gpus == 0
