"""Which points of an epoch the volumes use: its chosen classes, less the outliers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import io
from .classes import Classes
from .grid import FloatArray
from .outliers import Reference


@dataclass
class Selection:
    classes: Classes
    reference: Reference | None  # None: no outlier filter
    excluded: int = 0  # points of other classes
    outliers: int = 0
    used: int = 0
    _table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._table = np.zeros(256, dtype=bool)
        self._table[sorted(self.classes)] = True

    def __call__(self, chunk: io.Chunk) -> FloatArray:
        """The chunk's points that count, tallying what was left out and why."""
        chosen = self._table[chunk.classification]
        xyz = chunk.xyz[chosen] if not chosen.all() else chunk.xyz
        self.excluded += len(chunk.xyz) - len(xyz)
        if self.reference is not None and len(xyz):
            keep = self.reference.keep(xyz)
            self.outliers += len(xyz) - int(keep.sum())
            xyz = xyz[keep]
        self.used += len(xyz)
        return xyz

    def report(self) -> dict[str, int]:
        return {"used": self.used, "other_classes": self.excluded, "outliers": self.outliers}
