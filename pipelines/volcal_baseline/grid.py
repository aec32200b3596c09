"""A regular plan-view grid and the rasterisation helpers shared by every stage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Grid:
    """Cells of side ``cell`` whose lower-left corner is ``(x0, y0)``; arrays are ``[row, col]``
    with row growing with y."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, xmin: float, ymin: float, xmax: float, ymax: float, cell: float) -> Grid:
        nx = max(1, math.ceil((xmax - xmin) / cell) + 1)
        ny = max(1, math.ceil((ymax - ymin) / cell) + 1)
        return cls(xmin, ymin, cell, nx, ny)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    @property
    def size(self) -> int:
        return self.nx * self.ny

    def coarsened(self, factor: int) -> Grid:
        """The grid whose cells are ``factor`` x ``factor`` blocks of this one."""
        return Grid(self.x0, self.y0, self.cell * factor,
                    -(-self.nx // factor), -(-self.ny // factor))

    def flat_index(self, xy: FloatArray) -> IntArray:
        """Flat cell index per point, -1 for points outside the grid."""
        col = np.floor((xy[:, 0] - self.x0) / self.cell).astype(np.int64)
        row = np.floor((xy[:, 1] - self.y0) / self.cell).astype(np.int64)
        inside = (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
        return np.where(inside, row * self.nx + col, -1)

    def centres(self) -> tuple[FloatArray, FloatArray]:
        """Cell-centre coordinates as two ``shape`` arrays (x, y)."""
        xs = self.x0 + (np.arange(self.nx) + 0.5) * self.cell
        ys = self.y0 + (np.arange(self.ny) + 0.5) * self.cell
        gx, gy = np.meshgrid(xs, ys)
        return gx, gy

    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) for matplotlib's imshow."""
        return (self.x0, self.x0 + self.nx * self.cell, self.y0, self.y0 + self.ny * self.cell)


def cell_means(grid: Grid, xyz: FloatArray, chunk: int = 2_000_000) -> tuple[FloatArray, IntArray]:
    """Mean z and point count per cell (NaN where empty).

    With points sampled uniformly over a cell, the mean z estimates the cell's mean surface height
    without bias, so summing (mean z x cell area) integrates the surface. Chunked so that the
    temporary index arrays stay small whatever the cloud size.
    """
    sums = np.zeros(grid.size)
    counts = np.zeros(grid.size, dtype=np.int64)
    for start in range(0, len(xyz), chunk):
        part = xyz[start:start + chunk]
        idx = grid.flat_index(part)
        ok = idx >= 0
        sums += np.bincount(idx[ok], weights=part[ok, 2], minlength=grid.size)
        counts += np.bincount(idx[ok], minlength=grid.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means.reshape(grid.shape), counts.reshape(grid.shape)


def fill_holes(values: FloatArray, max_gap_cells: int = 2) -> tuple[FloatArray, BoolArray]:
    """Fill empty cells that lie within ``max_gap_cells`` of data with the nearest value.

    Random sampling leaves a few empty cells inside the data; those are filled. Cells further from
    data are outside the survey and stay NaN. Returns the filled array and its coverage mask.
    """
    valid = np.isfinite(values)
    if not valid.any():
        return values.copy(), valid
    dist, (ri, ci) = ndimage.distance_transform_edt(~valid, return_indices=True)
    # A cell enclosed by data on most sides is a sampling gap, not the edge of the survey.
    near = ndimage.uniform_filter(valid.astype(np.float64), size=3, mode="constant") >= 0.5
    covered = valid | ((dist <= max_gap_cells) & near)
    filled = np.where(covered, values[ri, ci], np.nan)
    return filled, covered
