"""Which points measure the ground: ASPRS classification codes chosen by the
``ground_classes`` parameter.

- ``auto`` (default): ground (class 2) in an epoch that has ground points; otherwise every point
  but the noise classes (7, low point; 18, high noise). Vegetation, buildings and machinery
  left in a classified cloud would otherwise count as fill.
- ``all``: every point, whatever its class.
- a comma-separated list of codes, such as ``2`` or ``2,8``: those classes in both epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .errors import InputError

Classes = frozenset[int]

GROUND = 2
NOISE = frozenset({7, 18})
EVERY = frozenset(range(256))
UNCLASSIFIED_USE = EVERY - NOISE


def describe(classes: Classes) -> str:
    if classes == EVERY:
        return "all"
    if classes == UNCLASSIFIED_USE:
        return "all but noise (7, 18)"
    return ", ".join(str(c) for c in sorted(classes))


@dataclass(frozen=True)
class Choice:
    pre: Classes
    post: Classes
    warnings: list[str] = field(default_factory=list)

    def report(self) -> dict[str, str]:
        return {"pre": describe(self.pre), "post": describe(self.post)}


def _parse(value: str) -> Classes | str:
    text = value.strip().lower()
    if text in ("auto", "all"):
        return text
    try:
        codes = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        codes = frozenset()
    if not codes or any(not 0 <= c <= 255 for c in codes):
        raise InputError(
            f"parameter 'ground_classes' must be 'auto', 'all' or class codes 0-255 separated "
            f"by commas, got {value!r}"
        )
    return codes


def choose(value: str, pre: NDArray[np.int64], post: NDArray[np.int64]) -> Choice:
    """The classes each epoch contributes, from the parameter and each epoch's class counts."""
    rule = _parse(value)
    if rule == "all":
        return Choice(EVERY, EVERY)
    if rule == "auto":
        picked = {
            slot: frozenset({GROUND}) if hist[GROUND] > 0 else UNCLASSIFIED_USE
            for slot, hist in (("pre", pre), ("post", post))
        }
        warnings = []
        if picked["pre"] != picked["post"]:
            ground = "pre" if picked["pre"] == {GROUND} else "post"
            other = "post" if ground == "pre" else "pre"
            warnings.append(
                f"only '{ground}' has ground points (class 2): they are compared with every "
                f"point of '{other}' but noise; set ground_classes to choose"
            )
        return Choice(picked["pre"], picked["post"], warnings)
    assert isinstance(rule, frozenset)
    for slot, hist in (("pre", pre), ("post", post)):
        if int(hist[sorted(rule)].sum()) == 0:
            raise InputError(
                f"input '{slot}' has no points of classes {describe(rule)} (ground_classes)"
            )
    return Choice(rule, rule)
