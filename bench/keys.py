"""What project keys cost a request: query_task before projects existed and after, side by side.

    python -m bench.keys --before REV [--env .stack-test/env] [--rounds 3] [--seconds 8]

Starts two API processes on CPU 0 against the running stack, both as ``uvicorn --factory
orchestrator.app:create_app`` with the same flags: the checkout as it is, and REV (a git
worktree of an earlier commit, run from its own source tree; its queries read the newer schema
unchanged). Neither migrates. wrk on CPU 1 drives each in turn, rounds interleaved:

- query_task of a waiting task (read from PostgreSQL on every call), before: the single
  API_KEY; after: the bootstrap API_KEY (compared as is) and a project member's key (its holder
  looked up in PostgreSQL once per KEY_CACHE_S, then from memory, and the task's project
  checked);
- query_task of a done task (answered from memory), the same way.

The per-key rate limit is switched off in the process measured (RATE_LIMIT_PER_S=0): at its
default it would answer most of these requests 429. Prints req/s, p50 and p99 per round and
the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

import requests

from bench.api import PINNED, QUIET, ROOT, Target, done_task, measure, waiting_task, worktree
from bench.flow import free_port, read_env, wait_up
from orchestrator.bootstrap import build_services
from orchestrator.domain.access import Role
from orchestrator.settings import Settings

APP = ["-m", "uvicorn", "orchestrator.app:create_app", "--factory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--env", default=".stack-test/env", type=Path)
    parser.add_argument("--rounds", default=3, type=int)
    parser.add_argument("--seconds", default=8, type=int)
    parser.add_argument("--connections", default=32, type=int)
    args = parser.parse_args()
    env = read_env(args.env)
    boot = env["API_KEY"]
    given: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    services = build_services(Settings(**given))
    member = services.access.create_key("bench-keys", Role.MEMBER, "bench/keys.py").key
    services.close()
    old_port, new_port = free_port(), free_port()
    server_env = {**os.environ, **env, "LOG_LEVEL": "WARNING", "RATE_LIMIT_PER_S": "0"}
    servers = []
    with worktree(args.before) as tree:
        try:
            # Both the same way (uvicorn, the app factory, the same flags), each from its own
            # tree (first on sys.path); neither migrates: the stack has.
            for tree_root, port in ((ROOT, new_port), (tree, old_port)):
                servers.append(
                    subprocess.Popen(
                        [*PINNED, *APP, "--port", str(port), *QUIET],
                        cwd=tree_root,
                        env={
                            **server_env,
                            "HOOK_PORT": str(free_port()),
                            "PYTHONPATH": str(tree_root),
                        },
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            old, new = f"http://127.0.0.1:{old_port}", f"http://127.0.0.1:{new_port}"
            wait_up(f"{old}/health/live")
            wait_up(f"{new}/health/live")
            done_id, waiting_id = done_task(new, boot), waiting_task(new, boot)
            mine = waiting_task(new, member)  # in the member's project
            r = requests.get(f"{new}/query_task/{mine}", headers={"X-API-Key": member}, timeout=9)
            r.raise_for_status()
            old_pid, new_pid = servers[1].pid, servers[0].pid  # taskset execs uvicorn
            targets: dict[str, Target] = {
                "waiting, before (API_KEY)": (f"{old}/query_task/{waiting_id}", boot, old_pid),
                "waiting, after (API_KEY)": (f"{new}/query_task/{waiting_id}", boot, new_pid),
                "waiting, after (member key)": (f"{new}/query_task/{mine}", member, new_pid),
                "done, before (API_KEY)": (f"{old}/query_task/{done_id}", boot, old_pid),
                "done, after (API_KEY)": (f"{new}/query_task/{done_id}", boot, new_pid),
            }
            runs = measure(targets, args.rounds, args.seconds, args.connections)
        finally:
            for s in servers:
                s.terminate()
                s.wait(30)
    print(f"\nmedians of {args.rounds} rounds, {args.connections} connections, one core:")
    baseline = {
        kind: statistics.median(v.rate for v in runs[f"{kind}, before (API_KEY)"])
        for kind in ("waiting", "done")
    }
    for name, values in runs.items():
        rate = statistics.median(v.rate for v in values)
        p50 = statistics.median(v.p50_ms for v in values)
        p99 = statistics.median(v.p99_ms for v in values)
        ratio = rate / baseline[name.split(",")[0]]
        print(
            f"  {name:28} {rate:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
            f"  ratio to before {ratio:.3f}"
        )


if __name__ == "__main__":
    main()
