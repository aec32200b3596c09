"""The Python client's error handling: the API's own words, the right class, the cause kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from orchestrator.client import api
from orchestrator.client.errors import Conflict, InvalidRequest, NotFound, ServerError, Unreachable


def response(status: int, body: Any = None, text: str = "") -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = (json.dumps(body) if body is not None else text).encode()
    r.reason = "Reason"
    return r


def test_the_apis_detail_is_the_message() -> None:
    err = api._error_of(
        response(422, {"status_code": 422, "detail": "unknown pipeline 'x' (known: checksum)"})
    )
    assert isinstance(err, InvalidRequest)
    assert err.detail == "unknown pipeline 'x' (known: checksum)"
    assert str(err) == "422: unknown pipeline 'x' (known: checksum)"


def test_conflict_keeps_its_extras() -> None:
    err = api._error_of(
        response(409, {"status_code": 409, "detail": "inputs missing", "missing": ["second"]})
    )
    assert isinstance(err, Conflict) and err.extra == {"missing": ["second"]}


def test_validation_details_are_appended() -> None:
    body = {
        "status_code": 400,
        "detail": "Validation failed for POST /create_task",
        "extra": [{"message": "Object missing required field `pipeline`", "key": "pipeline"}],
    }
    err = api._error_of(response(400, body))
    assert err.detail == (
        "Validation failed for POST /create_task; Object missing required field `pipeline`"
    )


def test_a_body_that_is_not_json() -> None:
    err = api._error_of(response(502, text="Bad Gateway from the proxy"))
    assert isinstance(err, ServerError) and err.detail == "Bad Gateway from the proxy"
    assert api._error_of(response(404, text="")).detail == "Reason"
    assert isinstance(api._error_of(response(404, text="")), NotFound)


def test_unreachable_names_the_reason_and_keeps_the_cause() -> None:
    with pytest.raises(Unreachable) as e:
        api.Client("http://127.0.0.1:9/").workers()
    assert str(e.value) == "GET http://127.0.0.1:9/workers: connection refused"
    assert isinstance(e.value.__cause__, requests.ConnectionError)


def test_timeouts_read_as_such() -> None:
    assert api._reason(requests.ReadTimeout("read timed out")) == "no answer in time"


def test_the_key_goes_to_the_api_only() -> None:
    client = api.Client("http://x", "secret")
    assert client.http.headers["X-API-Key"] == "secret"
    assert "X-API-Key" not in client.plain.headers
    assert "X-API-Key" not in api.Client("http://x").http.headers


def test_create_task_body(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, str, dict[str, Any]]] = []

    def fake_json(self: api.Client, method: str, path: str, **kw: Any) -> dict[str, Any]:
        sent.append((method, path, kw["json"]))
        return {"task_id": "t"}

    monkeypatch.setattr(api.Client, "_json", fake_json)
    client = api.Client("http://x", "k")
    client.create_task("volcal_baseline", {"seed": 1}, notify_url="https://hooks.example/t")
    client.create_task("checksum")
    assert sent == [
        (
            "POST",
            "/create_task",
            {
                "pipeline": "volcal_baseline",
                "params": {"seed": 1},
                "notify_url": "https://hooks.example/t",
            },
        ),
        ("POST", "/create_task", {"pipeline": "checksum"}),
    ]
