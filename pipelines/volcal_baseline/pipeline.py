"""The pipeline end to end: read, register, detect change, segment, measure, report."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from . import io, plots, report
from .change import ChangeSettings, detect
from .errors import InputError
from .grid import FloatArray, Grid, cell_means, fill_holes
from .regions import segment
from .registration import RegistrationSettings, apply, register
from .volume import region_volumes

# Targets for the automatic scales, in points of the sparser epoch.
_POINTS_PER_DEM_CELL = 4.0
_POINTS_PER_CYLINDER = 30.0
_MAX_CORE_POINTS = 400_000
_MAX_DEM_CELLS = 40_000_000


@dataclass(frozen=True)
class Inputs:
    pre: Path
    post: Path
    stable: Path


class Timer:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round(time.perf_counter() - start, 3)


def _check_footprints(
    pre: io.CloudHeader, post: io.CloudHeader, stable: Any, origin: FloatArray
) -> None:
    """Cheap refusals from the headers alone, before reading gigabytes of points."""

    def box(h: io.CloudHeader, grow: float) -> shapely.Geometry:
        return shapely.box(
            h.mins[0] - origin[0] - grow,
            h.mins[1] - origin[1] - grow,
            h.maxs[0] - origin[0] + grow,
            h.maxs[1] - origin[1] + grow,
        )

    pre_box = box(pre, 0.0)
    # The later epoch may be misaligned by a few metres; allow for that before calling it apart.
    if not pre_box.intersects(box(post, 10.0)):
        raise InputError("no overlap between epochs 'pre' and 'post': their extents are apart")
    if not stable.intersects(pre_box):
        raise InputError(
            "stable-area polygons miss the point clouds (check the shapefile's coordinates and CRS)"
        )


def _density(xyz: FloatArray, lo: FloatArray, hi: FloatArray) -> float:
    """Points per m2 over the occupied part of the overlap (holes and irregular outlines do not
    dilute it)."""
    area = float(np.prod(hi - lo))
    probe = max(2.0, 3.0 * math.sqrt(area / max(len(xyz), 1)))
    grid = Grid.covering(lo[0], lo[1], hi[0], hi[1], probe)
    _, counts = cell_means(grid, xyz)
    occupied = int((counts > 0).sum())
    if occupied == 0:
        return 0.0
    return float(counts.sum()) / (occupied * probe**2)


def run(inputs: Inputs, params: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """Run on local files and write every output into ``out``; return the report."""
    timer = Timer()
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    with timer.stage("read"):
        h_pre = io.read_header(inputs.pre, "pre")
        h_post = io.read_header(inputs.post, "post")
        origin = io.local_origin(h_pre)
        stable = io.read_stable(inputs.stable, origin)
        _check_footprints(h_pre, h_post, stable, origin)
        pre = io.read_points(h_pre, origin)
        post = io.read_points(h_post, origin)

    with timer.stage("registration"):
        reg = register(
            pre,
            post,
            stable,
            RegistrationSettings(
                max_rotation_deg=params["max_rotation_deg"],
                max_iterations=params["max_icp_iterations"],
                max_rmse_m=params["max_registration_rmse_m"],
                source_points=params["registration_points"],
            ),
            seed=params["seed"],
        )
        apply(reg.transform, post)

    with timer.stage("grids"):
        lo = np.maximum(pre[:, :2].min(0), post[:, :2].min(0))
        hi = np.minimum(pre[:, :2].max(0), post[:, :2].max(0))
        if np.any(hi - lo <= 1.0):
            raise InputError("no overlap between epochs 'pre' and 'post' after registration")
        dens_pre, dens_post = _density(pre, lo, hi), _density(post, lo, hi)
        density = min(dens_pre, dens_post)
        area = float(np.prod(hi - lo))
        cell = params["grid_resolution_m"] or math.sqrt(_POINTS_PER_DEM_CELL / density)
        cell = max(cell, math.sqrt(area / _MAX_DEM_CELLS), 0.01)
        radius = params["cylinder_radius_m"] or max(
            math.sqrt(_POINTS_PER_CYLINDER / (math.pi * density)), cell
        )
        normal_radius = params["normal_radius_m"] or 2.0 * radius
        spacing = params["core_spacing_m"] or max(cell, radius)
        spacing = max(spacing, math.sqrt(area / _MAX_CORE_POINTS))
        factor = max(1, round(spacing / cell))
        dem_grid = Grid.covering(lo[0], lo[1], hi[0], hi[1], cell)
        core_grid = dem_grid.coarsened(factor)

    with timer.stage("change_detection"):
        change = detect(
            pre,
            post,
            stable,
            core_grid,
            ChangeSettings(
                cylinder_radius_m=radius,
                normal_radius_m=normal_radius,
                max_change_m=params["max_change_m"],
                lod_quantile=params["lod_quantile"],
                min_lod_m=params["min_lod_m"],
            ),
        )

    with timer.stage("dem"):
        _, filled_pre, domain = _dem(dem_grid, pre)
        _, filled_post, cov_post = _dem(dem_grid, post)
        n_pre, n_post = len(pre), len(post)
        del pre, post
        domain &= cov_post
        if domain.sum() * cell**2 < 0.01 * area:
            raise InputError("no overlap between epochs 'pre' and 'post' after registration")
        gx, gy = dem_grid.centres()
        stable_cells = shapely.contains_xy(stable, gx, gy)
        diff = np.where(domain, filled_post - filled_pre, np.nan)

    with timer.stage("regions"):
        regions = segment(
            change,
            dem_grid,
            factor,
            domain,
            stable_cells,
            params["min_region_area_m2"],
            params["region_buffer_m"],
        )
        volumes = region_volumes(regions, diff)

    with timer.stage("outputs"):
        plots.change_map(
            out / "change_map.png",
            dem_grid,
            filled_pre,
            diff,
            regions,
            volumes,
            stable,
            origin,
            change.lod_m,
        )
        for v in volumes:
            plots.region_figure(
                out / f"region_{v.id}.png",
                dem_grid,
                filled_pre,
                filled_post,
                diff,
                regions,
                v,
                origin,
                change.lod_m,
            )
        report.write_csv(out / "volumes.csv", volumes, origin)

    timer.stages["total"] = round(time.perf_counter() - t0, 3)
    doc = report.build(
        volumes=volumes,
        origin=origin,
        reg=reg,
        change=change,
        params=params,
        grid={
            "resolution_m": cell,
            "nx": dem_grid.nx,
            "ny": dem_grid.ny,
            "density_pre_per_m2": dens_pre,
            "density_post_per_m2": dens_post,
            "overlap_area_m2": float(domain.sum() * cell**2),
        },
        m3c2={
            "cylinder_radius_m": radius,
            "normal_radius_m": normal_radius,
            "core_spacing_m": core_grid.cell,
        },
        counts={"pre": n_pre, "post": n_post},
        headers={"pre": h_pre, "post": h_post},
        timings=timer.stages,
    )
    report.write_json(out / "report.json", doc)
    return doc


def _dem(grid: Grid, xyz: FloatArray) -> tuple[FloatArray, FloatArray, Any]:
    dem, _ = cell_means(grid, xyz)
    filled, covered = fill_holes(dem)
    return dem, filled, covered
