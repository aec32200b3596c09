"""Readiness probes: one quick attempt each, True/False, never raising.

The supervisor calls them in a loop until a service answers or its start timeout runs out.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Mapping

import requests


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(method: str, url: str, timeout: float = 2.0, **kw: object) -> int | None:
    try:
        return requests.request(method, url, timeout=timeout, **kw).status_code  # type: ignore[arg-type]
    except requests.RequestException:
        return None


def docker_answers(env: Mapping[str, str], timeout: float = 15.0) -> bool:
    """True when ``docker info`` reaches a daemon (the CLI honours DOCKER_HOST in ``env``)."""
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            env=dict(env),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def who_listens(port: int) -> str:
    """``ss``'s line for a listening port, to name the squatter in an error message."""
    try:
        out = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0] if out else ""
