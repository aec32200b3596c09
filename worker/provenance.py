"""provenance.json: what a run was, so that a result set can be traced and repeated.

It records the pipeline file (name, version, path, sha256), the image by the ID the engine ran
(a tag can move; the ID cannot), the command after expansion, the validated parameters, each
input (slot, uploaded name, bytes, sha256 hashed while it was staged), the worker, the limits
the run had, its start and end (UTC) and how it ended. Every result set carries it, failed runs
too, and ``manifest.json`` names it.

    {"schema": "orchestrator.provenance/1", "task_id": "...",
     "pipeline": {"name", "version", "file", "sha256"},
     "image": {"reference", "id"}, "command": [...], "parameters": {...},
     "inputs": [{"slot", "filename", "bytes", "sha256"}],
     "worker": {"id", "host", "executor"},
     "resources": {"cpus", "memory_bytes", "gpus", "timeout_s", "pids"},
     "started_at", "ended_at", "outcome": {"status", "exit_code", "reason"}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.spec import PipelineSpec, Resources
from worker.staging import StagedInput

SCHEMA = "orchestrator.provenance/1"


@dataclass(frozen=True)
class Where:
    """The worker that ran it: its id, host, and executor (docker | local)."""

    id: str
    host: str
    executor: str


@dataclass(frozen=True)
class Ran:
    """The run as it happened: the expanded command, the image's ID (None: no image, the
    local executor), its UTC start and end, and how it ended."""

    command: Sequence[str]
    image_id: str | None
    started_at: datetime
    ended_at: datetime
    status: str
    exit_code: int | None = None
    reason: str | None = None


def document(
    *,
    task_id: str,
    spec: PipelineSpec,
    params: Mapping[str, Any],
    inputs: Sequence[StagedInput],
    resources: Resources,
    where: Where,
    ran: Ran,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "task_id": task_id,
        "pipeline": {
            "name": spec.name,
            "version": spec.version,
            "file": spec.source or None,
            "sha256": spec.digest or None,
        },
        "image": {"reference": spec.image, "id": ran.image_id},
        "command": list(ran.command),
        "parameters": dict(params),
        "inputs": [asdict(i) for i in inputs],
        "worker": asdict(where),
        "resources": asdict(resources),
        "started_at": ran.started_at.isoformat(),
        "ended_at": ran.ended_at.isoformat(),
        "outcome": {"status": ran.status, "exit_code": ran.exit_code, "reason": ran.reason},
    }


def write(path: Path, doc: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path
