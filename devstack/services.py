"""The services of the local stack, one class each: how to initialise, start and probe it.

A service never starts itself: the supervisor asks ``prepare`` (idempotent one-time setup), builds
a :class:`Child` from ``argv``/``child_env``, polls ``ready`` and then calls ``after_ready``.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from orchestrator.processes import pid_alive

from .child import Child
from .probes import docker_answers, http_status
from .profile import HOST, Profile
from .secrets import Secrets
from .tusd import hooks_url, tusd_flags


@dataclass
class Context:
    """What every service may know: the profile, its secrets and the environments to pass on."""

    profile: Profile
    secrets: Secrets
    stack_env: dict[str, str]  # the settings written to <datadir>/env
    base_env: dict[str, str]  # the supervisor's own environment, read once by the entry point

    @property
    def child_env(self) -> dict[str, str]:
        env = {**self.base_env, **self.stack_env}
        env["PATH"] = f"{self.profile.venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
        return env


class Service:
    name: ClassVar[str]
    user: ClassVar[str | None] = None  # run as this OS user (PostgreSQL refuses root)
    stop_signal: ClassVar[int] = signal.SIGTERM
    stop_timeout: ClassVar[float] = 10.0
    start_timeout: ClassVar[float] = 60.0

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.profile = ctx.profile

    def missing(self) -> str | None:
        """Why this service cannot run on this checkout/machine, or None when it can."""
        return None

    def wanted(self) -> bool:
        """False when something outside the stack already provides the service (dockerd)."""
        return True

    def ports(self) -> list[int]:
        return []

    def prepare(self) -> None:
        """One-time initialisation; cheap and harmless when already done."""

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return self.ctx.child_env

    def ready(self, child: Child) -> bool:
        raise NotImplementedError

    def after_ready(self) -> None:
        """Work that needs the running service (roles, buckets)."""

    def child(self) -> Child:
        return Child(
            self.name,
            self.argv(),
            env=self.env(),
            log_path=self.profile.log(self.name),
            cwd=self.profile.root,
            user=self.user,
            stop_signal=self.stop_signal,
            stop_timeout=self.stop_timeout,
        )


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    """Debian's newest installed server binaries (bookworm ships 15)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class Postgres(Service):
    name = "postgres"
    user = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients to leave
    stop_timeout = 20.0

    def missing(self) -> str | None:
        if _pg_bin() is None:
            return "PostgreSQL server binaries not found under /usr/lib/postgresql (make install)"
        return None

    def ports(self) -> list[int]:
        return [self.profile.ports.postgres]

    @property
    def home(self) -> Path:
        """``<datadir>/pg`` (or where that link points): cluster in ``data``, socket in ``run``."""
        return (self.profile.datadir / "pg").resolve()

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def sockets(self) -> Path:
        return self.home / "run"

    def _as_postgres(self, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        with self.profile.log(self.name).open("ab") as log:
            return subprocess.run(
                argv,
                user="postgres",
                group="postgres",
                extra_groups=[],
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )

    def _place_home(self) -> None:
        """Keep the cluster in the data dir when the ``postgres`` user can reach it.

        A checkout under /root (mode 0700) cannot be traversed by ``postgres``, and a deep path
        overflows the 107-byte limit of a unix socket path; then the cluster lives under
        /var/lib/postgresql/localstack/ and ``<datadir>/pg`` is a symlink to it.
        """
        link = self.profile.datadir / "pg"
        if link.exists() or link.is_symlink():
            return
        reachable = self._as_postgres(["test", "-x", str(self.profile.datadir)]).returncode == 0
        socket_path = link / "run" / f".s.PGSQL.{self.profile.ports.postgres}"
        if reachable and len(str(socket_path)) < 100:
            link.mkdir()
            shutil.chown(link, "postgres", "postgres")
            link.chmod(0o700)
            return
        key = hashlib.sha256(str(self.profile.datadir).encode()).hexdigest()[:12]
        home = Path("/var/lib/postgresql/localstack") / key
        home.mkdir(parents=True, exist_ok=True)
        shutil.chown(home, "postgres", "postgres")
        home.chmod(0o700)
        link.symlink_to(home)

    def prepare(self) -> None:
        self._place_home()
        self.sockets.mkdir(exist_ok=True)
        shutil.chown(self.sockets, "postgres", "postgres")
        self.sockets.chmod(0o700)  # only root and postgres reach the trust-authenticated socket
        if (self.data / "PG_VERSION").exists():
            return
        bin_dir = _pg_bin()
        assert bin_dir is not None
        done = self._as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ]
        )
        if done.returncode != 0:
            log = self.profile.log(self.name)
            raise RuntimeError(f"initdb failed (exit {done.returncode}); see {log}")

    def argv(self) -> list[str]:
        bin_dir = _pg_bin()
        assert bin_dir is not None
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.profile.ports.postgres),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            f"unix_socket_directories={self.sockets}",
            "-c",
            "logging_collector=off",
            "-c",
            # As compose.yml: connections that never finish logging in hold a slot this long.
            "authentication_timeout=5s",
        ]
        if self.profile.name == "test":
            # Throwaway data: trade crash safety for speed on a 2-core machine.
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                argv += ["-c", setting]
        return argv

    def _connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(
            host=str(self.sockets),
            port=self.profile.ports.postgres,
            user="postgres",
            dbname="postgres",
            connect_timeout=2,
            autocommit=True,
        )

    def ready(self, child: Child) -> bool:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:
            return False

    def after_ready(self) -> None:
        from psycopg import sql

        password = self.ctx.secrets.pg_password
        with self._connect() as conn:
            role = "SELECT 1 FROM pg_roles WHERE rolname = 'orchestrator'"
            exists = conn.execute(role).fetchone()
            verb = "ALTER" if exists else "CREATE"
            # CREATEDB so tests may make scratch databases; the password follows the secrets file.
            conn.execute(
                sql.SQL(verb + " ROLE orchestrator WITH LOGIN CREATEDB PASSWORD {}").format(
                    sql.Literal(password)
                )
            )
            db = "SELECT 1 FROM pg_database WHERE datname = 'orchestrator'"
            if not conn.execute(db).fetchone():
                conn.execute("CREATE DATABASE orchestrator OWNER orchestrator")


