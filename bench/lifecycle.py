"""Data lifecycle under load: what a delete costs, and whether stored bytes stay flat.

    python -m bench.lifecycle delete [--env .stack/env] [--size-mib 1024] [--runs 3]
    python -m bench.lifecycle soak [--env .stack/env] [--minutes 30]

``delete``: a checksum task with two inputs of ``--size-mib`` each, uploaded through tusd and
run to done, then ``DELETE /tasks/{id}`` timed until it answers (every object gone, since a
done task is purged in the request). Baseline, in the same run: the same two objects written
straight into the uploads bucket and removed with one S3 multi-object delete, timed. Prints
each run, the medians and the ratio.

``soak``: the stack must run with retention set to minutes, e.g.

    INPUT_RETENTION_S=60 RESULT_RETENTION_S=180 WAITING_EXPIRY_S=120 MULTIPART_ABORT_S=120 \\
        python -m devstack up

Every ``--every-s`` it submits a checksum task with two 8 MiB inputs (run to done), and every
third time also a task whose upload stops half way (a waiting task with an unfinished
multipart upload, left to expire). Each minute it lists both buckets and the unfinished
uploads, and prints bytes and objects: with retention working they level off once the first
retention periods have passed, instead of growing with the tasks submitted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from minio import Minio
from minio.deleteobjects import DeleteObject
from tusclient.client import TusClient

from bench.flow import Api, read_env, upload
from bench.upload import write_file
from orchestrator.settings import split_endpoint

MiB = 1 << 20


def s3_of(env: dict[str, str]) -> Minio:
    host, secure = split_endpoint(env["S3_ENDPOINT"])
    return Minio(
        host, env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], secure=secure, region=env["S3_REGION"]
    )


def delete_run(api: Api, files: dict[str, Path]) -> float:
    task = api.create()
    for slot, path in files.items():
        upload(task["upload_urls"][slot], path)
    done = api.wait(task["task_id"], {"done", "error", "killed"}, timeout_s=900)
    assert done["status"] == "done", done
    t0 = time.monotonic()
    r = api.http.delete(f"{api.url}/tasks/{task['task_id']}", timeout=300)
    took = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["data_removed"], r.text
    return took


def direct_run(s3: Minio, bucket: str, files: dict[str, Path]) -> float:
    prefix = f"bench-delete/{uuid.uuid4().hex}/"
    for slot, path in files.items():
        s3.fput_object(bucket, prefix + slot, str(path), part_size=64 * MiB)
    t0 = time.monotonic()
    names = [o.object_name for o in s3.list_objects(bucket, prefix=prefix, recursive=True)]
    errors = list(s3.remove_objects(bucket, [DeleteObject(n) for n in names if n]))
    took = time.monotonic() - t0
    assert not errors, errors
    return took


def bench_delete(env: dict[str, str], size_mib: int, runs: int) -> None:
    api, s3 = Api(env["API_URL"], env["API_KEY"]), s3_of(env)
    with tempfile.TemporaryDirectory() as tmp:
        files = {slot: Path(tmp) / f"{slot}.bin" for slot in ("first", "second")}
        for path in files.values():
            write_file(path, size_mib * MiB)
        ours, base = [], []
        for i in range(runs):
            ours.append(delete_run(api, files))
            base.append(direct_run(s3, env.get("UPLOADS_BUCKET", "uploads"), files))
            print(
                f"run {i + 1}: DELETE /tasks {ours[-1]:.3f} s   direct S3 delete {base[-1]:.3f} s"
            )
    a, b = statistics.median(ours), statistics.median(base)
    print(f"2 x {size_mib} MiB, median of {runs}: DELETE {a:.3f} s, direct {b:.3f} s, {a / b:.2f}x")


def usage(s3: Minio, bucket: str) -> tuple[int, int]:
    objects = size = 0
    for o in s3.list_objects(bucket, recursive=True):
        objects += 1
        size += o.size or 0
    return objects, size


def unfinished(s3: Minio, bucket: str) -> int:
    return len(s3._list_multipart_uploads(bucket, max_uploads=1000).uploads)


def abandoned(api: Api, path: Path) -> None:
    """A task whose first upload stops half way: one 6 MiB part stays in a multipart upload."""
    task = api.create()
    uploader = TusClient(task["upload_urls"]["first"]).uploader(
        str(path), chunk_size=6 * MiB, metadata={"filename": path.name}
    )
    uploader.upload(stop_at=6 * MiB)


def soak(env: dict[str, str], minutes: float, every_s: float) -> None:
    api, s3 = Api(env["API_URL"], env["API_KEY"]), s3_of(env)
    buckets = (env.get("UPLOADS_BUCKET", "uploads"), env.get("RESULTS_BUCKET", "results"))
    rows: list[tuple[float, int, int, int, int, int, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {slot: Path(tmp) / f"{slot}.bin" for slot in ("first", "second")}
        for path in files.values():
            path.write_bytes(os.urandom(8 * MiB))
        half = Path(tmp) / "half.bin"
        half.write_bytes(os.urandom(12 * MiB))
        start = time.monotonic()
        next_sample = start
        submitted = 0
        print("min  tasks  uploads MiB (objects)  results MiB (objects)  unfinished uploads")
        while time.monotonic() - start < minutes * 60:
            task = api.create()
            for slot, path in files.items():
                upload(task["upload_urls"][slot], path)
            if submitted % 3 == 0:
                abandoned(api, half)
            submitted += 1
            api.wait(task["task_id"], {"done", "error", "killed"}, timeout_s=300)
            if time.monotonic() >= next_sample:
                (uo, ub), (ro, rb) = (usage(s3, b) for b in buckets)
                mp = unfinished(s3, buckets[0])
                at = (time.monotonic() - start) / 60
                rows.append((at, submitted, ub, uo, rb, ro, mp))
                print(
                    f"{at:4.1f} {submitted:6d}  {ub / MiB:10.1f} ({uo:5d})  "
                    f"{rb / MiB:10.1f} ({ro:5d})  {mp:6d}",
                    flush=True,
                )
                next_sample += 60
            time.sleep(max(0.0, every_s - (time.monotonic() - start) % every_s))
    if len(rows) >= 4:
        tail = rows[len(rows) // 2 :]
        total = [ub + rb for _, _, ub, _, rb, _, _ in tail]
        print(
            f"second half ({len(tail)} samples): stored MiB min {min(total) / MiB:.1f}, "
            f"median {statistics.median(total) / MiB:.1f}, max {max(total) / MiB:.1f}; "
            f"tasks submitted {rows[-1][1]}, "
            f"MiB uploaded in all {rows[-1][1] * 16 + (rows[-1][1] + 2) // 3 * 6}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle")
    parser.add_argument("what", choices=("delete", "soak"))
    parser.add_argument("--env", type=Path, default=Path(".stack/env"))
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every-s", type=float, default=20.0)
    args = parser.parse_args()
    env = read_env(args.env)
    if args.what == "delete":
        bench_delete(env, args.size_mib, args.runs)
    else:
        soak(env, args.minutes, args.every_s)


if __name__ == "__main__":
    main()
