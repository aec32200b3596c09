"""Task endpoints: create, start, query, kill, list, logs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import anyio.to_thread
import msgspec
from litestar import Controller, HttpMethod, MediaType, Request, Response, delete, get, post, route
from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Redirect, Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_307_TEMPORARY_REDIRECT,
)

from orchestrator.api.auth import principal_of
from orchestrator.api.cache import INLINE_RESULTS, mark_finished
from orchestrator.api.coalescer import Coalescer, Seal
from orchestrator.api.openapi import KEY_REQUIRED, errors, redirect
from orchestrator.api.schemas import (
    SlotDisplay,
    TaskCreate,
    TaskCreated,
    TaskDeletedRead,
    TaskPageRead,
    TaskRead,
    TaskStatusRead,
    page_read,
    task_created,
    task_read,
)
from orchestrator.bootstrap import Services
from orchestrator.domain.listing import MAX_LIMIT, TaskFilter
from orchestrator.domain.task import TaskView
from orchestrator.service import lifecycle, listing, tasks
from orchestrator.service.catalog import Catalog
from orchestrator.service.logs import LiveLog, open_log

# Litestar adds "; charset=utf-8" to text/ media types itself.
TEXT = "text/plain"
TASK_ALLOW = "DELETE, GET, OPTIONS"  # the methods of /tasks/{id}


class TaskController(Controller):
    tags = ["tasks"]
    security = KEY_REQUIRED

    # Registered first (a controller registers its handlers in the order of their names):
    # Litestar 2 builds the automatic OPTIONS answer of a path from the first handler
    # registered on it (litestar-org/litestar#4169, fixed in 3), and would leave GET out of
    # /tasks/{id}'s Allow.
    @route(
        "/tasks/{task_id:str}",
        http_method=HttpMethod.OPTIONS,
        include_in_schema=False,
        sync_to_thread=False,
        status_code=HTTP_204_NO_CONTENT,
    )
    def allow_task_methods(self) -> Response[None]:
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": TASK_ALLOW})

    @post(
        "/create_task",
        operation_id="create_task",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Create a task; returns one TUS upload URL per input slot",
        responses=errors(401, 422, 503),
    )
    def create(
        self,
        request: Request,
        data: JSONBody[TaskCreate],
        services: NamedDependency[Services],
        catalog: NamedDependency[Catalog],
    ) -> TaskCreated:
        overrides = data.resources.overrides() if data.resources is not None else None
        created = tasks.create_task(
            services.tasks,
            services.workers,
            services.settings,
            catalog,
            data.pipeline,
            data.params,
            overrides,
            notify_url=data.notify_url,
            queue=data.queue,
            project_id=principal_of(request).project_id,
            priority=data.priority,
        )
        return task_created(created.task, created.spec, created.upload_urls)

    @post(
        "/start_task/{task_id:str}",
        operation_id="start_task",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Queue a task whose required inputs are all uploaded (idempotent)",
        responses=errors(401, 404, 409, 410, 503),
    )
    def start(
        self, request: Request, task_id: FromPath[str], services: NamedDependency[Services]
    ) -> TaskStatusRead:
        task = tasks.start_task(services, task_id, principal_of(request).scope)
        return TaskStatusRead(task_id=task.id, status=task.status.value)

    @get(
        "/query_task/{task_id:str}",
        operation_id="query_task",
        cache=True,
        summary="A task's state, uploads and (when done) presigned result URLs",
        description="Result URLs are valid for PRESIGN_EXPIRY_S (less at most a tenth of it, "
        "and at most a minute: links signed for a finished task are reused that long).",
        responses=errors(401, 404, 410, 503),
    )
    async def query(
        self, request: Request, task_id: FromPath[str], services: NamedDependency[Services]
    ) -> TaskRead:
        return await _answer(request, services, task_id)

    @get(
        "/tasks",
        operation_id="list_tasks",
        summary="Tasks newest first, filtered, with a cursor for the next page",
        responses=errors(401, 422, 503),
    )
    async def list_tasks(
        self,
        request: Request,
        # All strings: the service checks them and names a bad one in a 422.
        status: Annotated[
            list[str] | None,
            Parameter(description="state(s) to list: repeat it or separate with commas"),
        ] = None,
        pipeline: Annotated[str | None, Parameter(description="pipeline name")] = None,
        created_after: Annotated[
            str | None, Parameter(description="ISO 8601, inclusive; no offset = UTC")
        ] = None,
        created_before: Annotated[
            str | None, Parameter(description="ISO 8601, exclusive; no offset = UTC")
        ] = None,
        limit: Annotated[
            str | None,
            Parameter(
                description="page size, 1..500 (50)",
                # Parsed by the service (a 422 that names it), documented as what it accepts.
                schema_extra={
                    "oneOf": None,
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                },
            ),
        ] = None,
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
    ) -> Response[TaskPageRead]:
        f = listing.task_filter(
            status=status or (),
            pipeline=pipeline,
            created_after=created_after,
            created_before=created_before,
            cursor=cursor,
            limit=limit,
            scope=principal_of(request).scope,
        )
        # Clients polling the same page at once share its reads (``api/coalescer.py``).
        listings: Coalescer[TaskFilter, bytes] = request.app.state.listings
        # From the state, not a dependency: resolving one is about 4 % of a page's CPU.
        services: Services = request.app.state.services
        body = await listings.read(f, lambda seal: sync_to_thread(_page_body, services, f, seal))
        # Encoded once per read, for all who share it; documented as the page it encodes.
        return cast("Response[TaskPageRead]", Response(body, media_type=MediaType.JSON))

    @get(
        "/tasks/{task_id:str}/logs",
        operation_id="task_logs",
        sync_to_thread=True,
        summary="The container log: live and followed while running, stored after (307)",
        description="200: the log as text/plain, streamed (and, with follow, followed until "
        "the run ends). 307: the run is over and its stored log is at the presigned Location. "
        "409 (follow only): the task still waits for its inputs and has logged nothing, so "
        "there is no log to follow yet.",
        media_type=TEXT,
        responses={
            **redirect("The run is over: its stored logs.txt, presigned, is at Location"),
            **errors(401, 404, 409, 410, 503),
        },
    )
    def logs(
        self,
        request: Request,
        task_id: FromPath[str],
        services: NamedDependency[Services],
        state: State,
        follow: Annotated[
            bool, Parameter(description="keep streaming until the run ends (true)")
        ] = True,
    ) -> Stream | Redirect:
        log = open_log(services, task_id, follow, principal_of(request).scope)
        if isinstance(log, LiveLog):
            return Stream(
                _in_threads(log.chunks, state.log_limiter),
                media_type=TEXT,
                headers={"X-Log-Source": "live", "Cache-Control": "no-store"},
            )
        return Redirect(
            log.url,
            status_code=HTTP_307_TEMPORARY_REDIRECT,
            headers={"X-Log-Source": "stored"},
        )

    @get(
        "/tasks/{task_id:str}",
        operation_id="get_task",
        cache=True,
        summary="Alias of query_task",
        responses=errors(401, 404, 410, 503),
    )
    async def get_task(
        self, request: Request, task_id: FromPath[str], services: NamedDependency[Services]
    ) -> TaskRead:
        return await _answer(request, services, task_id)

    @post(
        "/kill_task/{task_id:str}",
        operation_id="kill_task",
        sync_to_thread=True,
        status_code=HTTP_200_OK,
        summary="Kill a task: at once unless running; a running one is stopped by its worker",
        description="200: the task is killed. 202: it is running, and its worker was asked "
        "to stop it (it becomes `killed` within seconds; `kill_requested` is true).",
        responses={
            HTTP_202_ACCEPTED: ResponseSpec(
                TaskStatusRead,
                description="Running: the kill was requested from its worker",
                generate_examples=False,
            ),
            **errors(401, 404, 409, 410, 503),
        },
    )
    def kill(
        self, request: Request, task_id: FromPath[str], services: NamedDependency[Services]
    ) -> Response[TaskStatusRead]:
        outcome = tasks.kill_task(services.tasks, task_id, principal_of(request).scope)
        body = TaskStatusRead(
            task_id=outcome.task.id,
            status=outcome.task.status.value,
            kill_requested=outcome.kill_requested,
        )
        code = HTTP_202_ACCEPTED if outcome.kill_requested else HTTP_200_OK
        return Response(body, status_code=code)

    @delete(
        "/tasks/{task_id:str}",
        operation_id="delete_task",
        sync_to_thread=True,
        status_code=HTTP_200_OK,
        summary="Delete a task and all its data; its id then answers 410",
        description="Kills the task first if it has not ended, then removes its uploads "
        "(unfinished ones included), results, stored and live logs. 200: everything is gone. "
        "202: the task was running; its worker is stopping it, and its data goes within a "
        "reconciler pass of its end. Deleting again answers the same way (idempotent). "
        "Afterwards every call about the task answers 410 with when and why it was deleted.",
        responses={
            HTTP_202_ACCEPTED: ResponseSpec(
                TaskDeletedRead,
                description="Running: stopping; its data goes once it has stopped",
                generate_examples=False,
            ),
            **errors(401, 404, 503),
        },
    )
    def delete_task(
        self, request: Request, task_id: FromPath[str], services: NamedDependency[Services]
    ) -> Response[TaskDeletedRead]:
        outcome = lifecycle.delete_task(services, task_id, principal_of(request).scope)
        task = outcome.task
        assert task.deleted_at is not None
        body = TaskDeletedRead(
            task_id=task.id,
            status=task.status.value,
            deleted_at=task.deleted_at,
            reason=task.deleted_reason or lifecycle.DELETE_REASON,
            data_removed=outcome.purged,
        )
        return Response(body, status_code=HTTP_200_OK if outcome.purged else HTTP_202_ACCEPTED)


def _display(services: Services) -> SlotDisplay:
    s = services.settings
    return SlotDisplay(
        now=datetime.now(UTC),
        stalled_after=timedelta(seconds=s.upload_stalled_after_s),
        tus_url=s.tus_public_url,
    )


async def _answer(request: Request, services: Services, task_id: str) -> TaskRead:
    """A finished task without webhooks is answered from memory, in the event loop (no thread
    hop, no I/O: signing its links is local), and the answer is kept whole for as long as its
    links are reused (``api/cache.py``). Anything else is read in a worker thread."""
    scope = principal_of(request).scope
    task = tasks.finished_task(services, task_id, scope)
    if task is not None and task.notify_url is None and len(task.results or ()) <= INLINE_RESULTS:
        mark_finished(request)
        return _render(services, task)
    return await sync_to_thread(_read, services, task_id, scope)


def _page_body(services: Services, f: TaskFilter, seal: Seal) -> bytes:
    return msgspec.json.encode(page_read(listing.read_page(services, f, before_read=seal)))


def _read(services: Services, task_id: str, scope: str | None) -> TaskRead:
    return _render(services, tasks.get_task(services, task_id, scope))


def _render(services: Services, task: TaskView) -> TaskRead:
    return task_read(
        task,
        tasks.result_links(services, task),
        tasks.notifications_of(services, task),
        _display(services),
        _results_expire_at(services, task),
    )


def _results_expire_at(services: Services, task: TaskView) -> datetime | None:
    return lifecycle.retention_of(services.settings).results_expire_at(task.finished_at)


def task_document(services: Services, task: TaskView) -> dict[str, Any]:
    """What a webhook delivers: the query_task body of ``task`` (result URLs signed within
    ``link_reuse_s``, as query_task's) without
    ``notifications``, whose state the delivery itself is about to change."""
    document: dict[str, Any] = msgspec.to_builtins(
        task_read(
            task,
            tasks.result_links(services, task),
            display=_display(services),
            results_expire_at=_results_expire_at(services, task),
        )
    )
    return document


async def _in_threads(
    chunks: Generator[bytes, None, None], limiter: anyio.CapacityLimiter
) -> AsyncIterator[bytes]:
    """Step a blocking generator in worker threads of its own limiter, so that long-lived log
    followers never take the threads the other (sync) endpoints run in."""
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, None, limiter=limiter)
            if chunk is None:
                return
            yield chunk
    finally:
        # The client went away (or the log ended): stop reading Redis for it.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(chunks.close, limiter=limiter)
