"""Human output of the CLI: rich tables and one-line summaries. ``--json`` bypasses all this."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.client.api import Downloaded

STATUS_STYLE = {
    "waiting": "yellow",
    "pending": "cyan",
    "running": "blue",
    "done": "green",
    "error": "red",
    "killed": "magenta",
}


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _time(value: str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime(fmt)
    except ValueError:
        return value


def _elapsed(task: dict[str, Any]) -> str | None:
    start, end = task.get("started_at"), task.get("finished_at")
    if not start:
        return None
    try:
        t0 = datetime.fromisoformat(start)
        t1 = datetime.fromisoformat(end) if end else datetime.now(t0.tzinfo)
    except ValueError:
        return None
    return f"{(t1 - t0).total_seconds():.0f} s"


def status_line(task: dict[str, Any]) -> str:
    """One line for a live display: ``<id> checksum running 12 s on worker-1``."""
    parts = [task["task_id"], task.get("pipeline", ""), task["status"]]
    if task["status"] == "waiting":
        inputs = task.get("inputs") or {}
        filled = sum(1 for i in inputs.values() if i.get("done"))
        parts.append(f"({filled}/{len(inputs)} inputs in)")
    elapsed = _elapsed(task)
    if elapsed:
        parts.append(elapsed)
    if task.get("worker_id") and task["status"] == "running":
        parts.append(f"on {task['worker_id']}")
    if task.get("kill_requested"):
        parts.append("(kill requested)")
    if task.get("reason"):
        parts.append(f"- {task['reason']}")
    return " ".join(p for p in parts if p)


def task_view(task: dict[str, Any]) -> RenderableType:
    """A task's state, inputs and results."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("task", task["task_id"])
    head.add_row("pipeline", task.get("pipeline", ""))
    head.add_row("status", status_text(task["status"]))
    if task.get("priority_name"):
        head.add_row("priority", task["priority_name"])
    if task.get("reason"):
        head.add_row("reason", task["reason"])
    head.add_row("created", _time(task.get("created_at")))
    if task.get("started_at"):
        head.add_row("started", _time(task.get("started_at")))
    if task.get("finished_at"):
        head.add_row("finished", _time(task.get("finished_at")))
    elapsed = _elapsed(task)
    if elapsed:
        head.add_row("run time", elapsed)
    if task.get("worker_id"):
        head.add_row("worker", task["worker_id"])
    if task.get("results_expire_at"):
        head.add_row("results kept until", _time(task["results_expire_at"]))
    if task.get("results_removed_at"):
        head.add_row("results removed", _time(task["results_removed_at"]))
    parts: list[RenderableType] = [head]
    inputs = task.get("inputs") or {}
    if inputs:
        parts.append(inputs_table(inputs))
    if task.get("results"):
        parts.append(results_table(task["results"]))
    return Group(*parts)


def inputs_table(inputs: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="inputs", title_justify="left")
    for col in ("slot", "file", "state", "received", "size"):
        table.add_column(col, justify="right" if col in ("received", "size") else "left")
    for slot, item in inputs.items():
        state = item.get("state", "")
        if not item.get("required"):
            state += " (optional)"
        table.add_row(
            slot,
            item.get("filename") or "-",
            state,
            human_bytes(item.get("bytes_received")),
            human_bytes(item.get("bytes_total")),
        )
    return table


