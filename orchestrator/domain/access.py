"""Who a request is and what it may see: projects, API keys and roles. Pure.

Every task belongs to the project of the key that created it. A ``member`` key sees and acts
on its own project's tasks only; an ``admin`` key sees every project's, and alone may read the
fleet (``/workers``) and the metrics. Another project's task is answered exactly as an
unknown one (404): existence does not leak.

Keys are random (256 bits), so a plain SHA-256 of the key is what is stored and looked up: no
slow hash is needed against guessing, and the key itself is never stored or logged. A key
shows as its prefix (``ok_AbCd1234``) in listings.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

KEY_PREFIX = "ok_"
# Characters of a key shown in listings (after KEY_PREFIX), enough to tell keys apart.
SHOWN_CHARS = 8
DEFAULT_PROJECT = "default"


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True)
class Principal:
    """The caller: its key (``key_id`` None: the bootstrap API_KEY, or no auth configured),
    role, and the project its new tasks go to."""

    key_id: str | None
    role: Role
    project_id: str
    project_name: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def scope(self) -> str | None:
        """The one project it may see, or None for all (admin)."""
        return None if self.is_admin else self.project_id

    def sees(self, project_id: str | None) -> bool:
        return self.is_admin or project_id == self.project_id


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def shown(key: str) -> str:
    return key[: len(KEY_PREFIX) + SHOWN_CHARS]


def check_project_name(name: str) -> str:
    """Names are what admins type: 1-100 printable characters without surrounding blanks."""
    if not name or name != name.strip() or len(name) > 100 or not name.isprintable():
        raise ValueError(f"project name {name!r} must be 1-100 printable characters")
    return name


@dataclass(frozen=True)
class Quota:
    """A project's limits; None: no limit. Set by admins (``orchestrator admin set-quota``)."""

    max_running: int | None = None  # tasks running at once; more wait in ``pending``
    max_stored_bytes: int | None = None  # uploads plus results, over all its tasks
    max_upload_bytes: int | None = None  # the inputs of one task together


@dataclass(frozen=True)
class QuotaStanding:
    """A task's project, its quota and what it holds: what pre-create weighs an upload against."""

    project_id: str
    project: str  # its name, for the refusal's message
    quota: Quota
    held: int  # bytes the task's inputs but the one being uploaded hold or have declared
    stored: int  # bytes the project keeps: uploads held or declared, and results


def upload_refusal(
    quota: Quota, project: str, *, adding: int, task_bytes: int, stored_bytes: int
) -> str | None:
    """Why an upload of ``adding`` bytes must be refused, or None. ``task_bytes``: what the
    task's other inputs hold or have declared; ``stored_bytes``: the project's uploads and
    results now."""
    if quota.max_upload_bytes is not None and task_bytes + adding > quota.max_upload_bytes:
        return (
            f"project '{project}' allows {quota.max_upload_bytes} bytes of uploads per task "
            f"(max_upload_bytes); this task would hold {task_bytes + adding}"
        )
    if quota.max_stored_bytes is not None and stored_bytes + adding > quota.max_stored_bytes:
        return (
            f"project '{project}' may store {quota.max_stored_bytes} bytes (max_stored_bytes); "
            f"it holds {stored_bytes}, and this upload adds {adding}"
        )
    return None


def may_start(quota: Quota, running: int) -> bool:
    """Whether one more of the project's tasks may start while ``running`` of them run."""
    return quota.max_running is None or running < quota.max_running
