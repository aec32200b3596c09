"""Drill: the local stack's PostgreSQL frozen for 15 s (SIGSTOP on the postmaster and its
children) while a task runs. The API answers fast all along and the task still ends done."""

from __future__ import annotations

from pathlib import Path

from tests import frozen_db
from tests.conftest import Stack
from tests.e2e.client import Client, random_file
from tests.e2e.test_flow import tus_upload


def test_the_api_fails_fast_while_postgres_is_frozen(
    stack: Stack, client: Client, tmp_path: Path
) -> None:
    task = client.create("checksum", {"sleep_s": 8})
    for slot in ("first", "second"):
        f = tmp_path / f"{slot}.bin"
        random_file(f, 1000, len(slot))
        tus_upload(task["upload_urls"][slot], f)
    client.wait_for(task["task_id"], lambda t: t["status"] == "running", 120)

    postmaster = stack.children()["postgres"]["pid"]
    drill = frozen_db.run(
        stack.api_url,
        stack.api_key,
        task["task_id"],
        lambda: frozen_db.stopped(frozen_db.process_tree(postmaster)),
    )
    print(f"local stack, PostgreSQL frozen 15 s: {frozen_db.check(drill)}")
    # The run ended while the database was frozen; the worker wrote its end once it thawed.
    final = client.wait_terminal(task["task_id"], timeout_s=120)
    assert final["status"] == "done", final
    assert final["attempts"] == 1, final
