"""Human output: sizes, the live status line, tables that keep what people copy intact."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console, RenderableType

from orchestrator.client import render
from orchestrator.client.api import Downloaded

SHA = "d11f4fe958d30d790c509ddc2972882ee02221dc048e9d51987e76137d35edfe"


def text_of(renderable: RenderableType, width: int = 200) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(renderable, soft_wrap=width > 1000)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**3, "1.0 GiB"),
        (5 * 1024**4, "5.0 TiB"),
        (2048 * 1024**4, "2048.0 TiB"),
    ],
)
def test_human_bytes(n: int | None, text: str) -> None:
    assert render.human_bytes(n) == text


def task(**kw: object) -> dict:
    base = {
        "task_id": "t-1",
        "pipeline": "checksum",
        "status": "running",
        "reason": None,
        "created_at": "2026-01-01T10:00:00Z",
        "started_at": "2026-01-01T10:00:00Z",
        "finished_at": "2026-01-01T10:00:42Z",
        "worker_id": "host:1/slot0",
        "inputs": {
            "first": {
                "required": True,
                "state": "done",
                "filename": "a.bin",
                "bytes_received": 2048,
                "bytes_total": 2048,
                "done": True,
            },
            "prj": {
                "required": False,
                "state": "empty",
                "filename": None,
                "bytes_received": 0,
                "bytes_total": None,
                "done": False,
            },
        },
    }
    return base | kw


def test_status_line() -> None:
    assert render.status_line(task()) == "t-1 checksum running 42 s on host:1/slot0"
    waiting = task(status="waiting", started_at=None, worker_id=None)
    assert render.status_line(waiting) == "t-1 checksum waiting (1/2 inputs in)"
    killed = task(status="killed", reason="killed on request", kill_requested=False)
    assert render.status_line(killed) == "t-1 checksum killed 42 s - killed on request"
    assert "(kill requested)" in render.status_line(task(kill_requested=True))


def test_task_view_shows_state_inputs_and_results() -> None:
    results = [{"name": "checksums.json", "bytes": 240, "sha256": SHA, "url": "http://s3/x"}]
    out = text_of(render.task_view(task(status="done", results=results)))
    for piece in (
        "t-1",
        "done",
        "run time",
        "42 s",
        "a.bin",
        "2.0 KiB",
        "empty (optional)",
        "checksums.json",
        SHA,
    ):
        assert piece in out


def test_results_keep_names_hashes_and_links_whole() -> None:
    url = "http://127.0.0.1:18333/results/t-1/checksums.json?X-Amz-Signature=" + "f" * 64
    results = [{"name": "checksums.json", "bytes": 240, "sha256": SHA, "url": url}]
    wide = text_of(render.results_table(results))
    assert "checksums.json" in wide and SHA in wide and "240 B" in wide
    # Links are printed apart, on one line each, so that they can be copied.
    links = text_of(render.result_links(results), width=5000)
    assert url in links.splitlines()[1]
    saved = [Downloaded("checksums.json", Path("/out/checksums.json"), 240, SHA)]
    assert "/out/checksums.json" in text_of(render.results_table(results, saved))
    # In 80 columns the name stays on one line; the hash folds but is all there.
    narrow = text_of(render.results_table(results), width=80)
    assert "checksums.json" in narrow
    assert SHA in "".join(ln.split("│")[3].strip() for ln in narrow.splitlines() if "│" in ln)


def test_tasks_table_fits_80_columns_with_whole_ids() -> None:
    tid = "48f489d4-d145-4b68-9386-edfbdd02b12b"
    rows = [
        {
            "task_id": tid,
            "pipeline": "checksum",
            "status": "killed",
            "created_at": "2026-11-22T09:54:25Z",
            "reason": "killed on request",
        }
    ]
    out = text_of(render.tasks_table(rows), width=80)
    assert tid in out and "11-22 09:54" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    # Priority bands are marked beside the state: ↑ high, ↓ low, nothing for normal.
    ranked = [
        {**rows[0], "status": "pending", "priority": 10},
        {**rows[0], "status": "waiting", "priority": -10},
    ]
    out = text_of(render.tasks_table(ranked), width=80)
    assert "pending↑" in out and "waiting↓" in out and tid in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_pipelines_view_says_what_to_type() -> None:
    pipelines = [
        {
            "name": "volcal_baseline",
            "description": "cut and fill volumes",
            "inputs": {
                "pre": {
                    "required": True,
                    "accept": [".las", ".laz"],
                    "max_bytes": 20 * 1024**3,
                    "description": "survey before",
                },
                "prj": {"required": False, "accept": [".prj"], "max_bytes": 1024},
            },
            "params": {
                "cell_m": {
                    "type": "float",
                    "default": 0.5,
                    "minimum": 0.05,
                    "maximum": 10,
                    "description": "grid cell",
                },
                "method": {"type": "str", "default": "dod", "choices": ["dod", "m3c2"]},
            },
            "resources": {"cpus": 2, "memory_bytes": 4 * 1024**3},
        }
    ]
    out = text_of(render.pipelines_view(pipelines))
    for piece in (
        "volcal_baseline",
        "--pre FILE",
        ".las, .laz",
        "20.0 GiB",
        "--prj FILE",
        "cell_m",
        "0.5",
        "0.05 … 10",
        "one of dod, m3c2",
        '"dod"',
        "memory_bytes=4.0 GiB",
        "cpus=2",
    ):
        assert piece in out, piece


def test_workers_table() -> None:
    workers = [
        {
            "id": "vm:1",
            "host": "vm",
            "state": "up",
            "queues": ["default", "gpu"],
            "capacity": {"cpus": 4, "memory_bytes": 8 * 1024**3, "gpus": 1},
            "free": {"cpus": 2.5, "memory_bytes": 4 * 1024**3, "gpus": 0},
            "running": ["a", "b"],
            "last_seen_at": "2026-01-01T10:00:00Z",
        }
    ]
    out = text_of(render.workers_table(workers))
    for piece in ("vm:1", "default,gpu", "2.5/4", "4.0 GiB/8.0 GiB", "0/1", "2"):
        assert piece in out


def test_json_is_plain_json() -> None:
    assert json.loads(render.to_json({"a": [1, None], "b": Path("/x")})) == {
        "a": [1, None],
        "b": "/x",
    }
