"""The first pass over each epoch: a uniform random subsample, drawn while streaming.

Registration, the density estimate and the grids' extents need a few million points, not the
survey: each point is kept with the same probability, so the subsample has the survey's
spatial distribution and memory holds only the subsample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import io
from .classes import Classes
from .grid import FloatArray


@dataclass(frozen=True)
class Sample:
    points: FloatArray  # (m, 3) local coordinates
    classification: NDArray[np.uint8]  # (m,) ASPRS class of each
    histogram: NDArray[np.int64]  # (256,) points per class in the whole file

    @property
    def total(self) -> int:
        return int(self.histogram.sum())

    def of(self, classes: Classes) -> tuple[FloatArray, float]:
        """The sampled points of ``classes``, and the share of the file's points of those
        classes that they are."""
        chosen = sorted(classes)
        keep = np.isin(self.classification, chosen)
        return self.points[keep], int(keep.sum()) / max(int(self.histogram[chosen].sum()), 1)


def draw(
    header: io.CloudHeader, origin: FloatArray, budget: int, rng: np.random.Generator
) -> Sample:
    """About ``budget`` points of the cloud, each kept with probability budget / count (all of
    them when the cloud is smaller), and the count of every class."""
    keep = min(1.0, budget / header.point_count)
    parts, classes = [], []
    histogram = np.zeros(256, dtype=np.int64)
    for chunk in io.chunks(header, origin):
        histogram += np.bincount(chunk.classification, minlength=256)
        if keep < 1.0:
            chosen = rng.random(len(chunk.xyz)) < keep
            parts.append(chunk.xyz[chosen])
            classes.append(chunk.classification[chosen])
        else:
            parts.append(chunk.xyz)
            classes.append(chunk.classification)
    return Sample(np.concatenate(parts), np.concatenate(classes), histogram)