# --- Redis -----------------------------------------------------------------------------------


class Redis(Service):
    name = "redis"

    def missing(self) -> str | None:
        return None if shutil.which("redis-server") else "redis-server not installed (make install)"

    def ports(self) -> list[int]:
        return [self.profile.ports.redis]

    @property
    def dir(self) -> Path:
        return self.profile.datadir / "redis"

    def prepare(self) -> None:
        self.dir.mkdir(exist_ok=True)

    def argv(self) -> list[str]:
        return [
            "redis-server",
            "--bind",
            HOST,
            "--port",
            str(self.profile.ports.redis),
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
            "--save",
            "",
        ]

    def ready(self, child: Child) -> bool:
        import redis

        try:
            client = redis.Redis.from_url(self.profile.redis_url, socket_timeout=1)
            return bool(client.ping())
        except Exception:
            return False


# --- MinIO (S3) ------------------------------------------------------------------------------


BUCKETS = ("uploads", "results")


def go_binary(profile: Profile, name: str) -> Path:
    """A program scripts/install.sh built from its Go module (pins in scripts/pins.env)."""
    return profile.root / ".bin" / name


class Minio(Service):
    """MinIO, built from its Go module: the same server compose runs, one drive, loopback only."""

    name = "minio"
    start_timeout = 60.0

    @property
    def binary(self) -> Path:
        return go_binary(self.profile, "minio")

    @property
    def data(self) -> Path:
        return self.profile.datadir / "minio"

    def missing(self) -> str | None:
        return None if self.binary.exists() else f"{self.binary} not built (make install)"

    def ports(self) -> list[int]:
        return [self.profile.ports.s3]

    def prepare(self) -> None:
        self.data.mkdir(exist_ok=True)

    def env(self) -> dict[str, str]:
        s = self.ctx.secrets
        return {
            **self.ctx.child_env,
            "MINIO_ROOT_USER": s.s3_access_key,
            "MINIO_ROOT_PASSWORD": s.s3_secret_key,
            # No web console and no update checks: a headless store on a closed network.
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "server",
            str(self.data),
            "--address",
            f"{HOST}:{self.profile.ports.s3}",
            "--quiet",
        ]

    def client(self):  # type: ignore[no-untyped-def]
        import urllib3
        from minio import Minio as MinioClient

        s = self.ctx.secrets
        # No retries: the readiness loop is the retry, and urllib3's backoff would only add noise.
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=5), retries=False)
        return MinioClient(
            f"{HOST}:{self.profile.ports.s3}",
            access_key=s.s3_access_key,
            secret_key=s.s3_secret_key,
            secure=False,
            region=self.ctx.stack_env["S3_REGION"],
            http_client=http,
        )

    def ready(self, child: Child) -> bool:
        if http_status("GET", f"{self.profile.s3_endpoint}/minio/health/ready") != 200:
            return False
        try:
            self.client().list_buckets()
            return True
        except Exception:
            return False

    def after_ready(self) -> None:
        client = self.client()
        for bucket in BUCKETS:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)


