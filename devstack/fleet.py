"""Fake worker hosts on this machine, for the two-host test and the fleet benchmark.

A fake host is what a second machine is to the orchestrator: its own network stack (a network
namespace), its own host name (a UTS namespace), its own address (10.231.<n>.2/30 on a veth pair
whose root end is 10.231.<n>.1), and a ``python -m worker`` that reaches PostgreSQL, Redis and S3
only over that address. It shares the machine's Docker engine through its unix socket (a network
namespace does not hide files), as a worker on a real host shares that host's engine.

The local stack's services listen on 127.0.0.1 only, and the stack is shared with other test
sessions, so instead of restarting it with more listen addresses each fake host gets small TCP
forwarders in the root namespace, on its gateway address and the service's own port, to the
loopback service. They are byte-transparent (the S3 Host header, hence SigV4, is untouched) and
die with the drill; nothing global (iptables, sysctls, the shared stack) changes.

Killing a host (:meth:`FakeHost.kill`) is what a dead machine does: its worker process tree is
gone at once (SIGKILL, no warm shutdown) and so are the pipeline containers it was running.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import psutil

from worker.labels import LABEL_OWNER, LABEL_TASK

from .profile import repo_root

# Only addresses of our own fake hosts: one /30 per host inside this /16.
NETWORK = ipaddress.ip_network("10.231.0.0/16")
PREFIX = "oflt"  # netns and veth names: oflt<n>, oflt<n>r (root end), oflt<n>n (host end)


class FleetError(RuntimeError):
    pass


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise FleetError(f"{' '.join(argv)}: {done.stderr.strip()}")


def check_support() -> None:
    """Raise with a clear reason when this machine cannot make network namespaces."""
    if os.geteuid() != 0:
        raise FleetError("fake hosts need root (ip netns, veth pairs)")
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            raise FleetError(f"{tool!r} not found (iproute2 / util-linux)")
    probe = f"{PREFIX}probe{os.getpid() % 10000}"
    try:
        _ip("netns", "add", probe)
    except FleetError as exc:
        raise FleetError(f"ip netns does not work here: {exc}") from exc
    _ip("netns", "del", probe)


def _used_subnets() -> set[int]:
    """Third octets of 10.231.x.y addresses already on this machine (a concurrent drill)."""
    done = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    )
    used = set()
    for word in done.stdout.split():
        with contextlib.suppress(ValueError):
            addr = ipaddress.ip_interface(word).ip
            if addr in NETWORK:
                used.add(int(str(addr).split(".")[2]))
    return used


# --- TCP forwarders ----------------------------------------------------------------------------


class Forwarder:
    """Accept on ``listen`` and pipe each connection to ``target`` (threads; test-sized load).

    ``freeze`` makes it behave like a stopped server behind it: connections are still accepted
    and every byte is taken, but nothing is passed on until ``thaw``."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(listen)
        self.listen: tuple[str, int] = self._server.getsockname()[:2]  # port 0: the one given
        self._server.settimeout(0.5)
        self.accepted = 0  # connections accepted so far
        self._thawed = threading.Event()
        self._thawed.set()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"fwd-{listen}", daemon=True)
        self._thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)
        self._track(client)
        self._track(upstream)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                self._thawed.wait()
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            # One side is gone: drop both, as a router would after a reset.
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    def close(self) -> None:
        self._stop.set()
        self._thawed.set()
        self._server.close()
        self._thread.join(timeout=2)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()


# --- fake hosts --------------------------------------------------------------------------------


