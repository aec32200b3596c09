"""The first pass over each epoch: a uniform random subsample, drawn while streaming.

Registration, the density estimate and the grids' extents need a few million points, not the
survey: each point is kept with the same probability, so the subsample has the survey's
spatial distribution and memory holds only the subsample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import io
from .grid import FloatArray


@dataclass(frozen=True)
class Sample:
    points: FloatArray  # (m, 3) local coordinates
    total: int  # points in the file

    @property
    def fraction(self) -> float:
        """The share of the survey's points kept (1.0: all of them)."""
        return len(self.points) / self.total


def draw(
    header: io.CloudHeader, origin: FloatArray, budget: int, rng: np.random.Generator
) -> Sample:
    """About ``budget`` points of the cloud, each kept with probability budget / count (all of
    them when the cloud is smaller)."""
    keep = min(1.0, budget / header.point_count)
    parts = []
    for xyz in io.chunks(header, origin):
        parts.append(xyz if keep >= 1.0 else xyz[rng.random(len(xyz)) < keep])
    return Sample(np.concatenate(parts), header.point_count)
