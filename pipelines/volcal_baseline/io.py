"""Reading the inputs: LAS/LAZ point clouds and the stable-area shapefile.

Coordinates are shifted by a common local origin as they are read, in float64, so UTM-scale
eastings and northings (x ~ 5e5, y ~ 5e6) lose nothing: every later stage works in metres
relative to that origin.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np
import shapefile
import shapely
from numpy.typing import NDArray
from shapely import affinity
from shapely.geometry import shape as to_shape
from shapely.geometry.base import BaseGeometry

from .errors import InputError
from .grid import FloatArray

_CHUNK = 2_000_000
# LAZ chunks decompress on every CPU the container has.
_LAZ_BACKEND = (laspy.LazBackend.LazrsParallel, laspy.LazBackend.Lazrs)
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
    data_offset: int  # bytes before the first point record
    record_bytes: int  # bytes per point record (uncompressed)


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
            x0, y0, z0 = (float(v) for v in hdr.mins)
            x1, y1, z1 = (float(v) for v in hdr.maxs)
            fmt = int(hdr.point_format.id)
            version = str(hdr.version)
            compressed = bool(hdr.are_points_compressed)
            data_offset = int(hdr.offset_to_point_data)
            record_bytes = int(hdr.point_format.size)
    except Exception as exc:  # laspy raises a zoo of types for corrupt headers
        raise InputError(f"input '{slot}' is not a readable LAS/LAZ file: {exc}") from exc
    if count <= 0:
        raise InputError(f"input '{slot}' has no points")
    header = CloudHeader(
        path,
        slot,
        count,
        (x0, y0, z0),
        (x1, y1, z1),
        fmt,
        version,
        compressed,
        data_offset,
        record_bytes,
    )
    if not compressed:
        # Refused before any point is read: an upload cut short is found in microseconds.
        held = _records_present(header)
        if held < count:
            raise InputError(_truncated(header, held))
    return header


def _records_present(header: CloudHeader) -> int:
    """Whole point records the (uncompressed) file holds after its header."""
    size = header.path.stat().st_size
    return max(0, size - header.data_offset) // max(header.record_bytes, 1)


def _truncated(header: CloudHeader, held: int) -> str:
    return (
        f"input '{header.slot}' is truncated: its header promises {header.point_count:,} "
        f"points, the file holds {held:,}"
    )


def local_origin(header: CloudHeader) -> FloatArray:
    """A round origin near the cloud, so local coordinates are small and readable."""
    return np.array(
        [
            math.floor(header.mins[0] / 100.0) * 100.0,
            math.floor(header.mins[1] / 100.0) * 100.0,
            0.0,
        ]
    )


@dataclass(frozen=True)
class Chunk:
    """Consecutive points of a cloud: coordinates relative to the local origin, and each
    point's ASPRS classification code."""

    xyz: FloatArray
    classification: NDArray[np.uint8]


def chunks(header: CloudHeader, origin: FloatArray, size: int = _CHUNK) -> Iterator[Chunk]:
    """The cloud ``size`` points at a time: memory holds one chunk of raw records and its
    coordinates, whatever the file's size."""
    filled = 0
    try:
        with laspy.open(str(header.path), laz_backend=_LAZ_BACKEND) as reader:
            for records in reader.chunk_iterator(size):
                # laspy scales the integer records to float64 here; subtracting the origin in
                # float64 keeps sub-millimetre precision at UTM magnitudes.
                xyz = np.empty((len(records), 3))
                xyz[:, 0] = np.asarray(records.x) - origin[0]
                xyz[:, 1] = np.asarray(records.y) - origin[1]
                xyz[:, 2] = np.asarray(records.z) - origin[2]
                classes = np.asarray(records.classification, dtype=np.uint8)
                filled += len(xyz)
                yield Chunk(xyz, classes)
    except Exception as exc:
        if header.compressed:
            raise InputError(
                f"input '{header.slot}' is truncated or corrupt: its header promises "
                f"{header.point_count:,} points, reading failed after {filled:,} ({exc})"
            ) from exc
        raise InputError(f"input '{header.slot}' could not be read as LAS/LAZ: {exc}") from exc
    if filled < header.point_count:
        # Using what is there would silently drop part of the survey.
        raise InputError(_truncated(header, filled))


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


def prj_of(shp: Path) -> Path | None:
    """The shapefile's .prj beside it, if any."""
    return _sibling(shp, ".prj")


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
