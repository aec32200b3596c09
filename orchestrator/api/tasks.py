"""Task endpoints: create, start, query, kill."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from orchestrator.api.schemas import (
    TaskCreate,
    TaskCreated,
    TaskRead,
    TaskStatusRead,
    task_created,
    task_read,
)
from orchestrator.bootstrap import Services
from orchestrator.service import tasks
from orchestrator.service.catalog import Catalog


class TaskController(Controller):
    tags = ["tasks"]

    @post(
        "/create_task",
        operation_id="create_task",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Create a task; returns one TUS upload URL per input slot",
    )
    def create(
        self,
        data: JSONBody[TaskCreate],
        services: NamedDependency[Services],
        catalog: NamedDependency[Catalog],
    ) -> TaskCreated:
        created = tasks.create_task(services, catalog, data.pipeline, data.params)
        return task_created(created.task, created.spec, created.upload_urls)

    @post(
        "/start_task/{task_id:str}",
        operation_id="start_task",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Queue a task whose required inputs are all uploaded (idempotent)",
    )
    def start(self, task_id: FromPath[str], services: NamedDependency[Services]) -> TaskStatusRead:
        task = tasks.start_task(services, task_id)
        return TaskStatusRead(task_id=task.id, status=task.status.value)

    @get(
        "/query_task/{task_id:str}",
        operation_id="query_task",
        sync_to_thread=True,
        summary="A task's state, uploads and (when done) freshly presigned result URLs",
    )
    def query(self, task_id: FromPath[str], services: NamedDependency[Services]) -> TaskRead:
        return _read(services, task_id)

    @get(
        "/tasks/{task_id:str}",
        operation_id="get_task",
        sync_to_thread=True,
        summary="Alias of query_task",
    )
    def get_task(self, task_id: FromPath[str], services: NamedDependency[Services]) -> TaskRead:
        return _read(services, task_id)

    @post(
        "/kill_task/{task_id:str}",
        operation_id="kill_task",
        sync_to_thread=True,
        summary="Kill a task: at once unless running; a running one is stopped by its worker",
    )
    def kill(
        self, task_id: FromPath[str], services: NamedDependency[Services]
    ) -> Response[TaskStatusRead]:
        outcome = tasks.kill_task(services, task_id)
        body = TaskStatusRead(
            task_id=outcome.task.id,
            status=outcome.task.status.value,
            kill_requested=outcome.kill_requested,
        )
        code = HTTP_202_ACCEPTED if outcome.kill_requested else HTTP_200_OK
        return Response(body, status_code=code)


def _read(services: Services, task_id: str) -> TaskRead:
    task = tasks.get_task(services, task_id)
    return task_read(task, tasks.result_links(services, task))
