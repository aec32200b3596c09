"""End to end through the command line on a small synthetic survey (150 k + 120 k points,
3 cm noise, 1 m / 1 deg misalignment, LAS format 1 and LAZ format 6 at UTM coordinates)."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import rasterio
import shapely
from pyproj import CRS

ROOT = Path(__file__).resolve().parents[4]


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.volcal_baseline", *(str(a) for a in args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
    )


Proc = subprocess.CompletedProcess[str]


def run_on(
    survey: Path,
    out: Path,
    *extra: str | Path,
    pre: Path | None = None,
    post: Path | None = None,
    stable: Path | None = None,
) -> Proc:
    return cli(
        "--pre",
        pre or survey / "pre.las",
        "--post",
        post or survey / "post.laz",
        "--stable",
        stable or survey / "stable.shp",
        "--out",
        out,
        *extra,
    )


def assert_input_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, last


@pytest.fixture(scope="module")
def result(survey: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("out")
    params = out / "params.json"
    params.write_text(json.dumps({"seed": 0}))
    proc = run_on(survey, out, "--params", params)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "report.json").read_text())


def test_volumes_match_analytic_truth(result: tuple[Path, Any], truth: dict[str, Any]) -> None:
    _, report = result
    assert report["region_count"] == len(truth["features"])
    for f in truth["features"]:
        region = min(
            report["regions"],
            key=lambda r: math.hypot(r["centroid_x"] - f["cx"], r["centroid_y"] - f["cy"]),
        )
        assert math.hypot(region["centroid_x"] - f["cx"], region["centroid_y"] - f["cy"]) < 3.0
        # A small, sparse survey (3-4 points/m2): 1.5 % here; the benchmark checks the targets.
        assert region["net_m3"] == pytest.approx(f["net_m3"], rel=0.015)
    assert report["cut_volume_m3"] == pytest.approx(truth["cut_volume_m3"], rel=0.015)
    assert report["fill_volume_m3"] == pytest.approx(truth["fill_volume_m3"], rel=0.015)
    assert report["net_volume_m3"] == pytest.approx(
        report["fill_volume_m3"] - report["cut_volume_m3"], abs=0.01
    )


def test_registration_recovers_the_misalignment(
    result: tuple[Path, Any], truth: dict[str, Any]
) -> None:
    _, report = result
    reg = report["registration"]
    assert reg["converged"] and reg["rmse_m"] < 0.1 and reg["iterations"] >= 1
    err = np.array(reg["transform"]) @ np.array(truth["misalignment"])
    assert np.allclose(err[:3, :3], np.eye(3), atol=1e-4)
    # The residual transform moves a point in the middle of the site by under 2 cm.
    centre = np.array([500_100.0, 5_000_100.0, 250.0])
    assert np.linalg.norm(err[:3, :3] @ centre + err[:3, 3] - centre) < 0.02


def test_report_has_everything_promised(result: tuple[Path, Any]) -> None:
    _, report = result
    for key in (
        "cut_volume_m3",
        "fill_volume_m3",
        "net_volume_m3",
        "level_of_detection_m",
        "point_counts",
        "parameters",
        "timings_s",
        "registration",
    ):
        assert key in report
    assert report["point_counts"] == {"pre": 150_000, "post": 120_000}
    assert 0.0 < report["level_of_detection_m"] < 0.1
    assert report["parameters"]["seed"] == 0
    assert {"read", "registration", "change_detection", "total"} <= set(report["timings_s"])
    assert np.array(report["registration"]["transform"]).shape == (4, 4)


def test_csv_and_pictures(result: tuple[Path, Any]) -> None:
    out, report = result
    with (out / "volumes.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "id",
        "area_m2",
        "cut_m3",
        "fill_m3",
        "net_m3",
        "centroid_x",
        "centroid_y",
    ]
    assert len(rows) == report["region_count"]
    assert float(rows[0]["centroid_x"]) > 400_000  # world coordinates, not local
    for name in ["change_map.png", *(f"region_{r['id']}.png" for r in report["regions"])]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_not_a_point_cloud(survey: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "pre.las"
    bogus.write_text("x,y,z\n1,2,3\n")
    assert_input_error(
        run_on(survey, tmp_path / "o", pre=bogus), "input 'pre' is not a LAS/LAZ file"
    )


def test_empty_cloud(survey: Path, tmp_path: Path) -> None:
    empty = tmp_path / "post.las"
    laspy.LasData(laspy.LasHeader(point_format=3, version="1.2")).write(str(empty))
    assert_input_error(run_on(survey, tmp_path / "o", post=empty), "input 'post' has no points")


def test_truncated_laz(survey: Path, tmp_path: Path) -> None:
    cut = tmp_path / "post.laz"
    data = (survey / "post.laz").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert_input_error(run_on(survey, tmp_path / "o", post=cut), "input 'post'")


def _copy_shapefile(survey: Path, dest: Path, skip: str = "") -> Path:
    dest.mkdir()
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        if ext != skip:
            shutil.copy(survey / f"stable{ext}", dest / f"stable{ext}")
    return dest / "stable.shp"


def test_missing_shx(survey: Path, tmp_path: Path) -> None:
    shp = _copy_shapefile(survey, tmp_path / "s", skip=".shx")
    assert_input_error(run_on(survey, tmp_path / "o", stable=shp), ".shx")


def test_stable_polygons_that_miss_the_cloud(survey: Path, tmp_path: Path) -> None:
    from shapely.geometry import Polygon

    from pipelines.volcal_baseline.synthetic import write_shapefile

    far = tmp_path / "far"
    far.mkdir()
    write_shapefile(
        far / "stable",
        [Polygon([(0, 0), (50, 0), (50, 50), (0, 50)])],
        (600_000.0, 5_100_000.0, 0.0),
    )
    assert_input_error(
        run_on(survey, tmp_path / "o", stable=far / "stable.shp"), "stable-area polygons miss"
    )


def test_no_overlap_between_epochs(survey: Path, tmp_path: Path) -> None:
    las = laspy.read(str(survey / "post.laz"))
    las.header.offsets = las.header.offsets + np.array([5_000.0, 0.0, 0.0])
    las.x = las.x + 5_000.0
    moved = tmp_path / "post.laz"
    las.write(str(moved))
    assert_input_error(run_on(survey, tmp_path / "o", post=moved), "no overlap")


def _turned(survey: Path, dest: Path, deg: float) -> Path:
    """The 'post' survey turned by a further ``deg`` about its centre."""
    las = laspy.read(str(survey / "post.laz"))
    x, y = np.asarray(las.x), np.asarray(las.y)
    cx, cy, a = float(x.mean()), float(y.mean()), math.radians(deg)
    las.x = cx + (x - cx) * math.cos(a) - (y - cy) * math.sin(a)
    las.y = cy + (x - cx) * math.sin(a) + (y - cy) * math.cos(a)
    las.write(str(dest))
    return dest


def test_registration_that_does_not_converge_in_the_iteration_limit(
    survey: Path, tmp_path: Path
) -> None:
    # Without the coarse heading search, ICP has to undo a 6 deg turn: more than 5 iterations.
    post = _turned(survey, tmp_path / "post.laz", 6.0)
    assert_input_error(
        run_on(
            survey,
            tmp_path / "o",
            "--max-icp-iterations",
            "5",
            "--max-rotation-deg",
            "0",
            post=post,
        ),
        "registration did not converge in 5 ICP iterations",
    )


def test_registration_rmse_above_the_limit(survey: Path, tmp_path: Path) -> None:
    assert_input_error(
        run_on(survey, tmp_path / "o", "--max-registration-rmse-m", "0.005"),
        "registration did not converge",
    )


def test_bad_parameter(survey: Path, tmp_path: Path) -> None:
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"lod_quantile": 7}))
    assert_input_error(run_on(survey, tmp_path / "o", "--params", params), "lod_quantile")


def test_geographic_prj_is_refused(survey: Path, tmp_path: Path) -> None:
    shp = _copy_shapefile(survey, tmp_path / "s")
    shp.with_suffix(".prj").write_text('GEOGCS["WGS 84",DATUM["WGS_1984"]]')
    assert_input_error(run_on(survey, tmp_path / "o", stable=shp), "geographic")


def test_dod_geotiff_reads_back_in_the_surveys_crs(
    result: tuple[Path, Any], truth: dict[str, Any]
) -> None:
    out, report = result
    assert report["crs"]["epsg"] == 32633
    with rasterio.open(out / "dod.tif") as dod:
        assert dod.crs.to_epsg() == 32633
        assert (dod.width, dod.height) == (report["grid"]["nx"], report["grid"]["ny"])
        cell = report["grid"]["resolution_m"]
        assert dod.res == pytest.approx((cell, cell), rel=1e-3)
        band = dod.read(1)
        # Height change at each feature's centre, looked up by world coordinates: the
        # geotransform places it (a dome or frustum's full height there, less noise).
        for f in truth["features"]:
            row, col = dod.index(f["cx"], f["cy"])
            sign = -1.0 if f["kind"] == "pit" else 1.0
            assert band[row, col] == pytest.approx(sign * f["height"], abs=0.15)
        assert np.isnan(band).any() and np.isfinite(band).mean() > 0.8


def test_regions_geopackage_holds_each_region_with_its_volumes(
    result: tuple[Path, Any], truth: dict[str, Any]
) -> None:
    out, report = result
    info = pyogrio.read_info(out / "regions.gpkg")
    assert info["crs"] == "EPSG:32633" and info["geometry_type"] == "MultiPolygon"
    _, _, geometry, fields = pyogrio.raw.read(out / "regions.gpkg")
    names = list(info["fields"])
    rows = [dict(zip(names, values, strict=True)) for values in zip(*fields, strict=True)]
    assert len(rows) == report["region_count"] == len(geometry)
    shapes = shapely.from_wkb(geometry)
    for got, want, shape in zip(rows, report["regions"], shapes, strict=True):
        assert got["id"] == want["id"]
        for key in ("area_m2", "cut_m3", "fill_m3", "net_m3"):
            assert got[key] == pytest.approx(want[key], abs=0.01)
        assert shape.area == pytest.approx(want["area_m2"], rel=1e-6)
    for f in truth["features"]:
        assert sum(shapely.contains_xy(s, f["cx"], f["cy"]) for s in shapes) == 1


def test_pdf_report_states_totals_regions_and_quality(result: tuple[Path, Any]) -> None:
    out, report = result
    text = subprocess.run(
        ["pdftotext", "-layout", str(out / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Excavation volumes" in text
    assert "WGS 84 / UTM zone 33N" in text
    for key in ("cut_volume_m3", "fill_volume_m3", "net_volume_m3"):
        assert f"{report[key]:,.0f} m³" in text
    for r in report["regions"]:
        assert f"{r['net_m3']:,.0f} m³" in text
    assert f"RMSE {report['registration']['rmse_m']:.3f} m" in text
    assert f"Level of detection: {report['level_of_detection_m']:.3f} m" in text


def _with_crs(src: Path, dest: Path, epsg: int) -> Path:
    las = laspy.read(str(src))
    header = laspy.LasHeader(point_format=las.header.point_format.id, version="1.4")
    header.offsets, header.scales = las.header.offsets, las.header.scales
    header.add_crs(CRS.from_epsg(epsg))
    out = laspy.LasData(header)
    out.x, out.y, out.z = las.x, las.y, las.z
    out.write(str(dest))
    return dest


def test_epochs_in_different_crss_are_refused(survey: Path, tmp_path: Path) -> None:
    post = _with_crs(survey / "post.laz", tmp_path / "post.las", 32634)
    assert_input_error(
        run_on(survey, tmp_path / "o", post=post),
        "CRS mismatch: 'pre' is WGS 84 / UTM zone 33N (EPSG:32633), "
        "'post' is WGS 84 / UTM zone 34N (EPSG:32634)",
    )


def test_a_prj_that_disagrees_with_the_clouds_is_refused(survey: Path, tmp_path: Path) -> None:
    shp = _copy_shapefile(survey, tmp_path / "s")
    shp.with_suffix(".prj").write_text(CRS.from_epsg(25833).to_wkt())
    assert_input_error(
        run_on(survey, tmp_path / "o", stable=shp),
        "CRS mismatch: 'post' is WGS 84 / UTM zone 33N (EPSG:32633), "
        "the stable-area .prj is ETRS89 / UTM zone 33N (EPSG:25833)",
    )


def _measured(survey: Path, out: Path, *extra: str) -> tuple[dict[str, Any], list[Any]]:
    """Run; check the region at each feature against the truth (1.5 %); return the report and
    the regions at no feature."""
    proc = run_on(survey, out, *extra)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    truth = json.loads((survey / "truth.json").read_text())
    matched = []
    for f in truth["features"]:
        region = min(
            report["regions"],
            key=lambda r: math.hypot(r["centroid_x"] - f["cx"], r["centroid_y"] - f["cy"]),
        )
        assert region["net_m3"] == pytest.approx(f["net_m3"], rel=0.015)
        matched.append(region)
    return report, [r for r in report["regions"] if r not in matched]


def test_birds_and_noise_are_filtered_out(noisy: Path, tmp_path: Path) -> None:
    report, others = _measured(noisy, tmp_path / "o")
    assert others == []
    # 0.5 % of 150,000 points were made outliers: about 750, all but the few that noise
    # leaves within a metre of the ground.
    assert 650 <= report["points"]["pre"]["outliers"] <= 800
    assert report["points"]["pre"]["used"] + report["points"]["pre"]["outliers"] == 150_000
    assert report["outlier_filter"]["enabled"] is True


def test_without_the_filter_birds_wreck_the_registration(noisy: Path, tmp_path: Path) -> None:
    assert_input_error(
        run_on(noisy, tmp_path / "o", "--outlier-filter", "false"),
        "registration did not converge",
    )


def test_classified_clouds_measure_ground_points_only(cluttered: Path, tmp_path: Path) -> None:
    report, others = _measured(cluttered, tmp_path / "o")
    # The trucks are class 1: left out, they leave no region of any size behind.
    assert all(abs(r["net_m3"]) < 1.0 for r in others)
    assert report["points"]["pre"]["classes"] == "2"
    assert report["points"]["pre"]["other_classes"] > 0


def test_every_class_counts_the_trucks_as_change(cluttered: Path, tmp_path: Path) -> None:
    report, others = _measured(cluttered, tmp_path / "o", "--ground-classes", "all")
    # A truck is 10 m x 4 m x 4 m: 160 m3 of fill where it parked, of cut where it left.
    trucks = [r for r in others if 50 < abs(r["net_m3"]) < 300]
    assert len(trucks) >= 12
    assert report["points"]["pre"]["classes"] == "all"


def test_classes_nobody_has_are_refused(cluttered: Path, tmp_path: Path) -> None:
    assert_input_error(
        run_on(cluttered, tmp_path / "o", "--ground-classes", "9"),
        "input 'pre' has no points of classes 9 (ground_classes)",
    )
    assert_input_error(
        run_on(cluttered, tmp_path / "o", "--ground-classes", "ground"),
        "parameter 'ground_classes' must be 'auto', 'all' or class codes",
    )
