"""What this worker machine has: CPUs, memory, disk and NVIDIA GPUs (psutil, pynvml).

GPU discovery never fails the worker: without pynvml, without a driver, or with NVML erroring,
the machine simply has no GPUs.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

import psutil

log = logging.getLogger(__name__)

# Hardware is sampled again for every announcement: say "no GPUs, and why" once per process.
_reported_no_nvml = False


@dataclass(frozen=True)
class Gpu:
    index: int
    model: str
    memory_bytes: int
    utilisation_pct: int | None = None  # None: the board does not report it


@dataclass(frozen=True)
class Hardware:
    """A snapshot: logical CPUs, total memory (bytes), free and total disk of the work dir
    (bytes), NVIDIA GPUs."""

    cpus: int
    memory_bytes: int
    disk_free_bytes: int
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)
    disk_bytes: int = 0

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_nvml() -> ModuleType | None:
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return None
    return pynvml


def _text(value: str | bytes) -> str:
    # Older NVML bindings return bytes, newer ones str.
    return value.decode() if isinstance(value, bytes) else value


def discover_gpus(nvml: ModuleType | None = None) -> tuple[Gpu, ...]:
    """Every NVIDIA GPU NVML reports; () when NVML is missing or fails in any way."""
    nvml = nvml if nvml is not None else _load_nvml()
    if nvml is None:
        return ()
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        global _reported_no_nvml
        if not _reported_no_nvml:
            log.info("no NVIDIA GPUs: NVML unavailable", extra={"error": str(exc)})
            _reported_no_nvml = True
        return ()
    try:
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            try:
                util: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:  # not supported on some boards
                util = None
            gpus.append(
                Gpu(
                    index=i,
                    model=_text(nvml.nvmlDeviceGetName(handle)),
                    memory_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                    utilisation_pct=util,
                )
            )
        return tuple(gpus)
    except Exception as exc:
        log.warning("GPU discovery failed; assuming none", extra={"error": str(exc)})
        return ()
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def discover(work_dir: str, nvml: ModuleType | None = None) -> Hardware:
    """This machine's resources; ``work_dir`` is where runs are staged (its free disk counts)."""
    try:
        usage = shutil.disk_usage(work_dir)
        disk_free, disk_total = usage.free, usage.total
    except OSError:
        disk_free = disk_total = 0
    return Hardware(
        cpus=psutil.cpu_count(logical=True) or 1,
        memory_bytes=int(psutil.virtual_memory().total),
        disk_free_bytes=int(disk_free),
        disk_bytes=int(disk_total),
        gpus=discover_gpus(nvml),
    )
