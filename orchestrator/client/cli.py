"""``orchestrator``: send files to a pipeline and follow its tasks from the command line.

    orchestrator pipelines                                  what each pipeline expects
    orchestrator submit checksum --first a.bin --second b.bin --wait --download out/
    orchestrator submit volcal_baseline --pre a.las --post b.laz --shp site/stable.shp --wait
    orchestrator status ID | watch ID | results ID --download DIR | kill ID
    orchestrator list --status running | workers

The server and key come from ``--url``/``--api-key`` or ``ORCHESTRATOR_URL`` /
``ORCHESTRATOR_API_KEY`` (default http://127.0.0.1:8000). Human output by default; ``--json``
prints one JSON document on stdout and nothing else there (progress goes to stderr).

``submit`` fills the other files of a multi-file input (a shapefile's .shx/.dbf/.prj, slots
sharing a ``group`` in GET /pipelines) from the given one's directory: same basename, an
extension the slot accepts; a file given explicitly always wins.

``submit`` remembers every upload (see ``orchestrator.client.resume``): after Ctrl-C or a
network cut, running the same command again continues the same task's uploads where the tus
server has them.

Exit codes are listed once, in ``orchestrator.client.exits`` (and shown by ``--help``).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    DownloadColumn,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars
from rich.progress import Task as ProgressTask
from rich.text import Text

from orchestrator.client import exits, render
from orchestrator.client.api import DEFAULT_URL, TERMINAL, Client, Downloaded
from orchestrator.client.errors import ClientError, Conflict, NotFound
from orchestrator.client.inputs import (
    UsageError,
    check_files,
    find_siblings,
    option_names,
    parse_params,
    parse_slot_args,
)
from orchestrator.client.resume import LocalFile, ResumeStore, submission_key
from orchestrator.client.uploads import (
    DEFAULT_CHUNK,
    DEFAULT_PARALLEL,
    MiB,
    Options,
    UploadJob,
    upload_all,
)
from pipelines import pipefile

Spec = dict[str, Any]
# How long start_task keeps being retried while the last upload's finish is still being
# recorded (the tus server reports it to the API asynchronously), s.
START_SETTLE_S = 30.0


@dataclass
class Context:
    """What every command needs: the client, the consoles, and what to say on Ctrl-C."""

    client: Client
    url: str
    json: bool
    out: Console  # results (stdout)
    err: Console  # progress, live status, messages (stderr)
    on_interrupt: str = "Interrupted."
    extra: dict[str, Any] = field(default_factory=dict)

    def emit(self, value: Any) -> None:
        """The command's machine-readable result: the only thing on stdout with --json."""
        sys.stdout.write(render.to_json(value) + "\n")
        sys.stdout.flush()


# --- the command line ------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """--url/--api-key/--json, before or after the command: a subcommand's copy only sets a
    value when given (SUPPRESS), so it never hides the top-level one."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--url", default=default, help=f"API base URL (env ORCHESTRATOR_URL; default {DEFAULT_URL})"
    )
    parser.add_argument("--api-key", default=default, help="API key (env ORCHESTRATOR_API_KEY)")
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print machine-readable JSON on stdout, nothing else there",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Submit files to a pipeline of the upload orchestrator and follow the task.",
        epilog=exits.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            allow_abbrev=False,
            epilog=exits.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kw,
        )
        _common(p, suppress=True)
        return p

    # Everything after the pipeline name is parsed once its input slots are known.
    submit = command(
        "submit", "upload input files to a new task of PIPELINE and start it", add_help=False
    )
    submit.add_argument("pipeline", nargs="?")
    for name in ("status", "watch", "kill", "delete"):
        helps = {
            "status": "show a task",
            "watch": "follow a task live until it ends, with its log",
            "kill": "kill a task",
            "delete": "delete a task and all its data (uploads, results, logs); kills it first",
        }
        p = command(name, helps[name])
        p.add_argument("task_id", metavar="ID")
        if name == "watch":
            p.add_argument("--lines", type=int, default=15, help="log lines shown (15)")
    p = command("list", "list tasks, newest first")
    p.add_argument("--status", action="append", help="only these states (repeatable)")
    p.add_argument("--pipeline", help="only this pipeline")
    p.add_argument("--limit", type=int, default=20, help="at most N tasks (20)")
    p = command("results", "list a task's results; --download fetches and verifies them")
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--download", metavar="DIR", help="save the results here, sha256 checked")
    p = command(
        "pipelines",
        "what each pipeline expects: input slots, parameters, resources; "
        "`pipelines validate FILE...` checks pipeline files offline, as the server would",
    )
    p.add_argument("action", nargs="?", choices=("list", "validate"), default="list")
    p.add_argument("files", nargs="*", metavar="FILE", help="pipeline files (validate)")
    command("workers", "the worker fleet (admin keys)")
    command("whoami", "the project and role of your API key")
    sub.add_parser(
        "admin",
        help="projects, quotas and API keys, on the server's database: create-key --project "
        "NAME [--role admin|member] [--name LABEL], list-keys, revoke-key ID, set-quota, "
        "list-projects",
        add_help=False,
    )
    return parser


