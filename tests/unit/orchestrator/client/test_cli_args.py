"""The command line: options anywhere, --<slot> options from the pipeline's spec, usage errors
before any request, and what a dead server gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.client import cli
from orchestrator.client.api import Client
from orchestrator.client.errors import Conflict, InvalidRequest

SPEC: dict[str, Any] = {
    "name": "volcal",
    "description": "Volumes between two surveys.",
    "inputs": {
        "pre": {"required": True, "accept": [".las"], "max_bytes": 1000},
        "shape_file": {"required": False, "accept": [], "max_bytes": 1000},
    },
    "params": {"cell_m": {"type": "float", "default": 0.5}},
}


def test_common_options_before_or_after_the_command() -> None:
    parser = cli.build_parser()
    before = parser.parse_args(["--json", "--url", "http://a", "status", "t1"])
    after = parser.parse_args(["status", "t1", "--json", "--url", "http://b", "--api-key", "k"])
    neither = parser.parse_args(["status", "t1"])
    assert (before.json, before.url, before.task_id) == (True, "http://a", "t1")
    assert (after.json, after.url, after.api_key) == (True, "http://b", "k")
    assert (neither.json, neither.url, neither.api_key) == (False, None, None)


def test_submit_leaves_slot_options_for_later() -> None:
    args, extra = cli.build_parser().parse_known_args(
        ["submit", "checksum", "--first", "a", "--json", "--second", "b", "--wait"]
    )
    assert args.pipeline == "checksum" and args.json is True
    assert extra == ["--first", "a", "--second", "b", "--wait"]


def test_submit_parser_from_spec(tmp_path: Path) -> None:
    p = cli.submit_parser("volcal", SPEC)
    args = p.parse_args(
        [
            "--pre",
            "a.las",
            "--shape-file",
            "s.shp",
            "--param",
            "cell_m=1",
            "--wait",
            "--download",
            "out",
            "--max-rate",
            "2.5",
        ]
    )
    assert vars(args)["slot:pre"] == "a.las" and vars(args)["slot:shape_file"] == "s.shp"
    assert args.param == ["cell_m=1"] and args.wait and args.download == "out"
    assert args.max_rate == 2.5 and args.parallel == 4 and args.chunk_mib == 32
    text = " ".join(p.format_help().split())
    for piece in (
        "--pre FILE",
        "--shape_file FILE, --shape-file FILE",
        "required; .las",
        "optional; any file",
        "cell_m (float, default 0.5)",
        "exit codes:",
    ):
        assert piece in text, piece
    # No abbreviations: a slot named like the start of an option must never be taken for it.
    with pytest.raises(SystemExit):
        p.parse_args(["--pr", "a.las"])


def test_other_commands_refuse_unknown_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.run(["status", "t1", "--bogus"])
    assert e.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["list", "--limit", "many"],
        ["nope"],
        ["submit"],
        ["submit", "volcal", "--pre", "missing.las"],
        ["submit", "volcal"],
        ["submit", "volcal", "--pre", "ok.las", "--param", "cell_m"],
        ["submit", "volcal", "--pre", "ok.las", "--param", "colour=red"],
        ["submit", "volcal", "--pre", "ok.las", "--parallel", "0"],
    ],
)
def test_usage_errors_exit_2_before_any_task_is_created(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.las").write_bytes(b"x")
    monkeypatch.setattr(Client, "pipeline", lambda self, name: SPEC)

    def no_create(*a: Any, **kw: Any) -> None:
        raise AssertionError("create_task must not be called")

    monkeypatch.setattr(Client, "create_task", no_create)
    with pytest.raises(SystemExit) as e:
        cli.run(argv)
    assert e.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_submit_help_lists_the_pipelines_slots(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Client, "pipeline", lambda self, name: SPEC)
    with pytest.raises(SystemExit) as e:
        cli.run(["submit", "volcal", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "orchestrator submit volcal" in out and "--pre FILE" in out


def test_an_unreachable_server_is_exit_5(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 9 (discard) is closed on any sane machine: connection refused at once.
    assert cli.run(["--url", "http://127.0.0.1:9", "status", "t1"]) == 5
    assert "error:" in capsys.readouterr().err


def test_json_errors_leave_stdout_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["--url", "http://127.0.0.1:9", "list", "--json"]) == 5
    assert capsys.readouterr().out == ""


class FakeClient:
    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0

    def start_task(self, task_id: str) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.refusals:
            raise Conflict(409, "inputs missing", {"detail": "inputs missing", "missing": ["b"]})
        return {"task_id": task_id, "status": "pending"}


def test_start_waits_for_the_last_upload_to_be_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.time, "sleep", lambda s: None)
    fake = FakeClient(refusals=3)
    ctx = cli.Context(client=fake, url="u", json=True, out=None, err=None)  # type: ignore[arg-type]
    assert cli._start(ctx, "t")["status"] == "pending"
    assert fake.calls == 4


def test_start_gives_up_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.time, "sleep", lambda s: None)
    monkeypatch.setattr(cli, "START_SETTLE_S", -1.0)
    fake = FakeClient(refusals=100)
    ctx = cli.Context(client=fake, url="u", json=True, out=None, err=None)  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        cli._start(ctx, "t")


GROUPED: dict[str, Any] = {
    "name": "volcal_baseline",
    "inputs": {
        "pre": {"required": True, "accept": [".las"], "max_bytes": 1000, "group": None},
        "shp": {"required": True, "accept": [".shp"], "max_bytes": 1000, "group": "stable"},
        "shx": {"required": True, "accept": [".shx"], "max_bytes": 1000, "group": "stable"},
        "prj": {"required": False, "accept": [".prj"], "max_bytes": 1000, "group": "stable"},
    },
    "params": {},
}


def test_submit_finds_the_shapefile_parts_and_passes_notify_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "site").mkdir()
    for name in ("a.las", "site/stable.shp", "site/stable.SHX", "site/stable.prj", "mine.prj"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(Client, "pipeline", lambda self, name: GROUPED)
    calls: list[tuple[Any, ...]] = []

    def refuse(
        self: Client,
        pipeline: str,
        params: Any,
        notify_url: str | None = None,
        priority: str | int | None = None,
    ) -> None:
        calls.append((pipeline, params, notify_url))
        raise InvalidRequest(422, "notify_url: must be an absolute http:// or https:// URL")

    monkeypatch.setattr(Client, "create_task", refuse)
    code = cli.run(
        [
            "submit",
            "volcal_baseline",
            "--pre",
            "a.las",
            "--shp",
            "site/stable.shp",
            "--prj",
            "mine.prj",
            "--notify-url",
            "ftp://x",
        ]
    )
    assert code == 4
    assert calls == [("volcal_baseline", {}, "ftp://x")]
    err = " ".join(capsys.readouterr().err.split())
    assert "using site/stable.SHX for 'shx' (beside site/stable.shp)" in err
    assert "for 'prj'" not in err  # given explicitly: it wins
    assert "422: notify_url: must be an absolute http:// or https:// URL" in err


def test_submit_names_a_missing_part_of_a_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a.las", "stable.shp"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(Client, "pipeline", lambda self, name: GROUPED)

    def no_create(*a: Any, **kw: Any) -> None:
        raise AssertionError("create_task must not be called")

    monkeypatch.setattr(Client, "create_task", no_create)
    with pytest.raises(SystemExit) as e:
        cli.run(["submit", "volcal_baseline", "--pre", "a.las", "--shp", "stable.shp"])
    assert e.value.code == 2
    assert "missing required input --shx FILE: no stable.shx beside stable.shp" in " ".join(
        capsys.readouterr().err.split()
    )
