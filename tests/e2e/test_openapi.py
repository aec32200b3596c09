"""The OpenAPI document tells the truth: schemathesis, a tool no one here wrote, generates
requests from /schema/openapi.json and checks every answer of the test stack's API against it
(status codes, content types, headers, bodies, auth, schema-invalid data rejected, stateful
sequences through inferred links).

Deterministic: schemathesis's deterministic generation, so that a run in CI makes the same
requests as the run that passed here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_the_api_conforms_to_its_openapi_document(stack: Any, tmp_path: Path) -> None:
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
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-20000:]
    # It really ran: every operation of the document was tested, none failed.
    assert "11 selected / 11 total" in out, out[-5000:]
    assert "Tested: 11" in out, out[-5000:]
    assert " passed" in out and "failed" not in out, out[-5000:]
