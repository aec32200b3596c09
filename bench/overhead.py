"""Per-task overhead against a bare container run, on a running stack.

    python -m bench.overhead [--env .stack-test/env] [--runs 7] [--burst 20] [--burst-runs 3]

Both sides run the `checksum` pipeline's image on the same two tiny inputs, with the same
limits and mounts (the docker executor's own ``container_options``), on the same Docker engine.

* **single**: a task, from the last upload returning to its ``finished_at`` (the moment the
  worker recorded `done`, PostgreSQL's clock on this same machine), against one bare run
  (create, start, wait, logs, remove through the Engine API, as ``docker run --rm`` does).
  Polling query_task would add up to a poll interval to the task's side only; the time the
  poll saw `done` is printed too. The pairs are interleaved; prints each pair, the medians,
  and the ratio task / bare.
* **burst**: ``--burst`` tasks uploaded first and started at once, tasks per minute from the
  first ``queued_at`` to the last ``finished_at`` (PostgreSQL's own timestamps), against the same
  number of bare runs one after another; ``--burst-runs`` pairs, which side goes first
  alternating, and the median of their ratios.

Speed is not asserted anywhere: these figures are the record (docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import docker

from bench.flow import Api, read_env, upload
from pipelines.checksum.spec import SPEC
from worker.executors.base import RunRequest
from worker.executors.docker import DockerExecutor

TERMINAL = {"done", "error", "killed"}


def bare_run(client: docker.DockerClient, executor: DockerExecutor, work: Path) -> float:
    """Seconds for one container run with the executor's exact options, nothing else."""
    out = Path(tempfile.mkdtemp(dir=work))
    out.chmod(0o777)
    request = RunRequest(
        task_id=f"bench-{uuid.uuid4().hex[:8]}",
        image=SPEC.image,
        command=SPEC.command,
        inputs={"first": "first.txt", "second": "second.txt"},
        in_dir=work / "in",
        out_dir=out,
        params_file="params.json",
        log_path=out / "log.txt",
        resources=SPEC.resources,
        stop=threading.Event(),
    )
    options = executor.container_options(request)
    options.pop("detach")
    t0 = time.monotonic()
    client.containers.run(**options, detach=False, remove=True)
    return time.monotonic() - t0


def task_run(api: Api, inputs: dict[str, Path]) -> tuple[float, float]:
    """Seconds from the last upload returning to the task's ``finished_at``, and to a poll of
    query_task (every 50 ms) seeing it done."""
    task = api.create()
    for slot, path in inputs.items():
        upload(task["upload_urls"][slot], path)
    t0, wall0 = time.monotonic(), time.time()
    final = api.wait(task["task_id"], TERMINAL)
    polled = time.monotonic() - t0
    assert final["status"] == "done", final
    return _at(final["finished_at"]).timestamp() - wall0, polled


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def burst(api: Api, inputs: dict[str, Path], n: int) -> float:
    """Tasks per minute for ``n`` tasks uploaded first, all started together."""
    tasks = [api.create() for _ in range(n)]
    for task in tasks:
        for slot, path in inputs.items():
            upload(task["upload_urls"][slot], path)
    finals = [api.wait(t["task_id"], TERMINAL, timeout_s=600) for t in tasks]
    assert all(f["status"] == "done" for f in finals), [f["status"] for f in finals]
    first = min(_at(f["queued_at"]) for f in finals)
    last = max(_at(f["finished_at"]) for f in finals)
    return n / (last - first).total_seconds() * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default=".stack-test/env", type=Path)
    parser.add_argument("--runs", default=7, type=int)
    parser.add_argument("--burst", default=20, type=int)
    parser.add_argument("--burst-runs", default=3, type=int, help="burst pairs (median)")
    args = parser.parse_args()
    env = read_env(args.env)
    api = Api(env["API_URL"], env.get("API_KEY", ""))
    client = docker.from_env()
    executor = DockerExecutor(client)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        (work / "in").mkdir()
        inputs = {}
        for slot in ("first", "second"):
            path = work / "in" / f"{slot}.txt"
            path.write_text(f"{slot} input\n")
            inputs[slot] = path
        (work / "in" / "params.json").write_text('{"algorithm": "sha256"}')

        bare_run(client, executor, work)  # warm the image's page cache for both sides
        task_run(api, inputs)
        tasks, polls, bares = [], [], []
        for i in range(args.runs):
            took, polled = task_run(api, inputs)
            tasks.append(took)
            polls.append(polled)
            bares.append(bare_run(client, executor, work))
            print(
                f"pair {i + 1}: task {took:.3f} s (seen by polling {polled:.3f} s), "
                f"bare run {bares[-1]:.3f} s"
            )
        t, p, b = statistics.median(tasks), statistics.median(polls), statistics.median(bares)
        print(
            f"single: task {t:.3f} s, bare {b:.3f} s (medians of {args.runs}); ratio {t / b:.2f}"
            f" (seen by polling: {p:.3f} s, ratio {p / b:.2f})"
        )

        def bare_burst(n: int) -> float:
            t0 = time.monotonic()
            for _ in range(n):
                bare_run(client, executor, work)
            return n / (time.monotonic() - t0) * 60

        ratios = []
        for i in range(args.burst_runs if args.burst else 0):
            # Alternate which side goes first: the machine's drift then favours neither.
            if i % 2 == 0:
                rate = burst(api, inputs, args.burst)
                bare_rate = bare_burst(args.burst)
            else:
                bare_rate = bare_burst(args.burst)
                rate = burst(api, inputs, args.burst)
            ratios.append(rate / bare_rate)
            print(
                f"burst pair {i + 1}: {rate:.0f} tasks/min, sequential bare runs "
                f"{bare_rate:.0f}/min; ratio {ratios[-1]:.2f}"
            )
        if ratios:
            print(
                f"burst of {args.burst}: ratio {statistics.median(ratios):.2f} "
                f"(median of {len(ratios)} pairs)"
            )


if __name__ == "__main__":
    main()