def _rehost(url: str, host: str) -> str:
    """``url`` with its host (127.0.0.1) replaced by ``host``; user, port, path kept."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    hostport = netloc[-1].replace("127.0.0.1", host, 1)
    return urlunsplit(parts._replace(netloc="@".join([*netloc[:-1], hostport])))


def _port(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise FleetError(f"no port in {url!r}")
    return port


@dataclass
class FakeHost:
    name: str  # host name the worker sees (and announces)
    index: int  # 10.231.<index>.0/30
    datadir: Path  # where its work dir and log go
    forwarders: list[Forwarder] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.index}"

    @property
    def gateway(self) -> str:
        return f"10.231.{self.index}.1"

    @property
    def address(self) -> str:
        return f"10.231.{self.index}.2"

    @property
    def work_dir(self) -> Path:
        return self.datadir / f"work-{self.name}"

    @property
    def log_path(self) -> Path:
        return self.datadir / "logs" / f"fleet-{self.name}.log"

    def create(self, service_urls: Mapping[str, str]) -> None:
        """Namespace, veth pair, addresses, and forwarders for each service URL's port."""
        root_end, host_end = f"{self.netns}r", f"{self.netns}n"
        _ip("netns", "add", self.netns)
        _ip("link", "add", root_end, "type", "veth", "peer", "name", host_end)
        _ip("link", "set", host_end, "netns", self.netns)
        _ip("addr", "add", f"{self.gateway}/30", "dev", root_end)
        _ip("link", "set", root_end, "up")
        _ip("addr", "add", f"{self.address}/30", "dev", host_end, netns=self.netns)
        _ip("link", "set", host_end, "up", netns=self.netns)
        _ip("link", "set", "lo", "up", netns=self.netns)
        # No default route: the fake host reaches its gateway and nothing else.
        for url in service_urls.values():
            port = _port(url)
            self.forwarders.append(Forwarder((self.gateway, port), ("127.0.0.1", port)))

    def worker_env(self, stack_env: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
        """The stack's settings as seen from this host: services over its gateway address."""
        env = {**base, **stack_env}
        for key in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT"):
            env[key] = _rehost(stack_env[key], self.gateway)
        env["WORKER_HOST"] = self.name
        env["WORKER_WORK_DIR"] = str(self.work_dir)
        return env

    def start_worker(self, env: Mapping[str, str], python: str) -> None:
        """``python -m worker`` inside the namespace, under its own host name."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                'hostname "$1" && shift && exec "$@"',
                "sh",
                self.name,
                python,
                "-m",
                "worker",
            ],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=repo_root(),
        )

    def worker_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _tree(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def pause(self) -> None:
        """A stalled machine: SIGSTOP the worker's whole process tree (``resume`` undoes it)."""
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGCONT)

    def kill(self, task_ids: list[str] | None = None) -> list[str]:
        """A dead machine: SIGKILL the worker's whole process tree (RQ's work horses run in
        sessions of their own, so a process group is not enough), then remove the pipeline
        containers it ran. Returns the removed container names."""
        if self.process is not None:
            for proc in self._tree():
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        return self.remove_containers(task_ids or [])

    def remove_containers(self, task_ids: list[str]) -> list[str]:
        """Containers this host started (owner label ``<host>:<pid>``) or of ``task_ids``."""
        done = subprocess.run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label={LABEL_TASK}",
                "--format",
                f'{{{{.Names}}}} {{{{.Label "{LABEL_TASK}"}}}} {{{{.Label "{LABEL_OWNER}"}}}}',
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        doomed = []
        for line in done.stdout.splitlines():
            name, task, owner = ([*line.split(" "), "", ""])[:3]
            if task in task_ids or owner.startswith(f"{self.name}:"):
                doomed.append(name)
        if doomed:
            subprocess.run(
                ["docker", "rm", "-f", *doomed], capture_output=True, check=False, timeout=60
            )
        return doomed

    def destroy(self) -> None:
        """Everything :meth:`create` and :meth:`start_worker` made; safe to call twice."""
        if self.worker_alive():
            self.kill()
        for fwd in self.forwarders:
            fwd.close()
        self.forwarders.clear()
        if self._log is not None:
            self._log.close()
            self._log = None
        # Deleting the namespace deletes the veth pair (both ends) with it.
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"{self.netns}r"], capture_output=True, check=False)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no {self.log_path})"


