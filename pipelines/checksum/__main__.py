"""``python -m pipelines.checksum --first A --second B [--params P.json] --out DIR``.

Standard library only: this runs inside the pipeline's slim image. Files are hashed in chunks so
memory stays flat whatever their size. On bad input the last stderr line is ``error: <reason>``
and the exit code is 2; the worker shows that reason to the user.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024
OUTPUT = "checksums.json"


class InputError(Exception):
    """A problem with the user's input, reported as the task's reason."""


def digest(path: Path, algorithm: str = "sha256") -> dict[str, Any]:
    h = hashlib.new(algorithm)
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InputError(f"cannot read {path.name}: {exc.strerror}") from exc
    return {algorithm: h.hexdigest(), "bytes": size}


def load_params(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        params = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read parameters {path.name}: {exc}") from exc
    if not isinstance(params, dict):
        raise InputError("parameters must be a JSON object")
    return params


def hold_memory(mib: int) -> list[bytes]:
    # Each block is filled with non-zero bytes, so every page is really touched and counted by
    # the memory cgroup (a zeroed allocation could stay virtual).
    return [b"\x01" * (1024 * 1024) for _ in range(mib)]


def tick(seconds: int) -> None:
    for n in range(1, seconds + 1):
        print(f"tick {n}", flush=True)
        time.sleep(1)


def run(slots: dict[str, Path], out: Path, params: dict[str, Any]) -> Path:
    algorithm = str(params.get("algorithm", "sha256"))
    if algorithm not in hashlib.algorithms_available:
        raise InputError(f"unknown algorithm '{algorithm}'")
    held = hold_memory(int(params.get("allocate_mb", 0)))
    time.sleep(float(params.get("sleep_s", 0)))
    tick(int(params.get("tick_s", 0)))
    for name, path in slots.items():
        if not path.is_file():
            raise InputError(f"input '{name}' is missing")
    result = {name: digest(path, algorithm) for name, path in slots.items()}
    del held
    out.mkdir(parents=True, exist_ok=True)
    target = out / OUTPUT
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.checksum", description=__doc__)
    parser.add_argument("--first", type=Path, required=True)
    parser.add_argument("--second", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        target = run({"first": args.first, "second": args.second}, args.out, params)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
