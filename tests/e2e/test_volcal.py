"""volcal_baseline through the orchestrator: a synthetic survey uploaded with tus, run in its
container, results downloaded through presigned URLs and checked against the analytic truth."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from pipelines.volcal_baseline.synthetic import SurveyConfig, generate
from tests.e2e.client import Client
from tests.e2e.test_flow import download_results, tus_upload

SURVEY = SurveyConfig(
    points=150_000,
    post_points=120_000,
    size_m=200.0,
    noise_m=0.03,
    shift_m=1.0,
    rotation_deg=1.0,
    volumes=(1000.0, 3000.0, 900.0),
    seed=1,
)
FILES = {
    "pre": "pre.las",
    "post": "post.laz",
    "shp": "stable.shp",
    "shx": "stable.shx",
    "dbf": "stable.dbf",
    "prj": "stable.prj",
}


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("volcal-survey")
    generate(out, SURVEY)
    return out


def submit(client: Client, files: dict[str, Path]) -> dict[str, Any]:
    task = client.create("volcal_baseline")
    assert set(task["upload_urls"]) == set(FILES)
    for slot, path in files.items():
        tus_upload(task["upload_urls"][slot], path)
    return client.wait_terminal(task["task_id"], timeout_s=600)


def test_survey_end_to_end_through_uploads(client: Client, survey: Path) -> None:
    final = submit(client, {slot: survey / name for slot, name in FILES.items()})
    assert final["status"] == "done", final
    files = download_results(final)
    assert {
        "report.json",
        "volumes.csv",
        "change_map.png",
        "dod.tif",
        "regions.gpkg",
        "report.pdf",
        "logs.txt",
    } <= set(files)
    # The pipeline file says which results are pictures: the maps, not the GeoTIFF.
    pictures = {r["name"] for r in final["results"] if r["picture"]}
    assert "change_map.png" in pictures and all(n.endswith(".png") for n in pictures)
    assert files["report.pdf"].startswith(b"%PDF-")
    assert files["dod.tif"][:4] in (b"II*\x00", b"MM\x00*")
    assert files["change_map.png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert any(name.startswith("region_") and name.endswith(".png") for name in files)

    truth = json.loads((survey / "truth.json").read_text())
    report = json.loads(files["report.json"])
    assert report["cut_volume_m3"] == pytest.approx(truth["cut_volume_m3"], rel=0.015)
    assert report["fill_volume_m3"] == pytest.approx(truth["fill_volume_m3"], rel=0.015)
    rows = list(csv.DictReader(io.StringIO(files["volumes.csv"].decode())))
    assert len(rows) == len(truth["features"])
    for f in truth["features"]:
        row = min(
            rows,
            key=lambda r: math.hypot(
                float(r["centroid_x"]) - f["cx"], float(r["centroid_y"]) - f["cy"]
            ),
        )
        assert float(row["net_m3"]) == pytest.approx(f["net_m3"], rel=0.015)


def test_corrupt_point_cloud_ends_in_error_naming_the_input(
    client: Client, survey: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "pre.las"
    fake.write_bytes(b"this is not a point cloud\n" * 100)
    files = {slot: survey / name for slot, name in FILES.items()}
    files["pre"] = fake
    final = submit(client, files)
    assert final["status"] == "error", final
    assert final["reason"] == "input 'pre' is not a LAS/LAZ file"