@contextlib.contextmanager
def fake_hosts(
    names: list[str],
    stack_env: Mapping[str, str],
    datadir: Path,
    *,
    base_env: Mapping[str, str] | None = None,
    python: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[list[FakeHost]]:
    """Create one fake host per name, start a worker in each; tear everything down on exit,
    also when the body fails."""
    check_support()
    used = _used_subnets()
    free = [n for n in range(1, 255) if n not in used]
    if len(free) < len(names):
        raise FleetError("no free 10.231.x.0/30 subnets left")
    hosts = [FakeHost(name, index, datadir) for name, index in zip(names, free, strict=False)]
    services = {k: stack_env[k] for k in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT")}
    base = dict(base_env if base_env is not None else os.environ)
    try:
        for host in hosts:
            host.create(services)
        for host in hosts:
            env = {**host.worker_env(stack_env, base), **(extra_env or {})}
            host.start_worker(env, python or sys.executable)
        yield hosts
    finally:
        for host in hosts:
            host.destroy()


def wait_announced(
    api_url: str, api_key: str, names: list[str], queue: str, timeout_s: float = 60
) -> None:
    """Until GET /workers lists a live worker on each fake host that takes tasks from
    ``queue``: what create_task checks before it accepts a task for that queue. (A worker
    announces itself before its slots take work; RQ's own registrations can be left over from
    an earlier run on the same host names.)"""
    import requests

    deadline = time.monotonic() + timeout_s
    with requests.Session() as http:
        http.headers["X-API-Key"] = api_key
        while True:
            r = http.get(f"{api_url.rstrip('/')}/workers", timeout=30)
            r.raise_for_status()
            live = {
                w["host"]
                for w in r.json()["workers"]
                if w["state"] == "up" and queue in w["queues"]
            }
            missing = [n for n in names if n not in live]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise FleetError(f"workers never announced themselves: {', '.join(missing)}")
            time.sleep(0.3)


# --- tasks on a queue of their own -------------------------------------------------------------


@dataclass
class Submitted:
    task_id: str
    expected: dict[str, Any]  # what checksums.json must say


class Submitter:
    """Creates ``checksum`` tasks through the API on their own ``queue`` (create_task's
    ``queue``: only the fake hosts' workers listen on it, not the stack's own worker) and
    uploads their inputs through the TUS server: the product's own path throughout."""

    def __init__(self, api_url: str, api_key: str, queue: str) -> None:
        import requests

        self.api_url = api_url.rstrip("/")
        self.queue = queue
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = api_key

    def close(self) -> None:
        self.http.close()

    def submit(self, workdir: Path, params: dict[str, Any] | None = None) -> Submitted:
        import hashlib

        from tusclient.client import TusClient

        body: dict[str, Any] = {"pipeline": "checksum", "params": params or {}, "queue": self.queue}
        r = self.http.post(f"{self.api_url}/create_task", json=body, timeout=30)
        if r.status_code != 201:
            raise FleetError(f"create_task: {r.status_code} {r.text}")
        task = r.json()
        task_id = task["task_id"]
        expected = {}
        for slot, url in task["upload_urls"].items():
            data = os.urandom(64 * 1024) + slot.encode()
            path = workdir / f"{task_id}-{slot}.bin"
            path.write_bytes(data)
            TusClient(url).uploader(
                file_path=str(path), chunk_size=1 << 20, metadata={"filename": path.name}
            ).upload()
            path.unlink()
            expected[slot] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        return Submitted(task_id, expected)

    def query(self, task_id: str) -> dict[str, Any]:
        """The task as query_task shows it: status, worker_id, reason, attempts, times."""
        r = self.http.get(f"{self.api_url}/query_task/{task_id}", timeout=30)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result


def worker_host(worker_id: Any) -> str:
    """The host part of a worker id (``<host>:<pid>``)."""
    return str(worker_id or "").rpartition(":")[0]
