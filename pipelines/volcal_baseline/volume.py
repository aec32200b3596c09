"""Cut and fill per region from the two epochs' DEMs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import FloatArray
from .regions import Regions


@dataclass(frozen=True)
class RegionVolume:
    id: int
    area_m2: float
    cut_m3: float  # positive
    fill_m3: float
    net_m3: float  # fill - cut
    centroid_x: float  # local coordinates
    centroid_y: float
    max_cut_m: float
    max_fill_m: float
    truncated: bool


def region_volumes(regions: Regions, diff: FloatArray) -> list[RegionVolume]:
    """Sum the height difference (post - pre, NaN-free inside regions) over each footprint."""
    grid = regions.grid
    lab = regions.label.ravel()
    d = np.nan_to_num(diff.ravel())
    sign = regions.sign.ravel()
    n = regions.count + 1
    cell_area = grid.cell**2
    cells = np.bincount(lab, minlength=n)
    cut = -np.bincount(lab, weights=np.where(sign < 0, d, 0.0), minlength=n) * cell_area
    fill = np.bincount(lab, weights=np.where(sign > 0, d, 0.0), minlength=n) * cell_area
    gx, gy = grid.centres()
    cx = np.bincount(lab, weights=gx.ravel(), minlength=n) / np.maximum(cells, 1)
    cy = np.bincount(lab, weights=gy.ravel(), minlength=n) / np.maximum(cells, 1)
    lo = np.full(n, 0.0)
    hi = np.full(n, 0.0)
    np.minimum.at(lo, lab, d)
    np.maximum.at(hi, lab, d)
    # "+ 0.0" turns the -0.0 of an empty cut sum into 0.0 for the reports.
    return [
        RegionVolume(
            i,
            float(cells[i] * cell_area),
            float(cut[i]) + 0.0,
            float(fill[i]) + 0.0,
            float(fill[i] - cut[i]) + 0.0,
            float(cx[i]),
            float(cy[i]),
            float(-lo[i]) + 0.0,
            float(hi[i]) + 0.0,
            bool(regions.truncated[i]),
        )
        for i in range(1, n)
    ]
