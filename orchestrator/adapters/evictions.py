"""Telling every API process that a task's view changed after its end (Redis pub/sub).

API processes keep finished tasks in memory (``service/finished.py``) because a finished task
does not change, except in two ways: it is deleted, or retention removes its results. The
process that makes such a change publishes the task id; every process forgets the task.
A subscriber that loses Redis cannot know what it missed, so it forgets everything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from orchestrator.errors import QueueError

log = logging.getLogger(__name__)

CHANNEL = "orchestrator:task-evictions"
# How long the listening thread blocks on the socket per turn (s): its reaction to stop().
LISTEN_TIMEOUT_S = 1.0


class RedisEvictions:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def publish(self, task_id: str) -> None:
        try:
            self._redis.publish(CHANNEL, task_id)
        except RedisError as exc:
            raise QueueError(f"cannot announce the change of task {task_id}: {exc}") from exc

    def listen(self, forget: Callable[[str], None], forget_all: Callable[[], None]) -> Listener:
        """Call ``forget(task_id)`` for every change announced, ``forget_all()`` after a loss
        of Redis; in a daemon thread until ``Listener.stop``."""
        listener = Listener(self._redis, forget, forget_all)
        listener.start()
        return listener


class Listener:
    def __init__(
        self, redis: Redis, forget: Callable[[str], None], forget_all: Callable[[], None]
    ) -> None:
        self._redis = redis
        self._forget = forget
        self._forget_all = forget_all
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evictions", daemon=True)
        self.subscribed = threading.Event()  # set once the first subscription is live

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=LISTEN_TIMEOUT_S * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except (RedisError, OSError) as exc:
                log.warning(
                    "task change announcements lost; forgetting every finished task",
                    extra={"error": str(exc)},
                )
                self._forget_all()
                self._stop.wait(LISTEN_TIMEOUT_S)

    def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            # Changes announced while this process was not subscribed are unknown.
            self._forget_all()
            while not self._stop.is_set():
                message: dict[str, Any] | None = pubsub.get_message(timeout=LISTEN_TIMEOUT_S)
                if not self.subscribed.is_set() and pubsub.subscribed:
                    self.subscribed.set()
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    self._forget(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            pubsub.close()
