"""Parallel, resumable tus uploads of a task's inputs (tuspy underneath).

One thread per file, at most ``parallel`` at a time. Each upload's tus URL is remembered in the
``ResumeStore`` as soon as the tus server created it, so an interrupted run (Ctrl-C, a network
cut, a crash) leaves enough behind for the next run to ask the server for the offset and go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.request import TusRequest
from tusclient.uploader import Uploader

from orchestrator.client.errors import ClientError, UploadError
from orchestrator.client.resume import LocalFile, ResumeStore

MiB = 1024 * 1024
# Bigger chunks mean fewer PATCH round trips (and S3 parts are 8 MiB on the local tus server);
# the progress bar moves once per chunk.
DEFAULT_CHUNK = 32 * MiB
DEFAULT_PARALLEL = 4
# Gone for good: the tus server no longer knows the upload (expired, or the slot was refilled).
_GONE = frozenset({404, 410})


@dataclass(frozen=True)
class Options:
    """How to upload: ``chunk_size`` bytes per PATCH, ``parallel`` files at once, and at most
    ``max_rate`` bytes/s per file (None: as fast as the link goes)."""

    chunk_size: int = DEFAULT_CHUNK
    parallel: int = DEFAULT_PARALLEL
    max_rate: float | None = None


class Progress(Protocol):
    """Told about each file: once where it starts (its offset when resumed), then after every
    chunk. Called from the upload threads."""

    def started(self, slot: str, offset: int, total: int) -> None: ...

    def advanced(self, slot: str, offset: int) -> None: ...


class Cancelled(ClientError):
    """The upload was asked to stop (another upload failed, or the user interrupted)."""


@dataclass(frozen=True)
class UploadJob:
    """Fill ``file.slot`` of ``task_id`` through its slot URL ``endpoint``."""

    task_id: str
    file: LocalFile
    endpoint: str


class _Pace:
    """One file's upload as its bytes leave: progress reports (at most every ``REPORT_STEP``
    bytes, not every socket write), the rate cap, and stopping in the middle of a chunk."""

    REPORT_STEP = 256 * 1024

    def __init__(
        self,
        slot: str,
        progress: Progress,
        stop: threading.Event,
        max_rate: float | None,
        offset: int,
    ) -> None:
        self.slot, self.progress, self.stop, self.max_rate = slot, progress, stop, max_rate
        self.first = self.reported = offset
        self.t0 = time.monotonic()

    def sent(self, offset: int, final: bool = False) -> None:
        if self.stop.is_set():
            raise Cancelled(f"upload of {self.slot} stopped at {offset} bytes")
        if final or offset - self.reported >= self.REPORT_STEP:
            self.reported = offset
            self.progress.advanced(self.slot, offset)
        if self.max_rate:
            # Hold the average at the cap; waiting on ``stop`` keeps stopping prompt.
            ahead = (offset - self.first) / self.max_rate - (time.monotonic() - self.t0)
            if ahead > 0 and self.stop.wait(ahead):
                raise Cancelled(f"upload of {self.slot} stopped at {offset} bytes")


class _Body:
    """A PATCH body read out as the socket takes it, so that progress and the rate cap follow
    the bytes on the wire rather than whole chunks. ``__len__`` makes requests send a
    Content-Length (tus servers want one) instead of chunked encoding."""

    BLOCK = 256 * 1024  # urllib3 asks for 16 KiB; fewer, larger writes cost less CPU

    def __init__(self, data: bytes, offset: int, pace: _Pace) -> None:
        self.view, self.pos, self.offset, self.pace = memoryview(data), 0, offset, pace

    def __len__(self) -> int:
        return len(self.view)

    def read(self, size: int = -1) -> bytes:
        if self.pos >= len(self.view):
            return b""
        end = len(self.view) if size < 0 else self.pos + max(size, self.BLOCK)
        block = self.view[self.pos : end]
        self.pos += len(block)
        self.pace.sent(self.offset + self.pos, final=self.pos >= len(self.view))
        return bytes(block)


class _PacedRequest(TusRequest):
    """tuspy's PATCH, with the chunk streamed through ``_Body``."""

    def __init__(self, uploader: _PacedUploader) -> None:
        super().__init__(uploader)
        self._offset = uploader.offset
        self._pace = uploader.pace

    def perform(self) -> None:
        chunk = self.file.read(self._content_length)
        self.add_checksum(chunk)
        body: Any = _Body(chunk, self._offset, self._pace) if self._pace else chunk
        try:
            resp = requests.patch(
                self._url,
                data=body,
                headers=self._request_headers,
                verify=self.verify_tls_cert,
                stream=True,
                cert=self.client_cert,
            )
        except requests.RequestException as exc:
            raise TusUploadFailed(exc) from exc
        self.status_code = resp.status_code
        self.response_content = resp.content
        self.response_headers = {k.lower(): v for k, v in resp.headers.items()}


