"""Benchmark of the volcal_baseline pipeline against analytic ground truth.

Accuracy: volume error (%) per feature (200 to 20 000 m3) over a sweep of noise (1 to 10 cm)
and misalignment (0 to 2 m and 0 to 2 deg). Cost: wall time and peak memory (summed over the
pipeline's processes) end to end from 2 x 1 M to 2 x 200 M points, in the pipeline's image under
its default limits (2 CPUs, 4 GiB), on sites that grow past 400 m at 70 points/m2.

    .venv/bin/python bench/volcal.py                  # the full run recorded in docs/volcal.md
    .venv/bin/python bench/volcal.py --quick          # a smaller sweep, a few minutes
    .venv/bin/python bench/volcal.py --noise "" --scale 200000000   # the 2 x 200 M run alone

The cost runs need the image (``python -m devstack images``) and about 14 GB of disk at 200 M.

Every run is the real command line in a subprocess, on files written by
``pipelines.volcal_baseline.synthetic``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.volcal_baseline.spec import SPEC  # noqa: E402
from pipelines.volcal_baseline.synthetic import (  # noqa: E402
    DEFAULT_VOLUMES,
    SurveyConfig,
    generate,
)

# Points per m2 of the cost runs' larger sites.
SCALE_DENSITY = 70.0

# Runs the pipeline as a grandchild and prints its exit code, wall time and peak memory: the
# largest sum of resident memory over the pipeline and its worker processes (sampled twice a
# second from /proc), which is what a container's memory limit holds against.
_MEASURE = """
import os, subprocess, sys, threading, time

