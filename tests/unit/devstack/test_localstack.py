"""The local stack's pure parts and its restart policy, without any real service."""

from __future__ import annotations

import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from devstack import envfile, images, supervisor
from devstack.child import Child, redacted
from devstack.profile import Ports, Profile, get_profile
from devstack.secrets import Secrets, load_or_create
from devstack.services import Context, Service
from devstack.tusd import hooks_url, tusd_flags


def test_test_profile_shifts_every_port_by_100(tmp_path: Path) -> None:
    dev, test = get_profile("dev", tmp_path), get_profile("test", tmp_path)
    assert test.datadir == tmp_path / ".stack-test" and dev.datadir == tmp_path / ".stack"
    for name, port in vars(dev.ports).items():
        assert getattr(test.ports, name) == port + 100
    assert (dev.ports.api, dev.ports.postgres, dev.ports.tus) == (8000, 15432, 11080)
    with pytest.raises(ValueError):
        get_profile("prod", tmp_path)


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(path) == first
    assert first.api_key != Secrets.generate().api_key


def test_env_file_round_trips_and_quotes_what_the_shell_would_split(tmp_path: Path) -> None:
    profile = get_profile("test", tmp_path)
    env = envfile.stack_env(profile, Secrets.generate())
    env["ODD"] = "a b'c$d"
    path = tmp_path / "env"
    envfile.write(path, env)
    assert envfile.parse(path.read_text()) == env
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"TUS_PUBLIC_URL=http://127.0.0.1:{profile.ports.tus}/files/" in path.read_text()


def _pipeline(root: Path, name: str) -> Path:
    folder = root / "pipelines" / name
    folder.mkdir(parents=True)
    (root / "pipelines" / "spec.py").write_text("SPEC = 1\n")
    (root / "pipelines" / "__init__.py").write_text("")
    (folder / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    (folder / "main.py").write_text("print('hi')\n")
    return folder


def test_source_hash_follows_the_pipeline_and_the_shared_spec(tmp_path: Path) -> None:
    folder = _pipeline(tmp_path, "demo")
    before = images.source_hash(tmp_path, "demo")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    assert images.source_hash(tmp_path, "demo") == before  # caches don't count
    (folder / "main.py").write_text("print('changed')\n")
    changed = images.source_hash(tmp_path, "demo")
    assert changed != before
    (tmp_path / "pipelines" / "spec.py").write_text("SPEC = 2\n")
    assert images.source_hash(tmp_path, "demo") != changed
    assert images.pipeline_names(tmp_path) == ["demo"]


def test_build_context_leaves_out_venv_and_stack_data(tmp_path: Path) -> None:
    _pipeline(tmp_path, "demo")
    junks = (
        ".venv/lib/x.py",
        ".stack/pg/data/PG_VERSION",
        "orchestrator/web/node_modules/m.js",
        ".bin/tusd",
    )
    for junk in junks:
        (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / junk).write_text("x")
    cas = tmp_path / "cas"
    cas.mkdir()
    (cas / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    out = tmp_path / "ctx.tar"
    images.write_context(tmp_path, out, ca_source=cas)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert "pipelines/demo/Dockerfile" in names and "pipelines/spec.py" in names
    assert f"{images.HOST_CA_DIR}/corp.crt" in names
    assert not any(
        n.startswith((".venv", ".stack", "ctx.tar", ".bin")) or "node_modules" in n for n in names
    )


class Flaky(Service):
    name = "flaky"


def test_a_crash_looping_child_is_restarted_with_backoff_then_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "BACKOFF_START_S", 0.01)
    profile = Profile("test", tmp_path, tmp_path / "data", Ports())
    profile.datadir.mkdir()
    ctx = Context(profile, Secrets.generate(), {}, dict(os.environ))
    sup = supervisor.Supervisor(ctx)
    child = Child(
        "flaky",
        ["sh", "-c", "echo boom; exit 3"],
        env=dict(os.environ),
        log_path=profile.log("flaky"),
        cwd=tmp_path,
    )
    child.start()
    run = supervisor.Running(Flaky(ctx), child)
    sup.running.append(run)
    code = None
    deadline = time.monotonic() + 20
    while code is None and time.monotonic() < deadline:
        code = sup._tend(run)
        time.sleep(0.005)
    assert code == 1
    assert run.restarts == supervisor.MAX_FAST_FAILS - 1
    assert profile.log("flaky").read_text().splitlines().count("boom") == supervisor.MAX_FAST_FAILS
    assert '"restarts": 4' in (profile.datadir / "children.json").read_text()


# --- tusd's flags and the secret in its hook URL -------------------------------------------------
def test_tusd_hooks_go_to_the_internal_listener_with_the_secret_as_userinfo(
    tmp_path: Path,
) -> None:
    profile = get_profile("test", tmp_path)
    url = hooks_url(profile, "s3cr/et")
    assert url == f"http://tusd:s3cr%2Fet@127.0.0.1:{profile.ports.hooks}/tusd_hook"
    assert profile.ports.hooks != profile.ports.api


def test_tusd_flags_harden_what_the_audit_found() -> None:
    flags = tusd_flags(host="h", port=1, s3_endpoint="http://s3", hooks_url="http://u:p@a/x")
    assert "-disable-download" in flags and "-show-startup-logs=false" in flags
    assert "-behind-proxy=false" in flags
    assert "-hooks-http-timeout=10s" in flags
    events = next(f for f in flags if f.startswith("-hooks-enabled-events=")).split("=")[1]
    assert {"pre-create", "pre-finish", "post-finish", "pre-terminate"} <= set(events.split(","))
    assert "-behind-proxy=true" in tusd_flags(
        host="h", port=1, s3_endpoint="s", hooks_url="u", behind_proxy=True
    )


@pytest.mark.parametrize(
    ("arg", "shown"),
    [
        (
            "-hooks-http=http://tusd:abc@127.0.0.1:8001/tusd_hook",
            "-hooks-http=http://tusd:***@127.0.0.1:8001/tusd_hook",
        ),
        ("postgresql+psycopg://o:pw@h:5/db", "postgresql+psycopg://o:***@h:5/db"),
        ("http://127.0.0.1:8001/tusd_hook", "http://127.0.0.1:8001/tusd_hook"),
        ("-s3-bucket=uploads", "-s3-bucket=uploads"),
    ],
)
def test_the_supervisor_logs_command_lines_without_url_passwords(arg: str, shown: str) -> None:
    assert redacted(arg) == shown
