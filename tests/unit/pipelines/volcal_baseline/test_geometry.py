"""Pure logic: grids, synthetic shapes, region growing and volume sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from pipelines.volcal_baseline.grid import Grid, cell_means, fill_holes
from pipelines.volcal_baseline.regions import Regions
from pipelines.volcal_baseline.registration import RegistrationSettings, apply, fine_icp
from pipelines.volcal_baseline.synthetic import (
    Feature,
    SurveyConfig,
    feature_for_volume,
    misalignment,
)
from pipelines.volcal_baseline.volume import region_volumes


def test_cell_means_integrate_a_surface_without_bias() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (200_000, 2))
    z = 0.3 * xy[:, 0] + 0.01 * xy[:, 1] ** 2
    grid = Grid(0.0, 0.0, 1.0, 50, 50)
    means, counts = cell_means(grid, np.column_stack([xy, z]))
    assert counts.sum() == 200_000
    exact = 0.3 * 25 * 2500 + 0.01 * (50**3 / 3) * 50  # integral over the square
    assert means.sum() == pytest.approx(exact, rel=1e-3)


def test_fill_holes_fills_gaps_but_not_outside() -> None:
    v = np.full((10, 10), np.nan)
    v[:, :5] = 1.0
    v[4, 2] = np.nan  # a sampling gap inside the data
    filled, covered = fill_holes(v)
    assert filled[4, 2] == 1.0 and covered[4, 2]
    assert not covered[:, 8:].any()


def test_fill_holes_is_exact_on_a_slope() -> None:
    """Copying the nearest cell would put every filled cell one cell downhill (ties always go
    the same way), a height bias; a plane through the neighbours has none."""
    rows, cols = np.mgrid[0:30, 0:30].astype(np.float64)
    plane = 2.0 + 0.3 * cols - 0.2 * rows
    v = plane.copy()
    rng = np.random.default_rng(0)
    gaps = rng.random(v.shape) < 0.05
    gaps[10:12, 10:12] = True  # a 2 x 2 gap, filled from the outside in
    v[gaps] = np.nan
    filled, covered = fill_holes(v)
    assert covered[1:-1, 1:-1].all()  # (an empty corner cell counts as outside the survey)
    np.testing.assert_allclose(filled[covered], plane[covered], atol=1e-9)


@pytest.mark.parametrize("shape", ["dome", "frustum"])
@pytest.mark.parametrize("volume", [200.0, 900.0, 20_000.0])
def test_feature_volume_formula_matches_numeric_integral(shape: str, volume: float) -> None:
    f = feature_for_volume(volume, "pit", shape, 0.0, 0.0)
    assert f.volume == pytest.approx(volume)
    h = f.radius / 400
    xs = (np.arange(-410, 410) + 0.5) * h
    gx, gy = np.meshgrid(xs, xs)
    assert -f.dz(gx, gy).sum() * h * h == pytest.approx(volume, rel=2e-3)


def test_misalignment_is_rigid_with_requested_size() -> None:
    cfg = SurveyConfig(shift_m=2.0, rotation_deg=2.0)
    t = misalignment(cfg, np.array([200.0, 200.0, 0.0]), np.random.default_rng(3))
    rot = t[:3, :3]
    assert np.allclose(rot @ rot.T, np.eye(3))
    assert math.degrees(math.acos((np.trace(rot) - 1) / 2)) == pytest.approx(2.0)
    centre_moved = apply(t, np.array([[200.0, 200.0, 0.0]]))
    assert np.linalg.norm(centre_moved - [200.0, 200.0, 0.0]) == pytest.approx(2.0)


def test_region_volumes_split_cut_and_fill_by_side_not_by_noise() -> None:
    grid = Grid(0.0, 0.0, 2.0, 4, 1)
    label = np.array([[1, 1, 2, 0]])
    sign = np.array([[-1, -1, 1, 0]])
    # A noisy cell on the cut side that happens to be positive must reduce cut, not add fill.
    diff = np.array([[-1.0, 0.25, 0.5, 9.0]])
    vols = region_volumes(Regions(grid, label, sign, 2, np.zeros(3, dtype=bool)), diff)
    assert [v.id for v in vols] == [1, 2]
    assert vols[0].cut_m3 == pytest.approx(3.0) and vols[0].fill_m3 == 0.0
    assert vols[0].net_m3 == pytest.approx(-3.0) and vols[0].area_m2 == pytest.approx(8.0)
    assert vols[1].fill_m3 == pytest.approx(2.0) and vols[1].centroid_x == pytest.approx(5.0)


def test_feature_dz_has_compact_support() -> None:
    f = Feature("mound", "dome", 0.0, 0.0, 10.0, 2.0)
    assert f.dz(np.array([0.0, 10.0, 15.0]), np.zeros(3)).tolist() == [2.0, 0.0, 0.0]


def test_icp_ignores_source_points_outside_the_region() -> None:
    """Source points beyond the target's coverage (as a coarse alignment metres off near the
    site's corners leaves them) must not pull the fit: they would be scored against the
    extrapolated patches of the target's edge points. Already registered: ICP must stay put."""
    rng = np.random.default_rng(3)

    def surface(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 3.0 * np.sin(x / 15.0) * np.cos(y / 20.0) + 0.05 * x

    def cloud(n: int, lo: float, hi: float, x0: float, y0: float) -> np.ndarray:
        xy = rng.uniform(lo, hi, (n, 2)) + np.array([x0, y0])
        p = np.column_stack([xy, surface(xy[:, 0], xy[:, 1])])
        return p + rng.normal(0.0, 0.1, p.shape)

    corners = [(a, b) for a in (0.0, 60.0) for b in (0.0, 60.0)]
    target = np.vstack([cloud(15_000, 0.0, 40.0, a, b) for a, b in corners])
    source = np.vstack([cloud(15_000, -3.0, 43.0, a, b) for a, b in corners])
    region = shapely.union_all([shapely.box(a + 1, b + 1, a + 39, b + 39) for a, b in corners])
    transform, _, _, converged, _ = fine_icp(
        source, target, np.eye(4), RegistrationSettings(), region=region
    )
    assert converged
    probe = np.array(
        [
            [x, y, float(surface(np.array(x), np.array(y)))]
            for x in (0.0, 50.0, 100.0)
            for y in (0.0, 50.0, 100.0)
        ]
    )
    moved = probe @ transform[:3, :3].T + transform[:3, 3]
    err = np.abs(moved - probe).max(axis=0)
    assert err[0] < 0.015 and err[1] < 0.015 and err[2] < 0.006, err
