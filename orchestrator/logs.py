"""Structured logging: one JSON object per line, carrying the task id of the current context."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        task_id = getattr(record, "task_id", None) or task_id_var.get()
        if task_id:
            out["task_id"] = task_id
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        task_id = getattr(record, "task_id", None) or task_id_var.get()
        prefix = f"[{task_id}] " if task_id else ""
        record.msg = prefix + str(record.msg)
        return super().format(record)


def configure(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@contextmanager
def task_context(task_id: str) -> Iterator[None]:
    """Every log line inside carries ``task_id``."""
    token = task_id_var.set(task_id)
    try:
        yield
    finally:
        task_id_var.reset(token)
