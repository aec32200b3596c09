"""The streaming passes over a cloud: the subsample, and the truncation checks."""

from __future__ import annotations

from pathlib import Path

import laspy
import numpy as np
import pytest

from pipelines.volcal_baseline import io, sampling
from pipelines.volcal_baseline.classes import EVERY
from pipelines.volcal_baseline.errors import InputError
from pipelines.volcal_baseline.grid import Accumulator, Grid, cell_means


def _cloud(path: Path, n: int, point_format: int = 6) -> np.ndarray:
    rng = np.random.default_rng(3)
    xyz = np.column_stack([rng.uniform(0, 100, (n, 2)), rng.uniform(0, 10, n)])
    header = laspy.LasHeader(point_format=point_format, version="1.4")
    header.offsets = np.array([500_000.0, 5_000_000.0, 0.0])
    header.scales = np.array([0.001, 0.001, 0.001])
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz[:, 0] + 500_000.0, xyz[:, 1] + 5_000_000.0, xyz[:, 2]
    # Ground (class 2) west of x = 30 m, the rest unclassified (1).
    las.classification = np.where(xyz[:, 0] < 30.0, 2, 1).astype(np.uint8)
    las.write(str(path))
    return xyz


def test_a_cloud_under_the_budget_is_kept_whole(tmp_path: Path) -> None:
    xyz = _cloud(tmp_path / "a.las", 30_000)
    header = io.read_header(tmp_path / "a.las", "pre")
    got = sampling.draw(header, io.local_origin(header), 50_000, np.random.default_rng(0))
    points, share = got.of(EVERY)
    assert share == 1.0
    assert np.abs(points - xyz).max() < 1e-3 + 1e-9
    ground, share = got.of(frozenset({2}))
    assert share == 1.0 and np.array_equal(ground, points[xyz[:, 0] < 30.0])


def test_a_larger_cloud_is_thinned_evenly_to_the_budget(tmp_path: Path) -> None:
    _cloud(tmp_path / "a.laz", 200_000)
    header = io.read_header(tmp_path / "a.laz", "post")
    got = sampling.draw(header, io.local_origin(header), 20_000, np.random.default_rng(0))
    assert 19_000 < len(got.points) < 21_000
    assert got.total == 200_000
    assert got.histogram[2] + got.histogram[1] == 200_000
    ground, share = got.of(frozenset({2}))
    assert np.all(ground[:, 0] < 30.0) and 0.09 < share < 0.11
    # Even in space: every 20 m x 20 m block keeps about a tenth of its ~8,000 points.
    counts, _, _ = np.histogram2d(got.points[:, 0], got.points[:, 1], bins=5)
    assert counts.min() > 650 and counts.max() < 950


@pytest.mark.parametrize("point_format", [6, 7, 8])
def test_chunks_deliver_every_point_of_las_1_4_once(tmp_path: Path, point_format: int) -> None:
    xyz = _cloud(tmp_path / "a.las", 25_000, point_format)
    header = io.read_header(tmp_path / "a.las", "pre")
    assert (header.version, header.point_format) == ("1.4", point_format)
    parts = list(io.chunks(header, io.local_origin(header), size=7_000))
    assert [len(p.xyz) for p in parts] == [7_000, 7_000, 7_000, 4_000]
    assert np.abs(np.concatenate([p.xyz for p in parts]) - xyz).max() < 1e-3 + 1e-9
    assert all(p.classification.dtype == np.uint8 for p in parts)


def test_a_las_cut_short_names_the_points_promised_and_held(tmp_path: Path) -> None:
    _cloud(tmp_path / "a.las", 10_000)
    data = (tmp_path / "a.las").read_bytes()
    (tmp_path / "cut.las").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        io.read_header(tmp_path / "cut.las", "pre")
    # Format 6 records are 30 bytes: the whole ones in the half after the header.
    held = (len(data) // 2 - (len(data) - 10_000 * 30)) // 30
    assert str(err.value) == (
        f"input 'pre' is truncated: its header promises 10,000 points, the file holds {held:,}"
    )


def test_a_laz_cut_short_says_truncated_and_how_far_reading_got(tmp_path: Path) -> None:
    _cloud(tmp_path / "a.laz", 300_000)
    data = (tmp_path / "a.laz").read_bytes()
    (tmp_path / "cut.laz").write_bytes(data[: len(data) // 2])
    header = io.read_header(tmp_path / "cut.laz", "post")
    with pytest.raises(
        InputError,
        match=r"input 'post' is truncated or corrupt: its header "
        r"promises 300,000 points, reading failed after [\d,]+",
    ):
        for _ in io.chunks(header, io.local_origin(header), size=50_000):
            pass


def test_accumulating_in_chunks_equals_one_pass() -> None:
    rng = np.random.default_rng(4)
    xyz = np.column_stack([rng.uniform(0, 50, (40_000, 2)), rng.normal(0, 1, 40_000)])
    grid = Grid.covering(0, 0, 50, 50, 2.0)
    acc = Accumulator(grid, dims=(0, 1, 2))
    for part in np.array_split(xyz, 9):
        acc.add(part)
    means, counts = cell_means(grid, xyz)
    assert np.array_equal(acc.counts.reshape(grid.shape), counts)
    np.testing.assert_allclose(acc.means()[2], means, rtol=1e-12, equal_nan=True)
