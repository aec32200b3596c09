"""Spec of the ``checksum`` pipeline.

Besides ``algorithm`` it takes three test aids, ``sleep_s``, ``allocate_mb`` and ``tick_s``: they
make the container sleep, hold that much memory, or print one line a second for that many seconds
before hashing, so integration and end-to-end tests can produce a real timeout, a real
out-of-memory kill, a long-running task to kill and live log output to follow. They default to 0
and are harmless otherwise (bounded, and the container's limits still apply).
"""

from __future__ import annotations

from pipelines.spec import GiB, InputSlot, MiB, Param, PipelineSpec, Resources

SPEC = PipelineSpec(
    name="checksum",
    description="SHA-256 and byte count of two files, written to checksums.json.",
    inputs=(
        InputSlot("first", required=True, max_bytes=1 * GiB, description="Any file."),
        InputSlot("second", required=True, max_bytes=1 * GiB, description="Any file."),
    ),
    params=(
        Param("algorithm", str, "sha256", choices=("sha256",), description="Digest algorithm."),
        Param(
            "sleep_s",
            int,
            0,
            minimum=0,
            maximum=3600,
            description="Test aid: seconds to sleep before hashing.",
        ),
        Param(
            "allocate_mb",
            int,
            0,
            minimum=0,
            maximum=65536,
            description="Test aid: MiB of memory to allocate and touch before hashing.",
        ),
        Param(
            "tick_s",
            int,
            0,
            minimum=0,
            maximum=3600,
            description="Test aid: print 'tick N' once a second for this many seconds first.",
        ),
    ),
    resources=Resources(cpus=0.5, memory_bytes=256 * MiB, gpus=0, timeout_s=300, pids=64),
    image="pipeline-checksum:latest",
    command=(
        "python3",
        "-m",
        "pipelines.checksum",
        "--first",
        "{in:first}",
        "--second",
        "{in:second}",
        "--params",
        "{params}",
        "--out",
        "{out}",
    ),
)
