"""Registering the later epoch onto the earlier one: coarse search, then fine ICP on stable areas.

The coarse stage is an exhaustive search in plan view, in the spirit of the paper's exhaustive
grid search but over what a survey misalignment can be (a few degrees, a few metres): for each
candidate heading, the terrain-slope images of both epochs are cross-correlated by FFT to find the
plan shift; a robust plane fit of the height difference then gives tilt and vertical offset.
Slopes rather than heights are correlated because a tilt adds a ramp to heights but only a
constant to slopes. The fine stage is point-to-plane ICP restricted to the stable areas, with
trimmed residuals, so that the real changes never pull the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import signal
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from .errors import InputError
from .grid import FloatArray, Grid, cell_means

# How far (m) the coarse alignment may leave a point from its place, for choosing ICP candidates.
_COARSE_MARGIN_M = 5.0


@dataclass(frozen=True)
class RegistrationSettings:
    max_rotation_deg: float = 3.0
    rotation_step_deg: float = 0.25
    max_iterations: int = 100
    max_rmse_m: float = 0.5
    source_points: int = 200_000
    target_points: int = 400_000
    min_inlier_fraction: float = 0.5


@dataclass(frozen=True)
class Registration:
    transform: FloatArray  # 4x4, maps post (local coordinates) onto pre
    coarse: FloatArray
    rmse_m: float
    iterations: int
    converged: bool
    inlier_fraction: float
    source_points: int
    target_points: int


def apply(transform: FloatArray, xyz: FloatArray, chunk: int = 2_000_000) -> FloatArray:
    """``transform`` applied to every point, in place, chunked to bound temporaries."""
    rot, t = transform[:3, :3], transform[:3, 3]
    for s in range(0, len(xyz), chunk):
        xyz[s : s + chunk] = xyz[s : s + chunk] @ rot.T + t
    return xyz


def _about(rot: FloatArray, centre: FloatArray, shift: FloatArray) -> FloatArray:
    """The transform that rotates about ``centre`` and then shifts."""
    t = np.eye(4)
    t[:3, :3] = rot
    t[:3, 3] = centre - rot @ centre + shift
    return t


def _rodrigues(omega: FloatArray) -> FloatArray:
    ang = float(np.linalg.norm(omega))
    if ang < 1e-15:
        return np.eye(3)
    k = omega / ang
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(ang) * kx + (1 - math.cos(ang)) * (kx @ kx)


def _rot_z(deg: float) -> FloatArray:
    a = math.radians(deg)
    return np.array(
        [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]]
    )


def _slopes(grid: Grid, xyz: FloatArray) -> tuple[FloatArray, FloatArray]:
    dem, _ = cell_means(grid, xyz)
    grads: list[FloatArray] = list(np.gradient(dem, grid.cell))
    out = []
    for g in grads[::-1]:  # np.gradient answers (d/drow, d/dcol) = (d/dy, d/dx)
        ok = np.isfinite(g)
        out.append(np.where(ok, g - (g[ok].mean() if ok.any() else 0.0), 0.0))
    return out[0], out[1]


def _sample(xyz: FloatArray, n: int, rng: np.random.Generator) -> FloatArray:
    if len(xyz) <= n:
        return xyz
    return xyz[np.sort(rng.choice(len(xyz), n, replace=False))]


def coarse_align(
    pre: FloatArray, post: FloatArray, settings: RegistrationSettings, rng: np.random.Generator
) -> FloatArray:
    """Heading, plan shift, tilt and height offset that bring ``post`` near ``pre``."""
    a = _sample(pre, 300_000, rng)
    b = _sample(post, 300_000, rng)
    lo, hi = a[:, :2].min(0), a[:, :2].max(0)
    extent = float(max(hi - lo))
    area = float(np.prod(np.maximum(hi - lo, 1.0)))
    # Cells of ~3 points from the sparser sample, never finer than 1/400 of the site.
    cell = max(extent / 400.0, math.sqrt(3.0 * area / min(len(a), len(b))))
    margin = 0.05 * extent + 5.0
    grid = Grid.covering(lo[0] - margin, lo[1] - margin, hi[0] + margin, hi[1] + margin, cell)
    centre = np.array([*(0.5 * (lo + hi)), float(np.median(a[:, 2]))])
    pgx, pgy = _slopes(grid, a)

    best = (-math.inf, 0.0, np.zeros(2))
    steps = round(settings.max_rotation_deg / settings.rotation_step_deg)
    for k in range(-steps, steps + 1):
        yaw = k * settings.rotation_step_deg
        rot = _rot_z(yaw)
        moved = (b - centre) @ rot.T + centre
        qgx, qgy = _slopes(grid, moved)
        corr = signal.fftconvolve(pgx, qgx[::-1, ::-1], mode="full") + signal.fftconvolve(
            pgy, qgy[::-1, ::-1], mode="full"
        )
        norm = math.sqrt(float((qgx**2 + qgy**2).sum()) * float((pgx**2 + pgy**2).sum()))
        peak = int(np.argmax(corr))
        score = float(corr.flat[peak]) / max(norm, 1e-12)
        if score > best[0]:
            r, c = np.unravel_index(peak, corr.shape)
            lag = np.array([c - (grid.nx - 1), r - (grid.ny - 1)], dtype=np.float64)
            best = (score, yaw, lag * cell)
    _, yaw, shift_xy = best
    plan = _about(_rot_z(yaw), centre, np.array([shift_xy[0], shift_xy[1], 0.0]))

    # Tilt and height offset: robust plane fit of the height difference per cell.
    moved = b @ plan[:3, :3].T + plan[:3, 3]
    dem_a, _ = cell_means(grid, a)
    dem_b, _ = cell_means(grid, moved)
    gx, gy = grid.centres()
    ok = np.isfinite(dem_a) & np.isfinite(dem_b)
    if ok.sum() < 10:
        raise InputError("no overlap between epochs 'pre' and 'post'")
    dz = (dem_a - dem_b)[ok]
    design = np.column_stack([np.ones(ok.sum()), gx[ok] - centre[0], gy[ok] - centre[1]])
    keep = np.ones(len(dz), dtype=bool)
    coef = np.zeros(3)
    for _ in range(5):
        coef = np.linalg.lstsq(design[keep], dz[keep], rcond=None)[0]
        res = dz - design @ coef
        mad = 1.4826 * float(np.median(np.abs(res[keep] - np.median(res[keep]))))
        keep = np.abs(res) <= max(3.0 * mad, 1e-3)
    n = np.array([-coef[1], -coef[2], 1.0])
    n /= np.linalg.norm(n)
    axis = np.cross([0.0, 0.0, 1.0], n)
    tilt = _rodrigues(
        axis / max(np.linalg.norm(axis), 1e-15) * math.asin(min(1.0, float(np.linalg.norm(axis))))
    )
    level = _about(tilt, centre, np.array([0.0, 0.0, coef[0]]))
    return level @ plan


def _patches(points: FloatArray, tree: cKDTree, k: int = 30) -> tuple[FloatArray, float]:
    """A quadratic height patch z = f(dx, dy) fitted to the k nearest neighbours of every
    point (coefficients relative to that point's x, y), and the median point spacing.

    A plane through the neighbours' centroid sits off a curved surface by about curvature x
    radius^2 / 4 (centimetres on hills at drone densities), which tilts the registration; a
    quadratic patch has no such bias, and averaging over k points keeps its noise low.
    """
    coefs = np.empty((len(points), 6))
    spacing = []
    step = 20_000
    for s in range(0, len(points), step):
        part = points[s : s + step]
        dist, nb = tree.query(part, k=k, workers=-1)
        spacing.append(dist[:, 1])
        rel = points[nb] - part[:, None, :]
        dx, dy = rel[..., 0], rel[..., 1]
        design = np.stack([np.ones_like(dx), dx, dy, dx * dx, dx * dy, dy * dy], axis=-1)
        normal = np.einsum("mki,mkj->mij", design, design)
        normal += 1e-9 * np.eye(6)  # collinear neighbourhoods stay solvable
        rhs = np.einsum("mki,mk->mi", design, rel[..., 2])
        sol = np.linalg.solve(normal, rhs[..., None])[..., 0]
        sol[:, 0] += part[:, 2]
        coefs[s : s + step] = sol
    return coefs, float(np.median(np.concatenate(spacing)))


def _residuals(p: FloatArray, base: FloatArray, c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Distance of each point to the tangent plane of its patch, and that plane's normal."""
    dx, dy = p[:, 0] - base[:, 0], p[:, 1] - base[:, 1]
    height = (
        c[:, 0]
        + c[:, 1] * dx
        + c[:, 2] * dy
        + c[:, 3] * dx * dx
        + c[:, 4] * dx * dy
        + c[:, 5] * dy * dy
    )
    gx = c[:, 1] + 2 * c[:, 3] * dx + c[:, 4] * dy
    gy = c[:, 2] + c[:, 4] * dx + 2 * c[:, 5] * dy
    norm = np.sqrt(1.0 + gx * gx + gy * gy)
    normal = np.column_stack([-gx, -gy, np.ones_like(gx)]) / norm[:, None]
    return (p[:, 2] - height) / norm, normal


def _motion(transform: FloatArray, points: FloatArray) -> float:
    """Largest displacement, in metres, that ``transform`` gives any of ``points``."""
    moved = points @ transform[:3, :3].T + transform[:3, 3]
    return float(np.linalg.norm(moved - points, axis=1).max())


def fine_icp(
    source: FloatArray,
    target: FloatArray,
    init: FloatArray,
    settings: RegistrationSettings,
    region: BaseGeometry | None = None,
) -> tuple[FloatArray, float, int, bool, float]:
    """Point-to-plane ICP with trimmed residuals. Returns transform, RMSE, iterations,
    converged, inlier fraction.

    ``region`` (in the target's frame): only source points that the current transform puts
    inside it take part in an iteration. The source is a superset chosen under the coarse
    transform, which can be metres off near the site's edges; without this re-selection, points
    that really lie outside the target's coverage match its edge points, are scored against
    extrapolated patches and bias the fit (by ~0.1 m in plan and ~1 cm in height at 10 cm
    noise).
    """
    if region is not None:
        shapely.prepare(region)
    tree = cKDTree(target, balanced_tree=False, compact_nodes=False)
    coefs, spacing = _patches(target, tree)
    lo, hi = target[:, :2].min(0), target[:, :2].max(0)
    centre = target.mean(axis=0)
    thr_min = max(3.0 * spacing, 0.3)
    thr = max(5.0, 10.0 * spacing)
    transform = init.copy()
    rmse, inliers = math.inf, 0.0
    corners = np.array(
        [
            [lo[0], lo[1], centre[2]],
            [hi[0], lo[1], centre[2]],
            [lo[0], hi[1], centre[2]],
            [hi[0], hi[1], centre[2]],
        ]
    )
    history: list[FloatArray] = []
    for it in range(1, settings.max_iterations + 1):
        src = source @ transform[:3, :3].T + transform[:3, 3]
        if region is not None:
            src = src[shapely.contains_xy(region, src[:, 0], src[:, 1])]
        dist, idx = tree.query(src, k=1, distance_upper_bound=thr, workers=-1)
        ok = np.isfinite(dist)
        if ok.sum() < 100:
            raise InputError(
                "registration did not converge: the epochs' stable areas do not "
                "overlap after coarse alignment"
            )
        p = src[ok]
        r, n = _residuals(p, target[idx[ok]], coefs[idx[ok]])
        sigma = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        keep = np.abs(r) <= max(3.0 * sigma, 1e-3)
        p, n, r = p[keep], n[keep], r[keep]
        design = np.hstack([np.cross(p - centre, n), n])
        step = np.linalg.lstsq(design, -r, rcond=None)[0]
        inc = _about(_rodrigues(step[:3]), centre, step[3:])
        transform = inc @ transform
        rmse = float(np.sqrt(np.mean(r**2)))
        inliers = float(keep.sum()) / len(src)
        new_thr = max(thr_min, min(thr, 4.0 * float(np.median(dist[ok]))))
        history.append(transform)
        # ICP on discrete, noisy neighbours ends in a small limit cycle instead of a fixed
        # point. Steps below the statistical precision of the fit (RMSE / sqrt(n)) are noise:
        # converged once the last step, or the net motion over the last four, is below it.
        tol = max(1e-4, 0.5 * rmse / math.sqrt(max(int(keep.sum()), 1)))
        settled = new_thr >= thr
        if settled and (
            _motion(inc, corners) < tol
            or (len(history) > 4 and _motion(transform @ np.linalg.inv(history[-5]), corners) < tol)
        ):
            return transform, rmse, it, True, inliers
        thr = new_thr
    return transform, rmse, settings.max_iterations, False, inliers


def register(
    pre: FloatArray,
    post: FloatArray,
    stable: BaseGeometry,
    settings: RegistrationSettings,
    seed: int = 0,
) -> Registration:
    rng = np.random.default_rng(seed)
    coarse = coarse_align(pre, post, settings, rng)

    pre_s = _sample(pre, 4 * settings.target_points, rng)
    target = pre_s[shapely.contains_xy(stable, pre_s[:, 0], pre_s[:, 1])]
    target = _sample(target, settings.target_points, rng)
    post_s = _sample(post, 4 * settings.source_points, rng)
    moved = post_s @ coarse[:3, :3].T + coarse[:3, 3]
    # Edges of the stable polygons are where registration errors would mix in changed ground, and
    # where the target's patches are one-sided: ICP uses the post points that its current
    # transform puts inside the polygons eroded by 1 m. Candidates are those within a margin
    # of the coarse estimate's error (metres at the site's corners) of them.
    inner = shapely.buffer(stable, -1.0)
    if inner.is_empty:
        inner = stable
    near = shapely.buffer(inner, _COARSE_MARGIN_M)
    candidates = post_s[shapely.contains_xy(near, moved[:, 0], moved[:, 1])]
    in_inner = int(shapely.contains_xy(inner, moved[:, 0], moved[:, 1]).sum())
    # Sized so that about ``source_points`` of them fall inside ``inner``.
    want = int(settings.source_points * len(candidates) / max(in_inner, 1))
    source = _sample(candidates, want, rng)
    if len(target) < 200:
        raise InputError(
            f"stable-area polygons miss the 'pre' point cloud ({len(target)} sampled points inside)"
        )
    if in_inner < 200:
        raise InputError(
            f"stable-area polygons miss the 'post' point cloud ({in_inner} sampled points inside)"
        )

    transform, rmse, iters, converged, inliers = fine_icp(
        source, target, coarse, settings, region=inner
    )
    if not converged:
        raise InputError(
            f"registration did not converge in {iters} ICP iterations "
            f"(RMSE {rmse:.3f} m on stable areas)"
        )
    if inliers < settings.min_inlier_fraction:
        raise InputError(
            f"registration did not converge: only {inliers:.0%} of stable-area "
            f"points of 'post' match 'pre'"
        )
    if rmse > settings.max_rmse_m:
        raise InputError(
            f"registration did not converge: RMSE {rmse:.3f} m on stable areas "
            f"exceeds {settings.max_rmse_m} m"
        )
    final = source @ transform[:3, :3].T + transform[:3, 3]
    used = int(shapely.contains_xy(inner, final[:, 0], final[:, 1]).sum())
    return Registration(transform, coarse, rmse, iters, converged, inliers, used, len(target))
