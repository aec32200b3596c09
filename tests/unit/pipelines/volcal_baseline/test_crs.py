"""Which CRS a survey is in: the clouds' and the .prj's, which must agree."""

from __future__ import annotations

import re

import pytest
from pyproj import CRS

from pipelines.volcal_baseline.crs import resolve
from pipelines.volcal_baseline.errors import InputError
from pipelines.volcal_baseline.synthetic import ESRI_PRJ

UTM33 = CRS.from_epsg(32633)
ESRI_UTM33 = CRS.from_user_input(ESRI_PRJ)


def test_the_same_crs_spelt_by_esri_and_epsg_agrees() -> None:
    got = resolve(UTM33, UTM33, ESRI_UTM33)
    assert got.crs == UTM33 and got.warnings == []
    assert got.describe() is not None and got.describe()["epsg"] == 32633  # type: ignore[index]


def test_a_cloud_without_a_crs_takes_the_others_with_a_warning() -> None:
    got = resolve(None, UTM33, None)
    assert got.crs == UTM33
    assert got.warnings == [
        "input 'pre' carries no CRS; taken to be WGS 84 / UTM zone 33N (EPSG:32633)"
    ]


def test_nothing_carries_a_crs() -> None:
    got = resolve(None, None, None)
    assert got.crs is None and got.describe() is None
    assert got.warnings == ["no CRS in either point cloud or a .prj: outputs carry none"]


@pytest.mark.parametrize(
    ("pre", "post", "prj", "message"),
    [
        (UTM33, CRS.from_epsg(32634), None, "CRS mismatch: 'pre' is WGS 84 / UTM zone 33N"),
        (None, UTM33, CRS.from_epsg(3857), "the stable-area .prj is WGS 84 / Pseudo-Mercator"),
        (CRS.from_epsg(4326), None, None, "'pre' is in WGS 84 (EPSG:4326), not a projected CRS"),
        (UTM33, CRS.from_epsg(2236), None, "whose unit is US survey foot, not metres"),
    ],
)
def test_disagreement_or_an_unusable_crs_is_an_input_error(
    pre: CRS | None, post: CRS | None, prj: CRS | None, message: str
) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        resolve(pre, post, prj)
