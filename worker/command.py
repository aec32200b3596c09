"""Expansion of a spec's command placeholders: ``{in:<slot>}``, ``{out}``, ``{params}`` and
``{param:<name>}``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_SLOT = re.compile(r"\{in:([A-Za-z0-9_.-]+)\}")
_PARAM = re.compile(r"\{param:([a-z0-9_]+)\}")


class CommandError(ValueError):
    """The command refers to a slot or parameter the pipeline does not have (a pipeline file
    that its checks would have refused)."""


def expand(
    command: Sequence[str],
    inputs: Mapping[str, str | None],
    *,
    in_root: str,
    out_dir: str,
    params_file: str,
    params: Mapping[str, Any] | None = None,
) -> list[str]:
    """Return ``command`` with placeholders replaced by paths as the process sees them.

    ``inputs`` maps each slot to its file name under ``in_root``, or None for an empty optional
    slot: an argument naming an empty slot is dropped together with the flag before it (when
    that flag starts with ``-``), so ``--ref {in:ref}`` vanishes as a whole. ``{param:<name>}``
    is the validated value as text: booleans ``true``/``false``, numbers as JSON writes them.
    """
    values = params or {}

    def param_text(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise CommandError(f"command refers to unknown parameter '{name}'")
        value = values[name]
        return value if isinstance(value, str) else json.dumps(value)

    out: list[str] = []
    for arg in command:
        empty = False

        def slot_path(match: re.Match[str]) -> str:
            nonlocal empty
            slot = match.group(1)
            if slot not in inputs:
                raise CommandError(f"command refers to unknown input slot '{slot}'")
            name = inputs[slot]
            if name is None:
                empty = True
                return ""
            return f"{in_root.rstrip('/')}/{name}"

        expanded = _SLOT.sub(slot_path, arg)
        if empty:
            if out and out[-1].startswith("-"):
                out.pop()
            continue
        expanded = _PARAM.sub(param_text, expanded)
        out.append(expanded.replace("{out}", out_dir).replace("{params}", params_file))
    return out
