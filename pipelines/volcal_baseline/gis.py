"""Outputs GIS tools open: the DEM of difference as a GeoTIFF and the change regions as a
GeoPackage layer, both in the survey's CRS and world coordinates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyogrio.raw
import rasterio
import shapely
from pyproj import CRS
from rasterio import features
from rasterio.transform import from_origin

from .grid import FloatArray, Grid
from .regions import Regions
from .volume import RegionVolume

# The regions' attribute table, in this order.
REGION_FIELDS = (
    "id",
    "area_m2",
    "cut_m3",
    "fill_m3",
    "net_m3",
    "max_cut_m",
    "max_fill_m",
    "truncated",
)


def _transform(grid: Grid, origin: FloatArray) -> rasterio.Affine:
    # Our rows grow northwards; a GeoTIFF's first row is the northern edge.
    return from_origin(
        grid.x0 + float(origin[0]),
        grid.y0 + grid.ny * grid.cell + float(origin[1]),
        grid.cell,
        grid.cell,
    )


def write_dod(
    path: Path, grid: Grid, diff: FloatArray, origin: FloatArray, crs: CRS | None
) -> None:
    """post - pre in metres per DEM cell, float32, NaN where either epoch has no data."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=grid.nx,
        height=grid.ny,
        count=1,
        dtype="float32",
        nodata=float("nan"),
        crs=crs.to_wkt() if crs is not None else None,
        transform=_transform(grid, origin),
        compress="deflate",
        predictor=3,
        tiled=True,
    ) as dst:
        dst.write(diff[::-1].astype(np.float32), 1)
        dst.set_band_description(1, "elevation change post - pre (m)")
        dst.update_tags(units="m", sign="positive = fill, negative = cut")


def write_regions(
    path: Path,
    regions: Regions,
    volumes: Sequence[RegionVolume],
    origin: FloatArray,
    crs: CRS | None,
) -> None:
    """One multipolygon per region (its grown footprint, cell edges traced), with its volumes."""
    grid = regions.grid
    label = regions.label[::-1].astype(np.int32)
    parts: dict[int, list[shapely.Geometry]] = {}
    for geom, value in features.shapes(
        label, mask=label > 0, connectivity=8, transform=_transform(grid, origin)
    ):
        parts.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    geoms, rows = [], []
    for v in volumes:
        merged = shapely.union_all(parts.get(v.id, []))
        geoms.append(shapely.to_wkb(shapely.multipolygons(shapely.get_parts(merged))))
        rows.append(v)
    fields = [
        np.array([v.id for v in rows], dtype=np.int32),
        *(np.array([getattr(v, f) for v in rows], dtype=np.float64) for f in REGION_FIELDS[1:-1]),
        np.array([v.truncated for v in rows], dtype=bool),
    ]
    pyogrio.raw.write(
        str(path),
        geometry=np.array(geoms, dtype=object),
        field_data=fields,
        fields=list(REGION_FIELDS),
        crs=crs.to_wkt() if crs is not None else None,
        driver="GPKG",
        geometry_type="MultiPolygon",
        layer="regions",
    )
