"""The key header as the access middleware reads it from the ASGI scope."""

from __future__ import annotations

from typing import Any

from orchestrator.api.auth import header_of


def _scope(*headers: tuple[bytes, bytes]) -> Any:
    return {"type": "http", "headers": list(headers)}


def test_the_first_header_of_that_name_is_read() -> None:
    scope = _scope((b"host", b"api"), (b"x-api-key", b"first"), (b"x-api-key", b"second"))
    assert header_of(scope, b"x-api-key") == "first"


def test_a_missing_header_reads_empty() -> None:
    assert header_of(_scope((b"host", b"api")), b"x-api-key") == ""


def test_values_are_latin_1_as_http_sends_them() -> None:
    assert header_of(_scope((b"x-api-key", "clé".encode("latin-1"))), b"x-api-key") == "clé"
