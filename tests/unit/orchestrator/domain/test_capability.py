"""Slot-scoped upload capabilities."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.domain.capability import (
    parse_upload_query,
    slot_token,
    upload_url,
    verify_slot_token,
)

SECRET = "s3cret"
TASK = "0b6f6c52-3f0e-4d8e-9b8e-0d6b1a1c2d3e"


def test_token_is_deterministic_hex_sha256() -> None:
    token = slot_token(SECRET, TASK, "first")
    assert token == slot_token(SECRET, TASK, "first")
    assert len(token) == 64
    int(token, 16)


@pytest.mark.parametrize(
    ("secret", "task", "slot"),
    [
        ("other", TASK, "first"),
        (SECRET, "0b6f6c52-3f0e-4d8e-9b8e-0d6b1a1c2d3f", "first"),
        (SECRET, TASK, "second"),
    ],
)
def test_token_is_scoped_to_secret_task_and_slot(secret: str, task: str, slot: str) -> None:
    token = slot_token(SECRET, TASK, "first")
    assert not verify_slot_token(secret, task, slot, token)


def test_verify_accepts_the_right_token_only() -> None:
    token = slot_token(SECRET, TASK, "first")
    assert verify_slot_token(SECRET, TASK, "first", token)
    flipped = token[:-1] + ("1" if token[-1] == "0" else "0")
    assert not verify_slot_token(SECRET, TASK, "first", flipped)
    assert not verify_slot_token(SECRET, TASK, "first", "")


def test_task_and_slot_boundary_matters() -> None:
    assert slot_token(SECRET, "ab", "c") != slot_token(SECRET, "a", "bc")


@pytest.mark.parametrize(
    "base", ["http://tus.example/files/", "https://h:1080/files/?x=1", "http://h/files"]
)
def test_upload_url_round_trips(base: str) -> None:
    url = upload_url(base, SECRET, TASK, "first")
    assert url.startswith(base)
    parsed = parse_upload_query(url)
    assert parsed is not None
    task, slot, token = parsed
    assert (task, slot) == (TASK, "first")
    assert verify_slot_token(SECRET, task, slot, token)
    if "x=1" in base:
        assert parse_qs(urlsplit(url).query)["x"] == ["1"]


def test_parse_accepts_a_bare_request_uri() -> None:
    uri = "/files/?" + upload_url("", SECRET, TASK, "second").lstrip("?")
    assert parse_upload_query(uri) == (TASK, "second", slot_token(SECRET, TASK, "second"))


@pytest.mark.parametrize(
    "uri",
    [
        "/files/",
        "/files/?task=a&slot=b",
        "/files/?task=a&token=t",
        "/files/?slot=b&token=t",
        "",
        "/files/abc+def",
    ],
)
def test_parse_rejects_incomplete_queries(uri: str) -> None:
    assert parse_upload_query(uri) is None


def test_slot_names_are_url_encoded() -> None:
    url = upload_url("http://h/files/", SECRET, TASK, "a b&c")
    parsed = parse_upload_query(url)
    assert parsed is not None and parsed[1] == "a b&c"
