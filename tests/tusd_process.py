"""A tusd of a test's own: the project's build (``.bin/tusd``) with the flags the stack gives
its tusd (``devstack.tusd``), on a free port, writing into the stack's MinIO and
sending its hooks wherever the test says."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from devstack.tusd import tusd_flags

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def own_tusd(stack_env: dict[str, str], hooks_url: str, log_path: Path) -> Iterator[str]:
    """Start tusd, wait until it answers OPTIONS, yield its creation URL; stop it after."""
    port = free_port()
    argv = [
        str(ROOT / ".bin" / "tusd"),
        *tusd_flags(
            host="127.0.0.1", port=port, s3_endpoint=stack_env["S3_ENDPOINT"], hooks_url=hooks_url
        ),
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ACCESS_KEY_ID": stack_env["S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": stack_env["S3_SECRET_KEY"],
        "AWS_REGION": stack_env.get("S3_REGION", "us-east-1"),
    }
    url = f"http://127.0.0.1:{port}/files/"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if requests.options(url, timeout=0.5).status_code in (200, 204):
                        break
                except requests.ConnectionError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tusd did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(20)
