"""What the user typed after ``submit PIPELINE``: input files per slot and ``--param k=v``.

Pure functions (no HTTP): the CLI turns every ``UsageError`` into exit code 2 with the message,
before anything is created on the server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.client.resume import LocalFile


class UsageError(ValueError):
    """Bad command-line input; the message says what to type instead."""


def parse_param(raw: str, kind: str | None = None) -> tuple[str, Any]:
    """``k=v`` → (k, value). The value is JSON when it parses as JSON (``5``, ``true``,
    ``[1,2]``, ``"5"``), else the plain string, except that a parameter the pipeline declares
    as a string keeps its text as typed (``name=123`` stays ``"123"``)."""
    key, sep, text = raw.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--param expects NAME=VALUE, got {raw!r}")
    if kind in ("str", "string"):
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                return key, str(json.loads(text))
            except ValueError:
                pass
        return key, text
    try:
        return key, json.loads(text)
    except ValueError:
        return key, text


def parse_params(
    raw: Sequence[str], declared: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Every ``--param``; with the pipeline's declared parameters, unknown names are refused
    here (the API would refuse them too, but only after the command line was accepted)."""
    params: dict[str, Any] = {}
    for item in raw:
        key = item.partition("=")[0].strip()
        spec = (declared or {}).get(key)
        if declared is not None and spec is None:
            known = ", ".join(sorted(declared)) or "none"
            raise UsageError(f"unknown parameter {key!r}; this pipeline takes: {known}")
        name, value = parse_param(item, None if spec is None else spec.get("type"))
        params[name] = value
    return params


def option_names(slot: str) -> list[str]:
    """``--slot``, and ``--slot-name`` beside ``--slot_name``: people type either."""
    names = [f"--{slot}"]
    if "_" in slot:
        names.append(f"--{slot.replace('_', '-')}")
    return names


def parse_slot_args(extra: Sequence[str]) -> dict[str, str]:
    """``--name FILE`` / ``--name=FILE`` pairs, for a server that cannot list its pipelines
    (the task's own answer then says which slots exist)."""
    files: dict[str, str] = {}
    items = list(extra)
    i = 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--") or item == "--":
            raise UsageError(f"unexpected argument {item!r}; inputs are given as --SLOT FILE")
        name, sep, value = item[2:].partition("=")
        if not sep:
            if i + 1 >= len(items) or items[i + 1].startswith("--"):
                raise UsageError(f"--{name} needs a file")
            value = items[i + 1]
            i += 1
        files[name.replace("-", "_")] = value
        i += 1
    return files


def _accepts(accept: Sequence[str], filename: str) -> bool:
    lowered = filename.lower()
    return not accept or any(lowered.endswith(ext.lower()) for ext in accept)


def check_files(
    files: Mapping[str, str], inputs: Mapping[str, Mapping[str, Any]] | None
) -> list[LocalFile]:
    """Each given path as a ``LocalFile``, checked against the slot specs where known: the slot
    exists, the file exists and is readable, its extension is accepted, its size within
    bounds, and every required slot has a file."""
    out: list[LocalFile] = []
    for slot, raw in files.items():
        spec = None if inputs is None else inputs.get(slot)
        if inputs is not None and spec is None:
            raise UsageError(f"unknown input --{slot}; this pipeline takes: "
                             + ", ".join(f"--{s}" for s in inputs))
        path = Path(raw).expanduser()
        if not path.is_file():
            raise UsageError(f"--{slot}: no such file: {raw}")
        try:
            local = LocalFile.of(slot, path)
            with path.open("rb"):
                pass
        except OSError as exc:
            raise UsageError(f"--{slot}: cannot read {raw}: {exc.strerror}") from exc
        if spec is not None:
            accept = spec.get("accept") or []
            if not _accepts(accept, path.name):
                raise UsageError(f"--{slot}: {path.name} is not one of {', '.join(accept)}")
            limit = spec.get("max_bytes")
            if isinstance(limit, int) and local.size > limit:
                raise UsageError(
                    f"--{slot}: {path.name} is {local.size} bytes; at most {limit} accepted"
                )
        out.append(local)
    if inputs is not None:
        missing = [s for s, spec in inputs.items() if spec.get("required") and s not in files]
        if missing:
            raise UsageError("missing required input(s): " + ", ".join(f"--{s} FILE"
                                                                        for s in missing))
    return out
