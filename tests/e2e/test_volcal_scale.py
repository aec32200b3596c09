"""volcal_baseline at survey scale through the product: 2 x 100 M points (a 2.8 GB LAS and a
LAZ) uploaded with tus, run as a task under the pipeline's default limits (2 CPUs, 4 GiB),
its results read back and shown on the task page.

The survey is generated at the start (about two minutes) and removed at the end; the whole
test takes about ten minutes on two cores.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser

from pipelines.volcal_baseline.spec import SPEC
from pipelines.volcal_baseline.synthetic import SurveyConfig, generate
from tests.e2e.client import Client
from tests.e2e.test_flow import tus_upload
from tests.e2e.test_volcal import FILES
from tests.e2e.test_web import browser, wait_status

__all__ = ["browser"]  # the module's browser fixture, shared

POINTS = 100_000_000
# A 1.2 km site at 70 points/m2, as a drone LiDAR survey of a mine has them.
SURVEY = SurveyConfig(
    points=POINTS,
    post_points=POINTS,
    size_m=round(math.sqrt(POINTS / 70.0)),
    noise_m=0.03,
    shift_m=1.0,
    rotation_deg=1.0,
    seed=100,
)
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def big_survey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("volcal-scale")
    generate(out, SURVEY)
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.timeout(2400)
def test_two_hundred_million_points_from_upload_to_the_task_page(
    client: Client, stack: Any, big_survey: Path, browser: Browser
) -> None:
    assert (big_survey / "pre.las").stat().st_size > 2_500_000_000
    task = client.create("volcal_baseline")
    for slot, name in FILES.items():
        tus_upload(task["upload_urls"][slot], big_survey / name, chunk_size=64 * MiB)
    final = client.wait_terminal(task["task_id"], timeout_s=1800)
    assert final["status"] == "done", final
    # Under the pipeline's own defaults, nothing raised for this run.
    assert final["resources"]["memory_bytes"] == SPEC.resources.memory_bytes
    assert final["resources"]["cpus"] == SPEC.resources.cpus

    results = {r["name"]: r for r in final["results"]}
    for name in ("report.json", "volumes.csv", "dod.tif", "regions.gpkg", "report.pdf"):
        assert results[name]["bytes"] > 0, name
    report: dict[str, Any] = requests.get(results["report.json"]["url"], timeout=60).json()
    assert report["point_counts"] == {"pre": POINTS, "post": POINTS}
    assert report["registration"]["converged"]
    truth = json.loads((big_survey / "truth.json").read_text())
    for f in truth["features"]:
        near = [
            r
            for r in report["regions"]
            if math.hypot(r["centroid_x"] - f["cx"], r["centroid_y"] - f["cy"]) < f["radius"]
        ]
        got = sum(r["net_m3"] for r in near)
        # docs/volcal.md's target for these conditions (3 cm, 1 m / 1 deg): < 0.5 % above
        # 800 m3; smaller features are within their sampling noise.
        assert got == pytest.approx(f["net_m3"], rel=0.005 if f["volume_m3"] > 800 else 0.03)

    page = browser.new_page()
    key = json.dumps(stack.api_key)
    page.add_init_script(f"localStorage.setItem('orchestrator.apiKey', {key})")
    page.goto(f"{client.api_url}/task.html?id={task['task_id']}")
    wait_status(page, "done", timeout_s=60)
    page.wait_for_function(
        "() => { const i = document.querySelector('img[data-result=\"change_map.png\"]');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=60_000,
    )
    shown = page.locator("a[data-download]").evaluate_all("els => els.map(e => e.dataset.download)")
    assert {"report.pdf", "dod.tif", "regions.gpkg"} <= set(shown)
    page.close()
