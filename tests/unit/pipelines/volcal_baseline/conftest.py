"""Small synthetic surveys shared by the volcal tests (generated once per session)."""

from __future__ import annotations

import json
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
