"""The one place a process builds its clients from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis

from orchestrator.adapters.evictions import RedisEvictions
from orchestrator.adapters.histograms import RedisHistograms
from orchestrator.adapters.logstream import LogStream, RedisLogStream
from orchestrator.adapters.queue import RQTaskQueue, TaskQueue
from orchestrator.adapters.storage import MinioStorage, ObjectStorage
from orchestrator.db.access import AccessRepository
from orchestrator.db.database import Database
from orchestrator.db.engine import Timeouts, make_engine
from orchestrator.db.lifecycle import LifecycleRepository
from orchestrator.db.locks import PassLock
from orchestrator.db.notifications import NotificationRepository
from orchestrator.db.queries import TaskQueries
from orchestrator.db.repository import TaskRepository
from orchestrator.db.workers import WorkerRepository
from orchestrator.service.access import KeyRing
from orchestrator.service.finished import FinishedTasks, link_reuse_s
from orchestrator.settings import Settings


@dataclass
class Services:
    """What the use cases of one process call: repositories and adapters, no raw clients."""

    settings: Settings
    tasks: TaskRepository
    queries: TaskQueries
    notifications: NotificationRepository
    locks: PassLock
    storage: ObjectStorage
    queue: TaskQueue
    workers: WorkerRepository
    logs: LogStream
    histograms: RedisHistograms
    finished: FinishedTasks
    access: AccessRepository
    keys: KeyRing
    lifecycle: LifecycleRepository
    evictions: RedisEvictions
    # Set by build_services: end the connection pools (at exit), forget them (in a fork).
    _close: Callable[[], None] = field(default=lambda: None, repr=False)
    _forget: Callable[[], None] = field(default=lambda: None, repr=False)

    def close(self) -> None:
        self._close()

    def forget_connections(self) -> None:
        """In a forked child: drop the parent's pooled connections without closing them
        (closing would break them for the parent), so that this process opens its own."""
        self._forget()


def build_services(settings: Settings | None = None) -> Services:
    settings = settings or Settings()
    engine = make_engine(
        settings.database_url,
        Timeouts(
            connect_s=settings.db_connect_timeout_s,
            statement_s=settings.db_statement_timeout_s,
            pool_s=settings.db_pool_timeout_s,
        ),
        pool_size=settings.db_pool_size,
    )
    redis = Redis.from_url(settings.redis_url)
    db = Database(engine)
    access = AccessRepository(db)

    def close() -> None:
        engine.dispose()
        redis.close()

    return Services(
        settings=settings,
        tasks=TaskRepository(db),
        queries=TaskQueries(db),
        notifications=NotificationRepository(db),
        locks=PassLock(db),
        storage=MinioStorage(settings),
        queue=RQTaskQueue(redis),
        workers=WorkerRepository(db),
        logs=RedisLogStream(redis),
        histograms=RedisHistograms(redis),
        # Half the links' reuse here, half in the API's whole answers (api/cache.py).
        finished=FinishedTasks(reuse_s=link_reuse_s(settings.presign_expiry_s) / 2),
        access=access,
        keys=KeyRing(access, settings.key_cache_s),
        lifecycle=LifecycleRepository(db),
        evictions=RedisEvictions(redis),
        _close=close,
        _forget=lambda: engine.dispose(close=False),
    )
