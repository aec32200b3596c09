"""The one place a process builds its clients from settings."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine

from orchestrator.adapters.logstream import LogStream, RedisLogStream
from orchestrator.adapters.queue import RQTaskQueue, TaskQueue
from orchestrator.adapters.storage import MinioStorage, ObjectStorage
from orchestrator.db.engine import Timeouts, make_engine, make_sessionmaker
from orchestrator.db.notifications import NotificationRepository
from orchestrator.db.queries import TaskQueries
from orchestrator.db.repository import TaskRepository
from orchestrator.db.workers import WorkerRepository
from orchestrator.settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: Engine
    redis: Redis
    tasks: TaskRepository
    queries: TaskQueries
    notifications: NotificationRepository
    storage: ObjectStorage
    queue: TaskQueue
    workers: WorkerRepository
    logs: LogStream

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def build_services(settings: Settings | None = None) -> Services:
    settings = settings or Settings()
    engine = make_engine(
        settings.database_url,
        Timeouts(
            connect_s=settings.db_connect_timeout_s,
            statement_s=settings.db_statement_timeout_s,
            pool_s=settings.db_pool_timeout_s,
        ),
    )
    redis = Redis.from_url(settings.redis_url)
    sessions = make_sessionmaker(engine)
    return Services(
        settings=settings,
        engine=engine,
        redis=redis,
        tasks=TaskRepository(sessions),
        queries=TaskQueries(engine),
        notifications=NotificationRepository(engine),
        storage=MinioStorage(settings),
        queue=RQTaskQueue(redis),
        workers=WorkerRepository(sessions),
        logs=RedisLogStream(redis),
    )
