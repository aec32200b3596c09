"""API requests per second against a hello-world Litestar app, on the same core, in one run.

    python -m bench.api [--env .stack-test/env] [--rounds 3] [--seconds 8] [--connections 32]
                        [--only NAMES] [--before REV]

Starts its own API process (``python -m orchestrator serve``, the stack's settings) and a
hello-world Litestar app under the same uvicorn settings, both pinned to CPU 0, and drives each
with wrk pinned to CPU 1. The rounds interleave the endpoints; prints req/s, p50/p99 and the
server's CPU time per request for each round, then the medians, and two ratios to hello-world
taken round by round: req/s, and CPU per request (hello-world's over the endpoint's), which
moves less when the machine is busy. ``--before REV`` serves a worktree of an earlier commit
beside this checkout, on the same core and database, each endpoint measured on both in the same
rounds: a before/after comparison that the machine's drift from run to run cannot make up.
Needs a running stack and wrk (Debian's).

Endpoints: GET /query_task of a done task (answered from the API's memory of finished tasks,
its result links re-signed once a minute), GET /query_task of a waiting task (read from
PostgreSQL on every call), GET /tasks?limit=20, GET /health (readiness, cached) and
GET /health/live.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.flow import free_port, read_env, wait_up

ROOT = Path(__file__).resolve().parents[1]
# The servers share CPU 0; wrk runs on CPU 1.
PINNED = ["taskset", "-c", "0", sys.executable]
WRK = ["taskset", "-c", "1", "wrk", "-t1"]
QUIET = ["--no-access-log", "--log-level", "warning"]
HELLO = """
from litestar import Litestar, get

@get("/", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"hello": "world"}

