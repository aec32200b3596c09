"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.client import Client


@pytest.fixture(scope="session")
def client(stack: Any) -> Client:
    return Client(stack.api_url, stack.api_key)
