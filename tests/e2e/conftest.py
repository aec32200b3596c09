"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.client import Client


@pytest.fixture(scope="session")
def client(stack: Any) -> Client:
    return Client(stack.api_url, stack.api_key)


@pytest.fixture
def env(stack: Any, tmp_path: Path) -> dict[str, str]:
    """The environment of a user's ``orchestrator`` command: the server, the key and a private
    upload memory (ORCHESTRATOR_CACHE_DIR)."""
    cache = tmp_path / "cache"
    return os.environ | {
        "ORCHESTRATOR_URL": stack.api_url,
        "ORCHESTRATOR_API_KEY": stack.api_key,
        "ORCHESTRATOR_CACHE_DIR": str(cache),
        "COLUMNS": "200",
    }