def results_table(
    results: Sequence[dict[str, Any]], downloaded: Iterable[Downloaded] = ()
) -> Table:
    """Name, size, full sha256 and where it was saved; links come apart (``result_links``):
    a presigned URL folded into a table cell can no longer be copied."""
    saved = {d.name: d for d in downloaded}
    table = Table(title="results", title_justify="left")
    # Names and sizes whole; a narrow terminal folds the hash rather than squeezing the name.
    table.add_column("name", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("sha256", overflow="fold", min_width=16)
    if saved:
        table.add_column("saved to (verified)", overflow="fold")
    for item in results:
        row = [item["name"], human_bytes(item["bytes"]), item["sha256"]]
        if saved:
            row.append(str(saved[item["name"]].path) if item["name"] in saved else "-")
        table.add_row(*row)
    return table


def result_links(results: Sequence[dict[str, Any]]) -> Text:
    text = Text("download links (presigned, they expire):\n", style="bold")
    for item in results:
        text.append(f"{item['name']}  ", style="bold")
        text.append(f"{item['url']}\n")
    return text


def _band_mark(priority: int) -> str:
    """↑ for the high priority band, ↓ for the low one, nothing for normal (80 columns)."""
    return "↑" if priority > 0 else "↓" if priority < 0 else ""


def tasks_table(tasks: Sequence[dict[str, Any]]) -> Table:
    # Fits 80 columns: ids and states whole, the reason folds.
    table = Table()
    for col in ("task", "pipeline", "status", "created"):
        table.add_column(col, no_wrap=True)
    table.add_column("reason", overflow="fold")
    for t in tasks:
        table.add_row(
            t["task_id"],
            t["pipeline"],
            Text.assemble(status_text(t["status"]), _band_mark(t.get("priority", 0))),
            _time(t.get("created_at"), "%m-%d %H:%M"),
            t.get("reason") or "",
        )
    return table


def _bounds(p: dict[str, Any]) -> str:
    if p.get("choices"):
        return "one of " + ", ".join(str(c) for c in p["choices"])
    lo, hi = p.get("minimum"), p.get("maximum")
    if lo is not None and hi is not None:
        return f"{lo} … {hi}"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


def pipelines_view(pipelines: Sequence[dict[str, Any]]) -> RenderableType:
    """Per pipeline: what to upload (slots, extensions, limits) and what to tune (params)."""
    parts: list[RenderableType] = []
    for p in pipelines:
        parts.append(Text.assemble((p["name"], "bold"), "  ", p.get("description", "")))
        slots = Table(title="inputs", title_justify="left")
        for col in ("option", "required", "accepts", "max size", "description"):
            slots.add_column(col, overflow="fold")
        for name, s in (p.get("inputs") or {}).items():
            slots.add_row(
                f"--{name} FILE",
                "yes" if s.get("required") else "no",
                ", ".join(s.get("accept") or []) or "any file",
                human_bytes(s.get("max_bytes")),
                s.get("description") or "",
            )
        parts.append(slots)
        if p.get("params"):
            params = Table(title="parameters (--param NAME=VALUE)", title_justify="left")
            params.add_column("name", no_wrap=True)
            for col in ("type", "default", "bounds", "description"):
                params.add_column(col, overflow="fold")
            for name, q in p["params"].items():
                params.add_row(
                    name,
                    str(q.get("type", "")),
                    json.dumps(q.get("default")),
                    _bounds(q),
                    q.get("description") or "",
                )
            parts.append(params)
        if p.get("resources"):
            res = p["resources"]
            parts.append(
                Text(
                    "resources: "
                    + ", ".join(
                        f"{k}={human_bytes(v) if k.endswith('bytes') else v}"
                        for k, v in res.items()
                    )
                )
            )
        parts.append(Text(""))
    return Group(*parts)


def workers_table(workers: Sequence[dict[str, Any]]) -> Table:
    table = Table()
    for col in (
        "worker",
        "host",
        "state",
        "queues",
        "cpus free/cap",
        "memory free/cap",
        "gpus",
        "running",
        "last seen",
    ):
        table.add_column(col, overflow="fold")
    for w in workers:
        cap, free = w.get("capacity") or {}, w.get("free") or {}
        table.add_row(
            w["id"],
            w.get("host", ""),
            w.get("state", ""),
            ",".join(w.get("queues") or []),
            f"{free.get('cpus', '-')}/{cap.get('cpus', '-')}",
            f"{human_bytes(free.get('memory_bytes'))}/{human_bytes(cap.get('memory_bytes'))}",
            f"{free.get('gpus', 0)}/{cap.get('gpus', 0)}",
            str(len(w.get("running") or [])),
            _time(w.get("last_seen_at")),
        )
    return table
