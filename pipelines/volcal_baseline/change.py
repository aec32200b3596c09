"""Significant change: M3C2 distances (py4dgeo) with a level of detection taken from the
residual spread on the stable areas after registration."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import py4dgeo
import shapely
from shapely.geometry.base import BaseGeometry

from .errors import InputError
from .grid import Accumulator, BoolArray, FloatArray, Grid, IntArray
from .tiles import Spill

# py4dgeo reports every KD-tree build at INFO; the worker only wants our own lines.
logging.getLogger("py4dgeo").setLevel(logging.WARNING)

MIN_STABLE_CORE_POINTS = 30


@dataclass(frozen=True)
class ChangeSettings:
    cylinder_radius_m: float
    normal_radius_m: float
    max_change_m: float
    lod_quantile: float
    min_lod_m: float


@dataclass(frozen=True)
class Change:
    grid: Grid  # the core-point grid
    cell: IntArray  # flat index in ``grid`` of each core point
    core: FloatArray  # (m, 3)
    distance: FloatArray  # M3C2 distance per core point, + is fill (normals point up)
    in_stable: BoolArray
    significant: BoolArray
    lod_m: float
    stable_mean_m: float
    stable_std_m: float
    stable_count: int


def core_points(acc: Accumulator) -> tuple[FloatArray, IntArray]:
    """One core point per occupied cell: the mean of the earlier epoch's points in it.

    A regular spread of core points makes the change raster trivially a grid, and averaging
    keeps each core point on the surface to within the noise. ``acc`` summed x, y and z.
    """
    cells = np.flatnonzero(acc.counts)
    core = (acc.sums[:, cells] / acc.counts[cells]).T
    return np.ascontiguousarray(core), cells


def distances(spill: Spill, core: FloatArray, settings: ChangeSettings) -> FloatArray:
    """M3C2 distance per core point, tile by tile (NaN where an epoch has no points)."""
    home = spill.tiling.home(core)
    distance = np.full(len(core), np.nan)
    for tile in np.unique(home):
        sel = np.flatnonzero(home == tile)
        pre, post = spill.load("pre", int(tile)), spill.load("post", int(tile))
        if len(pre) < 3 or len(post) < 3:
            continue
        m3c2 = py4dgeo.M3C2(
            epochs=(py4dgeo.Epoch(pre), py4dgeo.Epoch(post)),
            corepoints=core[sel],
            normal_radii=[settings.normal_radius_m],
            cyl_radius=settings.cylinder_radius_m,
            max_distance=settings.max_change_m,
        )
        found, _ = m3c2.run()
        distance[sel] = found
        del m3c2, pre, post
    return distance


def judge(
    grid: Grid,
    cells: IntArray,
    core: FloatArray,
    distance: FloatArray,
    stable: BaseGeometry,
    settings: ChangeSettings,
) -> Change:
    """Which distances are real change: beyond the level of detection set by the stable areas."""
    finite = np.isfinite(distance)
    if finite.sum() == 0:
        raise InputError("no overlap between epochs 'pre' and 'post' after registration")
    in_stable = shapely.contains_xy(stable, core[:, 0], core[:, 1])
    residual = distance[in_stable & finite]
    if len(residual) < MIN_STABLE_CORE_POINTS:
        raise InputError(
            f"stable-area polygons cover only {len(residual)} core points where "
            f"both epochs have data (need {MIN_STABLE_CORE_POINTS})"
        )
    # The spread of distances where nothing changed is what noise plus residual misalignment can
    # produce; anything beyond its upper quantile is real change.
    lod = max(float(np.quantile(np.abs(residual), settings.lod_quantile)), settings.min_lod_m)
    significant = finite & ~in_stable & (np.abs(np.nan_to_num(distance)) > lod)
    return Change(
        grid,
        cells,
        core,
        distance,
        in_stable,
        significant,
        lod,
        float(residual.mean()),
        float(residual.std()),
        len(residual),
    )