# --- dockerd ---------------------------------------------------------------------------------


class Dockerd(Service):
    """Started only when no Docker engine answers; a daemon we did not start is left alone."""

    name = "dockerd"
    stop_timeout = 30.0

    def missing(self) -> str | None:
        return None if shutil.which("dockerd") else "dockerd not installed (make install)"

    def wanted(self) -> bool:
        return not docker_answers(self.ctx.base_env)

    def env(self) -> dict[str, str]:
        return dict(self.ctx.base_env)

    def prepare(self) -> None:
        # A daemon killed hard leaves its pid file, and a new one refuses to start over it.
        pid_file = Path("/var/run/docker.pid")
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        if not pid_alive(pid):
            pid_file.unlink(missing_ok=True)

    def argv(self) -> list[str]:
        return ["dockerd"]

    def ready(self, child: Child) -> bool:
        return docker_answers(self.ctx.base_env, timeout=5)


# --- tusd, API, worker -----------------------------------------------------------------


class Tusd(Service):
    """tusd, built from its Go module, with the flags compose gives it (``tusd_flags``)."""

    name = "tusd"
    stop_timeout = 15.0  # -shutdown-timeout lets running PATCHes finish first

    @property
    def binary(self) -> Path:
        return go_binary(self.profile, "tusd")

    def missing(self) -> str | None:
        return None if self.binary.exists() else f"{self.binary} not built (make install)"

    def ports(self) -> list[int]:
        return [self.profile.ports.tus]

    def env(self) -> dict[str, str]:
        s = self.ctx.secrets
        return {
            **self.ctx.child_env,
            "AWS_ACCESS_KEY_ID": s.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": s.s3_secret_key,
            "AWS_REGION": self.ctx.stack_env["S3_REGION"],
        }

    def argv(self) -> list[str]:
        p = self.profile
        return [
            str(self.binary),
            *tusd_flags(
                host=HOST,
                port=p.ports.tus,
                s3_endpoint=p.s3_endpoint,
                hooks_url=hooks_url(p, self.ctx.secrets.hook_secret),
            ),
        ]

    def ready(self, child: Child) -> bool:
        return http_status("OPTIONS", self.profile.tus_url) in (200, 204)


class Api(Service):
    name = "api"
    start_timeout = 120.0  # migrations run at start

    def missing(self) -> str | None:
        main = self.profile.root / "orchestrator" / "__main__.py"
        return None if main.exists() else "orchestrator/__main__.py not found (no API yet)"

    def ports(self) -> list[int]:
        return [self.profile.ports.api, self.profile.ports.hooks]

    def argv(self) -> list[str]:
        return [
            str(self.profile.venv_bin / "python"),
            "-m",
            "orchestrator",
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.profile.ports.api),
        ]

    def ready(self, child: Child) -> bool:
        return http_status("GET", f"{self.profile.api_url}/health") == 200


class Worker(Service):
    name = "worker"
    start_timeout = 60.0
    stop_timeout = 15.0  # RQ's warm shutdown lets a running job's container be stopped

    def missing(self) -> str | None:
        main = self.profile.root / "worker" / "__main__.py"
        return None if main.exists() else "worker/__main__.py not found (no worker yet)"

    def prepare(self) -> None:
        self.profile.work_dir.mkdir(exist_ok=True)

    def argv(self) -> list[str]:
        return [str(self.profile.venv_bin / "python"), "-m", "worker"]

    def ready(self, child: Child) -> bool:
        """One of its slots registered with RQ (slot names are ``<host>:<pid>/slot<k>``, the
        pid being this child's); failing that, alive for a while."""
        import redis

        try:
            client = redis.Redis.from_url(self.profile.redis_url, socket_timeout=1)
            for key in client.smembers("rq:workers"):
                name = key.decode() if isinstance(key, bytes) else str(key)
                if f":{child.pid}/slot" in name:
                    return True
        except Exception:
            pass
        # RQ may run in a grandchild (then the pids differ): accept a worker that stays up.
        return child.running and child.uptime() > 10.0


def all_services(ctx: Context) -> list[Service]:
    """The services in start order (the images step goes after dockerd)."""
    return [Postgres(ctx), Redis(ctx), Minio(ctx), Dockerd(ctx), Api(ctx), Tusd(ctx), Worker(ctx)]
