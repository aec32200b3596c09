"""``orchestrator admin ...``: projects and API keys, straight in PostgreSQL with the server's
settings (DATABASE_URL and the rest, as the API reads them).

    orchestrator admin create-key --project NAME [--role admin|member] [--name LABEL]
    orchestrator admin list-keys
    orchestrator admin revoke-key ID
    orchestrator admin set-quota --project NAME [--max-running N] [--max-stored SIZE]
                                 [--max-upload SIZE]          (SIZE: 500GiB, bytes, or none)
    orchestrator admin list-projects

A new key is printed once, on stdout, and never stored: only its SHA-256 is. Output is JSON
with --json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from orchestrator.db.access import AccessRepository, KeyView, ProjectView
from orchestrator.db.database import Database
from orchestrator.db.engine import Timeouts, make_engine
from orchestrator.db.migrate import upgrade
from orchestrator.domain.access import Role
from orchestrator.errors import OrchestratorError
from orchestrator.settings import Settings
from pipelines.spec import size_bytes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator admin",
        description="Manage projects and API keys in the server's database.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = sub.add_parser("create-key", help="create a key (printed once)")
    create.add_argument("--project", required=True, help="its project (created if new)")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.MEMBER.value)
    create.add_argument("--name", default="", help="a label: who or what holds it")
    sub.add_parser("list-keys", help="every key: id, project, role, label, state")
    revoke = sub.add_parser("revoke-key", help="revoke a key at once (idempotent)")
    revoke.add_argument("key_id", metavar="ID")
    quota = sub.add_parser("set-quota", help="set or lift (none) a project's quotas")
    quota.add_argument("--project", required=True)
    quota.add_argument("--max-running", metavar="N", help="tasks running at once (none)")
    quota.add_argument("--max-stored", metavar="SIZE", help="uploads plus results (none)")
    quota.add_argument("--max-upload", metavar="SIZE", help="one task's uploads (none)")
    sub.add_parser("list-projects", help="every project and its quotas")
    return parser


def _limit(value: str | None, *, size: bool) -> int | None:
    if value is None or value.lower() == "none":
        return None
    return size_bytes(value) if size else int(value)


def _project(p: ProjectView) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, **asdict(p.quota)}


def _row(k: KeyView) -> dict[str, Any]:
    row = asdict(k)
    row["role"] = k.role.value
    row["created_at"] = k.created_at.isoformat()
    row["revoked_at"] = k.revoked_at.isoformat() if k.revoked_at else None
    return row


def run(argv: Sequence[str], settings: Settings | None = None) -> int:
    args = build_parser().parse_args(list(argv))
    settings = settings or Settings()
    upgrade(settings.database_url)  # a fresh database gets its tables, as `serve` does
    engine = make_engine(
        settings.database_url,
        Timeouts(
            connect_s=settings.db_connect_timeout_s,
            statement_s=max(settings.db_statement_timeout_s, 10.0),
            pool_s=settings.db_pool_timeout_s,
        ),
        pool_size=1,
    )
    access = AccessRepository(Database(engine))
    try:
        if args.command == "create-key":
            made = access.create_key(args.project, Role(args.role), args.name)
            if args.json:
                print(json.dumps({**_row(made.view), "key": made.key}))
            else:
                print(made.key)
                print(
                    f"key {made.view.id}: {made.view.role.value} of project "
                    f"'{made.view.project}'. It is shown this once: keep it now.",
                    file=sys.stderr,
                )
        elif args.command == "list-keys":
            rows = [_row(k) for k in access.list_keys()]
            if args.json:
                print(json.dumps(rows))
            for r in rows if not args.json else ():
                state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
                print(
                    f"{r['id']}  {r['shown']}…  {r['role']:<6}  {r['project']}  "
                    f"{r['name'] or '-'}  {state}"
                )
        elif args.command in ("set-quota", "list-projects"):
            if args.command == "set-quota":
                given = {
                    "max_running": (args.max_running, False),
                    "max_stored_bytes": (args.max_stored, True),
                    "max_upload_bytes": (args.max_upload, True),
                }
                changes = {
                    field: _limit(value, size=size)
                    for field, (value, size) in given.items()
                    if value is not None
                }
                projects = [access.set_quota(args.project, changes)]
            else:
                projects = access.projects()
            rows = [_project(p) for p in projects]
            if args.json:
                print(json.dumps(rows if args.command == "list-projects" else rows[0]))
            for r in rows if not args.json else ():
                print(
                    f"{r['name']}: max_running={r['max_running']} "
                    f"max_stored_bytes={r['max_stored_bytes']} "
                    f"max_upload_bytes={r['max_upload_bytes']}"
                )
        else:
            revoked = access.revoke(args.key_id)
            if args.json:
                print(json.dumps(_row(revoked)))
            else:
                print(f"key {revoked.id} revoked at {revoked.revoked_at}")
    except (OrchestratorError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0
