"""The ``checksum`` pipeline's spec, read from its pipeline file (pipeline.toml beside this)."""

from __future__ import annotations

from pathlib import Path

from pipelines.pipefile import load

SPEC = load(Path(__file__).with_name("pipeline.toml"))
