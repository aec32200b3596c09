"""report.json and volumes.csv."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from . import outliers
from .change import Change
from .classes import Choice
from .crs import SurveyCrs
from .grid import FloatArray
from .io import CloudHeader
from .registration import Registration
from .selection import Selection
from .volume import RegionVolume

CSV_COLUMNS = ("id", "area_m2", "cut_m3", "fill_m3", "net_m3", "centroid_x", "centroid_y")


def _world(transform: FloatArray, origin: FloatArray) -> FloatArray:
    """A local-coordinates transform re-expressed for the files' own coordinates."""
    shift = np.eye(4)
    shift[:3, 3] = origin
    return shift @ transform @ np.linalg.inv(shift)


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def build(
    *,
    volumes: Sequence[RegionVolume],
    origin: FloatArray,
    reg: Registration,
    change: Change,
    params: Mapping[str, Any],
    grid: Mapping[str, Any],
    m3c2: Mapping[str, Any],
    counts: Mapping[str, int],
    headers: Mapping[str, CloudHeader],
    timings: Mapping[str, float],
    crs: SurveyCrs,
    selection: Mapping[str, Selection],
    class_choice: Choice,
) -> dict[str, Any]:
    regions = []
    for v in volumes:
        d = asdict(v)
        d["centroid_x"] = v.centroid_x + float(origin[0])
        d["centroid_y"] = v.centroid_y + float(origin[1])
        regions.append({k: _r(x) if isinstance(x, float) else x for k, x in d.items()})
    warnings = [
        *crs.warnings,
        *class_choice.warnings,
        *(
            f"region {v.id} reaches the edge of the data; its volume may be incomplete"
            for v in volumes
            if v.truncated
        ),
    ]
    return {
        "pipeline": "volcal_baseline",
        "units": {
            "length": "m",
            "area": "m2",
            "volume": "m3",
            "sign": "cut and fill are positive; net = fill - cut",
        },
        "cut_volume_m3": _r(sum(v.cut_m3 for v in volumes)),
        "fill_volume_m3": _r(sum(v.fill_m3 for v in volumes)),
        "net_volume_m3": _r(sum(v.net_m3 for v in volumes)),
        "region_count": len(volumes),
        "regions": regions,
        "level_of_detection_m": _r(change.lod_m, 4),
        "registration": {
            "transform": _world(reg.transform, origin).tolist(),
            "transform_note": "4x4, maps the 'post' file's coordinates onto 'pre'",
            "coarse_transform": _world(reg.coarse, origin).tolist(),
            "rmse_m": _r(reg.rmse_m, 4),
            "iterations": reg.iterations,
            "converged": reg.converged,
            "inlier_fraction": _r(reg.inlier_fraction, 4),
            "source_points": reg.source_points,
            "target_points": reg.target_points,
        },
        "change_detection": {
            "method": "M3C2 (py4dgeo)",
            **{k: _r(x, 4) for k, x in m3c2.items()},
            "core_points": len(change.core),
            "significant_core_points": int(change.significant.sum()),
            "stable_core_points": change.stable_count,
            "stable_residual_mean_m": _r(change.stable_mean_m, 4),
            "stable_residual_std_m": _r(change.stable_std_m, 4),
            "lod_quantile": params["lod_quantile"],
        },
        "grid": {k: _r(x, 4) if isinstance(x, float) else x for k, x in grid.items()},
        "point_counts": dict(counts),
        "points": {
            slot: {"classes": class_choice.report()[slot], **sel.report()}
            for slot, sel in selection.items()
        },
        "outlier_filter": _outlier_filter(selection),
        "inputs": {
            slot: {
                "file": h.path.name,
                "points": h.point_count,
                "point_format": h.point_format,
                "las_version": h.version,
                "compressed": h.compressed,
            }
            for slot, h in headers.items()
        },
        "crs": crs.describe(),
        "local_origin": [float(x) for x in origin],
        "parameters": dict(params),
        "timings_s": dict(timings),
        "warnings": warnings,
    }


def _outlier_filter(selection: Mapping[str, Selection]) -> dict[str, Any]:
    refs = {slot: sel.reference for slot, sel in selection.items()}
    if any(ref is None for ref in refs.values()):
        return {"enabled": False}
    return {
        "enabled": True,
        "method": (
            f"per cell of each epoch's subsample, points further than max({outliers.K:g} x "
            f"1.4826 x MAD, {outliers.MIN_M:g} m) from the cell's median height are dropped"
        ),
        "cell_m": {slot: _r(ref.grid.cell, 2) for slot, ref in refs.items() if ref is not None},
    }


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n")


def write_csv(path: Path, volumes: Sequence[RegionVolume], origin: FloatArray) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for v in volumes:
            w.writerow(
                [
                    v.id,
                    f"{v.area_m2:.2f}",
                    f"{v.cut_m3:.3f}",
                    f"{v.fill_m3:.3f}",
                    f"{v.net_m3:.3f}",
                    f"{v.centroid_x + origin[0]:.3f}",
                    f"{v.centroid_y + origin[1]:.3f}",
                ]
            )
