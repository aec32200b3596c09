"""Upload throughput through tusd into MinIO, against a direct multipart PUT into the same MinIO.

    python -m bench.upload [--env .stack/env] [--size-mib 1024] [--runs 3]

Each run uploads one file of ``--size-mib`` twice, interleaved: (a) as a client does, with tuspy
to an upload URL from create_task, through tusd's s3store (hooks to the API included); (b) the
baseline, the same file straight into the uploads bucket with the minio SDK's multipart upload
(``fput_object``, the same part size). Prints each run and the medians, in MiB/s, and the ratio
tusd / direct. Both objects are deleted after each run. Then, from the API's
``orchestrator_hook_duration_seconds`` scraped before and after, the hook calls the runs made
and the bucket bound under which 99 % of them were handled, per hook type.

``--start-every S``: while each upload through tusd flows, another client starts an upload every
S seconds (a task made, an upload of 1 MiB declared on it: tusd's pre-create and post-create
hooks; then the upload terminated and the task killed), so that the hooks that begin uploads
are measured under the load of one in flight, in numbers enough for a p99.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from minio import Minio
from tusclient.client import TusClient

from bench.flow import Api, hook_buckets, hook_p99, read_env
from orchestrator.settings import split_endpoint

MiB = 1 << 20
PART = 64 * MiB  # tuspy's PATCH size and the SDK's multipart part size


def write_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as fh:
        for i in range(size // MiB):
            fh.write(block[i % 251 :] + block[: i % 251])  # no two MiB alike


def through_tusd(api: Api, path: Path) -> tuple[float, str]:
    task = api.create()
    t0 = time.monotonic()
    uploader = TusClient(task["upload_urls"]["first"]).uploader(
        str(path), chunk_size=PART, metadata={"filename": path.name}
    )
    uploader.upload()
    took = time.monotonic() - t0
    api.http.post(f"{api.url}/kill_task/{task['task_id']}", timeout=30)
    assert uploader.url is not None
    return took, uploader.url.split("/files/", 1)[1].rpartition("+")[0]


@contextmanager
def other_starts(
    api_url: str, api_key: str, every_s: float | None, started: list[int]
) -> Iterator[None]:
    """Uploads begun by another client, one each ``every_s`` seconds (on a fixed schedule)
    while the block runs; their count is appended to ``started``. Each is created with tus
    (no bytes sent), ended with tus's DELETE and its task killed. A failure in that client
    is raised when the block ends: a run whose extra load stopped is not reported."""
    if every_s is None:
        yield
        return
    stop = threading.Event()
    count = 0
    failures: list[BaseException] = []
    metadata = "filename " + base64.b64encode(b"probe.bin").decode()

    def start_one(own: Api, tus: requests.Session) -> None:
        task = own.create()
        try:
            r = tus.post(
                task["upload_urls"]["first"],
                headers={"Upload-Length": str(MiB), "Upload-Metadata": metadata},
                timeout=30,
            )
            assert r.status_code == 201, (r.status_code, r.text)
            tus.delete(r.headers["Location"], timeout=30).raise_for_status()
        finally:
            own.http.post(f"{own.url}/kill_task/{task['task_id']}", timeout=30).raise_for_status()

    def run() -> None:
        nonlocal count
        own = Api(api_url, api_key)
        with own.http, requests.Session() as tus:
            tus.headers["Tus-Resumable"] = "1.0.0"
            due = time.monotonic()
            try:
                while not stop.wait(max(0.0, due - time.monotonic())):
                    start_one(own, tus)
                    count += 1
                    due += every_s
            except BaseException as exc:
                failures.append(exc)

    thread = threading.Thread(target=run, name="other-starts")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        started.append(count)
    if failures:
        raise RuntimeError("the client beginning other uploads failed") from failures[0]


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def direct(s3: Minio, bucket: str, path: Path) -> tuple[float, str]:
    key = f"bench-direct/{uuid.uuid4().hex}"
    t0 = time.monotonic()
    s3.fput_object(bucket, key, str(path), part_size=PART)
    return time.monotonic() - t0, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default=".stack/env", type=Path)
    parser.add_argument("--size-mib", default=1024, type=int)
    parser.add_argument("--runs", default=3, type=int)
    parser.add_argument("--start-every", type=positive, default=None, metavar="S")
    args = parser.parse_args()
    env = read_env(args.env)
    api_key = env.get("API_KEY", "")
    api = Api(env["API_URL"], api_key)
    host, secure = split_endpoint(env["S3_ENDPOINT"])
    s3 = Minio(
        host,
        env["S3_ACCESS_KEY"],
        env["S3_SECRET_KEY"],
        secure=secure,
        region=env.get("S3_REGION", "us-east-1"),
    )
    bucket = env.get("UPLOADS_BUCKET", "uploads")
    size = args.size_mib * MiB
    rates: dict[str, list[float]] = {"tusd": [], "direct": []}
    started: list[int] = []
    hooks_before = hook_buckets(api)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "survey.bin")
        write_file(path, size)
        for run in range(args.runs):
            # Alternate which goes first, so neither always meets a warm or a cold cache.
            order = ("tusd", "direct") if run % 2 == 0 else ("direct", "tusd")
            line = []
            for name in order:
                if name == "tusd":
                    with other_starts(api.url, api_key, args.start_every, started):
                        took, key = through_tusd(api, path)
                else:
                    took, key = direct(s3, bucket, path)
                stat = s3.stat_object(bucket, key)
                assert stat.size == size, (name, stat.size)
                s3.remove_object(bucket, key)
                rates[name].append(args.size_mib / took)
                line.append(f"{name} {args.size_mib / took:7.1f} MiB/s ({took:5.1f} s)")
            print(f"run {run + 1}: " + ", ".join(line), flush=True)
    tusd, base = statistics.median(rates["tusd"]), statistics.median(rates["direct"])
    print(
        f"median over {args.runs} runs of {args.size_mib} MiB: through tusd {tusd:.1f} MiB/s, "
        f"direct multipart PUT {base:.1f} MiB/s, ratio {tusd / base:.2f}"
    )
    if started:
        print(
            f"uploads begun by another client during those through tusd: {sum(started)} "
            "(the tusd figures above are under that load, the direct ones not)"
        )
    # The API's own histogram of the hooks these uploads made (other clients' too, if any).
    print("hook handling time in the API (orchestrator_hook_duration_seconds):")
    print(hook_p99(hooks_before, hook_buckets(api)))


if __name__ == "__main__":
    main()
