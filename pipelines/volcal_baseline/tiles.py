"""Plan-view tiles with a halo, and the scratch files that hold each tile's points.

M3C2 at a core point reads the points within its normal radius (a sphere) and within its
cylinder (radius ``r``, half-length ``max_change_m`` along the normal). Every such point lies
within ``max(normal_radius, r + max_change_m)`` of the core point in plan view, so a tile that
holds its own points plus a halo of that width answers every core point inside it exactly as
the whole cloud would: memory follows the tile, not the survey.

Points are written once, while streaming, into the files of every tile whose halo-grown box
holds them (a point near a corner goes to up to four tiles), as float32 offsets from the tile's
corner: sub-millimetre at any tile size used here, and half the bytes of float64.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .grid import FloatArray, IntArray

_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class Tiling:
    """``nx`` x ``ny`` square tiles of side ``size`` from ``(x0, y0)``, each read with ``halo``
    metres of its neighbours around it."""

    x0: float
    y0: float
    size: float
    halo: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, lo: FloatArray, hi: FloatArray, size: float, halo: float) -> Tiling:
        # A halo wider than a tile would need more than the eight neighbours.
        size = max(size, halo, 1.0)
        nx = max(1, math.ceil(float(hi[0] - lo[0]) / size))
        ny = max(1, math.ceil(float(hi[1] - lo[1]) / size))
        return cls(float(lo[0]), float(lo[1]), size, halo, nx, ny)

    @property
    def count(self) -> int:
        return self.nx * self.ny

    def corner(self, tile: int) -> tuple[float, float]:
        row, col = divmod(tile, self.nx)
        return self.x0 + col * self.size, self.y0 + row * self.size

    def home(self, xy: FloatArray) -> IntArray:
        """The tile each point belongs to (points beyond the edges go to the edge tiles)."""
        col = np.clip(np.floor((xy[:, 0] - self.x0) / self.size), 0, self.nx - 1).astype(np.int64)
        row = np.clip(np.floor((xy[:, 1] - self.y0) / self.size), 0, self.ny - 1).astype(np.int64)
        return row * self.nx + col

    def assign(self, xy: FloatArray) -> tuple[IntArray, IntArray]:
        """(tile, point index) pairs: each point's home tile and every neighbour whose halo
        reaches it."""
        fx = (xy[:, 0] - self.x0) / self.size
        fy = (xy[:, 1] - self.y0) / self.size
        col = np.clip(np.floor(fx), 0, self.nx - 1).astype(np.int64)
        row = np.clip(np.floor(fy), 0, self.ny - 1).astype(np.int64)
        reach = self.halo / self.size
        # Offsets of -1, 0 or +1 tile per axis that the point's halo neighbours sit at.
        dx = [(0, np.ones(len(xy), dtype=bool)), (-1, fx - col < reach), (1, col + 1 - fx < reach)]
        dy = [(0, np.ones(len(xy), dtype=bool)), (-1, fy - row < reach), (1, row + 1 - fy < reach)]
        tiles, points = [], []
        for ox, mx in dx:
            for oy, my in dy:
                c, r = col + ox, row + oy
                take = mx & my & (c >= 0) & (c < self.nx) & (r >= 0) & (r < self.ny)
                idx = np.flatnonzero(take)
                tiles.append(r[idx] * self.nx + c[idx])
                points.append(idx)
        return np.concatenate(tiles), np.concatenate(points)


class Spill:
    """Per epoch and tile, an append-only file of float32 (x, y, z) offsets from the tile's
    corner, under ``root`` (removed by ``close``)."""

    def __init__(self, root: Path, tiling: Tiling, epochs: tuple[str, ...]) -> None:
        self.root = root
        self.tiling = tiling
        root.mkdir(parents=True, exist_ok=True)
        for epoch in epochs:
            (root / epoch).mkdir(exist_ok=True)
        self.counts = {e: np.zeros(tiling.count, dtype=np.int64) for e in epochs}

    def _path(self, epoch: str, tile: int) -> Path:
        return self.root / epoch / f"{tile}.f32"

    def add(self, epoch: str, xyz: FloatArray) -> None:
        tiles, idx = self.tiling.assign(xyz)
        order = np.argsort(tiles, kind="stable")
        tiles, idx = tiles[order], idx[order]
        bounds = np.flatnonzero(np.diff(tiles)) + 1
        for part in np.split(np.arange(len(tiles)), bounds):
            if not len(part):
                continue
            tile = int(tiles[part[0]])
            x0, y0 = self.tiling.corner(tile)
            rel = xyz[idx[part]] - np.array([x0, y0, 0.0])
            with self._path(epoch, tile).open("ab") as fh:
                fh.write(rel.astype(_DTYPE).tobytes())
            self.counts[epoch][tile] += len(part)

    def load(self, epoch: str, tile: int) -> FloatArray:
        """The tile's points with its halo, as float64 local coordinates."""
        path = self._path(epoch, tile)
        if not path.exists():
            return np.empty((0, 3))
        rel = np.fromfile(path, dtype=_DTYPE).reshape(-1, 3).astype(np.float64)
        x0, y0 = self.tiling.corner(tile)
        rel[:, 0] += x0
        rel[:, 1] += y0
        return rel

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
