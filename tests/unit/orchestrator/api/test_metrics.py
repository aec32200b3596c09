"""The request counter: one count per response start, under its own labels."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from orchestrator.api.metrics import count_request
from orchestrator.service.metrics import HTTP_REQUESTS


def _count(method: str, handler: str, status: str) -> float:
    labels = {"method": method, "handler": handler, "status_code": status}
    samples = [
        s.value
        for metric in HTTP_REQUESTS.collect()
        for s in metric.samples
        if s.name.endswith("_total") and s.labels == labels
    ]
    return float(samples[0]) if samples else 0.0


def _send(method: str, operation_id: str, status: int, kind: str = "http.response.start") -> None:
    scope: Any = {
        "type": "http",
        "method": method,
        "route_handler": SimpleNamespace(operation_id=operation_id, handler_name="h"),
    }
    message: Any = {"type": kind, "status": status}
    asyncio.run(count_request(message, scope))


def test_each_response_counts_once_under_its_method_handler_and_status() -> None:
    before = {
        ("GET", "unit_a", "200"): _count("GET", "unit_a", "200"),
        ("GET", "unit_a", "404"): _count("GET", "unit_a", "404"),
        ("POST", "unit_a", "200"): _count("POST", "unit_a", "200"),
        ("GET", "unit_b", "200"): _count("GET", "unit_b", "200"),
    }
    for _ in range(3):
        _send("GET", "unit_a", 200)
    _send("GET", "unit_a", 404)
    _send("POST", "unit_a", 200)
    _send("GET", "unit_a", 200, kind="http.response.body")  # the body is not a response
    after = {labels: _count(*labels) for labels in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("GET", "unit_a", "200"): 3,
        ("GET", "unit_a", "404"): 1,
        ("POST", "unit_a", "200"): 1,
        ("GET", "unit_b", "200"): 0,
    }