def submit_parser(pipeline: str, spec: Spec | None) -> argparse.ArgumentParser:
    """``submit PIPELINE``'s options, with one ``--<slot> FILE`` per input of ``spec``."""
    p = argparse.ArgumentParser(
        prog=f"orchestrator submit {pipeline}",
        description=(spec or {}).get("description")
        or "Upload the input files (--SLOT FILE, one per input: `orchestrator pipelines` lists "
        "them) to a new task and start it.",
        epilog=exits.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _common(p, suppress=True)
    if spec is not None:
        slots = p.add_argument_group("inputs")
        for slot, s in (spec.get("inputs") or {}).items():
            accept = ", ".join(s.get("accept") or []) or "any file"
            need = "required" if s.get("required") else "optional"
            limit = render.human_bytes(s.get("max_bytes"))
            note = f"; {s['description']}" if s.get("description") else ""
            if s.get("group"):
                note += f"; part of '{s['group']}', found beside another part when not given"
            slots.add_argument(
                *option_names(slot),
                dest=f"slot:{slot}",
                metavar="FILE",
                help=f"{need}; {accept}, at most {limit}{note}",
            )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline parameter; VALUE is JSON when it parses as JSON (repeatable)"
        + _param_help(spec),
    )
    p.add_argument(
        "--notify-url",
        metavar="URL",
        help="http(s) URL the API POSTs the task to when it ends (webhook)",
    )
    p.add_argument(
        "--priority",
        metavar="P",
        help="high, normal (default) or low, or an integer from -100 to 100",
    )
    p.add_argument("--wait", action="store_true", help="follow the task to its end")
    p.add_argument(
        "--download",
        metavar="DIR",
        help="save the results here when done, sha256 checked (implies --wait)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        help=f"files uploaded at once ({DEFAULT_PARALLEL})",
    )
    p.add_argument(
        "--chunk-mib",
        type=int,
        default=DEFAULT_CHUNK // MiB,
        help=f"tus PATCH size in MiB ({DEFAULT_CHUNK // MiB})",
    )
    p.add_argument(
        "--max-rate",
        type=float,
        metavar="MIB_S",
        help="cap each file's upload at this many MiB/s (default: no cap)",
    )
    return p


def _param_help(spec: Spec | None) -> str:
    params = (spec or {}).get("params") or {}
    if not params:
        return ""
    return "; this pipeline takes " + ", ".join(
        f"{n} ({q.get('type', '?')}, default {q.get('default')!r})" for n, q in params.items()
    )


# --- entry point -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    code = run(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        sys.exit(code)
    return code


