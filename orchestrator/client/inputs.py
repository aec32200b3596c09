"""What the user typed after ``submit PIPELINE``: input files per slot and ``--param k=v``.

Pure functions (no HTTP): the CLI turns every ``UsageError`` into exit code 2 with the message,
before anything is created on the server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
            raise UsageError(
                f"unknown input --{slot}; this pipeline takes: "
                + ", ".join(f"--{s}" for s in inputs)
            )
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
            raise UsageError(
                "missing required input(s): " + ", ".join(f"--{s} FILE" for s in missing)
            )
    return out


@dataclass(frozen=True)
class Sibling:
    """``path`` fills ``slot``: found beside ``beside``, the file given for its group."""

    slot: str
    path: str
    beside: str

    def message(self) -> str:
        return f"using {self.path} for '{self.slot}' (beside {self.beside})"


def _base(filename: str, accept: Sequence[str]) -> str:
    """``stable.shp`` → ``stable``: the name without the accepted (else the last) extension."""
    lowered = filename.lower()
    ext = next((e for e in accept if e and lowered.endswith(e.lower())), None)
    if ext is not None:
        return filename[: len(filename) - len(ext)]
    return filename.rsplit(".", 1)[0] if "." in filename[1:] else filename


def choose_siblings(
    files: Mapping[str, str],
    inputs: Mapping[str, Mapping[str, Any]],
    listing: Mapping[str, Sequence[str]],
) -> list[Sibling]:
    """The files of a multi-file dataset that were not given, found beside one that was.

    ``files``: slot → path as typed; ``inputs``: the slot specs (their ``group`` and
    ``accept``); ``listing``: directory (``str(Path(path).parent)`` of a given file) → the
    names in it. A slot of a group that was not given is filled by the file of the same
    basename as a given member of its group with one of the slot's accepted extensions, in
    any case (``stable.shp`` → ``stable.shx`` or ``stable.SHX``). Given files always win;
    several candidates, or a required member with none, raise ``UsageError`` naming the slot.
    """
    found: list[Sibling] = []
    used = {str(Path(p)) for p in files.values()}
    for slot, spec in inputs.items():
        group, accept = spec.get("group"), [e.lower() for e in spec.get("accept") or []]
        if not group or slot in files:
            continue
        anchors = [
            (s, files[s]) for s, i in inputs.items() if s in files and i.get("group") == group
        ]
        if not anchors:
            continue  # none of the group given: check_files says what is missing
        looked: list[str] = []
        for anchor_slot, given in anchors:
            path = Path(given)
            base = _base(path.name, inputs[anchor_slot].get("accept") or [])
            wanted = {(base + e).lower() for e in accept}
            looked.append(f"{base}{'/'.join(accept) or '.*'} beside {given}")
            names = sorted(
                n
                for n in listing.get(str(path.parent), ())
                if n.startswith(base) and n.lower() in wanted and str(path.parent / n) not in used
            )
            if len(names) > 1:
                raise UsageError(
                    f"--{slot}: both {' and '.join(names)} are beside {given}; "
                    f"say which with --{slot} FILE"
                )
            if names:
                found.append(Sibling(slot, str(path.parent / names[0]), given))
                used.add(str(path.parent / names[0]))
                break
        else:
            if spec.get("required"):
                raise UsageError(
                    f"missing required input --{slot} FILE: no " + "; no ".join(looked)
                )
    return found


def find_siblings(
    files: Mapping[str, str], inputs: Mapping[str, Mapping[str, Any]]
) -> list[Sibling]:
    """``choose_siblings`` over the directories of the given files of every group."""
    listing: dict[str, list[str]] = {}
    for slot, given in files.items():
        if not (inputs.get(slot) or {}).get("group"):
            continue
        parent = Path(given).parent
        if str(parent) not in listing:
            try:
                listing[str(parent)] = [
                    e.name for e in os.scandir(parent.expanduser()) if e.is_file()
                ]
            except OSError:
                listing[str(parent)] = []  # check_files names the given file's problem
    return choose_siblings(files, inputs, listing)
