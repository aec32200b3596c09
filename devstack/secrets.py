"""Secrets of one stack: generated randomly on first start, then kept in the data dir (0600).

Keeping them stable matters: the S3 keys are MinIO's root credentials for its data dir, the database
password into the role, and upload URLs already handed out carry HMACs made with the token key.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Secrets:
    hook_secret: str
    upload_token_secret: str
    api_key: str
    s3_access_key: str
    s3_secret_key: str
    pg_password: str
    webhook_secret: str

    @classmethod
    def generate(cls) -> Secrets:
        # Hex only: values go unquoted into a shell-sourceable env file and into URLs.
        return cls(
            hook_secret=secrets.token_hex(24),
            upload_token_secret=secrets.token_hex(32),
            api_key=secrets.token_hex(20),
            s3_access_key="ls" + secrets.token_hex(9),
            s3_secret_key=secrets.token_hex(20),
            pg_password=secrets.token_hex(16),
            webhook_secret=secrets.token_hex(32),
        )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` so that only the owner can ever read it (no window with wider mode)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create(path: Path) -> Secrets:
    """The stack's secrets: read from ``path``, or generated once and saved there."""
    if path.exists():
        data = json.loads(path.read_text())
        known = {f.name for f in fields(Secrets)}
        fresh = asdict(Secrets.generate())
        # A field added in a later version gets a fresh value; existing ones never change.
        merged = {k: data.get(k, fresh[k]) for k in known}
        if merged != data:
            write_private(path, json.dumps(merged, indent=2) + "\n")
        return Secrets(**merged)
    created = Secrets.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(asdict(created), indent=2) + "\n")
    return created