def run(argv: list[str]) -> int:
    if argv[:1] == ["admin"]:
        return _admin(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "submit":
        parser.error("unrecognized arguments: " + " ".join(extra))
    use_json = bool(args.json)
    url = args.url or os.environ.get("ORCHESTRATOR_URL") or DEFAULT_URL
    key = args.api_key or os.environ.get("ORCHESTRATOR_API_KEY") or None
    ctx = Context(
        client=Client(url, key), url=url, json=use_json, out=Console(), err=Console(stderr=True)
    )
    try:
        if args.command == "submit":
            return submit(ctx, parser, args.pipeline, extra)
        handler: Callable[[Context, argparse.Namespace], int] = COMMANDS[args.command]
        return handler(ctx, args)
    except UsageError as exc:
        ctx.err.print(f"[red]error:[/red] {exc}", highlight=False)
        return exits.USAGE
    except ClientError as exc:
        ctx.err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        return exits.for_error(exc)
    except KeyboardInterrupt:
        ctx.err.print(f"\n[yellow]{ctx.on_interrupt}[/yellow]", highlight=False)
        return exits.INTERRUPTED


def _admin(argv: list[str]) -> int:
    """``orchestrator admin ...`` runs on the server's side (its database, its settings): it is
    there only where the server is installed, so it is loaded by name, not imported."""
    try:
        admin = importlib.import_module("orchestrator.admin")
    except ImportError as exc:
        print(
            f"error: `orchestrator admin` needs the server installed ({exc.name} is missing): "
            "run it where the API runs, or `python -m orchestrator admin ...` there",
            file=sys.stderr,
        )
        return exits.USAGE
    code: int = admin.run(argv)
    return code


# --- submit ----------------------------------------------------------------------------------
def _spec(ctx: Context, pipeline: str) -> Spec | None:
    """The pipeline's spec from GET /pipelines; None when the server does not know this one
    (create_task then says so in its words)."""
    return ctx.client.pipeline(pipeline)


def submit(
    ctx: Context, top: argparse.ArgumentParser, pipeline: str | None, extra: list[str]
) -> int:
    wants_help = "-h" in extra or "--help" in extra
    if pipeline is None:
        if wants_help:
            submit_parser("PIPELINE", None).print_help()
            return exits.OK
        top.error("submit needs a PIPELINE (see: orchestrator pipelines)")
    assert pipeline is not None
    spec = _spec(ctx, pipeline) if not wants_help else _spec_or_none(ctx, pipeline)
    parser = submit_parser(pipeline, spec)
    if spec is None:
        args, rest = parser.parse_known_args(extra)
        files = _usage(parser, lambda: parse_slot_args(rest))
    else:
        args = parser.parse_args(extra)
        files = {
            k.split(":", 1)[1]: v
            for k, v in vars(args).items()
            if k.startswith("slot:") and v is not None
        }
        inputs = spec.get("inputs") or {}
        for sibling in _usage(parser, lambda: find_siblings(files, inputs)):
            files[sibling.slot] = sibling.path
            if not ctx.json:
                ctx.err.print(sibling.message(), highlight=False, markup=False)
    declared = None if spec is None else (spec.get("params") or {})
    params = _usage(parser, lambda: parse_params(args.param, declared))
    local = _usage(parser, lambda: check_files(files, None if spec is None else spec["inputs"]))
    if (
        args.chunk_mib < 1
        or args.parallel < 1
        or (args.max_rate is not None and args.max_rate <= 0)
    ):
        parser.error("--chunk-mib, --parallel and --max-rate must be positive")
    options = Options(
        chunk_size=args.chunk_mib * MiB,
        parallel=args.parallel,
        max_rate=None if args.max_rate is None else args.max_rate * MiB,
    )

    store = ResumeStore.default()
    key = submission_key(ctx.url, pipeline, params, local, args.notify_url)
    task = _resume_or_create(
        ctx, store, key, pipeline, params, local, args.notify_url, args.priority
    )
    task_id = task["task_id"]
    ctx.on_interrupt = (
        f"Interrupted: task {task_id} keeps the bytes sent so far. Run the same "
        "command again to resume the uploads."
    )
    _upload(ctx, store, task, local, options)
    started = _start(ctx, task_id)
    # Uploads complete: a re-run of this command is a new submission from now on.
    store.forget_submission(key)
    ctx.on_interrupt = (
        f"Interrupted: task {task_id} goes on. Follow it with `orchestrator watch {task_id}`."
    )
    if not (args.wait or args.download):
        final = ctx.client.query_task(task_id)
        if ctx.json:
            ctx.emit(final)
        else:
            ctx.out.print(
                f"task [bold]{task_id}[/bold] is {started['status']}; follow it with "
                f"`orchestrator watch {task_id}`",
                highlight=False,
            )
        return exits.OK
    final = _follow(ctx, task_id)
    return _finish(ctx, final, args.download)


def _spec_or_none(ctx: Context, pipeline: str) -> Spec | None:
    # --help should work even where the server cannot be reached.
    try:
        return _spec(ctx, pipeline)
    except ClientError:
        return None


def _usage(parser: argparse.ArgumentParser, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except UsageError as exc:
        parser.error(str(exc))


def _resume_or_create(
    ctx: Context,
    store: ResumeStore,
    key: str,
    pipeline: str,
    params: dict[str, Any],
    local: list[LocalFile],
    notify_url: str | None = None,
    priority: str | None = None,
) -> dict[str, Any]:
    """The task a previous run of this very command left waiting for its uploads, else a new
    one. Returns the task with ``upload_urls`` and the server's ``inputs`` states."""
    record = store.submission(key)
    if record is not None:
        try:
            task = ctx.client.query_task(record["task_id"])
        except NotFound:
            task = None
        if task is not None and task["status"] == "waiting":
            ctx.err.print(f"resuming the uploads of task {task['task_id']}", highlight=False)
            return {**task, "upload_urls": record["upload_urls"]}
        store.forget_submission(key)
    created = ctx.client.create_task(
        pipeline, params, notify_url=notify_url, priority=_priority(priority)
    )
    task_id = created["task_id"]
    store.remember_submission(
        key,
        {
            "task_id": task_id,
            "pipeline": pipeline,
            "upload_urls": created["upload_urls"],
            "created_at": time.time(),
        },
    )
    ctx.err.print(f"created task {task_id}", highlight=False)
    return ctx.client.query_task(task_id) | {"upload_urls": created["upload_urls"]}


class _Rate(ProgressColumn):
    """Upload rate in binary units, like the byte counts beside it (rich's own is decimal)."""

    def render(self, task: ProgressTask) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{render.human_bytes(speed)}/s", style="cyan")


class _BarProgress:
    """uploads.Progress onto one rich bar per file."""

    def __init__(self, bars: Bars, local: list[LocalFile]) -> None:
        self.bars = bars
        self.ids = {
            f.slot: bars.add_task(f"{f.slot}: {f.path.name}", total=f.size, start=False)
            for f in local
        }

    def started(self, slot: str, offset: int, total: int) -> None:
        if offset:
            # Said in words too: the bar alone does not show that nothing was sent twice.
            self.bars.console.print(
                f"{slot}: resuming at byte {offset} of {total}", highlight=False
            )
        self.bars.update(self.ids[slot], completed=offset, total=total)
        self.bars.start_task(self.ids[slot])

    def advanced(self, slot: str, offset: int) -> None:
        self.bars.update(self.ids[slot], completed=offset)


def _upload(
    ctx: Context, store: ResumeStore, task: dict[str, Any], local: list[LocalFile], options: Options
) -> None:
    inputs = task.get("inputs") or {}
    todo = [f for f in local if not inputs.get(f.slot, {}).get("done")]
    if not todo:
        return
    jobs = [UploadJob(task["task_id"], f, task["upload_urls"][f.slot]) for f in todo]
    bars = Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        _Rate(),
        TimeRemainingColumn(),
        console=ctx.err,
    )
    with bars:
        upload_all(jobs, store, _BarProgress(bars, todo), options)


def _start(ctx: Context, task_id: str) -> dict[str, Any]:
    """start_task once uploads are done: needed when optional slots stay empty, harmless
    otherwise (idempotent). The API records a finished upload moments after the tus server
    answered the last PATCH, so a 409 naming missing slots is retried for a while."""
    deadline = time.monotonic() + START_SETTLE_S
    while True:
        try:
            return ctx.client.start_task(task_id)
        except Conflict as exc:
            if not exc.extra.get("missing") or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _follow(ctx: Context, task_id: str) -> dict[str, Any]:
    """Poll to the end with a live status line on stderr."""
    with ctx.err.status(f"task {task_id}") as spinner:
        return ctx.client.wait(task_id, on_update=lambda t: spinner.update(render.status_line(t)))


def _finish(ctx: Context, task: dict[str, Any], download: str | None) -> int:
    """Print (and download) the results of a task that ended; the exit code of its state."""
    saved: list[Downloaded] = []
    if download and task.get("results"):
        saved = ctx.client.download_results(task, download)
    if ctx.json:
        ctx.emit(task | ({"downloaded": [_saved_json(d) for d in saved]} if download else {}))
    else:
        ctx.out.print(
            Text.assemble(
                "task ",
                (task["task_id"], "bold"),
                " ",
                render.status_text(task["status"]),
                f": {task['reason']}" if task.get("reason") else "",
            )
        )
        if task.get("results"):
            ctx.out.print(render.results_table(task["results"], saved))
            if not saved:
                ctx.out.print(render.result_links(task["results"]), soft_wrap=True)
    return exits.for_status(task["status"])


def _saved_json(d: Downloaded) -> dict[str, Any]:
    return {"name": d.name, "path": str(d.path), "bytes": d.bytes, "sha256": d.sha256}


# --- the other commands ----------------------------------------------------------------------
def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    task = ctx.client.query_task(args.task_id)
    if ctx.json:
        ctx.emit(task)
    else:
        ctx.out.print(render.task_view(task))
    return exits.for_status(task["status"])


def cmd_watch(ctx: Context, args: argparse.Namespace) -> int:
    ctx.on_interrupt = f"Stopped watching; task {args.task_id} goes on."
    if ctx.json:
        # Scripts want the end state, not frames.
        return _finish(ctx, ctx.client.wait(args.task_id), None)
    tail: collections.deque[str] = collections.deque(maxlen=max(1, args.lines))
    task = ctx.client.query_task(args.task_id)
    reader = threading.Thread(target=_read_logs, args=(ctx.client, args.task_id, tail), daemon=True)
    reader.start()

    def frame(t: dict[str, Any]) -> Group:
        log = Text("\n".join(tail) or "(no output yet)", style="dim" if not tail else "")
        return Group(Text(render.status_line(t)), Panel(log, title="log", title_align="left"))

    with Live(frame(task), console=ctx.out, refresh_per_second=4) as live:
        while task["status"] not in TERMINAL:
            time.sleep(1.0)
            task = ctx.client.query_task(args.task_id)
            live.update(frame(task))
        reader.join(timeout=3)  # the last lines of the run
        live.update(frame(task))
    return _finish(ctx, task, None)


def _read_logs(client: Client, task_id: str, tail: collections.deque[str]) -> None:
    """Follow the log into ``tail`` until it ends; a broken stream is tried again, and a task
    still waiting for its inputs (409: nothing to follow yet) is asked again until it runs."""
    failures = 0
    while failures < 5:
        try:
            tail.clear()  # the stream starts from the first line each time
            for line in client.logs(task_id, follow=True):
                tail.append(line)
            return
        except Conflict:
            time.sleep(1.0)
        except ClientError:
            failures += 1
            time.sleep(1.0)


def cmd_kill(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.client.kill_task(args.task_id)
    if ctx.json:
        ctx.emit(answer)
    elif answer.get("kill_requested"):
        ctx.out.print(f"task {args.task_id}: kill requested; its container stops within seconds")
    else:
        ctx.out.print(Text.assemble(f"task {args.task_id} ", render.status_text(answer["status"])))
    return exits.OK


def _priority(value: str | None) -> str | int | None:
    """A number as a number (the API takes both), a name as it is."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.client.delete_task(args.task_id)
    if ctx.json:
        ctx.emit(answer)
    elif answer.get("data_removed"):
        ctx.out.print(f"task {args.task_id} deleted, with its uploads, results and logs")
    else:
        ctx.out.print(
            f"task {args.task_id} deleted; it is being stopped, and its data goes once it has"
        )
    return exits.OK


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    tasks = list(
        ctx.client.list_tasks(status=args.status, pipeline=args.pipeline, limit=max(1, args.limit))
    )
    if ctx.json:
        ctx.emit(tasks)
    elif not tasks:
        ctx.out.print("no tasks")
    else:
        ctx.out.print(render.tasks_table(tasks))
    return exits.OK


def cmd_results(ctx: Context, args: argparse.Namespace) -> int:
    task = ctx.client.query_task(args.task_id)
    if task["status"] not in TERMINAL:
        # What a 409 means: the task's state does not allow it (yet); exit 4 like one.
        raise Conflict(
            409,
            f"task {args.task_id} is {task['status']}: no results yet "
            f"(follow it with `orchestrator watch {args.task_id}`)",
        )
    return _finish(ctx, task, args.download)


def cmd_pipelines(ctx: Context, args: argparse.Namespace) -> int:
    if args.action == "validate":
        return validate_files(ctx, [Path(f) for f in args.files])
    if args.files:
        raise UsageError("FILE arguments go with `pipelines validate`")
    pipelines = ctx.client.pipelines()
    if ctx.json:
        ctx.emit(pipelines)
    else:
        ctx.out.print(render.pipelines_view(pipelines))
    return exits.OK


def validate_files(ctx: Context, files: list[Path]) -> int:
    """The server's checks on pipeline files, offline: each file alone, then names given twice.
    Exit 0 when every file is usable, 2 otherwise."""
    if not files:
        raise UsageError("pipelines validate needs at least one FILE")
    verdicts: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in files:
        verdict: dict[str, Any] = {"file": str(path), "ok": True, "problems": []}
        try:
            spec = pipefile.load(path)
        except pipefile.PipelineFileError as exc:
            verdict.update(ok=False, problems=[{"field": f, "message": m} for f, m in exc.problems])
        else:
            verdict.update(name=spec.name, version=spec.version, sha256=spec.digest)
            if spec.name in seen:
                message = f"'{spec.name}' is already defined by {seen[spec.name]}"
                verdict.update(ok=False, problems=[{"field": "name", "message": message}])
            else:
                seen[spec.name] = path
        verdicts.append(verdict)
    if ctx.json:
        ctx.emit(verdicts)
    for v in verdicts if not ctx.json else ():
        if v["ok"]:
            ctx.out.print(
                f"[green]ok[/green]  {escape(v['file'])}: {v['name']} {escape(v['version'])}",
                highlight=False,
                soft_wrap=True,
            )
        for problem in v["problems"]:
            where = f"{problem['field']}: " if problem["field"] else ""
            ctx.err.print(
                f"[red]invalid[/red]  {escape(v['file'] + ': ' + where + problem['message'])}",
                highlight=False,
                soft_wrap=True,
            )
    return exits.OK if all(v["ok"] for v in verdicts) else exits.USAGE


def cmd_workers(ctx: Context, args: argparse.Namespace) -> int:
    workers = ctx.client.workers()
    if ctx.json:
        ctx.emit(workers)
    elif not workers:
        ctx.out.print("no workers")
    else:
        ctx.out.print(render.workers_table(workers))
    return exits.OK


def cmd_whoami(ctx: Context, args: argparse.Namespace) -> int:
    who = ctx.client.whoami()
    if ctx.json:
        ctx.emit(who)
    else:
        ctx.out.print(f"project {who['project']} ({who['role']})", highlight=False)
    return exits.OK


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "status": cmd_status,
    "watch": cmd_watch,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "list": cmd_list,
    "results": cmd_results,
    "pipelines": cmd_pipelines,
    "workers": cmd_workers,
    "whoami": cmd_whoami,
}

if __name__ == "__main__":
    main()
