"""GET /tasks: filtered, newest-first task summaries with a keyset cursor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from orchestrator.bootstrap import Services
from orchestrator.db.queries import TaskSummary
from orchestrator.domain.listing import Cursor, TaskFilter, encode_cursor, parse_filter
from orchestrator.errors import InvalidRequest


@dataclass(frozen=True)
class TaskPage:
    tasks: list[TaskSummary]
    next_cursor: str | None


def task_filter(
    *,
    status: Iterable[str] = (),
    pipeline: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    cursor: str | None = None,
    limit: str | None = None,
    scope: str | None = None,
) -> TaskFilter:
    """The listing asked for; ``scope``: the one project whose tasks are listed (None: every
    project's). Raise ``InvalidRequest`` naming the parameter that is wrong."""
    try:
        return parse_filter(
            status=status,
            pipeline=pipeline,
            created_after=created_after,
            created_before=created_before,
            cursor=cursor,
            limit=limit,
            project_id=scope,
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


def read_page(
    services: Services, f: TaskFilter, before_read: Callable[[], None] | None = None
) -> TaskPage:
    """``before_read``: called just before the statement is sent (it takes its snapshot
    after)."""
    items, more = services.queries.page(f, before_read)
    last = items[-1] if items and more else None
    return TaskPage(
        tasks=items,
        next_cursor=encode_cursor(Cursor(last.created_at, last.id)) if last else None,
    )
