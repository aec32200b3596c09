"""A robust filter for points far off the ground: birds, dust, wires above it; multipath and
sensor noise below it.

Each epoch's own subsample gives a coarse reference surface: per cell of ``cell`` metres, the
median height and the median absolute deviation (MAD) from it. A point is an outlier when its
height is further from its cell's median than ``K`` robust standard deviations (1.4826 x MAD)
and at least ``MIN_M``. The MAD follows the terrain inside the cell, so a bench face or a pit
wall (metres of relief per cell) widens the band and keeps its points; on level ground the band
is a metre or two and a bird 30 m up is dropped. Cells with fewer than ``MIN_SAMPLES`` sampled
points filter nothing. Each epoch is judged against itself, so real change is never an outlier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import BoolArray, FloatArray, Grid

# Band half-width in robust standard deviations of the cell's heights, and its floor in metres.
K = 6.0
MIN_M = 1.0
# Sampled points a reference cell needs before it filters anything.
MIN_SAMPLES = 8
# Reference cells hold about this many sampled points (and are at least CELL_MIN_M wide).
SAMPLES_PER_CELL = 12
CELL_MIN_M = 5.0


def _group_medians(idx: np.ndarray, values: FloatArray, size: int) -> FloatArray:
    """Median of ``values`` per group ``idx`` in ``range(size)`` (NaN for empty groups)."""
    order = np.lexsort((values, idx))
    counts = np.bincount(idx, minlength=size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_values = values[order]
    out = np.full(size, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = 0.5 * (sorted_values[lo] + sorted_values[hi])
    return out


@dataclass(frozen=True)
class Reference:
    grid: Grid
    median: FloatArray  # per flat cell, NaN where the cell filters nothing
    limit: FloatArray  # per flat cell, metres

    @classmethod
    def from_sample(cls, xyz: FloatArray, lo: FloatArray, hi: FloatArray) -> Reference:
        area = float(np.prod(np.maximum(hi - lo, 1.0)))
        cell = max(CELL_MIN_M, math.sqrt(SAMPLES_PER_CELL * area / max(len(xyz), 1)))
        grid = Grid.covering(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]), cell)
        idx = grid.flat_index(xyz)
        ok = idx >= 0
        idx, z = idx[ok], xyz[ok, 2]
        median = _group_medians(idx, z, grid.size)
        mad = _group_medians(idx, np.abs(z - median[idx]), grid.size)
        few = np.bincount(idx, minlength=grid.size) < MIN_SAMPLES
        median[few] = np.nan
        return cls(grid, median, np.maximum(K * 1.4826 * mad, MIN_M))

    def keep(self, xyz: FloatArray) -> BoolArray:
        """Which points are within their cell's band (points off the grid are kept)."""
        idx = self.grid.flat_index(xyz)
        inside = idx >= 0
        safe = np.where(inside, idx, 0)
        off = np.abs(xyz[:, 2] - self.median[safe]) > self.limit[safe]
        # NaN medians compare False: cells with too few samples keep everything.
        return ~(inside & off)
