"""Fixtures for the API tests: direct access to the stack's real services, hook requests
recorded from the real tusd, and an in-process app over the same services for cases the running
API cannot show (a backing service down, a pipeline with extension rules)."""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from litestar.testing import TestClient
from minio import Minio

from orchestrator.app import create_app
from orchestrator.bootstrap import Services, build_services
from orchestrator.settings import Settings, split_endpoint
from pipelines.spec import InputSlot, PipelineSpec
from tests.hookdata import hook_request

LAS_SPEC = PipelineSpec(
    name="lasdemo",
    description="test pipeline with extension and size rules",
    inputs=(
        InputSlot("pre", accept=(".las", ".laz"), max_bytes=1000),
        InputSlot("notes", required=False, max_bytes=100),
    ),
    # An image the stack's worker has, so that create_task admits the task; the in-process
    # app's recording queue never sends it to that worker (which does not know this pipeline).
    image="pipeline-checksum:latest",
)


def settings_of(env: dict[str, str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(stack: Any) -> Settings:
    return settings_of(stack.env)


@pytest.fixture(scope="session")
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def s3(settings: Settings) -> Minio:
    host, secure = split_endpoint(settings.s3_endpoint)
    return Minio(
        host,
        settings.s3_access_key,
        settings.s3_secret_key,
        secure=secure,
        region=settings.s3_region,
    )


@pytest.fixture(scope="session")
def http(stack: Any) -> Iterator[requests.Session]:
    """A client of the running API, with the key."""
    with requests.Session() as session:
        session.headers["X-API-Key"] = stack.api_key
        yield session


class Api:
    """The running API at ``stack.api_url``: task calls, and hooks as tusd sends them to the
    internal hook listener."""

    def __init__(self, stack: Any, http: requests.Session) -> None:
        self.url = stack.api_url.rstrip("/")
        self.hook_url = f"http://{stack.env['HOOK_HOST']}:{stack.env['HOOK_PORT']}/tusd_hook"
        self.hook_secret = stack.env["HOOK_SECRET"]
        self.http = http

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.http.post(self.url + path, timeout=30, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, **kw)

    def create(self, pipeline: str = "checksum", **params: Any) -> dict[str, Any]:
        r = self.post("/create_task", json={"pipeline": pipeline, "params": params})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def query(self, task_id: str) -> dict[str, Any]:
        r = self.get(f"/query_task/{task_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def hook(
        self, body: dict[str, Any] | bytes, secret: str | None = "", url: str = ""
    ) -> requests.Response:
        """POST a hook as tusd does: Basic auth from the hook URL's userinfo, no API key."""
        secret = self.hook_secret if secret == "" else secret
        data = body if isinstance(body, bytes) else None
        return requests.post(
            url or self.hook_url,
            auth=None if secret is None else ("tusd", secret),
            json=None if data is not None else body,
            data=data,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )

    def bind(self, up: Upload) -> Upload:
        """Send ``up``'s pre-create and take the object id the API gave it."""
        r = self.hook(up.pre_create())
        assert r.status_code == 200, r.text
        return up.bound(r.json())


@pytest.fixture(scope="session")
def api(stack: Any, http: requests.Session) -> Api:
    return Api(stack, http)


def request_uri(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


class Upload:
    """One upload into one slot, speaking for tusd: the hooks it would send, in any order, each
    a recorded tusd request with this upload's fields. ``bound`` takes the object id that the
    API's pre-create answer gave it (tusd's upload id is then ``<object id>+<multipart id>``)."""

    def __init__(
        self,
        settings: Settings,
        s3: Minio,
        task_id: str,
        slot: str,
        url: str,
        data: bytes,
        filename: str | None = None,
    ) -> None:
        self.settings, self.s3 = settings, s3
        self.task_id, self.slot, self.url, self.data = task_id, slot, url, data
        self.filename = filename or f"{slot}.bin"
        self.object_id = f"{task_id}/{slot}/unbound-{uuid.uuid4().hex[:8]}"
        self.meta = {"filename": self.filename, "task_id": task_id, "slot": slot}

    @property
    def id(self) -> str:
        return f"{self.object_id}+mp-{self.object_id[-8:]}"

    def bound(self, answer: dict[str, Any]) -> Upload:
        assert not answer.get("RejectUpload"), answer
        self.object_id = answer["ChangeFileInfo"]["ID"]
        return self

    def pre_create(self, size: int | None = None, filename: str = "") -> dict[str, Any]:
        return hook_request(
            "pre-create",
            size=len(self.data) if size is None else size,
            meta={"filename": filename or self.filename},
            uri=request_uri(self.url),
        )

    def post_create(self) -> dict[str, Any]:
        return hook_request("post-create", upload_id=self.id, size=len(self.data), meta=self.meta)

    def post_receive(self, offset: int) -> dict[str, Any]:
        return hook_request(
            "post-receive", upload_id=self.id, size=len(self.data), offset=offset, meta=self.meta
        )

    @property
    def storage(self) -> dict[str, str]:
        return {"Type": "s3store", "Bucket": self.settings.uploads_bucket, "Key": self.object_id}

    def store(self) -> None:
        """Put the object where tusd's s3store would have completed it."""
        self.s3.put_object(
            self.settings.uploads_bucket, self.object_id, io.BytesIO(self.data), len(self.data)
        )

    def pre_finish(self) -> dict[str, Any]:
        n = len(self.data)
        return hook_request(
            "pre-finish", upload_id=self.id, size=n, offset=n, meta=self.meta, storage=self.storage
        )

    def post_finish(self, size: int | None = None) -> dict[str, Any]:
        n = len(self.data) if size is None else size
        return hook_request(
            "post-finish",
            upload_id=self.id,
            size=n,
            offset=n,
            meta=self.meta,
            storage=self.storage,
        )

    def pre_terminate(self) -> dict[str, Any]:
        return hook_request(
            "pre-terminate",
            upload_id=self.id,
            size=len(self.data),
            meta=self.meta,
            storage=self.storage,
        )

    def post_terminate(self) -> dict[str, Any]:
        return hook_request(
            "post-terminate",
            upload_id=self.id,
            size=len(self.data),
            meta=self.meta,
            storage=self.storage,
        )


@pytest.fixture
def uploads(settings: Settings, s3: Minio) -> Any:
    def make(
        task: dict[str, Any], slot: str, data: bytes = b"hello world", filename: str | None = None
    ) -> Upload:
        url = task["upload_urls"][slot]
        return Upload(settings, s3, task["task_id"], slot, url, data, filename)

    return make


class RecordingQueue:
    """Counts enqueues instead of sending them to the stack's worker (in-process tests)."""

    def __init__(self, services: Services) -> None:
        self.enqueued: list[tuple[str, str, int]] = []
        self._real = services.queue

    def enqueue(self, task_id: str, queue: str, timeout_s: int) -> None:
        self.enqueued.append((task_id, queue, timeout_s))

    def is_live(self, task_id: str) -> bool:
        return any(t == task_id for t, _, _ in self.enqueued)

    def live(self, task_ids: Iterable[str]) -> set[str]:
        return {t for t in task_ids if self.is_live(t)}

    def depths(self, always: Iterable[str] = ()) -> dict[str, int]:
        return self._real.depths(always)

    def ping(self) -> None:
        self._real.ping()

    def promote(self, source: str, target: str, enqueued_before: datetime) -> list[str]:
        return self._real.promote(source, target, enqueued_before)


def enqueued(services: Services) -> list[tuple[str, str, int]]:
    """What the in-process app of ``local`` enqueued: (task id, queue, timeout s)."""
    queue = services.queue
    assert isinstance(queue, RecordingQueue)
    return queue.enqueued


@pytest.fixture
def local(settings: Settings, services: Services) -> Iterator[tuple[TestClient[Any], Services]]:
    """An in-process app over the real services, with a recording queue and test pipelines."""
    from pipelines.catalog import shipped

    svc = dataclasses.replace(services, queue=RecordingQueue(services))
    catalog = {**shipped(), LAS_SPEC.name: LAS_SPEC}
    app = create_app(svc, catalog=catalog, reconcile=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["X-API-Key"] = settings.api_key
        yield client, svc
