"""Container images: the ``debian:bookworm-slim`` base, one ``pipeline-<name>`` per pipeline,
and the orchestrator's own ``orchestrator-api`` and ``orchestrator-worker`` (root Dockerfile).

Where no registry answers, the base tag is seeded from ``debootstrap --variant=minbase`` and
``docker import``. Images are rebuilt only when their sources change: each carries a label with
a hash of what it is built from (a pipeline: ``pipelines/spec.py``, ``pipefile.py``, ``__init__.py``
and its own folder; the api/worker images: the root Dockerfile, pyproject.toml and the packages).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .child import log_tail

BASE_TAG = "debian:bookworm-slim"
# Certificates the host trusts locally (Debian's place for them), put into every build context at
# HOST_CA_DIR so a Dockerfile that downloads over HTTPS behind a TLS-inspecting proxy can trust
# what the host trusts:  COPY .build/host-ca/ /usr/local/share/ca-certificates/
#                        RUN update-ca-certificates
# and pip given --cert /etc/ssl/certs/ca-certificates.crt (pip's own bundle knows no local CA).
# The folder is always there (possibly empty), so that COPY works on any machine. The same
# certificates also go in as the build argument EXTRA_CA_CERT (PEM text, empty when none) for
# Dockerfiles that prefer `ARG EXTRA_CA_CERT`.
LOCAL_CA_SOURCE = Path("/usr/local/share/ca-certificates")
HOST_CA_DIR = ".build/host-ca"
HASH_LABEL = "org.upload-orchestrator.source-hash"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Never sent to the Docker daemon as build context: big, private or irrelevant to an image.
_CONTEXT_SKIP = {
    ".git",
    ".venv",
    ".stack",
    ".stack-test",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "build",
    "dist",
    ".bin",  # tusd and MinIO from scripts/install.sh: hundreds of MB no app image uses
}
_CONTEXT_SKIP_GLOBS = ("*.egg-info", "*.pyc", "bench/out", ".env")

Say = Callable[[str], None]
ShouldStop = Callable[[], bool]


class ImageError(RuntimeError):
    pass


def _docker(
    args: list[str], env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def image_exists(tag: str, env: Mapping[str, str]) -> bool:
    return _docker(["image", "inspect", "--format", "{{.Id}}", tag], env).returncode == 0


# --- base image ------------------------------------------------------------------------------


def ensure_base(
    env: Mapping[str, str],
    log_path: Path,
    say: Say,
    *,
    tag: str = BASE_TAG,
    mirror: str = DEFAULT_MIRROR,
) -> str:
    """Make sure ``tag`` exists: present, pulled, or seeded by debootstrap. Says which."""
    if image_exists(tag, env):
        return "present"
    say(f"base image {tag} missing; trying docker pull")
    try:
        pulled = _docker(["pull", tag], env, timeout=180)
        if pulled.returncode == 0:
            return "pulled"
    except subprocess.TimeoutExpired:
        pass
    say(f"no registry answered; seeding {tag} with debootstrap from {mirror} (a few minutes)")
    seed_base(tag, env, log_path, mirror)
    return "seeded"


def seed_base(
    tag: str, env: Mapping[str, str], log_path: Path, mirror: str = DEFAULT_MIRROR
) -> None:
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap not installed (make install)")
    rootfs = Path(tempfile.mkdtemp(prefix="bookworm-rootfs-", dir="/var/tmp"))
    try:
        with log_path.open("ab") as log:
            log.write(f"\n=== debootstrap bookworm into {rootfs}\n".encode())
            log.flush()
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            raise ImageError(f"debootstrap failed (exit {done.returncode}); see {log_path}")
        # What a slim image leaves out: downloaded packages and package lists.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "--change", 'CMD ["bash"]', "-", tag],
            stdin=tar.stdout,
            env=dict(env),
            capture_output=True,
            text=True,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise ImageError(f"docker import of {tag} failed: {imported.stderr.strip()}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


# --- pipeline images -------------------------------------------------------------------------


def pipeline_names(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "pipelines").glob("*/Dockerfile"))


def _skip(rel: str) -> bool:
    parts = rel.split("/")
    if any(part in _CONTEXT_SKIP for part in parts):
        return True
    return any(
        fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(parts[-1], g) for g in _CONTEXT_SKIP_GLOBS
    )


def _files(folder: Path, root: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not _skip(p.relative_to(root).as_posix())
    )


def _hash_files(root: Path, files: list[Path]) -> str:
    """Hash of the paths (relative to ``root``) and contents of those of ``files`` that exist."""
    digest = hashlib.sha256()
    for path in files:
        if path.exists():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def source_hash(root: Path, name: str) -> str:
    """Hash of everything a pipeline image is built from (paths and contents)."""
    pipelines = root / "pipelines"
    shared = [pipelines / "spec.py", pipelines / "pipefile.py", pipelines / "__init__.py"]
    files = [*shared, *_files(pipelines / name, root)]
    return _hash_files(root, files)


def built_hash(tag: str, env: Mapping[str, str]) -> str | None:
    done = _docker(
        ["image", "inspect", "--format", f'{{{{ index .Config.Labels "{HASH_LABEL}" }}}}', tag], env
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def write_context(root: Path, out: Path, ca_source: Path = LOCAL_CA_SOURCE) -> None:
    """The build context: the repository minus what ``_CONTEXT_SKIP`` names, plus the host's
    local CA certificates under ``HOST_CA_DIR``.

    Built here rather than by ``docker build .`` so that no .dockerignore is needed to keep the
    virtualenv and the stack's data dirs (PostgreSQL's is unreadable) out of the upload.
    """
    # GNU format: the PAX default adds an extended header (float mtimes) in front of the first
    # entry, and the docker CLI then no longer recognises stdin as an archive.
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if _skip(rel) or not (path.is_file() or path.is_dir()) or path.is_symlink():
                continue
            tar.add(path, arcname=rel, recursive=False)
        for folder in (".build", HOST_CA_DIR):
            entry = tarfile.TarInfo(folder)
            entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(entry)
        for cert in sorted(ca_source.rglob("*.crt")) if ca_source.is_dir() else []:
            tar.add(cert, arcname=f"{HOST_CA_DIR}/{cert.name}", recursive=False)


@dataclass(frozen=True)
class ImageBuild:
    """One image to keep current: results are reported under ``key``."""

    key: str
    tag: str
    dockerfile: str
    source_hash: str
    target: str | None = None
    # Build from a context of just these files (path, name in the context) instead of the
    # checkout's; ``dockerfile`` is then a name in that context.
    files: tuple[tuple[Path, str], ...] = ()


def _write_files_context(out: Path, files: tuple[tuple[Path, str], ...]) -> None:
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for path, name in files:
            tar.add(path, arcname=name)


def build_images(
    root: Path,
    builds: list[ImageBuild],
    env: Mapping[str, str],
    log_path: Path,
    say: Say,
    *,
    force: bool = False,
    should_stop: ShouldStop = lambda: False,
) -> dict[str, str]:
    """Build every image whose label hash differs from its sources' (all of them with ``force``).

    Returns ``{key: "built" | "current" | "failed: <why>"}``: one broken image does not stop the
    others from building. An interruption (``should_stop``) raises :class:`ImageError`. The
    build context is written once, and only when something needs building.
    """
    results: dict[str, str] = {}
    context: Path | None = None  # the checkout's, shared by every build that uses it
    try:
        for b in builds:
            if not force and built_hash(b.tag, env) == b.source_hash:
                results[b.key] = "current"
                continue
            own: Path | None = None
            if b.files:
                own = Path(tempfile.mkstemp(prefix="build-context-", suffix=".tar")[1])
                _write_files_context(own, b.files)
            elif context is None:
                context = Path(tempfile.mkstemp(prefix="build-context-", suffix=".tar")[1])
                write_context(root, context)
            used = own or context
            assert used is not None
            say(f"building {b.tag} (log: {log_path})")
            started = time.monotonic()
            try:
                _build(
                    b.tag,
                    b.dockerfile,
                    b.source_hash,
                    used,
                    env,
                    log_path,
                    should_stop,
                    target=b.target,
                )
            except ImageError as exc:
                if should_stop():
                    raise
                say(f"FAILED: {exc}\n{log_tail(log_path, 15)}")
                results[b.key] = f"failed: {exc}"
                continue
            finally:
                if own is not None:
                    own.unlink(missing_ok=True)
            say(f"built {b.tag} in {time.monotonic() - started:.0f} s")
            results[b.key] = "built"
    finally:
        if context is not None:
            context.unlink(missing_ok=True)
    return results


def build_pipelines(
    root: Path,
    env: Mapping[str, str],
    log_path: Path,
    say: Say,
    *,
    force: bool = False,
    should_stop: ShouldStop = lambda: False,
    only: list[str] | None = None,
) -> dict[str, str]:
    """Build each ``pipelines/<name>/Dockerfile`` as ``pipeline-<name>:latest`` unless current.

    Returns ``{name: "built" | "current" | "failed: <why>"}`` (see :func:`build_images`).
    """
    builds = [
        ImageBuild(
            name, f"pipeline-{name}:latest", f"pipelines/{name}/Dockerfile", source_hash(root, name)
        )
        for name in pipeline_names(root)
        if only is None or name in only
    ]
    return build_images(root, builds, env, log_path, say, force=force, should_stop=should_stop)


# --- the orchestrator's own images (root Dockerfile, one target each) -------------------------

APP_TARGETS = ("api", "worker")
# What the root Dockerfile copies in: a change to any of these makes the api/worker images stale.
APP_SOURCES = ("Dockerfile", "pyproject.toml", "README.md")
APP_PACKAGES = ("orchestrator", "hooks", "worker", "pipelines")


def app_tag(target: str) -> str:
    return f"orchestrator-{target}:latest"


def app_source_hash(root: Path) -> str:
    """Hash of everything the api and worker images are built from (paths and contents)."""
    files = [root / name for name in APP_SOURCES]
    for package in APP_PACKAGES:
        files += _files(root / package, root)
    return _hash_files(root, files)


def build_apps(
    root: Path,
    env: Mapping[str, str],
    log_path: Path,
    say: Say,
    *,
    force: bool = False,
    should_stop: ShouldStop = lambda: False,
) -> dict[str, str]:
    """Build ``orchestrator-api:latest`` and ``orchestrator-worker:latest`` unless current.

    Returns ``{tag: "built" | "current" | "failed: <why>"}`` like :func:`build_pipelines`. Both
    targets share every layer but their last, so the second build is a cache hit.
    """
    wanted = app_source_hash(root)
    builds = [
        ImageBuild(app_tag(t), app_tag(t), "Dockerfile", wanted, target=t) for t in APP_TARGETS
    ]
    return build_images(root, builds, env, log_path, say, force=force, should_stop=should_stop)


def local_ca_pem(ca_source: Path = LOCAL_CA_SOURCE) -> str:
    if not ca_source.is_dir():
        return ""
    return "".join(p.read_text() for p in sorted(ca_source.rglob("*.crt")))


# --- stand-ins for compose.yml's third-party images (deploy/compose.local.yml) -----------------


@dataclass(frozen=True)
class ServiceImage:
    """A locally built stand-in for a registry image: its Dockerfile and the files its context
    holds (each under its base name), all relative to the checkout."""

    tag: str
    dockerfile: str
    files: tuple[str, ...] = ()


# The tags deploy/compose.local.yml names (a unit test holds the two together). The binaries
# come from scripts/install.sh (pins in scripts/pins.env).
SERVICE_IMAGES = (
    ServiceImage(
        "orchestrator-local/postgres:15",
        "deploy/images/postgres.Dockerfile",
        ("deploy/images/postgres-entrypoint.sh",),
    ),
    ServiceImage("orchestrator-local/redis:7", "deploy/images/redis.Dockerfile"),
    ServiceImage("orchestrator-local/tusd:v2.9.1", "deploy/images/tusd.Dockerfile", (".bin/tusd",)),
    ServiceImage(
        "orchestrator-local/minio:latest",
        "deploy/images/minio.Dockerfile",
        (".bin/minio", ".bin/mc"),
    ),
)


def build_services(
    root: Path,
    env: Mapping[str, str],
    log_path: Path,
    say: Say,
    *,
    force: bool = False,
    should_stop: ShouldStop = lambda: False,
) -> dict[str, str]:
    """Build each of ``SERVICE_IMAGES`` unless current; ``{tag: built|current|failed: ...}``
    (see :func:`build_images`). Each is built from a context of its own few files."""
    results: dict[str, str] = {}
    builds = []
    for image in SERVICE_IMAGES:
        paths = [root / image.dockerfile, *(root / f for f in image.files)]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            results[image.tag] = f"failed: missing {', '.join(missing)} (make install)"
            continue
        files = ((paths[0], "Dockerfile"), *((p, p.name) for p in paths[1:]))
        builds.append(
            ImageBuild(image.tag, image.tag, "Dockerfile", _hash_files(root, paths), files=files)
        )
    built = build_images(root, builds, env, log_path, say, force=force, should_stop=should_stop)
    return results | built


def _build(
    tag: str,
    dockerfile: str,
    source: str,
    context: Path,
    env: Mapping[str, str],
    log_path: Path,
    should_stop: ShouldStop,
    *,
    target: str | None = None,
) -> None:
    argv = [
        "docker",
        "build",
        "--network",
        "host",
        "--label",
        f"{HASH_LABEL}={source}",
        "--build-arg",
        f"EXTRA_CA_CERT={local_ca_pem()}",
        "-f",
        dockerfile,
        "-t",
        tag,
        *(["--target", target] if target else []),
        "-",
    ]
    with log_path.open("ab") as log, context.open("rb") as ctx:
        shown = [a if not a.startswith("EXTRA_CA_CERT=") else "EXTRA_CA_CERT=..." for a in argv]
        log.write(f"\n=== {' '.join(shown)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=ctx,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
        )
        while proc.poll() is None:
            if should_stop():
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
                proc.kill()
                raise ImageError(f"build of {tag} interrupted")
            time.sleep(0.5)
    if proc.returncode != 0:
        raise ImageError(f"build of {tag} failed (exit {proc.returncode}); see {log_path}")
