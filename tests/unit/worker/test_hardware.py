from __future__ import annotations

import builtins
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from worker import hardware


class FakeNvml(ModuleType):
    def __init__(self, names: list[str], fail_init: bool = False, fail_util: bool = False):
        super().__init__("pynvml")
        self.names = names
        self.fail_init = fail_init
        self.fail_util = fail_util
        self.shutdown_called = False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdown_called = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.names)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, handle: int) -> Any:
        return self.names[handle].encode() if handle % 2 else self.names[handle]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(total=(handle + 1) * 1024**3)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        if self.fail_util:
            raise RuntimeError("Not Supported")
        return SimpleNamespace(gpu=42)


def test_gpus_reported_with_model_memory_and_utilisation() -> None:
    nvml = FakeNvml(["NVIDIA H100", "NVIDIA A10"])
    gpus = hardware.discover_gpus(nvml)
    assert [g.model for g in gpus] == ["NVIDIA H100", "NVIDIA A10"]
    assert [g.memory_bytes for g in gpus] == [1024**3, 2 * 1024**3]
    assert gpus[0].utilisation_pct == 42
    assert nvml.shutdown_called


def test_unsupported_utilisation_is_none_not_a_failure() -> None:
    gpus = hardware.discover_gpus(FakeNvml(["T4"], fail_util=True))
    assert len(gpus) == 1 and gpus[0].utilisation_pct is None


def test_nvml_init_failing_means_no_gpus() -> None:
    assert hardware.discover_gpus(FakeNvml(["x"], fail_init=True)) == ()


def test_nvml_failing_mid_query_means_no_gpus() -> None:
    nvml = FakeNvml(["x"])
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: (_ for _ in ()).throw(RuntimeError("GPU lost"))  # type: ignore[method-assign]
    assert hardware.discover_gpus(nvml) == ()
    assert nvml.shutdown_called


def test_missing_pynvml_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pynvml(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    assert hardware.discover_gpus() == ()


def test_discover_without_gpus_reports_the_machine(tmp_path: Any) -> None:
    hw = hardware.discover(str(tmp_path), FakeNvml([], fail_init=True))
    assert hw.cpus >= 1
    assert hw.memory_bytes > 0
    assert hw.disk_free_bytes > 0
    assert hw.gpus == () and hw.gpu_count == 0
    assert hw.as_dict()["gpus"] == ()


def test_discover_on_this_machine_never_raises(tmp_path: Any) -> None:
    # Real pynvml on a machine without a driver: must degrade to no GPUs, not fail.
    hw = hardware.discover(str(tmp_path))
    assert hw.gpu_count == len(hw.gpus)
