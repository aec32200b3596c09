"""The OpenAPI document tells the truth: schemathesis, a tool no one here wrote, generates
requests from /schema/openapi.json and checks every answer of the test stack's API against it
(status codes, content types, headers, bodies, auth, schema-invalid data rejected, stateful
sequences through inferred links).

Deterministic: schemathesis's deterministic generation, so that a run in CI makes the same
requests as the run that passed here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_the_api_conforms_to_its_openapi_document(stack: Any, tmp_path: Path) -> None:
    # A real task for the operations that random ids would only ever meet with 404.
    created = requests.post(
        f"{stack.api_url}/create_task",
        json={"pipeline": "checksum"},
        headers={"X-API-Key": stack.api_key},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    env = {**os.environ, "ORCHESTRATOR_TEST_TASK_ID": created.json()["task_id"]}
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{stack.api_url}/schema/openapi.json",
            "--header",
            f"X-API-Key: {stack.api_key}",
            "--checks",
            "all",
            "--max-examples",
            "50",
            "--generation-deterministic",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        env=env,
        cwd=tmp_path,  # its cache of crashes lands there, not in the repository
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-20000:]
    # It really ran: every operation of the document was tested, none failed.
    document = requests.get(f"{stack.api_url}/schema/openapi.json", timeout=30).json()
    n = sum(len(methods) for methods in document["paths"].values())
    assert f"{n} selected / {n} total" in out, out[-5000:]
    assert f"Tested: {n}" in out, out[-5000:]
    # No failure and no warning (schemathesis.toml makes warnings fail the run).
    assert "No issues found" in out, out[-5000:]
