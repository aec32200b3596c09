"""Declarative pipeline specs: the typed form of a pipeline file (``pipelines.pipefile``).

A pipeline is described by data, not code: its input slots, its parameters, the resources it
needs by default, the container that runs it and the outputs it promises. The orchestrator
validates tasks against the spec; the worker turns the spec into a container run. This module
is imported inside pipeline containers too, so it depends on the standard library only.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GiB = 1024**3
MiB = 1024**2

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def size_bytes(value: Any) -> int:
    """Bytes from an integer or a size such as "2GiB", "512 MiB", "1.5G" (SI: "2GB");
    ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        unit = match.group(2).lower() if match else None
        if match and unit in _UNITS:
            return int(float(match.group(1)) * _UNITS[unit])
    raise ValueError(f"not a size: {value!r}")


@dataclass(frozen=True)
class InputSlot:
    """One named input file of a pipeline.

    ``accept`` lists lower-case filename extensions with their dot (".las"); empty accepts any
    file. ``max_bytes`` bounds the declared upload length checked at pre-create.
    """

    name: str
    required: bool = True
    accept: tuple[str, ...] = ()
    max_bytes: int = 1 * GiB
    description: str = ""
    # Files of slots sharing a group land beside each other under the group's name, which is
    # what multi-file formats need (a shapefile's .shp/.shx/.dbf/.prj). Empty: the slot's name.
    group: str = ""

    def file_name(self, uploaded_name: str) -> str:
        """The name this slot's file gets inside the run's input directory."""
        lowered = uploaded_name.lower()
        ext = next((e for e in self.accept if lowered.endswith(e)), "")
        if not ext and "." in lowered:
            tail = lowered.rsplit(".", 1)[1]
            ext = "." + tail if tail.isalnum() and len(tail) <= 10 else ""
        return (self.group or self.name) + ext

    def accepts(self, filename: str) -> bool:
        if not self.accept:
            return True
        lowered = filename.lower()
        return any(lowered.endswith(ext) for ext in self.accept)


@dataclass(frozen=True)
class Param:
    """A pipeline parameter: a typed value with a default and optional inclusive bounds."""

    name: str
    kind: type  # int, float, bool or str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    description: str = ""

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type or raise ``ValueError`` naming the problem."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"parameter '{self.name}' must be a boolean")
            return value
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"parameter '{self.name}' must be an integer")
            out: Any = value
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"parameter '{self.name}' must be a number")
            out = float(value)
            if not math.isfinite(out):
                raise ValueError(f"parameter '{self.name}' must be finite")
        elif self.kind is str:
            if not isinstance(value, str):
                raise ValueError(f"parameter '{self.name}' must be a string")
            out = value
        else:  # pragma: no cover - spec authoring error
            raise TypeError(f"unsupported parameter kind {self.kind!r}")
        if self.minimum is not None and out < self.minimum:
            raise ValueError(f"parameter '{self.name}' must be >= {self.minimum}, got {out}")
        if self.maximum is not None and out > self.maximum:
            raise ValueError(f"parameter '{self.name}' must be <= {self.maximum}, got {out}")
        if self.choices and out not in self.choices:
            raise ValueError(f"parameter '{self.name}' must be one of {list(self.choices)}")
        return out


@dataclass(frozen=True)
class Resources:
    """Hard limits for one run. cpus may be fractional; memory and disk in bytes; timeout in s."""

    cpus: float = 1.0
    memory_bytes: int = 1 * GiB
    gpus: int = 0
    timeout_s: int = 600
    pids: int = 256
    # Disk a run needs in the worker's work dir: its inputs times ``disk_per_input`` (a pipeline
    # that writes scratch as large as its inputs says 2.0), plus ``disk_margin_bytes`` for its
    # outputs. A worker admits a task only when its work dir has that much room.
    disk_per_input: float = 1.0
    disk_margin_bytes: int = 256 * MiB

    def disk_bytes(self, input_bytes: int) -> int:
        """The work-dir room a run on ``input_bytes`` of inputs needs."""
        return int(input_bytes * self.disk_per_input) + self.disk_margin_bytes


# Content types a browser draws inline: result files of these types are pictures unless the
# pipeline's outputs say otherwise.
WEB_PICTURES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"})


@dataclass(frozen=True)
class Output:
    """Files a pipeline promises in its output directory, matched by ``glob`` (fnmatch, on the
    path relative to the output directory). ``content_type`` overrides the guess from the name;
    ``picture`` says whether clients show the file inline; ``required``: a run that ends without
    any file matching is an error."""

    glob: str
    content_type: str = ""
    picture: bool | None = None
    required: bool = False
    description: str = ""

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.glob)


@dataclass(frozen=True)
class PipelineSpec:
    """Everything the orchestrator needs to know about a pipeline.

    ``command`` is run inside ``image``; placeholders ``{in:<slot>}`` expand to the path of that
    slot's file (or are dropped with their flag when an optional slot is empty), ``{out}`` to the
    output directory, ``{params}`` to the JSON file holding the validated parameters and
    ``{param:<name>}`` to one parameter's value. ``source`` and ``digest`` name the pipeline
    file the spec was read from and its sha256 (empty for specs built in code).
    """

    name: str
    description: str
    inputs: tuple[InputSlot, ...]
    params: tuple[Param, ...] = ()
    resources: Resources = field(default_factory=Resources)
    image: str = ""
    command: tuple[str, ...] = ()
    version: str = ""
    environment: tuple[tuple[str, str], ...] = ()
    outputs: tuple[Output, ...] = ()
    source: str = ""
    digest: str = ""

    def output(self, name: str) -> Output | None:
        """The first declared output that ``name`` (relative to the output dir) matches."""
        return next((o for o in self.outputs if o.matches(name)), None)

    def slot(self, name: str) -> InputSlot | None:
        return next((s for s in self.inputs if s.name == name), None)

    @property
    def required_slots(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.inputs if s.required)

    def validate_params(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Fill defaults and check bounds; raise ``ValueError`` naming the first bad parameter."""
        given = dict(given or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) for pipeline '{self.name}': {', '.join(unknown)}"
            )
        return {
            p.name: p.coerce(given[p.name]) if p.name in given else p.default for p in self.params
        }
