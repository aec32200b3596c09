"""Pipeline files: a pipeline declared as TOML, parsed and checked into a ``PipelineSpec``.

One file per pipeline. Every key is checked: an unknown key, a value of the wrong type, bounds
that contradict each other or a command template that names a missing slot or parameter are
refused with the file and the field named (``pipelines/x.toml: inputs.pre.max_bytes: ...``).
All problems of a file are reported at once. Standard library only: pipeline containers read
their own file with it.

    name = "gdal_reproject"                 # [a-z][a-z0-9_]*, at most 64 characters
    version = "1.0.0"
    description = "Reproject a GeoTIFF."
    image = "pipeline-gdal_reproject:latest"
    command = ["gdalwarp", "-t_srs", "{param:crs}", "{in:raster}", "{out}/out.tif"]

    [environment]                           # passed to the container as is
    GDAL_CACHEMAX = "256"

    [resources]                             # the defaults; create_task may raise or lower them
    cpus = 1.0
    memory = "1 GiB"                        # or a number of bytes
    gpus = 0
    timeout_s = 600
    pids = 128
    disk_per_input = 1.0                    # work-dir room: inputs times this, plus the margin
    disk_margin = "256 MiB"                 # room for outputs and scratch

    [inputs.raster]                         # slots, in the order clients show them
    required = true
    accept = [".tif", ".tiff"]
    max_bytes = "4 GiB"
    group = ""                              # slots of one multi-file dataset share a group
    description = "the GeoTIFF to reproject"

    [params.crs]
    type = "str"                            # int | float | bool | str
    default = "EPSG:4326"
    choices = ["EPSG:4326", "EPSG:3857"]    # or min = / max = for int and float
    description = "target CRS"

    [[outputs]]
    glob = "out.tif"
    content_type = "image/tiff"
    picture = false                         # shown inline by clients (default: PNG, JPEG ...)
    required = true                         # the run fails without it
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipelines.spec import GiB, InputSlot, Output, Param, PipelineSpec, Resources, size_bytes

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
SLOT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KINDS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}

TOP_KEYS = frozenset(
    {"name", "version", "description", "image", "command", "environment", "resources"}
    | {"inputs", "params", "outputs"}
)
RESOURCE_KEYS = frozenset(
    {"cpus", "memory", "gpus", "timeout_s", "pids", "disk_per_input", "disk_margin"}
)
INPUT_KEYS = frozenset({"required", "accept", "max_bytes", "group", "description"})
PARAM_KEYS = frozenset({"type", "default", "min", "max", "choices", "description"})
OUTPUT_KEYS = frozenset({"glob", "content_type", "picture", "required", "description"})


class PipelineFileError(ValueError):
    """A pipeline file that cannot be used; ``problems`` are ``(field, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {f}: {m}" if f else f"{source}: {m}" for f, m in problems]
        super().__init__("\n".join(lines))


def load(path: Path) -> PipelineSpec:
    """Parse and check one pipeline file; ``PipelineFileError`` names every problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PipelineFileError(str(path), [("", f"cannot be read: {exc.strerror}")]) from exc
    return parse(raw, str(path))


def parse(raw: bytes, source: str) -> PipelineSpec:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PipelineFileError(source, [("", "is not UTF-8 text")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PipelineFileError(source, [("", f"is not valid TOML: {exc}")]) from exc
    check = _Checker()
    spec = check.pipeline(data, source, hashlib.sha256(raw).hexdigest())
    if check.problems or spec is None:
        raise PipelineFileError(source, check.problems)
    return spec


def parse_size(value: Any) -> int:
    """Positive bytes from an integer or a string such as "4 GiB", "512MiB", "1.5 GB"."""
    try:
        out = size_bytes(value)
    except ValueError:
        raise ValueError('must be a number of bytes or a size such as "4 GiB"') from None
    if out <= 0:
        raise ValueError("must be positive")
    return out


class _Checker:
    """Collects (field, message) problems while building the spec's parts."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, field: str, message: str) -> None:
        self.problems.append((field, message))

    def unknown(self, table: dict[str, Any], allowed: Iterable[str], prefix: str) -> None:
        for key in sorted(set(table) - set(allowed)):
            self.fail(f"{prefix}{key}", "unknown key")

    def typed(
        self,
        table: dict[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        field: str,
        default: Any = None,
        *,
        required: bool = False,
    ) -> Any:
        if key not in table:
            if required:
                self.fail(field, "is required")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(field, f"must be {_kind_words(kinds)}")
            return default
        if not isinstance(value, kinds):
            self.fail(field, f"must be {_kind_words(kinds)}")
            return default
        return value

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
            return {}
        return value

    def pipeline(self, data: dict[str, Any], source: str, digest: str) -> PipelineSpec | None:
        self.unknown(data, TOP_KEYS, "")
        name = self.typed(data, "name", str, "name", "", required=True)
        if name and not NAME.match(name):
            self.fail("name", "must match [a-z][a-z0-9_]*, at most 64 characters")
        version = self.typed(data, "version", str, "version", "", required=True)
        description = self.typed(data, "description", str, "description", "", required=True)
        image = self.typed(data, "image", str, "image", "", required=True)
        if "image" in data and not image.strip():
            self.fail("image", "must not be empty")
        command = self.typed(data, "command", list, "command", [], required=True)
        if "command" in data and not command:
            self.fail("command", "must not be empty")
        if any(not isinstance(arg, str) for arg in command):
            self.fail("command", "must be a list of strings")
            command = []
        environment = self.environment(self.table(data, "environment"))
        resources = self.resources(self.table(data, "resources"))
        inputs = self.inputs(self.table(data, "inputs"))
        params = self.params(self.table(data, "params"))
        outputs = self.outputs(data.get("outputs", []))
        self.template(command, inputs, params)
        if self.problems:
            return None
        return PipelineSpec(
            name=name,
            description=description,
            inputs=tuple(inputs),
            params=tuple(params),
            resources=resources,
            image=image,
            command=tuple(command),
            version=version,
            environment=tuple(environment.items()),
            outputs=tuple(outputs),
            source=source,
            digest=digest,
        )

    def environment(self, table: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in table.items():
            if not ENV_NAME.match(key):
                self.fail(f"environment.{key}", "is not a valid variable name")
            elif not isinstance(value, str):
                self.fail(f"environment.{key}", "must be a string")
            else:
                out[key] = value
        return out

    def resources(self, table: dict[str, Any]) -> Resources:
        self.unknown(table, RESOURCE_KEYS, "resources.")
        base = Resources()
        cpus = self.typed(table, "cpus", (int, float), "resources.cpus", base.cpus)
        if not (isinstance(cpus, int | float) and math.isfinite(cpus) and cpus > 0):
            self.fail("resources.cpus", "must be a positive number")
            cpus = base.cpus
        memory = base.memory_bytes
        if "memory" in table:
            memory = self.sized(table["memory"], "resources.memory", memory)
        gpus = self.positive_int(table, "gpus", "resources.gpus", base.gpus, allow_zero=True)
        timeout_s = self.positive_int(table, "timeout_s", "resources.timeout_s", base.timeout_s)
        pids = self.positive_int(table, "pids", "resources.pids", base.pids)
        per_input = self.typed(
            table, "disk_per_input", (int, float), "resources.disk_per_input", base.disk_per_input
        )
        if not (isinstance(per_input, int | float) and math.isfinite(per_input) and per_input >= 1):
            self.fail("resources.disk_per_input", "must be a number >= 1 (the inputs themselves)")
            per_input = base.disk_per_input
        margin = base.disk_margin_bytes
        if "disk_margin" in table:
            margin = self.sized(table["disk_margin"], "resources.disk_margin", margin)
        return Resources(
            cpus=float(cpus),
            memory_bytes=memory,
            gpus=gpus,
            timeout_s=timeout_s,
            pids=pids,
            disk_per_input=float(per_input),
            disk_margin_bytes=margin,
        )

    def positive_int(
        self, table: dict[str, Any], key: str, field: str, default: int, *, allow_zero: bool = False
    ) -> int:
        value = self.typed(table, key, int, field, default)
        if value < 0 or (value == 0 and not allow_zero):
            self.fail(field, "must be >= 0" if allow_zero else "must be > 0")
            return default
        return int(value)

    def sized(self, value: Any, field: str, default: int) -> int:
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(field, str(exc))
            return default

    def entries(
        self,
        table: dict[str, Any],
        prefix: str,
        pattern: re.Pattern[str],
        naming: str,
        keys: frozenset[str],
    ) -> list[tuple[str, dict[str, Any], str]]:
        """(name, body, field) of each well-named sub-table of ``table``; the rest refused."""
        out: list[tuple[str, dict[str, Any], str]] = []
        for name, body in table.items():
            field = f"{prefix}.{name}"
            if not pattern.match(name):
                self.fail(field, naming)
            elif not isinstance(body, dict):
                self.fail(field, "must be a table")
            else:
                self.unknown(body, keys, field + ".")
                out.append((name, body, field))
        return out

    def inputs(self, table: dict[str, Any]) -> list[InputSlot]:
        if not table:
            self.fail("inputs", "at least one input slot is required")
        slots: list[InputSlot] = []
        entries = self.entries(
            table, "inputs", SLOT_NAME, "slot names are letters, digits, '_' and '-'", INPUT_KEYS
        )
        for name, body, field in entries:
            accept = self.typed(body, "accept", list, f"{field}.accept", [])
            exts: list[str] = []
            for ext in accept:
                if not isinstance(ext, str) or not re.fullmatch(r"\.[A-Za-z0-9_.-]+", ext):
                    self.fail(f"{field}.accept", f'{ext!r} is not an extension such as ".las"')
                else:
                    exts.append(ext.lower())
            group = self.typed(body, "group", str, f"{field}.group", "")
            if group and not SLOT_NAME.match(group):
                self.fail(f"{field}.group", "group names are letters, digits, '_' and '-'")
            slots.append(
                InputSlot(
                    name=name,
                    required=self.typed(body, "required", bool, f"{field}.required", True),
                    accept=tuple(exts),
                    max_bytes=self.sized(body.get("max_bytes", GiB), f"{field}.max_bytes", GiB),
                    description=self.typed(body, "description", str, f"{field}.description", ""),
                    group=group,
                )
            )
        return slots

    def params(self, table: dict[str, Any]) -> list[Param]:
        out: list[Param] = []
        entries = self.entries(
            table, "params", NAME, "parameter names match [a-z][a-z0-9_]*", PARAM_KEYS
        )
        for name, body, field in entries:
            if (param := self.param(name, body, field)) is not None:
                out.append(param)
        return out

    def param(self, name: str, body: dict[str, Any], field: str) -> Param | None:
        type_name = self.typed(body, "type", str, f"{field}.type", "", required=True)
        kind = _KINDS.get(type_name)
        if kind is None:
            if type_name:
                self.fail(f"{field}.type", "must be one of int, float, bool, str")
            return None
        numeric = kind in (int, float)
        bounds: list[float | None] = []
        for key in ("min", "max"):
            if key in body and not numeric:
                self.fail(f"{field}.{key}", "only int and float parameters have bounds")
            bound = self.typed(body, key, (int, float), f"{field}.{key}") if numeric else None
            if isinstance(bound, float) and not math.isfinite(bound):
                self.fail(f"{field}.{key}", "must be finite")
                bound = None
            bounds.append(bound)
        minimum, maximum = bounds
        if minimum is not None and maximum is not None and minimum > maximum:
            self.fail(f"{field}.min", f"is greater than max ({minimum} > {maximum})")
            return None
        choices = self.typed(body, "choices", list, f"{field}.choices", [])
        if "default" not in body:
            self.fail(f"{field}.default", "is required")
            return None
        draft = Param(name, kind, None, minimum, maximum, (), "")
        coerced: list[Any] = []
        for choice in choices:
            value = self.coerced(draft, choice, f"{field}.choices")
            if value is not None:
                coerced.append(value)
        param = Param(
            name,
            kind,
            None,
            minimum,
            maximum,
            tuple(coerced),
            self.typed(body, "description", str, f"{field}.description", ""),
        )
        default = self.coerced(param, body["default"], f"{field}.default")
        if default is None:
            return None
        return Param(name, kind, default, minimum, maximum, tuple(coerced), param.description)

    def coerced(self, param: Param, value: Any, field: str) -> Any:
        try:
            return param.coerce(value)
        except ValueError as exc:
            # Param's message names the parameter; the field already does.
            self.fail(field, str(exc).replace(f"parameter '{param.name}' ", ""))
            return None

    def outputs(self, value: Any) -> list[Output]:
        if not isinstance(value, list):
            self.fail("outputs", "must be an array of tables ([[outputs]])")
            return []
        out: list[Output] = []
        for i, body in enumerate(value):
            field = f"outputs[{i}]"
            if not isinstance(body, dict):
                self.fail(field, "must be a table")
                continue
            self.unknown(body, OUTPUT_KEYS, field + ".")
            glob = self.typed(body, "glob", str, f"{field}.glob", "", required=True)
            if "glob" in body and (not glob or glob.startswith("/") or ".." in glob.split("/")):
                self.fail(f"{field}.glob", "must be a relative path pattern inside the output")
            ctype = self.typed(body, "content_type", str, f"{field}.content_type", "")
            if ctype and not re.fullmatch(r"[\w.+-]+/[\w.+-]+", ctype):
                self.fail(f"{field}.content_type", f"{ctype!r} is not a media type")
            out.append(
                Output(
                    glob=glob,
                    content_type=ctype,
                    picture=self.typed(body, "picture", bool, f"{field}.picture"),
                    required=self.typed(body, "required", bool, f"{field}.required", False),
                    description=self.typed(body, "description", str, f"{field}.description", ""),
                )
            )
        return out

    def template(self, command: list[str], slots: list[InputSlot], params: list[Param]) -> None:
        known: dict[str, Callable[[str], bool]] = {
            "in": lambda name: any(s.name == name for s in slots),
            "param": lambda name: any(p.name == name for p in params),
        }
        for i, arg in enumerate(command):
            for match in PLACEHOLDER.finditer(arg):
                word = match.group(1)
                if word in ("out", "params"):
                    continue
                kind, _, name = word.partition(":")
                if kind not in known or not name:
                    self.fail(
                        f"command[{i}]",
                        f"unknown placeholder {{{word}}}: use {{in:SLOT}}, {{param:NAME}}, "
                        "{out} or {params}",
                    )
                elif not known[kind](name):
                    what = "input slot" if kind == "in" else "parameter"
                    self.fail(f"command[{i}]", f"{{{word}}} names no {what} '{name}'")


def _kind_words(kinds: tuple[type, ...]) -> str:
    words = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(words.get(k, k.__name__) for k in kinds)
