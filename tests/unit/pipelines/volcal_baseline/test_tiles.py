"""Tiles with a halo: every point lands where M3C2 will look for it, and per-tile M3C2 answers
as the whole cloud does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import py4dgeo
import pytest
from scipy.spatial import cKDTree

from pipelines.volcal_baseline.change import ChangeSettings, distances
from pipelines.volcal_baseline.tiles import Spill, Tiling


def test_a_point_goes_to_every_tile_whose_halo_holds_it() -> None:
    tiling = Tiling.covering(np.array([0.0, 0.0]), np.array([300.0, 300.0]), 100.0, 10.0)
    assert (tiling.nx, tiling.ny) == (3, 3)
    xy = np.array(
        [
            [50.0, 50.0],  # the middle of tile 0: there only
            [95.0, 50.0],  # 5 m from tile 1: both
            [95.0, 95.0],  # near the corner of tiles 0, 1, 3 and 4: all four
            [150.0, 150.0],  # the middle of tile 4
            [205.0, 150.0],  # inside tile 5, 5 m from tile 4
        ]
    )
    tiles, points = tiling.assign(xy)
    got = {i: sorted(int(t) for t in tiles[points == i]) for i in range(len(xy))}
    assert got == {0: [0], 1: [0, 1], 2: [0, 1, 3, 4], 3: [4], 4: [4, 5]}
    assert list(tiling.home(xy)) == [0, 0, 0, 4, 5]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_tile_holds_its_box_grown_by_the_halo(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 250, (20_000, 2))
    tiling = Tiling.covering(xy.min(0), xy.max(0), 60.0, 7.5)
    tiles, points = tiling.assign(xy)
    for tile in range(tiling.count):
        x0, y0 = tiling.corner(tile)
        inside = (
            (xy[:, 0] >= x0 - tiling.halo)
            & (xy[:, 0] < x0 + tiling.size + tiling.halo)
            & (xy[:, 1] >= y0 - tiling.halo)
            & (xy[:, 1] < y0 + tiling.size + tiling.halo)
        )
        # Exactly the points in the grown box (edge tiles also own what lies past the edge).
        want = set(np.flatnonzero(inside))
        got = set(points[tiles == tile])
        assert want <= got
        assert all(tiling.home(xy[[p]])[0] == tile or p in want for p in got)


def test_the_spill_gives_back_each_tile_to_a_tenth_of_a_millimetre(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    xyz = np.column_stack([rng.uniform(0, 1700, (50_000, 2)), rng.uniform(200, 400, 50_000)])
    tiling = Tiling.covering(np.zeros(2), np.full(2, 1700.0), 400.0, 20.0)
    spill = Spill(tmp_path / "scratch", tiling, ("pre",))
    for part in np.array_split(xyz, 7):  # as the stream delivers it
        spill.add("pre", part)
    tiles, points = tiling.assign(xyz)
    for tile in range(tiling.count):
        back = spill.load("pre", tile)
        want = xyz[points[tiles == tile]]
        assert len(back) == len(want)
        gap, nearest = cKDTree(want).query(back)
        assert gap.max() < 1e-4
        assert len(set(nearest)) == len(want)  # each point once
    assert spill.counts["pre"].sum() == len(tiles)
    spill.close()
    assert not (tmp_path / "scratch").exists()


def test_m3c2_tile_by_tile_equals_m3c2_on_the_whole_cloud(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)

    def surface(n: int, lift: float) -> np.ndarray:
        xy = rng.uniform(0, 120, (n, 2))
        z = 0.05 * xy[:, 0] + np.sin(xy[:, 1] / 9.0) + rng.normal(0, 0.02, n)
        z += lift * np.exp(-((xy[:, 0] - 61) ** 2 + (xy[:, 1] - 58) ** 2) / 200.0)
        # On a 1/1024 m lattice, which float32 offsets from the tiles' corners hold exactly: the
        # comparison then sees the halo alone, not rounding at the cylinders' walls.
        return np.round(np.column_stack([xy, z]) * 1024.0) / 1024.0

    pre, post = surface(60_000, 0.0), surface(50_000, 2.0)
    core = pre[rng.choice(len(pre), 2_000, replace=False)]
    settings = ChangeSettings(
        cylinder_radius_m=1.0,
        normal_radius_m=2.0,
        max_change_m=5.0,
        lod_quantile=0.99,
        min_lod_m=0.0,
    )
    whole, _ = py4dgeo.M3C2(
        epochs=(py4dgeo.Epoch(pre), py4dgeo.Epoch(post)),
        corepoints=core,
        normal_radii=[2.0],
        cyl_radius=1.0,
        max_distance=5.0,
    ).run()
    halo = max(settings.normal_radius_m, settings.cylinder_radius_m + settings.max_change_m)
    tiling = Tiling.covering(np.zeros(2), np.full(2, 120.0), 30.0, halo)
    assert tiling.count == 16
    spill = Spill(tmp_path / "s", tiling, ("pre", "post"))
    spill.add("pre", pre)
    spill.add("post", post)
    tiled = distances(spill, core, settings)
    ok = np.isfinite(whole)
    assert ok.sum() > 1_900
    assert np.array_equal(ok, np.isfinite(tiled))
    assert np.abs(tiled[ok] - whole[ok]).max() < 1e-9
    # Tiles on worker processes give the same answer, each in its place.
    assert np.array_equal(distances(spill, core, settings, workers=2), tiled, equal_nan=True)
