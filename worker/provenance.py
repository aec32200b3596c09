"""provenance.json and ro-crate-metadata.json: what a run was, so that a result set can be
traced, cited and repeated.

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

The same facts also go into the result set as a Workflow Run RO-Crate (Process Run Crate
profile, written with the ``rocrate`` library): the result files as data entities with their
sizes and sha256, the inputs as contextual entities, the pipeline as the instrument of one
``CreateAction`` with its times and status. Tools that read RO-Crate read it without knowing
this project.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rocrate.model.contextentity import ContextEntity
from rocrate.model.softwareapplication import SoftwareApplication
from rocrate.rocrate import ROCrate

from pipelines.spec import PipelineSpec, Resources

SCHEMA = "orchestrator.provenance/1"
CRATE_FILE = "ro-crate-metadata.json"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
_STATUS = {
    "done": "http://schema.org/CompletedActionStatus",
    "error": "http://schema.org/FailedActionStatus",
    "killed": "http://schema.org/FailedActionStatus",
}


@dataclass(frozen=True)
class StagedInput:
    """One input as the run got it: its slot, the name it was uploaded under, its size and
    sha256 (of the bytes written to the run directory)."""

    slot: str
    filename: str
    bytes: int
    sha256: str


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


def ro_crate(record: Mapping[str, Any], files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The RO-Crate metadata of a result set: ``record`` is :func:`document`'s, ``files`` the
    manifest's entries (name, bytes, sha256, content_type), provenance.json among them."""
    pipeline, image = record["pipeline"], record["image"]
    crate = ROCrate()
    root = crate.root_dataset
    root["name"] = f"Results of task {record['task_id']} ({pipeline['name']})"
    root["description"] = (
        f"Outputs of pipeline {pipeline['name']} {pipeline['version']}, run in {image['reference']}"
    )
    root["datePublished"] = record["ended_at"]
    profile = crate.add(
        ContextEntity(
            crate,
            PROCESS_RUN_CRATE,
            properties={"@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"},
        )
    )
    root["conformsTo"] = profile
    results = [
        crate.add_file(
            dest_path=f["name"],
            properties={
                "contentSize": f["bytes"],
                "encodingFormat": f["content_type"],
                "sha256": f["sha256"],
            },
        )
        for f in files
    ]
    inputs = [
        crate.add(
            ContextEntity(
                crate,
                f"#input-{i['slot']}",
                properties={
                    "@type": "File",
                    "name": i["filename"],
                    "description": f"input slot '{i['slot']}'",
                    "contentSize": i["bytes"],
                    "sha256": i["sha256"],
                },
            )
        )
        for i in record["inputs"]
    ]
    tool = crate.add(
        SoftwareApplication(
            crate,
            f"#pipeline-{pipeline['name']}",
            properties={
                "name": pipeline["name"],
                "version": pipeline["version"],
                "softwareRequirements": image["reference"],
                "identifier": image["id"] or image["reference"],
            },
        )
    )
    action = crate.add_action(
        tool,
        identifier="#run",
        object=inputs,
        result=results,
        properties={
            "name": f"Run of {pipeline['name']} for task {record['task_id']}",
            "startTime": record["started_at"],
            "endTime": record["ended_at"],
            "actionStatus": {"@id": _STATUS.get(record["outcome"]["status"], _STATUS["error"])},
            "description": " ".join(record["command"]),
        },
    )
    root["mentions"] = action
    metadata: dict[str, Any] = crate.metadata.generate()
    return metadata
