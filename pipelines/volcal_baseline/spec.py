"""The ``volcal_baseline`` pipeline's spec, read from its pipeline file (pipeline.toml beside
this): the command line takes its parameters' defaults and bounds from it."""

from __future__ import annotations

from pathlib import Path

from pipelines.pipefile import load

SPEC = load(Path(__file__).with_name("pipeline.toml"))
