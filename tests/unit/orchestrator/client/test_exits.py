"""Exit codes: what a script learns from ``$?``."""

from __future__ import annotations

import pytest

from orchestrator.client import cli, exits
from orchestrator.client.errors import (
    ClientError,
    Conflict,
    IntegrityError,
    InvalidRequest,
    NotFound,
    ServerError,
    Unauthorized,
    Unreachable,
    UploadError,
    api_error,
)


@pytest.mark.parametrize(
    ("status", "code"),
    [("done", 0), ("waiting", 0), ("pending", 0), ("running", 0), ("error", 1), ("killed", 3)],
)
def test_task_states(status: str, code: int) -> None:
    assert exits.for_status(status) == code


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidRequest(422, "unknown pipeline 'x'"), 4),
        (NotFound(404, "no task"), 4),
        (Conflict(409, "finished"), 4),
        (Unauthorized(401, "key"), 4),
        (ServerError(503, "service unavailable"), 5),
        (Unreachable("connection refused"), 5),
        (UploadError("refused", 415), 4),
        (UploadError("tus server down", 502), 5),
        (UploadError("connection reset"), 5),
        (IntegrityError("sha256 differs"), 6),
        (ClientError("not JSON"), 5),
    ],
)
def test_errors(exc: Exception, code: int) -> None:
    assert exits.for_error(exc) == code


def test_foreign_exceptions_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        exits.for_error(ZeroDivisionError())


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequest),
        (422, InvalidRequest),
        (401, Unauthorized),
        (403, Unauthorized),
        (404, NotFound),
        (409, Conflict),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_statuses_map_to_the_hierarchy(status: int, kind: type) -> None:
    err = api_error(status, "why", {"status_code": status, "detail": "why", "missing": ["a"]})
    assert type(err) is kind
    assert err.status == status and err.detail == "why"
    assert err.extra == {"missing": ["a"]}


def test_codes_are_documented_once_and_shown_by_help() -> None:
    help_text = cli.build_parser().format_help()
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "130"):
        assert f"\n  {code}" in exits.HELP
    assert exits.HELP.strip() in help_text
    assert "orchestrator.client.exits" in (cli.__doc__ or "")
