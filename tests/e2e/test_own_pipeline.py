"""Bring your own pipeline: the README's example (examples/pipelines/gdal_reproject, GDAL from
Debian, nothing of this project in its image) added to the running stack by dropping its file
into a directory of PIPELINES_PATH, with no restart: listed by the API and the CLI, run from
upload to results, its provenance checked against what was uploaded and the image that ran.
A broken file next to it is refused with file and field named, and the others stay.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import numpy as np
import pytest
import rasterio
import requests
from rasterio.crs import CRS
from rasterio.transform import from_origin

from devstack.images import ImageBuild, build_images
from pipelines import pipefile
from tests.e2e.client import Client
from tests.e2e.test_cli import cli, json_of
from tests.e2e.test_flow import tus_upload

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pipelines" / "gdal_reproject"
NAME = "gdal_reproject"
# The catalog re-reads changed files every PIPELINES_RELOAD_S (2 s) and workers announce their
# images every WORKER_ANNOUNCE_INTERVAL_S (5 s): what follows waits for those events, with room.
SEEN_WITHIN_S = 60.0
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout_s: float = SEEN_WITHIN_S) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout_s:.0f} s: {what}")
        time.sleep(0.25)


def drop_dir(stack: Any) -> Path:
    """The stack's own pipeline directory: PIPELINES_PATH's entry after the shipped ones."""
    entries = stack.env["PIPELINES_PATH"].split(":")
    assert entries[0] == "shipped" and len(entries) == 2, entries
    return Path(entries[1])


@pytest.fixture(scope="module")
def image(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example's image, built as its Dockerfile says (rebuilt only when that changes)."""
    tag = pipefile.load(EXAMPLE / "pipeline.toml").image
    dockerfile = EXAMPLE / "Dockerfile"
    build = ImageBuild(
        NAME,
        tag,
        "Dockerfile",
        hashlib.sha256(dockerfile.read_bytes()).hexdigest(),
        files=((dockerfile, "Dockerfile"),),
    )
    log = tmp_path_factory.mktemp("gdal-build") / "build.log"
    done = build_images(ROOT, [build], dict(os.environ), log, print)
    assert done[NAME] in ("built", "current"), f"{done}: {log.read_text()[-3000:]}"
    yield tag


@pytest.fixture
def dropped(stack: Any) -> Iterator[Path]:
    target = drop_dir(stack)
    paths = [target / "gdal_reproject.toml", target / "broken.toml", target / "nowhere.toml"]
    yield target
    for path in paths:
        path.unlink(missing_ok=True)


def listed(client: Client) -> dict[str, Any]:
    r = client.get("/pipelines")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def geotiff(path: Path) -> None:
    """A 200 x 100 m grid of heights in UTM 33N (EPSG:32633), near 15 E, 45 N."""
    data = np.arange(100 * 50, dtype=np.float32).reshape(50, 100)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=100,
        height=50,
        count=1,
        dtype="float32",
        crs=CRS.from_epsg(32633),
        transform=from_origin(500_000.0, 4_983_000.0, 2.0, 2.0),
    ) as dst:
        dst.write(data, 1)


