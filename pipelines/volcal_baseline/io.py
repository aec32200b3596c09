"""Reading the inputs: LAS/LAZ point clouds and the stable-area shapefile.

Coordinates are shifted by a common local origin as they are read, in float64, so UTM-scale
eastings and northings (x ~ 5e5, y ~ 5e6) lose nothing: every later stage works in metres
relative to that origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np
import shapefile
import shapely
from shapely import affinity
from shapely.geometry import shape as to_shape
from shapely.geometry.base import BaseGeometry

from .errors import InputError
from .grid import FloatArray

_CHUNK = 2_000_000
_POLYGON_TYPES = {shapefile.POLYGON, shapefile.POLYGONZ, shapefile.POLYGONM}


@dataclass(frozen=True)
class CloudHeader:
    """What the LAS header tells us before any point is read."""

    path: Path
    slot: str
    point_count: int
    mins: tuple[float, float, float]
    maxs: tuple[float, float, float]
    point_format: int
    version: str
    compressed: bool


def _check_magic(path: Path, slot: str) -> None:
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputError(f"input '{slot}' cannot be opened: {exc.strerror or exc}") from exc
    # LAS and LAZ share the "LASF" signature; anything else is not a point cloud we can read.
    if magic != b"LASF":
        raise InputError(f"input '{slot}' is not a LAS/LAZ file")


def read_header(path: Path, slot: str) -> CloudHeader:
    _check_magic(path, slot)
    try:
        with laspy.open(str(path)) as reader:
            hdr = reader.header
            count = int(hdr.point_count)
            mins = tuple(float(v) for v in hdr.mins)
            maxs = tuple(float(v) for v in hdr.maxs)
            fmt = int(hdr.point_format.id)
            version = str(hdr.version)
            compressed = bool(hdr.are_points_compressed)
    except Exception as exc:  # laspy raises a zoo of types for corrupt headers
        raise InputError(f"input '{slot}' is not a readable LAS/LAZ file: {exc}") from exc
    if count <= 0:
        raise InputError(f"input '{slot}' has no points")
    return CloudHeader(path, slot, count, mins, maxs, fmt, version, compressed)  # type: ignore[arg-type]


def local_origin(header: CloudHeader) -> FloatArray:
    """A round origin near the cloud, so local coordinates are small and readable."""
    return np.array(
        [
            math.floor(header.mins[0] / 100.0) * 100.0,
            math.floor(header.mins[1] / 100.0) * 100.0,
            0.0,
        ]
    )


def read_points(header: CloudHeader, origin: FloatArray) -> FloatArray:
    """All points as an (n, 3) float64 array relative to ``origin``, read chunk by chunk so that
    peak memory is the output array plus one chunk of raw records."""
    out = np.empty((header.point_count, 3), dtype=np.float64)
    filled = 0
    try:
        with laspy.open(str(header.path)) as reader:
            for chunk in reader.chunk_iterator(_CHUNK):
                n = len(chunk)
                # laspy scales the integer records to float64 here; subtracting the origin in
                # float64 keeps sub-millimetre precision at UTM magnitudes.
                out[filled : filled + n, 0] = np.asarray(chunk.x) - origin[0]
                out[filled : filled + n, 1] = np.asarray(chunk.y) - origin[1]
                out[filled : filled + n, 2] = np.asarray(chunk.z) - origin[2]
                filled += n
    except Exception as exc:
        raise InputError(f"input '{header.slot}' could not be read as LAS/LAZ: {exc}") from exc
    if filled == 0:
        raise InputError(f"input '{header.slot}' has no points")
    if filled < header.point_count:
        # A truncated file: use what is there would silently drop part of the survey.
        raise InputError(
            f"input '{header.slot}' is truncated: header says "
            f"{header.point_count} points, file holds {filled}"
        )
    return out


def _sibling(shp: Path, ext: str) -> Path | None:
    for cand in (shp.with_suffix(ext), shp.with_suffix(ext.upper())):
        if cand.exists():
            return cand
    return None


def _looks_geographic(prj: Path) -> bool:
    try:
        wkt = prj.read_text(errors="replace").strip().upper()
    except OSError:
        return False
    return wkt.startswith("GEOGCS") or wkt.startswith("GEOGCRS")


def read_stable(shp: Path, origin: FloatArray) -> BaseGeometry:
    """The union of the stable-area polygons, shifted to the local origin."""
    if not shp.exists():
        raise InputError(f"stable-area shapefile '{shp.name}' does not exist")
    shx = _sibling(shp, ".shx")
    if shx is None:
        raise InputError(f"stable-area shapefile '{shp.name}' has no .shx index beside it")
    prj = _sibling(shp, ".prj")
    if prj is not None and _looks_geographic(prj):
        raise InputError(
            "stable-area shapefile is in geographic coordinates (degrees); "
            "it must use the point clouds' projected CRS in metres"
        )
    try:
        with shp.open("rb") as shp_fh, shx.open("rb") as shx_fh:
            reader = shapefile.Reader(shp=shp_fh, shx=shx_fh)
            shapes = [s for s in reader.iterShapes()]
    except Exception as exc:
        raise InputError(f"stable-area shapefile could not be read: {exc}") from exc
    polys = []
    kinds = set()
    for s in shapes:
        kinds.add(s.shapeTypeName)
        if s.shapeType in _POLYGON_TYPES and s.points:
            geom = to_shape(s.__geo_interface__)
            polys.append(shapely.force_2d(shapely.make_valid(geom)))
    if not polys:
        found = ", ".join(sorted(kinds)) or "nothing"
        raise InputError(f"stable-area shapefile has no polygons (found {found})")
    union = shapely.union_all(polys)
    union = affinity.translate(union, -float(origin[0]), -float(origin[1]))
    if union.is_empty or union.area <= 0:
        raise InputError("stable-area polygons have zero area")
    shapely.prepare(union)
    return union
