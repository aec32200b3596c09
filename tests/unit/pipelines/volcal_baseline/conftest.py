"""Small synthetic surveys shared by the volcal tests (generated once per session)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipelines.volcal_baseline.synthetic import SurveyConfig, generate

SMALL = SurveyConfig(
    points=150_000,
    post_points=120_000,
    size_m=200.0,
    noise_m=0.03,
    shift_m=1.0,
    rotation_deg=1.0,
    volumes=(1000.0, 3000.0, 900.0),
    seed=1,
)


@pytest.fixture(scope="session")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("survey")
    generate(out, SMALL)
    return out


@pytest.fixture(scope="session")
def truth(survey: Path) -> dict[str, Any]:
    return json.loads((survey / "truth.json").read_text())


@pytest.fixture(scope="session")
def cluttered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small survey as a ground classifier leaves it (ground class 2, the rest 1), with 12
    trucks parked at other places in each epoch, and 0.5 % birds and noise."""
    out = tmp_path_factory.mktemp("cluttered")
    generate(out, replace(SMALL, classified=True, machines=12, outliers=0.005))
    return out


@pytest.fixture(scope="session")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small survey, unclassified, with 0.5 % birds (10-60 m up) and noise (2-10 m down)."""
    out = tmp_path_factory.mktemp("noisy")
    generate(out, replace(SMALL, outliers=0.005))
    return out
