"""Live task logs: workers append container output to a Redis stream per task, the API reads.

The stream is a window on a running task (capped, expiring); the complete log is stored with
the results as ``results/<task_id>/logs.txt`` when the run ends.
"""

from __future__ import annotations

from typing import Protocol, cast

from redis import Redis
from redis.exceptions import RedisError

from orchestrator.errors import QueueError

MAX_LINES = 20_000  # approximate cap per task stream (lines)
TTL_S = 7 * 24 * 3600  # a stream expires this long after its last line (s)
EOF_FIELD = b"eof"

Entry = tuple[bytes, dict[bytes, bytes]]  # (stream entry id, fields) as redis-py returns them


def stream_key(task_id: str) -> str:
    return f"task-logs:{task_id}"


class LogStream(Protocol):
    def append(self, task_id: str, lines: list[str]) -> None: ...
    def close(self, task_id: str) -> None: ...
    def drop(self, task_id: str) -> None: ...
    def read(
        self, task_id: str, after: str = "0-0", block_ms: int | None = None, count: int = 1000
    ) -> tuple[list[tuple[str, str]], bool]: ...


class RedisLogStream:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def append(self, task_id: str, lines: list[str]) -> None:
        if not lines:
            return
        key = stream_key(task_id)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for line in lines:
                pipe.xadd(key, {"line": line}, maxlen=MAX_LINES, approximate=True)
            pipe.expire(key, TTL_S)
            pipe.execute()
        except RedisError as exc:
            raise QueueError(f"cannot append logs of task {task_id}: {exc}") from exc

    def close(self, task_id: str) -> None:
        """Mark the end of the run so readers stop following."""
        key = stream_key(task_id)
        try:
            self._redis.xadd(key, {"eof": "1"}, maxlen=MAX_LINES, approximate=True)
            self._redis.expire(key, TTL_S)
        except RedisError as exc:
            raise QueueError(f"cannot close logs of task {task_id}: {exc}") from exc

    def drop(self, task_id: str) -> None:
        """Forget the task's live log (it was deleted)."""
        try:
            self._redis.delete(stream_key(task_id))
        except RedisError as exc:
            raise QueueError(f"cannot drop logs of task {task_id}: {exc}") from exc

    def read(
        self, task_id: str, after: str = "0-0", block_ms: int | None = None, count: int = 1000
    ) -> tuple[list[tuple[str, str]], bool]:
        """Lines after entry id ``after`` as (entry id, line), and whether the run has ended."""
        try:
            got = self._redis.xread({stream_key(task_id): after}, count=count, block=block_ms)
        except RedisError as exc:
            raise QueueError(f"cannot read logs of task {task_id}: {exc}") from exc
        lines: list[tuple[str, str]] = []
        ended = False
        for _key, entries in cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], got or []
        ):
            for entry_id, fields in entries:
                if EOF_FIELD in fields:
                    ended = True
                    continue
                raw = fields.get(b"line", b"")
                lines.append((entry_id.decode(), raw.decode("utf-8", "replace")))
        return lines, ended