app = Litestar([hello])
"""


@dataclass(frozen=True)
class Round:
    """One wrk run against one server."""

    rate: float  # req/s
    p50_ms: float
    p99_ms: float
    cpu_us: float  # the server process's CPU time (user + system) per request, in µs


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, seconds: int, connections: int, key: str | None, pid: int) -> Round:
    """One wrk run; ``pid``: the server's process, whose CPU time per request is taken."""
    header = ["-H", f"X-API-Key: {key}"] if key else []
    before = cpu_s(pid)
    out = subprocess.run(
        [*WRK, f"-c{connections}", f"-d{seconds}s", "--latency", *header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = cpu_s(pid) - before

    def found(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out)
        if match is None:
            raise RuntimeError(f"{url}: no {pattern!r} in wrk's output\n{out}")
        return match

    rate = float(found(r"Requests/sec:\s+([\d.]+)").group(1))
    served = int(found(r"(\d+) requests in").group(1))

    def ms(pct: str) -> float:
        value, unit = found(rf"{pct}%\s+([\d.]+)(us|ms|s)").groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    if "Non-2xx" in out:
        raise RuntimeError(f"{url}: non-2xx answers\n{out}")
    return Round(rate, ms("50"), ms("99"), used / served * 1e6)


# An endpoint to drive: its URL, the API key it needs (None: public), the serving process.
Target = tuple[str, str | None, int]
Runs = dict[str, list[Round]]


def measure(targets: Mapping[str, Target], rounds: int, seconds: int, connections: int) -> Runs:
    """Each target in turn, ``rounds`` times interleaved."""
    runs: Runs = {name: [] for name in targets}
    for r in range(rounds):
        for name, (url, key, pid) in targets.items():
            runs[name].append(got := wrk(url, seconds, connections, key, pid))
            print(
                f"round {r + 1} {name}: {got.rate:.0f} req/s, p50 {got.p50_ms:.2f}, "
                f"p99 {got.p99_ms:.2f} ms, {got.cpu_us:.0f} µs CPU/request"
            )
    return runs


def summary(runs: Runs, base: str = "hello-world") -> list[str]:
    """Per endpoint: medians of req/s and p99, and the medians of two ratios to ``base``
    taken round by round (each pair ran minutes apart at most): req/s, and the inverse of
    the server's CPU time per request, which a busier machine moves less than req/s."""
    lines = []
    for name, values in runs.items():
        pairs = list(zip(runs[base], values, strict=True))
        rate = statistics.median(v.rate for v in values)
        p99 = statistics.median(v.p99_ms for v in values)
        cpu = statistics.median(v.cpu_us for v in values)
        by_rate = statistics.median(v.rate / b.rate for b, v in pairs)
        by_cpu = statistics.median(b.cpu_us / v.cpu_us for b, v in pairs)
        lines.append(
            f"  {name:32} {rate:8.0f} req/s  p99 {p99:6.1f} ms  ratio {by_rate:.3f}"
            f"  {cpu:6.0f} µs CPU/request  ratio {by_cpu:.3f}"
        )
    return lines


def done_task(api: str, key: str) -> str:
    r = requests.get(f"{api}/tasks?status=done&limit=1", headers={"X-API-Key": key}, timeout=30)
    tasks = r.json()["tasks"]
    if not tasks:
        sys.exit("no done task on this stack: run one first (python -m bench.overhead)")
    task_id: str = tasks[0]["task_id"]
    return task_id


def waiting_task(api: str, key: str) -> str:
    """A new task of the checksum pipeline that nothing is uploaded to: it stays waiting."""
    r = requests.post(
        f"{api}/create_task", json={"pipeline": "checksum"}, headers={"X-API-Key": key}, timeout=30
    )
    r.raise_for_status()
    task_id: str = r.json()["task_id"]
    return task_id


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A checkout of ``rev`` (``git worktree``), removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )


def serve(tree: Path, port: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """``python -m orchestrator serve`` from ``tree``'s source (first on sys.path), on CPU 0."""
    return subprocess.Popen(
        [*PINNED, "-m", "orchestrator", "serve", "--port", str(port)],
        cwd=tree,
        env={**env, "HOOK_PORT": str(free_port()), "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default=".stack-test/env", type=Path)
    parser.add_argument("--rounds", default=3, type=int)
    parser.add_argument("--seconds", default=8, type=int)
    parser.add_argument("--connections", default=32, type=int)
    parser.add_argument(
        "--only", default="", help="comma-separated endpoint names to run (hello-world always)"
    )
    parser.add_argument(
        "--before",
        default="",
        help="also serve this commit (a git worktree) and measure each endpoint on it, "
        "interleaved: '<endpoint> (before)'",
    )
    args = parser.parse_args()
    env = read_env(args.env)
    key = env["API_KEY"]
    server_env = {**os.environ, **env, "LOG_LEVEL": "WARNING"}
    apis: dict[str, tuple[str, int]] = {}  # "" (this checkout) or " (before)": url, pid
    servers: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        Path(tmp, "hello.py").write_text(HELLO)
        trees = {"": ROOT}
        if args.before:
            trees[" (before)"] = stack.enter_context(worktree(args.before))
        try:
            for suffix, tree in trees.items():
                port = free_port()
                servers.append(serve(tree, port, server_env))
                apis[suffix] = (f"http://127.0.0.1:{port}", servers[-1].pid)
            hello_port = free_port()
            servers.append(
                subprocess.Popen(
                    [*PINNED, "-m", "uvicorn", "hello:app", "--port", str(hello_port), *QUIET],
                    cwd=tmp,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            for (url, _), server in zip(apis.values(), servers, strict=False):
                wait_up(f"{url}/health/live", server=server)
            wait_up(f"http://127.0.0.1:{hello_port}/", server=servers[-1])
            api = apis[""][0]
            # The same tasks on both (one database); made once, through this checkout.
            ids = {"done": done_task(api, key), "waiting": waiting_task(api, key)}
            paths: dict[str, tuple[str, str | None]] = {
                "query_task (done)": (f"/query_task/{ids['done']}", key),
                "query_task (waiting)": (f"/query_task/{ids['waiting']}", key),
                "tasks?limit=20": ("/tasks?limit=20", key),
                "health": ("/health", None),
                "health/live": ("/health/live", None),
            }
            only = {n.strip() for n in args.only.split(",") if n.strip()}
            if only - paths.keys():
                sys.exit(f"--only: unknown {sorted(only - paths.keys())}; known: {list(paths)}")
            # taskset execs each server: its pid is the server's.
            targets: dict[str, Target] = {
                "hello-world": (f"http://127.0.0.1:{hello_port}/", None, servers[-1].pid)
            }
            for name, (path, needs) in paths.items():
                if not only or name in only:
                    for suffix, (url, pid) in apis.items():
                        targets[name + suffix] = (url + path, needs, pid)
            runs = measure(targets, args.rounds, args.seconds, args.connections)
        finally:
            for s in servers:
                s.terminate()
                s.wait(30)
    print(f"\nmedians of {args.rounds} rounds, {args.connections} connections, one core each:")
    print("\n".join(summary(runs)))


if __name__ == "__main__":
    main()
