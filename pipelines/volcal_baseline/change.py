"""Significant change: M3C2 distances (py4dgeo) with a level of detection taken from the
residual spread on the stable areas after registration."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import py4dgeo
import shapely
from shapely.geometry.base import BaseGeometry

from .errors import InputError
from .grid import Accumulator, BoolArray, FloatArray, Grid, IntArray
from .tiles import Spill, Tiling

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


def _tile(
    root: Path, tiling: Tiling, tile: int, core: FloatArray, settings: ChangeSettings
) -> FloatArray | None:
    """M3C2 at ``core`` (all inside ``tile``) from the tile's points and halo; None when an
    epoch has no points there. A function of its arguments alone, so a worker process can run
    it."""
    spill = Spill(root, tiling, ())
    pre, post = spill.load("pre", tile), spill.load("post", tile)
    if len(pre) < 3 or len(post) < 3:
        return None
    found, _ = py4dgeo.M3C2(
        epochs=(py4dgeo.Epoch(pre), py4dgeo.Epoch(post)),
        corepoints=core,
        normal_radii=[settings.normal_radius_m],
        cyl_radius=settings.cylinder_radius_m,
        max_distance=settings.max_change_m,
    ).run()
    return np.asarray(found, dtype=np.float64)


def distances(
    spill: Spill,
    core: FloatArray,
    settings: ChangeSettings,
    workers: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> FloatArray:
    """M3C2 distance per core point, tile by tile (NaN where an epoch has no points), on up
    to ``workers`` processes: building a tile's search trees is single-threaded, and takes
    most of the time."""
    home = spill.tiling.home(core)
    distance = np.full(len(core), np.nan)
    jobs = {int(t): np.flatnonzero(home == t) for t in np.unique(home)}

    def done(count: int, tile: int, found: FloatArray | None) -> None:
        if found is not None:
            distance[jobs[tile]] = found
        progress(f"M3C2 tile {count} of {len(jobs)}: {len(jobs[tile]):,} core points")

    if workers <= 1 or len(jobs) == 1:
        for count, (tile, sel) in enumerate(jobs.items(), 1):
            done(count, tile, _tile(spill.root, spill.tiling, tile, core[sel], settings))
        return distance
    # Fresh interpreters rather than forks: the parent has run OpenMP and BLAS threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(_tile, spill.root, spill.tiling, tile, core[sel], settings): tile
            for tile, sel in jobs.items()
        }
        for count, future in enumerate(as_completed(futures), 1):
            done(count, futures[future], future.result())
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
