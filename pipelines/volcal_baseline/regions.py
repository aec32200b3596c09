"""Segmenting significant change into regions and growing them into volume footprints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .change import Change
from .grid import BoolArray, Grid, IntArray

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Regions:
    grid: Grid  # the DEM grid
    label: IntArray  # per DEM cell: 0 outside any region, else region id (1..count)
    sign: IntArray  # per DEM cell: -1 cut side, +1 fill side, 0 outside
    count: int
    truncated: BoolArray  # per region id (index 0 unused): footprint reaches the data's edge


def segment(
    change: Change,
    dem_grid: Grid,
    factor: int,
    domain: BoolArray,
    stable: BoolArray,
    min_area_m2: float,
    buffer_m: float,
) -> Regions:
    """Connected components of significant change, then every DEM cell within ``buffer_m`` of
    a component joins it.

    The buffer matters for accuracy: a pit's rim deepens smoothly from zero, so its outer ring
    lies below the level of detection yet holds real volume. Summing the (unthresholded) height
    difference over the grown footprint counts that ring; the noise it adds is zero-mean.
    Each grown cell takes the cut/fill side of its nearest significant cell, not of its own
    noisy value, so noise does not bias cut or fill either.
    """
    cgrid = change.grid
    sig = np.zeros(cgrid.size, dtype=bool)
    sig[change.cell[change.significant]] = True
    side = np.zeros(cgrid.size, dtype=np.int8)
    side[change.cell] = np.sign(np.nan_to_num(change.distance)).astype(np.int8)
    sig = sig.reshape(cgrid.shape)
    side = side.reshape(cgrid.shape)

    comp, n = ndimage.label(sig, structure=_EIGHT)
    sizes = np.bincount(comp.ravel(), minlength=n + 1) * cgrid.cell**2
    keep = sizes >= max(min_area_m2, 1e-9)
    keep[0] = False
    # Largest region first, so that ids read in order of importance.
    order = [i for i in np.argsort(-sizes) if keep[i]]
    relabel = np.zeros(n + 1, dtype=np.int64)
    relabel[order] = np.arange(1, len(order) + 1)
    comp = relabel[comp]

    # Up to the DEM grid: core cell (r, c) covers DEM cells (r*f..r*f+f-1, c*f..).
    rows = np.arange(dem_grid.ny) // factor
    cols = np.arange(dem_grid.nx) // factor
    seed_label = comp[np.ix_(rows, cols)]
    seed_side = side[np.ix_(rows, cols)]
    if not len(order):
        zeros = np.zeros(dem_grid.shape, dtype=np.int64)
        return Regions(dem_grid, zeros, zeros, 0, np.zeros(1, dtype=bool))

    dist, (ri, ci) = ndimage.distance_transform_edt(
        seed_label == 0, return_indices=True, sampling=dem_grid.cell
    )
    grown = (dist <= buffer_m) & domain & ~stable
    label = np.where(grown, seed_label[ri, ci], 0)
    sign = np.where(grown, seed_side[ri, ci], 0).astype(np.int64)
    # A footprint touching cells without data from both epochs is missing part of its volume.
    edge = ndimage.binary_dilation(~domain, structure=_EIGHT, border_value=1)
    truncated = np.zeros(len(order) + 1, dtype=bool)
    truncated[np.unique(label[edge & (label > 0)])] = True
    truncated[0] = False
    return Regions(dem_grid, label, sign, len(order), truncated)
