"""GET /pipelines and the public web UI routes, in process over the stack's real services."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from orchestrator.api.pages import VENDOR_FILE
from orchestrator.bootstrap import Services
from pipelines.catalog import shipped

Local = tuple[TestClient[Any], Services]


def test_pipelines_lists_every_spec_with_inputs_params_resources(local: Local) -> None:
    client, _ = local
    r = client.get("/pipelines")
    assert r.status_code == 200, r.text
    listed = {p["name"]: p for p in r.json()["pipelines"]}
    # The shipped pipelines plus the fixture's test pipeline, sorted by name.
    assert set(shipped()) | {"lasdemo"} == set(listed)
    assert [p["name"] for p in r.json()["pipelines"]] == sorted(listed)

    volcal = listed["volcal_baseline"]
    assert volcal["description"].startswith("Cut, fill and net volumes")
    assert list(volcal["inputs"]) == ["pre", "post", "shp", "shx", "dbf", "prj"]
    assert volcal["inputs"]["pre"] == {
        "required": True,
        "accept": [".las", ".laz"],
        "max_bytes": 20 * 1024**3,
        "description": "earlier survey, the reference frame (LAS or LAZ)",
        "group": None,
    }
    # The shapefile's parts are one dataset: one group, the slots' shared stem.
    assert {s: i["group"] for s, i in volcal["inputs"].items()} == {
        "pre": None,
        "post": None,
        "shp": "stable",
        "shx": "stable",
        "dbf": "stable",
        "prj": "stable",
    }
    assert volcal["inputs"]["prj"]["required"] is False
    assert volcal["inputs"]["prj"]["max_bytes"] == 1024**2
    assert volcal["params"]["max_change_m"] == {
        "type": "float",
        "default": 50.0,
        "minimum": 0.1,
        "maximum": 1000.0,
        "choices": [],
        "description": "largest change M3C2 looks for (cylinder half-length), m",
    }
    assert volcal["params"]["seed"]["type"] == "int"
    assert volcal["resources"] == {
        "cpus": 2.0,
        "memory_bytes": 4 * 1024**3,
        "gpus": 0,
        "timeout_s": 3600,
    }

    checksum = listed["checksum"]
    assert checksum["inputs"]["first"]["accept"] == []
    assert checksum["params"]["algorithm"] == {
        "type": "str",
        "default": "sha256",
        "minimum": None,
        "maximum": None,
        "choices": ["sha256"],
        "description": "Digest algorithm.",
    }


def test_pipelines_needs_the_key(local: Local) -> None:
    client, _ = local
    for headers in ({"X-API-Key": ""}, {"X-API-Key": "wrong"}):
        r = client.get("/pipelines", headers=headers)
        assert r.status_code == 401
        assert r.json()["detail"] == "missing, unknown or revoked X-API-Key"


def test_pipelines_in_openapi_with_operation_id_and_schema(local: Local) -> None:
    client, _ = local
    doc = client.get("/schema/openapi.json").json()
    op = doc["paths"]["/pipelines"]["get"]
    assert op["operationId"] == "list_pipelines"
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "pipelines" in schema["properties"]
    # The UI routes stay out of the API document.
    assert "/" not in doc["paths"] and "/tasks.html" not in doc["paths"]


def test_pages_and_static_files_are_public(local: Local) -> None:
    client, _ = local
    no_key = {"X-API-Key": ""}
    for path, marker in [
        ("/", "New task"),
        ("/tasks.html", "<h1>Tasks</h1>"),
        ("/task.html", "task-view"),
    ]:
        r = client.get(path, headers=no_key)
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        assert marker in r.text
        assert "no-cache" in r.headers["cache-control"]
    r = client.get("/static/new-task.js", headers=no_key)
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert client.get("/static/app.css", headers=no_key).status_code == 200
    assert client.get("/static/nope.js", headers=no_key).status_code == 404


def test_tus_js_client_is_served_from_the_project(local: Local) -> None:
    """`npm ci` in orchestrator/web (install.sh, the api image) puts the bundle there."""
    client, _ = local
    assert VENDOR_FILE.is_file(), "run scripts/install.sh (npm ci in orchestrator/web)"
    r = client.get("/static/vendor/tus.min.js", headers={"X-API-Key": ""})
    assert r.status_code == 200
    assert r.content == VENDOR_FILE.read_bytes()
    # The page loads it from there and from nowhere else.
    page = client.get("/").text
    assert '<script src="/static/vendor/tus.min.js"></script>' in page
    assert "https://" not in page
