"""Readiness of each backing service, named, with its error."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.bootstrap import Services


def check(services: Services) -> dict[str, str]:
    probes: dict[str, Callable[[], None]] = {
        "postgres": services.tasks.ping,
        "redis": services.queue.ping,
        "s3": services.storage.ping,
    }
    results: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
        except Exception as exc:  # any failure is the answer, not an error of /health
            results[name] = f"error: {type(exc).__name__}: {exc}"
        else:
            results[name] = "ok"
    return results
