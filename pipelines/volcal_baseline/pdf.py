"""The one-page PDF for the mine manager: totals, the map, a table per region, and how far the
numbers can be trusted (registration quality and the level of detection)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages

from .plots import Scene, draw_change_map

# Regions listed on the page; the rest are in volumes.csv and regions.gpkg.
TABLE_ROWS = 12
_A4 = (8.27, 11.69)


def _m3(v: float) -> str:
    return f"{v:,.0f} m³" if abs(v) >= 100 else f"{v:,.1f} m³"


def write(path: Path, doc: Mapping[str, Any], scene: Scene) -> None:
    # TrueType fonts keep the text selectable and extractable (pdftotext, search, copy).
    with plt.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        fig = plt.figure(figsize=_A4)
        inputs = doc["inputs"]
        fig.text(0.06, 0.965, "Excavation volumes", fontsize=18, fontweight="bold")
        crs = doc.get("crs") or {}
        fig.text(
            0.06,
            0.945,
            f"{inputs['pre']['file']} (pre) → {inputs['post']['file']} (post)   ·   "
            f"CRS {crs.get('name', 'not given')}",
            fontsize=9,
        )
        for i, (label, key) in enumerate(
            (("Cut", "cut_volume_m3"), ("Fill", "fill_volume_m3"), ("Net", "net_volume_m3"))
        ):
            x = 0.06 + 0.31 * i
            fig.text(x, 0.915, label, fontsize=10, color="#555555")
            fig.text(x, 0.89, _m3(doc[key]), fontsize=16, fontweight="bold")

        ax = fig.add_axes((0.1, 0.47, 0.8, 0.40))
        draw_change_map(fig, ax, scene, title=False)
        volumes = scene.volumes

        shown = list(volumes[:TABLE_ROWS])
        rows = [
            [str(v.id), f"{v.area_m2:,.0f}", _m3(v.cut_m3), _m3(v.fill_m3), _m3(v.net_m3)]
            for v in shown
        ]
        tab = fig.add_axes((0.06, 0.13, 0.88, 0.24))
        tab.axis("off")
        if rows:
            table = tab.table(
                cellText=rows,
                colLabels=["Region", "Area (m²)", "Cut", "Fill", "Net"],
                loc="upper center",
                cellLoc="right",
            )
            table.auto_set_font_size(False)
            table.set_fontsize(8)
        else:
            tab.text(0.5, 0.8, "No significant change.", ha="center", fontsize=11)
        more = len(volumes) - len(shown)
        if more > 0:
            tab.text(0.0, -0.05, f"and {more} smaller regions: see volumes.csv", fontsize=8)

        reg = doc["registration"]
        cd = doc["change_detection"]
        lines = [
            f"Registration on stable areas: RMSE {reg['rmse_m']:.3f} m, "
            f"{100 * reg['inlier_fraction']:.0f} % inliers, {reg['iterations']} ICP iterations.",
            f"Level of detection: {doc['level_of_detection_m']:.3f} m "
            f"(the {cd['lod_quantile']} quantile of |M3C2 distance| on stable areas); "
            "changes smaller than this are not reported as regions.",
            f"DEM cell {doc['grid']['resolution_m']:.2f} m; points: "
            f"{doc['point_counts']['pre']:,} (pre), {doc['point_counts']['post']:,} (post).",
            *(f"Warning: {w}" for w in doc["warnings"][:3]),
        ]
        fig.text(0.06, 0.11, "\n".join(lines), fontsize=8, va="top", linespacing=1.6)
        pdf.savefig(fig)
        plt.close(fig)