def test_a_dropped_pipeline_file_runs_end_to_end_with_provenance(
    stack: Any, client: Client, image: str, dropped: Path, env: dict[str, str], tmp_path: Path
) -> None:
    assert NAME not in {p["name"] for p in listed(client)["pipelines"]}
    # No worker has announced the image yet for this file: the pipeline is not offered.
    source = (EXAMPLE / "pipeline.toml").read_bytes()
    shutil.copyfile(EXAMPLE / "pipeline.toml", dropped / "gdal_reproject.toml")

    offered = eventually(
        lambda: next((p for p in listed(client)["pipelines"] if p["name"] == NAME), None),
        "the API lists the dropped pipeline",
    )
    assert offered["version"] == "1.0.0" and offered["image"] == image
    assert offered["sha256"] == hashlib.sha256(source).hexdigest()
    assert list(offered["inputs"]) == ["raster"]
    assert offered["params"]["resampling"]["choices"][:2] == ["near", "bilinear"]
    shown = json_of(cli(env, "pipelines", "--json"))
    assert NAME in {p["name"] for p in shown}
    # Every worker of the stack has the image, and says so (create_task refuses otherwise).
    eventually(
        lambda: (
            True
            if any(
                image in (w.get("images") or []) for w in client.get("/workers").json()["workers"]
            )
            else None
        ),
        "a worker announces the example's image",
    )

    raster = tmp_path / "heights.tif"
    geotiff(raster)
    task = client.create(NAME, {"target_crs": "EPSG:4326", "resampling": "near"})
    tus_upload(task["upload_urls"]["raster"], raster)
    final = client.wait_terminal(task["task_id"], timeout_s=300)
    assert final["status"] == "done", final

    results = {r["name"]: r for r in final["results"]}
    assert {
        "reprojected.tif",
        "provenance.json",
        "ro-crate-metadata.json",
        "manifest.json",
        "logs.txt",
    } <= set(results)
    assert results["reprojected.tif"]["content_type"] == "image/tiff"
    assert results["reprojected.tif"]["picture"] is False
    out = tmp_path / "reprojected.tif"
    out.write_bytes(requests.get(results["reprojected.tif"]["url"], timeout=60).content)
    with rasterio.open(out) as src:
        assert src.crs == CRS.from_epsg(4326)
        west, south, east, north = src.bounds
        assert 14.9 < west < east < 15.1 and 44.9 < south < north < 45.1

    record = requests.get(results["provenance.json"]["url"], timeout=60).json()
    [staged] = record["inputs"]
    uploaded = raster.read_bytes()
    assert (staged["slot"], staged["filename"]) == ("raster", "heights.tif")
    assert (staged["bytes"], staged["sha256"]) == (
        len(uploaded),
        hashlib.sha256(uploaded).hexdigest(),
    )
    engine = docker.from_env()
    try:
        assert record["image"] == {"reference": image, "id": engine.images.get(image).id}
    finally:
        engine.close()
    assert record["pipeline"]["version"] == "1.0.0"
    assert record["pipeline"]["sha256"] == hashlib.sha256(source).hexdigest()
    assert record["command"][:4] == ["gdalwarp", "-overwrite", "-t_srs", "EPSG:4326"]
    assert record["command"][-1] == "/out/reprojected.tif"
    assert record["parameters"] == {"target_crs": "EPSG:4326", "resampling": "near"}
    assert record["resources"]["memory_bytes"] == 1024**3
    assert record["outcome"]["status"] == "done"
    manifest = requests.get(results["manifest.json"]["url"], timeout=60).json()
    assert manifest["provenance"] == "provenance.json"
    by_name = {f["name"]: f for f in manifest["files"]}
    assert by_name["provenance.json"]["sha256"] == results["provenance.json"]["sha256"]
    # The same run as an RO-Crate: the GeoTIFF is a data entity with its sha256.
    crate = requests.get(results["ro-crate-metadata.json"]["url"], timeout=60).json()
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert graph["reprojected.tif"]["sha256"] == results["reprojected.tif"]["sha256"]
    assert graph["#input-raster"]["sha256"] == staged["sha256"]

    # An edit is picked up without a restart; a broken file is refused and harms nothing.
    edited = source.replace(b'version = "1.0.0"', b'version = "1.0.1"')
    (dropped / "gdal_reproject.toml").write_bytes(edited)
    (dropped / "broken.toml").write_bytes(
        source.replace(b'name = "gdal_reproject"', b'name = "broken"').replace(
            b'"{in:raster}"', b'"{in:rastre}"'
        )
    )
    body = eventually(
        lambda: b if (b := listed(client))["refused"] else None, "the broken file refused"
    )
    versions = {p["name"]: p["version"] for p in body["pipelines"]}
    assert versions[NAME] == "1.0.1"
    assert {"checksum", "volcal_baseline"} <= set(versions) and "broken" not in versions
    [refused] = body["refused"]
    assert refused["file"] == str(dropped / "broken.toml")
    assert refused["problems"] == [
        {"field": "command[10]", "message": "{in:rastre} names no input slot 'rastre'"}
    ]
    # The same verdict offline, from the command users check their files with.
    proc = cli(env, "pipelines", "validate", str(dropped / "broken.toml"))
    assert proc.returncode == 2
    assert "command[10]: {in:rastre} names no input slot 'rastre'" in " ".join(proc.stderr.split())


def test_a_pipeline_whose_image_no_worker_has_is_refused_at_create(
    client: Client, dropped: Path
) -> None:
    source = (EXAMPLE / "pipeline.toml").read_text()
    (dropped / "nowhere.toml").write_text(
        source.replace('name = "gdal_reproject"', 'name = "nowhere"').replace(
            'image = "pipeline-gdal_reproject:1"', 'image = "pipeline-nowhere:0"'
        )
    )
    eventually(
        lambda: True if "nowhere" in {p["name"] for p in listed(client)["pipelines"]} else None,
        "the API lists the pipeline whose image no worker has",
    )
    r = client.post("/create_task", json={"pipeline": "nowhere"})
    assert r.status_code == 422, r.text
    assert (
        "no live worker on queue 'default' has the image 'pipeline-nowhere:0'" in r.json()["detail"]
    )


def reloads(stack: Any, service: str) -> int:
    """How many times the service's log says it re-read the pipeline files."""
    log = Path(stack.datadir) / "logs" / f"{service}.log"
    return log.read_text(errors="replace").count("pipelines reloaded")


def test_sighup_rereads_the_files_and_the_processes_live_on(stack: Any, client: Client) -> None:
    before = stack.children()
    counts = {s: reloads(stack, s) for s in ("api", "worker")}
    for service in ("api", "worker"):
        os.kill(before[service]["pid"], signal.SIGHUP)
    # The API re-reads at its next request; the worker at its next announcement.
    assert client.get("/pipelines").status_code == 200
    for service in ("api", "worker"):

        def reread(name: str = service) -> bool | None:
            return True if reloads(stack, name) > counts[name] else None

        eventually(reread, f"{service} logs that SIGHUP made it re-read the pipeline files")
    # The same processes, never restarted: SIGHUP's default action would have ended them.
    after = stack.children()
    for service in ("api", "worker"):
        assert after[service]["pid"] == before[service]["pid"]
        assert after[service]["restarts"] == before[service]["restarts"]
        assert after[service]["running"]
    assert client.get("/pipelines").status_code == 200
