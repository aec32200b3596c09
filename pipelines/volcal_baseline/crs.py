"""The survey's coordinate reference system: read from each cloud's VLRs (WKT, or GeoTIFF keys
in LAS 1.2) and from the stable areas' .prj, and required to agree.

Volumes are only right when both epochs and the stable polygons are in one projected CRS in
metres; a mismatch that goes unnoticed shifts or scales everything, so it is an input error.
A file that carries no CRS is taken to share the others' (many exports omit it); a survey
where nothing carries one gets a warning, and its GIS outputs have no CRS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import laspy
from pyproj import CRS
from pyproj.exceptions import CRSError

from .errors import InputError


@dataclass(frozen=True)
class SurveyCrs:
    crs: CRS | None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object] | None:
        if self.crs is None:
            return None
        return {"name": self.crs.name, "epsg": self.crs.to_epsg(), "wkt": self.crs.to_wkt()}


def _label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"{crs.name} (EPSG:{epsg})" if epsg else crs.name


def _same(a: CRS, b: CRS) -> bool:
    if a.equals(b, ignore_axis_order=True):
        return True
    # ESRI and EPSG spell the same CRS differently; their EPSG codes still match.
    code = a.to_epsg(min_confidence=70)
    return code is not None and code == b.to_epsg(min_confidence=70)


def of_cloud(path: Path, slot: str) -> CRS | None:
    try:
        with laspy.open(str(path)) as reader:
            return reader.header.parse_crs()
    except Exception as exc:  # laspy and pyproj both raise for a malformed CRS record
        raise InputError(f"input '{slot}' has a CRS record that cannot be read: {exc}") from exc


def of_prj(prj: Path) -> CRS | None:
    try:
        return CRS.from_user_input(prj.read_text(errors="replace"))
    except (OSError, CRSError) as exc:
        raise InputError(f"stable-area .prj is not a CRS definition: {exc}") from exc


def resolve(pre: CRS | None, post: CRS | None, prj: CRS | None) -> SurveyCrs:
    """The one CRS of the survey, or an ``InputError`` that names the two that differ."""
    named = [(what, crs) for what, crs in (("'pre'", pre), ("'post'", post)) if crs is not None]
    if prj is not None:
        named.append(("the stable-area .prj", prj))
    for what, crs in named:
        if not crs.is_projected:
            raise InputError(
                f"{what} is in {_label(crs)}, not a projected CRS: the surveys and stable "
                f"areas must be in a projected CRS in metres"
            )
        unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
        if unit not in ("metre", "meter"):
            raise InputError(f"{what} is in {_label(crs)}, whose unit is {unit}, not metres")
    for (what_a, a), (what_b, b) in pairwise(named):
        if not _same(a, b):
            raise InputError(f"CRS mismatch: {what_a} is {_label(a)}, {what_b} is {_label(b)}")
    if not named:
        return SurveyCrs(None, ["no CRS in either point cloud or a .prj: outputs carry none"])
    warnings = [
        f"input {what} carries no CRS; taken to be {_label(named[0][1])}"
        for what, crs in (("'pre'", pre), ("'post'", post))
        if crs is None
    ]
    return SurveyCrs(named[0][1], warnings)