class _PacedUploader(Uploader):
    pace: _Pace | None = None

    def _do_request(self) -> None:
        # tuspy's own, but with the request above (tuspy has no hook for the body).
        request = _PacedRequest(self)
        self.request = request  # type: ignore[assignment]  # tuspy declares it None
        try:
            request.perform()
            if not 200 <= (request.status_code or 0) < 300:
                raise TusUploadFailed("", request.status_code, request.response_content)
        except TusUploadFailed as error:
            self._retry_or_cry(error)


def upload_one(
    job: UploadJob, store: ResumeStore, progress: Progress, stop: threading.Event, options: Options
) -> str:
    """Upload one file, resuming its remembered upload when the server still has it; return
    the tus upload URL."""
    with job.file.path.open("rb") as fh:
        uploader = _resumed(job, store, fh, options.chunk_size) or _created(
            job, store, fh, options.chunk_size
        )
        total = job.file.size
        progress.started(job.file.slot, uploader.offset, total)
        uploader.pace = _Pace(job.file.slot, progress, stop, options.max_rate, uploader.offset)
        while uploader.offset < total:
            if stop.is_set():
                raise Cancelled(f"upload of {job.file.slot} stopped at {uploader.offset} bytes")
            try:
                uploader.upload_chunk()
            except (TusUploadFailed, TusCommunicationError) as exc:
                raise _upload_error(job, "sending", exc) from exc
            progress.advanced(job.file.slot, uploader.offset)
        return str(uploader.url)


def _resumed(
    job: UploadJob, store: ResumeStore, fh: BinaryIO, chunk_size: int
) -> _PacedUploader | None:
    url = store.upload_url(job.task_id, job.file)
    if url is None:
        return None
    try:
        # Given a url, tuspy asks the server for the offset (HEAD) before anything else.
        return _PacedUploader(
            file_stream=fh, url=url, chunk_size=chunk_size, retries=3, retry_delay=2
        )
    except TusCommunicationError as exc:
        if exc.status_code in _GONE:
            store.forget_upload(job.task_id, job.file)
            return None
        raise _upload_error(job, "resuming", exc) from exc


def _created(job: UploadJob, store: ResumeStore, fh: BinaryIO, chunk_size: int) -> _PacedUploader:
    uploader = _PacedUploader(
        client=TusClient(job.endpoint),
        file_stream=fh,
        chunk_size=chunk_size,
        metadata={"filename": job.file.path.name},
        retries=3,
        retry_delay=2,
    )
    try:
        url = uploader.create_url()
    except TusCommunicationError as exc:
        raise _upload_error(job, "creating", exc) from exc
    uploader.set_url(url)
    uploader.offset = 0
    # Before the first byte: from here on an interruption is resumable.
    store.remember_upload(job.task_id, job.file, url)
    return uploader


def _upload_error(job: UploadJob, doing: str, exc: TusCommunicationError) -> UploadError:
    status = exc.status_code
    body = exc.response_content
    text = body.decode(errors="replace").strip() if isinstance(body, bytes) else str(body or "")
    what = text or str(exc)
    where = f"{job.file.slot} ({job.file.path.name})"
    if status is None:
        return UploadError(f"{doing} the upload of {where} failed: {what}")
    return UploadError(
        f"{doing} the upload of {where}: tus server answered {status}: {what}", status
    )


def upload_all(
    jobs: list[UploadJob],
    store: ResumeStore,
    progress: Progress,
    options: Options | None = None,
    upload: Callable[
        [UploadJob, ResumeStore, Progress, threading.Event, Options], str
    ] = upload_one,
) -> dict[str, str]:
    """Upload every job, ``options.parallel`` at a time; return slot → tus upload URL.

    The first failure stops the others at their next chunk and is raised. The threads are
    daemons and the wait below wakes often, so Ctrl-C reaches the caller at once: what is in
    flight is cut, what was remembered stays for the next run.
    """
    options = options or Options()
    stop = threading.Event()
    gate = threading.BoundedSemaphore(max(1, options.parallel))
    done: dict[str, str] = {}
    failures: list[BaseException] = []

    def run(job: UploadJob) -> None:
        with gate:
            if stop.is_set():
                return
            try:
                done[job.file.slot] = upload(job, store, progress, stop, options)
            except BaseException as exc:  # handed to the main thread, which raises it
                failures.append(exc)
                stop.set()

    threads = [
        threading.Thread(target=run, args=(job,), name=f"upload-{job.file.slot}", daemon=True)
        for job in jobs
    ]
    try:
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(0.1)
    except BaseException:
        stop.set()
        raise
    if failures:
        # The cause, not the uploads it cancelled.
        real = [f for f in failures if not isinstance(f, Cancelled)]
        raise (real or failures)[0]
    return done
