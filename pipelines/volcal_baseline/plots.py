"""Pictures a surveyor reads at a glance: plan view of elevation change, one sheet per region."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LightSource, TwoSlopeNorm
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter
from scipy import ndimage

from .grid import FloatArray, Grid
from .regions import Regions
from .volume import RegionVolume

# Red for material removed, blue for material added: the usual earthworks convention.
_CMAP = "RdBu"


def _fmt_m3(v: float) -> str:
    return f"{v:,.0f} m³" if abs(v) >= 100 else f"{v:,.1f} m³"


def _world_axes(ax: Any, origin: FloatArray) -> None:
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v + origin[0]:,.0f}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v + origin[1]:,.0f}"))
    ax.set_xlabel("Easting (m)")
    ax.set_ylabel("Northing (m)")
    ax.set_aspect("equal")
    ax.tick_params(axis="x", labelrotation=30)


def _hillshade(dem: FloatArray, cell: float) -> FloatArray:
    filled = np.where(np.isfinite(dem), dem, np.nanmean(dem) if np.isfinite(dem).any() else 0.0)
    # Smoothed over ~2 m so the relief reads through survey noise.
    filled = ndimage.gaussian_filter(filled, sigma=max(1.0, 2.0 / cell))
    shade = LightSource(azdeg=315, altdeg=45).hillshade(filled, dx=cell, dy=cell, vert_exag=2.0)
    return np.where(np.isfinite(dem), shade, np.nan)


def _limit(diff: FloatArray, mask: Any, lod: float) -> float:
    vals = np.abs(diff[mask & np.isfinite(diff)])
    top = float(np.quantile(vals, 0.99)) if vals.size else 0.0
    return max(top, 3.0 * lod, 0.05)


@dataclass(frozen=True)
class Scene:
    """What the pictures and the PDF draw: the DEM grid, both filled DEMs and their difference,
    the regions with their volumes, the stable areas, the local origin and the LoD (m)."""

    grid: Grid
    dem_pre: FloatArray
    dem_post: FloatArray
    diff: FloatArray
    regions: Regions
    volumes: Sequence[RegionVolume]
    stable: Any
    origin: FloatArray
    lod: float


def change_map(path: Path, scene: Scene) -> None:
    fig, ax = plt.subplots(figsize=(11, 9), dpi=110)
    draw_change_map(fig, ax, scene)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def draw_change_map(fig: Any, ax: Any, scene: Scene, title: bool = True) -> None:
    """The change map into ``ax``: hillshade, change beyond the LoD, regions, stable areas."""
    grid, dem_pre, diff, regions = scene.grid, scene.dem_pre, scene.diff, scene.regions
    volumes, stable, origin, lod = scene.volumes, scene.stable, scene.origin, scene.lod
    ext = grid.extent()
    ax.imshow(
        _hillshade(dem_pre, grid.cell),
        extent=ext,
        origin="lower",
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    inside = regions.label > 0
    vmax = _limit(diff, inside, lod)
    shown = np.where(inside | (np.abs(np.nan_to_num(diff)) > lod), diff, np.nan)
    im = ax.imshow(
        shown,
        extent=ext,
        origin="lower",
        cmap=_CMAP,
        norm=TwoSlopeNorm(0.0, -vmax, vmax),
        interpolation="nearest",
        alpha=0.9,
    )
    gx, gy = grid.centres()
    if regions.count:
        ax.contour(gx, gy, inside.astype(float), levels=[0.5], colors="k", linewidths=1.0)
    for geom in getattr(stable, "geoms", [stable]):
        if hasattr(geom, "exterior"):
            x, y = geom.exterior.xy
            ax.fill(x, y, facecolor="none", edgecolor="#1a9641", hatch="//", linewidth=1.2)
    for v in volumes:
        ax.annotate(
            f"{v.id}\n{_fmt_m3(v.net_m3)}",
            (v.centroid_x, v.centroid_y),
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "k", "alpha": 0.85},
        )
    cut = sum(v.cut_m3 for v in volumes)
    fill = sum(v.fill_m3 for v in volumes)
    if title:
        ax.set_title(
            f"Elevation change, post - pre   ·   cut {_fmt_m3(cut)}   ·   fill "
            f"{_fmt_m3(fill)}   ·   net {_fmt_m3(fill - cut)}\n"
            f"{regions.count} regions (outlined, labelled id / net volume); colour only "
            f"where |change| > LoD {lod:.3f} m or inside a region",
            fontsize=10,
        )
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    _world_axes(ax, origin)
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
    cb.set_label("Elevation change (m)   red = cut, blue = fill")
    ax.legend(
        handles=[
            Patch(
                facecolor="none",
                edgecolor="#1a9641",
                hatch="//",
                label="stable area (registration)",
            )
        ],
        loc="lower right",
        fontsize=8,
    )


def region_figure(path: Path, scene: Scene, vol: RegionVolume) -> None:
    grid, dem_pre, dem_post, diff = scene.grid, scene.dem_pre, scene.dem_post, scene.diff
    regions, origin, lod = scene.regions, scene.origin, scene.lod
    rows, cols = np.nonzero(regions.label == vol.id)
    pad = max(5, int(0.25 * max(np.ptp(rows), np.ptp(cols))))
    r0, r1 = max(rows.min() - pad, 0), min(rows.max() + pad + 1, grid.ny)
    c0, c1 = max(cols.min() - pad, 0), min(cols.max() + pad + 1, grid.nx)
    sub = (slice(r0, r1), slice(c0, c1))
    x0, y0 = grid.x0 + c0 * grid.cell, grid.y0 + r0 * grid.cell
    ext = (x0, grid.x0 + c1 * grid.cell, y0, grid.y0 + r1 * grid.cell)
    mine = regions.label[sub] == vol.id
    d = diff[sub]
    vmax = _limit(d, mine, lod)

    fig, (ax, axp) = plt.subplots(
        1, 2, figsize=(13, 5.6), dpi=100, gridspec_kw={"width_ratios": [1.1, 1.0]}
    )
    ax.imshow(
        _hillshade(dem_pre[sub], grid.cell),
        extent=ext,
        origin="lower",
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    im = ax.imshow(
        np.where(mine, d, np.nan),
        extent=ext,
        origin="lower",
        cmap=_CMAP,
        norm=TwoSlopeNorm(0.0, -vmax, vmax),
        interpolation="nearest",
    )
    gx = x0 + (np.arange(c1 - c0) + 0.5) * grid.cell
    gy = y0 + (np.arange(r1 - r0) + 0.5) * grid.cell
    ax.contour(gx, gy, mine.astype(float), levels=[0.5], colors="k", linewidths=1.2)
    # The profile runs west-east through the centroid; mark it on the plan.
    prow = int(np.clip(round((vol.centroid_y - grid.y0) / grid.cell - 0.5), r0, r1 - 1))
    ax.axhline(grid.y0 + (prow + 0.5) * grid.cell, color="k", ls="--", lw=0.8)
    ax.text(ext[0], grid.y0 + (prow + 0.5) * grid.cell, " A", va="bottom", fontsize=9)
    ax.text(ext[1], grid.y0 + (prow + 0.5) * grid.cell, "A' ", va="bottom", ha="right", fontsize=9)
    _world_axes(ax, origin)
    cb = fig.colorbar(im, ax=ax, shrink=0.85, pad=0.02)
    cb.set_label("Elevation change (m)   red = cut, blue = fill")
    ax.set_title("Plan view", fontsize=10)

    xs = grid.x0 + (np.arange(c0, c1) + 0.5) * grid.cell
    zpre, zpost = dem_pre[prow, c0:c1], dem_post[prow, c0:c1]
    axp.plot(xs, zpre, color="0.4", lw=1.5, label="pre (earlier survey)")
    axp.plot(xs, zpost, color="#d95f02", lw=1.5, label="post (later survey, registered)")
    inrow = regions.label[prow, c0:c1] == vol.id
    axp.fill_between(
        xs,
        zpre,
        zpost,
        where=inrow & (zpost < zpre),
        color="#d7301f",
        alpha=0.4,
        label="cut",
        interpolate=True,
    )
    axp.fill_between(
        xs,
        zpre,
        zpost,
        where=inrow & (zpost >= zpre),
        color="#2166ac",
        alpha=0.4,
        label="fill",
        interpolate=True,
    )
    axp.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v + origin[0]:,.0f}"))
    axp.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v + origin[2]:,.1f}"))
    axp.set_xlabel("Easting (m)")
    axp.set_ylabel("Elevation (m)")
    axp.set_title("Profile A-A' through the centroid (west → east)", fontsize=10)
    axp.legend(fontsize=8, loc="best")
    axp.grid(alpha=0.3)
    axp.tick_params(axis="x", labelrotation=30)

    note = "   (reaches the data edge: may be incomplete)" if vol.truncated else ""
    fig.suptitle(
        f"Region {vol.id}:  cut {_fmt_m3(vol.cut_m3)}  ·  fill {_fmt_m3(vol.fill_m3)}"
        f"  ·  net {_fmt_m3(vol.net_m3)}  ·  area {vol.area_m2:,.0f} m²  ·  centroid "
        f"E {vol.centroid_x + origin[0]:,.1f}  N {vol.centroid_y + origin[1]:,.1f}"
        f"{note}",
        fontsize=10.5,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
