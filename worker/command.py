"""Expansion of a spec's command placeholders: ``{in:<slot>}``, ``{out}``, ``{params}``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_SLOT = re.compile(r"\{in:([A-Za-z0-9_.-]+)\}")


class CommandError(ValueError):
    """The command refers to a slot the pipeline does not have (a spec authoring error)."""


def expand(
    command: Sequence[str],
    inputs: Mapping[str, str | None],
    *,
    in_root: str,
    out_dir: str,
    params_file: str,
) -> list[str]:
    """Return ``command`` with placeholders replaced by paths as the process sees them.

    ``inputs`` maps each slot to its file name under ``in_root``, or None for an empty optional
    slot: an argument naming an empty slot is dropped together with the flag before it (when
    that flag starts with ``-``), so ``--ref {in:ref}`` vanishes as a whole.
    """
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
        out.append(expanded.replace("{out}", out_dir).replace("{params}", params_file))
    return out
