"""The env file ``<datadir>/env``: every setting the API, worker and tests need.

KEY=VALUE lines, shell-sourceable (``set -a; . .stack/env``) and parsed by the test fixture.
Values are written bare when they are shell-safe, else single-quoted.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from .profile import HOST, Profile
from .secrets import Secrets, write_private

_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")


def stack_env(profile: Profile, secrets: Secrets) -> dict[str, str]:
    p = profile.ports
    return {
        "DATABASE_URL": (
            f"postgresql+psycopg://orchestrator:{secrets.pg_password}"
            f"@{HOST}:{p.postgres}/orchestrator"
        ),
        "REDIS_URL": profile.redis_url,
        "S3_ENDPOINT": profile.s3_endpoint,
        "S3_PUBLIC_ENDPOINT": profile.s3_endpoint,
        "S3_ACCESS_KEY": secrets.s3_access_key,
        "S3_SECRET_KEY": secrets.s3_secret_key,
        "S3_REGION": "us-east-1",
        "UPLOADS_BUCKET": "uploads",
        "RESULTS_BUCKET": "results",
        "TUS_PUBLIC_URL": profile.tus_url,
        "HOOK_SECRET": secrets.hook_secret,
        "HOOK_HOST": HOST,
        "HOOK_PORT": str(p.hooks),
        "UPLOAD_TOKEN_SECRET": secrets.upload_token_secret,
        "WEBHOOK_SECRET": secrets.webhook_secret,
        # Tests' receivers listen on 127.0.0.1; production keeps the default (public only).
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "API_KEY": secrets.api_key,
        "EXECUTOR": "docker",
        "WORKER_QUEUES": "default",
        "WORKER_WORK_DIR": str(profile.work_dir),
        "PIPELINES_PATH": f"shipped:{profile.pipelines_dir}",
        "API_URL": profile.api_url,
        "STACK_PROFILE": profile.name,
        "STACK_DATADIR": str(profile.datadir),
    }


def render(env: dict[str, str]) -> str:
    lines = ["# Written by `python -m devstack up`; regenerated on every start."]
    for key, value in env.items():
        lines.append(f"{key}={value if _SAFE.match(value) else shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def write(path: Path, env: dict[str, str]) -> None:
    # It holds the secrets, so it is as private as the secrets file itself.
    write_private(path, render(env))


def parse(text: str) -> dict[str, str]:
    """Read an env file back (the inverse of :func:`render`; comments and blanks skipped)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        parts = shlex.split(value) if value else [""]
        env[key.strip()] = parts[0] if parts else ""
    return env