def tree_rss(root):
    parent, rss = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                parent[int(pid)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/status") as fh:
                line = next((x for x in fh if x.startswith("VmRSS:")), "VmRSS: 0 kB")
            rss[int(pid)] = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [c for c, p in parent.items() if p == pid]
    return total

t = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
peak = 0
while proc.poll() is None:
    peak = max(peak, tree_rss(proc.pid))
    time.sleep(0.5)
wall = time.perf_counter() - t
print(f"@@ {proc.returncode} {wall} {peak}")
"""


@dataclass
class Run:
    noise_m: float
    shift_m: float
    rotation_deg: float
    points: int
    post_points: int
    errors: dict[float, float]  # true volume -> signed error, %
    wall_s: float
    rss_mib: float
    registration_rmse_m: float
    lod_m: float
    missing: int
    stages: dict[str, float]  # the report's timings_s


def _pipeline_args(survey: Path, out: Path) -> list[str]:
    return [
        "-m",
        "pipelines.volcal_baseline",
        "--pre",
        str(survey / "pre.las"),
        "--post",
        str(survey / "post.laz"),
        "--stable",
        str(survey / "stable.shp"),
        "--out",
        str(out),
    ]


def _in_image(survey: Path, out: Path) -> list[str]:
    """The pipeline in its own image with the spec's default limits, mounted as the worker
    mounts a task (read-only inputs, no network, read-only root, a non-root user)."""
    res = SPEC.resources
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o777)
    return [
        "docker",
        "run",
        "--rm",
        f"--cpus={res.cpus:g}",
        f"--memory={res.memory_bytes}",
        f"--memory-swap={res.memory_bytes}",
        f"--pids-limit={res.pids}",
        "--network=none",
        "--read-only",
        "--tmpfs=/tmp:rw,size=64m",
        "--user=10001",
        "-v",
        f"{survey}:/in:ro",
        "-v",
        f"{out}:/out",
        SPEC.image,
        "python3",
        "-c",
        _MEASURE,
        "python3",
        *_pipeline_args(Path("/in"), Path("/out")),
    ]


def measure(survey: Path, out: Path, image: bool = False) -> tuple[float, float, dict[str, Any]]:
    if image:
        cmd = _in_image(survey, out)
    else:
        cmd = [sys.executable, "-c", _MEASURE, sys.executable, *_pipeline_args(survey, out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@ ")), None)
    if line is None:
        raise RuntimeError(f"benchmark harness failed: {proc.stderr[-2000:]}")
    rc, wall, rss = line.split()[1:]
    if int(rc) != 0:
        raise RuntimeError(f"pipeline failed (exit {rc}): {proc.stderr.strip()[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    return float(wall), int(rss) / 1024.0, report


def one(cfg: SurveyConfig, work: Path, image: bool = False) -> Run:
    def key(volume: float) -> float:  # the configured volume, not its float round-trip
        return min(cfg.volumes, key=lambda v: abs(v - volume))

    survey, out = work / "survey", work / "out"
    shutil.rmtree(work, ignore_errors=True)
    truth = generate(survey, cfg)
    wall, rss, report = measure(survey, out, image)
    errors: dict[float, float] = {}
    missing = 0
    for f in truth.features:
        cx, cy, vol, net = (
            float(f["cx"]),
            float(f["cy"]),
            float(f["volume_m3"]),
            float(f["net_m3"]),
        )
        near = [
            r
            for r in report["regions"]
            if math.hypot(r["centroid_x"] - cx, r["centroid_y"] - cy) < float(f["radius"])
        ]
        if not near:
            missing += 1
            errors[key(vol)] = math.nan
            continue
        got = sum(r["net_m3"] for r in near)
        errors[key(vol)] = 100.0 * (got - net) / abs(net)
    shutil.rmtree(work, ignore_errors=True)
    return Run(
        cfg.noise_m,
        cfg.shift_m,
        cfg.rotation_deg,
        cfg.points,
        cfg.post_points or cfg.points,
        errors,
        wall,
        rss,
        report["registration"]["rmse_m"],
        report["level_of_detection_m"],
        missing,
        report["timings_s"],
    )


def site_size(points: int) -> float:
    """The side of the cost runs' square site, m: 400 m, or larger at drone-LiDAR density
    (``SCALE_DENSITY``), so that 2 x 200 M points cover the 1.7 km site of issue 12."""
    return max(400.0, math.sqrt(points / SCALE_DENSITY))


def _worst(run: Run, above: float) -> float:
    vals = [abs(e) for v, e in run.errors.items() if v > above]
    return max(vals) if vals else math.nan


def target(run: Run) -> tuple[float | None, str]:
    """The issue's target that applies to this configuration, if any."""
    if run.noise_m <= 0.03 + 1e-9 and run.shift_m <= 1.0 and run.rotation_deg <= 1.0:
        return 0.5, "< 0.5 %"
    if run.noise_m <= 0.10 + 1e-9 and run.shift_m <= 2.0 and run.rotation_deg <= 2.0:
        return 1.0, "< 1 %"
    return None, ""


def accuracy_table(runs: list[Run], volumes: tuple[float, ...]) -> str:
    head = (
        "| noise (cm) | shift (m) | rot (°) | "
        + " | ".join(f"{v:,.0f} m³" for v in volumes)
        + " | worst > 800 m³ | target | ICP RMSE (m) | "
        "LoD (m) | time (s) |"
    )
    sep = "|" + "---|" * (head.count("|") - 1)
    lines = [head, sep]
    for r in runs:
        limit, label = target(r)
        worst = _worst(r, 800.0)
        verdict = "" if limit is None else (f"{label} {'✅' if worst < limit else '❌'}")
        cells = " | ".join(f"{r.errors.get(v, math.nan):+.3f} %" for v in volumes)
        lines.append(
            f"| {100 * r.noise_m:.0f} | {r.shift_m:g} | {r.rotation_deg:g} | {cells} | "
            f"{worst:.3f} % | {verdict} | {r.registration_rmse_m:.3f} | "
            f"{r.lod_m:.3f} | {r.wall_s:.1f} |"
        )
    return "\n".join(lines)


def cost_table(runs: list[Run]) -> str:
    lines = [
        "| points (pre + post) | site (m) | wall time (s) | peak memory (MiB) | worst > 800 m³ "
        "| read + sample / rasterise + tile / M3C2 / other (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        st = r.stages
        read, raster, m3c2 = st.get("read", 0.0), st.get("rasterise", 0.0), st["change_detection"]
        other = st["total"] - read - raster - m3c2
        lines.append(
            f"| {r.points / 1e6:g} M + {r.post_points / 1e6:g} M | {site_size(r.points):.0f} | "
            f"{r.wall_s:.1f} | {r.rss_mib:.0f} | {_worst(r, 800.0):.3f} % "
            f"| {read:.0f} / {raster:.0f} / {m3c2:.0f} / {other:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--points", type=int, default=1_000_000, help="points per epoch, sweep")
    ap.add_argument(
        "--post-ratio",
        type=float,
        default=0.8,
        help="post epoch density relative to pre (different densities)",
    )
    ap.add_argument("--noise", type=str, default="0.01,0.03,0.05,0.10", help="m")
    ap.add_argument(
        "--misalignment", type=str, default="0:0,1:1,2:2", help="shift_m:rotation_deg pairs"
    )
    ap.add_argument(
        "--scale",
        type=str,
        default="1000000,10000000,50000000,100000000,200000000",
        help="points per epoch for the cost runs",
    )
    ap.add_argument(
        "--on-host",
        action="store_true",
        help="cost runs on this machine's Python instead of the pipeline image with its limits",
    )
    ap.add_argument("--quick", action="store_true", help="300 k points, fewer configurations")
    ap.add_argument("--json", type=Path, default=None, help="also write raw results here")
    a = ap.parse_args()
    if a.quick:
        a.points, a.noise, a.misalignment, a.scale = 300_000, "0.03,0.10", "1:1,2:2", "1000000"
    volumes = DEFAULT_VOLUMES
    work = Path(tempfile.mkdtemp(prefix="volcal-bench-"))
    runs: list[Run] = []
    try:
        seed = 0
        for noise in (float(x) for x in a.noise.split(",") if x):
            for pair in a.misalignment.split(","):
                shift, rot = (float(x) for x in pair.split(":"))
                seed += 1
                cfg = SurveyConfig(
                    points=a.points,
                    post_points=int(a.points * a.post_ratio),
                    noise_m=noise,
                    shift_m=shift,
                    rotation_deg=rot,
                    volumes=volumes,
                    seed=seed,
                )
                runs.append(one(cfg, work / "acc"))
                print(
                    f"noise {noise} m, {shift} m / {rot} deg: worst > 800 m3 "
                    f"{_worst(runs[-1], 800):.3f} %",
                    file=sys.stderr,
                    flush=True,
                )
        costs: list[Run] = []
        for n in (int(x) for x in a.scale.split(",") if x):
            cfg = SurveyConfig(
                points=n,
                post_points=n,
                size_m=site_size(n),
                noise_m=0.03,
                shift_m=1.0,
                rotation_deg=1.0,
                volumes=volumes,
                seed=100,
            )
            costs.append(one(cfg, work / "cost", image=not a.on_host))
            print(
                f"{n} points: {costs[-1].wall_s:.1f} s, {costs[-1].rss_mib:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"## Volume error vs analytic truth ({a.points:,} + {int(a.points * a.post_ratio):,}"
        " points, 400 m x 400 m site; signed error of net volume per feature)\n"
    )
    print(accuracy_table(runs, volumes))
    print("\n## Cost end to end (3 cm noise, 1 m / 1° misalignment)\n")
    print(cost_table(costs))
    if a.json:
        a.json.write_text(json.dumps([r.__dict__ for r in runs + costs], indent=2, default=str))
    failed = [r for r in runs if (t := target(r)[0]) is not None and not _worst(r, 800) < t]
    slow = [r for r in costs if r.points == 1_000_000 and (r.wall_s >= 60 or r.rss_mib >= 2048)]
    # Issue 12's target: 2 x 200 M points inside the default slot in under 15 minutes.
    slow += [r for r in costs if r.points >= 200_000_000 and r.wall_s >= 900]
    return 1 if failed or slow else 0


if __name__ == "__main__":
    sys.exit(main())
