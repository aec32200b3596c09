"""Discovers pipelines: every ``pipelines/<name>/spec.py`` that exports ``SPEC``."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from pipelines.spec import PipelineSpec

PACKAGE_DIR = Path(__file__).parent


@cache
def specs() -> dict[str, PipelineSpec]:
    found: dict[str, PipelineSpec] = {}
    for info in pkgutil.iter_modules([str(PACKAGE_DIR)]):
        if not info.ispkg or not (PACKAGE_DIR / info.name / "spec.py").exists():
            continue
        spec = importlib.import_module(f"pipelines.{info.name}.spec").SPEC
        if not isinstance(spec, PipelineSpec):  # pragma: no cover - authoring error
            raise TypeError(f"pipelines.{info.name}.spec.SPEC is not a PipelineSpec")
        found[spec.name] = spec
    return found


def get(name: str) -> PipelineSpec | None:
    return specs().get(name)


def dockerfile(name: str) -> Path:
    return PACKAGE_DIR / name / "Dockerfile"
