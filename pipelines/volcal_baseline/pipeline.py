"""The pipeline end to end: sample, register, rasterise and tile, detect change, segment,
measure, report."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from . import classes, crs, gis, io, limits, pdf, plots, report, sampling
from .change import ChangeSettings, core_points, distances, judge
from .errors import InputError
from .grid import Accumulator, FloatArray, Grid, cell_means, fill_holes
from .outliers import Reference
from .regions import segment
from .registration import RegistrationSettings, apply, register
from .selection import Selection
from .tiles import Spill, Tiling
from .volume import region_volumes

# Targets for the automatic scales, in points of the sparser epoch.
_POINTS_PER_DEM_CELL = 4.0
_POINTS_PER_CYLINDER = 30.0
_MAX_CORE_POINTS = 400_000

# The bounds that keep memory independent of the point count (see docs/volcal.md, "Memory").
# DEM cells at most: the DEM stages hold about 150 bytes per cell at their peak, so 12 M cells
# stay near 2 GiB. A survey denser than that grows its cells instead (0.5 m over 1.7 km).
MAX_DEM_CELLS = 12_000_000
# Points per epoch kept by the first pass for registration and the density estimate.
SAMPLE_POINTS = 2_000_000
# Points per epoch a tile is sized to hold, before its halo, and the most it may hold with it.
TILE_POINTS = 4_000_000
MAX_TILE_POINTS = 24_000_000
# What a worker holds per point of a tile (float32 read, float64 copy, KD-tree), and what the
# main process keeps meanwhile (the DEMs' sums and counts, the core points, the interpreter).
_BYTES_PER_TREE_POINT = 64
_RESERVED_BYTES = 3 * 512 * 1024**2
# Where the tiles' points go, inside the output folder unless told otherwise; never uploaded
# (the run removes it before it ends).
SCRATCH_DIR = ".volcal-scratch"


@dataclass(frozen=True)
class Inputs:
    pre: Path
    post: Path
    stable: Path


def progress(message: str) -> None:
    """One line on stderr, which the worker keeps as the task's log: a run of many minutes says
    where it is."""
    print(f"volcal: {message}", file=sys.stderr, flush=True)


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
            progress(f"{name} done in {self.stages[name]:.1f} s")


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


def run(
    inputs: Inputs, params: Mapping[str, Any], out: Path, scratch: Path | None = None
) -> dict[str, Any]:
    """Run on local files and write every output into ``out``; return the report.

    Two passes over each cloud. The first draws a subsample for registration and the scales;
    the second rasterises both epochs onto the DEM grid and writes the points into tiles under
    ``scratch`` (default: a hidden folder in ``out``, removed at the end) for M3C2. Peak memory
    follows the grids and one tile, not the point count.
    """
    timer = Timer()
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(params["seed"])
    reg_settings = RegistrationSettings(
        max_rotation_deg=params["max_rotation_deg"],
        max_iterations=params["max_icp_iterations"],
        max_rmse_m=params["max_registration_rmse_m"],
        source_points=params["registration_points"],
    )

    with timer.stage("read"):
        h_pre = io.read_header(inputs.pre, "pre")
        h_post = io.read_header(inputs.post, "post")
        origin = io.local_origin(h_pre)
        stable = io.read_stable(inputs.stable, origin)
        prj = io.prj_of(inputs.stable)
        survey_crs = crs.resolve(
            crs.of_cloud(inputs.pre, "pre"),
            crs.of_cloud(inputs.post, "post"),
            crs.of_prj(prj) if prj is not None else None,
        )
        _check_footprints(h_pre, h_post, stable, origin)
        budget = max(SAMPLE_POINTS, 4 * reg_settings.source_points, 4 * reg_settings.target_points)
        s_pre = sampling.draw(h_pre, origin, budget, rng)
        s_post = sampling.draw(h_post, origin, budget, rng)

    with timer.stage("selection"):
        choice = classes.choose(params["ground_classes"], s_pre.histogram, s_post.histogram)
        pre_pts, pre_share = s_pre.of(choice.pre)
        post_pts, post_share = s_post.of(choice.post)
        del s_pre, s_post
        sel_pre = Selection(choice.pre, _reference(pre_pts, params))
        sel_post = Selection(choice.post, _reference(post_pts, params))
        if sel_pre.reference is not None:
            pre_pts = pre_pts[sel_pre.reference.keep(pre_pts)]
        if sel_post.reference is not None:
            post_pts = post_pts[sel_post.reference.keep(post_pts)]

    with timer.stage("registration"):
        reg = register(pre_pts, post_pts, stable, reg_settings, seed=params["seed"])
        apply(reg.transform, post_pts)

    with timer.stage("grids"):
        pre_xy, post_xy = pre_pts[:, :2], post_pts[:, :2]
        lo = np.maximum(pre_xy.min(0), post_xy.min(0))
        hi = np.minimum(pre_xy.max(0), post_xy.max(0))
        if np.any(hi - lo <= 1.0):
            raise InputError("no overlap between epochs 'pre' and 'post' after registration")
        dens_pre = _density(pre_pts, lo, hi) / pre_share
        dens_post = _density(post_pts, lo, hi) / post_share
        del pre_pts, post_pts, pre_xy, post_xy
        density = min(dens_pre, dens_post)
        area = float(np.prod(hi - lo))
        cell = params["grid_resolution_m"] or math.sqrt(_POINTS_PER_DEM_CELL / density)
        cell = max(cell, math.sqrt(area / MAX_DEM_CELLS), 0.01)
        radius = params["cylinder_radius_m"] or max(
            math.sqrt(_POINTS_PER_CYLINDER / (math.pi * density)), cell
        )
        normal_radius = params["normal_radius_m"] or 2.0 * radius
        spacing = params["core_spacing_m"] or max(cell, radius)
        spacing = max(spacing, math.sqrt(area / _MAX_CORE_POINTS))
        factor = max(1, round(spacing / cell))
        dem_grid = Grid.covering(lo[0], lo[1], hi[0], hi[1], cell)
        core_grid = dem_grid.coarsened(factor)
        settings = ChangeSettings(
            cylinder_radius_m=radius,
            normal_radius_m=normal_radius,
            max_change_m=params["max_change_m"],
            lod_quantile=params["lod_quantile"],
            min_lod_m=params["min_lod_m"],
        )
        tiling = _tiling(lo, hi, max(dens_pre, dens_post), settings)

    spill = Spill(scratch or out / SCRATCH_DIR, tiling, ("pre", "post"))
    try:
        with timer.stage("rasterise"):
            dem_pre, dem_post = Accumulator(dem_grid), Accumulator(dem_grid)
            cores = Accumulator(core_grid, dims=(0, 1, 2))
            for chunk in io.chunks(h_pre, origin):
                xyz = sel_pre(chunk)
                if len(xyz):
                    dem_pre.add(xyz)
                    cores.add(xyz)
                    spill.add("pre", xyz)
            for chunk in io.chunks(h_post, origin):
                xyz = sel_post(chunk)
                if len(xyz):
                    apply(reg.transform, xyz)
                    dem_post.add(xyz)
                    spill.add("post", xyz)
            core, core_cells = core_points(cores)
            del cores

        with timer.stage("change_detection"):
            workers = _m3c2_workers(tiling, dens_pre, dens_post)
            change = judge(
                core_grid,
                core_cells,
                core,
                distances(spill, core, settings, workers, progress),
                stable,
                settings,
            )
    finally:
        spill.close()

    with timer.stage("dem"):
        filled_pre, domain = fill_holes(dem_pre.means()[0])
        filled_post, cov_post = fill_holes(dem_post.means()[0])
        del dem_pre, dem_post
        domain &= cov_post
        if domain.sum() * cell**2 < 0.01 * area:
            raise InputError("no overlap between epochs 'pre' and 'post' after registration")
        gx, gy = dem_grid.centres()
        stable_cells = shapely.contains_xy(stable, gx, gy)
        del gx, gy
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
        scene = plots.Scene(
            dem_grid, filled_pre, filled_post, diff, regions, volumes, stable, origin, change.lod_m
        )
        plots.change_map(out / "change_map.png", scene)
        for v in volumes:
            plots.region_figure(out / f"region_{v.id}.png", scene, v)
        report.write_csv(out / "volumes.csv", volumes, origin)
        gis.write_dod(out / "dod.tif", dem_grid, diff, origin, survey_crs.crs)
        gis.write_regions(out / "regions.gpkg", regions, volumes, origin, survey_crs.crs)

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
        counts={"pre": h_pre.point_count, "post": h_post.point_count},
        headers={"pre": h_pre, "post": h_post},
        timings=timer.stages,
        crs=survey_crs,
        selection={"pre": sel_pre, "post": sel_post},
        class_choice=choice,
    )
    report.write_json(out / "report.json", doc)
    pdf.write(out / "report.pdf", doc, scene)
    return doc


def _m3c2_workers(tiling: Tiling, *densities: float) -> int:
    """Processes for M3C2: one per CPU, as many as fit in memory beside the grids."""
    held = max(densities) * (tiling.size + 2.0 * tiling.halo) ** 2
    per_worker = 2 * held * _BYTES_PER_TREE_POINT
    room = limits.memory_bytes() - _RESERVED_BYTES
    return max(1, min(limits.cpus(), int(room // max(per_worker, 1.0))))


def _reference(sample: FloatArray, params: Mapping[str, Any]) -> Reference | None:
    """The epoch's outlier filter, drawn from its own subsample (None when switched off)."""
    if not params["outlier_filter"]:
        return None
    if len(sample) < 3:
        return None
    return Reference.from_sample(sample, sample[:, :2].min(0), sample[:, :2].max(0))


def _tiling(lo: FloatArray, hi: FloatArray, density: float, settings: ChangeSettings) -> Tiling:
    """Tiles that hold about ``TILE_POINTS`` of the denser epoch each, read with a halo that
    covers every M3C2 neighbourhood of their core points."""
    halo = max(settings.normal_radius_m, settings.cylinder_radius_m + settings.max_change_m)
    size = max(2.0 * halo, math.sqrt(TILE_POINTS / density))
    held = density * (size + 2.0 * halo) ** 2
    if held > MAX_TILE_POINTS:
        raise InputError(
            f"max_change_m = {settings.max_change_m:g} m needs M3C2 tiles of about "
            f"{held / 1e6:.0f} M points per epoch at this density ({density:.0f} points/m2), "
            f"more than the {MAX_TILE_POINTS / 1e6:.0f} M that fit in memory: lower max_change_m"
        )
    return Tiling.covering(lo, hi, size, halo)
