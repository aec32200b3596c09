"""The CPUs and memory this process may use: the container's cgroup limits where there are
some (``docker run --cpus 2 --memory 4g`` shows the host's count to ``os.cpu_count``),
otherwise the machine's."""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP = Path("/sys/fs/cgroup")


def _read(name: str) -> str | None:
    try:
        return (_CGROUP / name).read_text().strip()
    except OSError:
        return None


def cpus() -> int:
    available = len(os.sched_getaffinity(0))
    quota = _read("cpu.max")  # "max 100000" or "200000 100000" (cgroup v2)
    if quota is not None:
        limit, _, period = quota.partition(" ")
        if limit != "max" and period:
            available = min(available, max(1, math.floor(int(limit) / int(period))))
    return max(1, available)


def memory_bytes() -> int:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _read("memory.max")
    if limit is not None and limit != "max":
        return min(physical, int(limit))
    return physical
