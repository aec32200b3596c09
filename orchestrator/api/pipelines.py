"""GET /pipelines: what each offered pipeline expects (inputs, parameters, default resources)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.params import SkipValidation

from orchestrator.api.openapi import KEY_REQUIRED, errors
from orchestrator.service.catalog import CatalogSource
from pipelines.spec import InputSlot, Param, PipelineSpec


class PipelineInputRead(msgspec.Struct):
    """One input slot. ``accept``: lower-case extensions with their dot; empty accepts any file.
    ``group``: slots sharing a group are the files of one multi-file dataset (a shapefile's
    .shp/.shx/.dbf/.prj), stored under one basename; null for a stand-alone file."""

    required: bool
    accept: list[str]
    max_bytes: Annotated[int, msgspec.Meta(description="largest accepted upload, bytes")]
    description: str
    group: Annotated[
        str | None,
        msgspec.Meta(description="the multi-file dataset this slot is part of, if any"),
    ] = None


class PipelineParamRead(msgspec.Struct):
    """One parameter; ``minimum``/``maximum`` are inclusive, ``choices`` empty means any value."""

    type: Annotated[str, msgspec.Meta(description="int | float | bool | str")]
    default: Any
    minimum: float | None
    maximum: float | None
    choices: list[Any]
    description: str


class PipelineResourcesRead(msgspec.Struct):
    """Default limits of one run; ``create_task`` may override them per task."""

    cpus: float
    memory_bytes: int
    gpus: int
    timeout_s: Annotated[int, msgspec.Meta(description="wall-clock limit, seconds")]


class PipelineRead(msgspec.Struct):
    name: str
    description: str
    inputs: dict[str, PipelineInputRead]
    params: dict[str, PipelineParamRead]
    resources: PipelineResourcesRead
    version: str = ""
    image: Annotated[str, msgspec.Meta(description="the container image it runs")] = ""
    sha256: Annotated[
        str | None, msgspec.Meta(description="sha256 of the pipeline file it was read from")
    ] = None


class ProblemRead(msgspec.Struct):
    field: Annotated[str, msgspec.Meta(description="the key at fault; empty: the whole file")]
    message: str


class RefusedFileRead(msgspec.Struct):
    """A pipeline file of PIPELINES_PATH that could not be used, and every reason why."""

    file: str
    problems: list[ProblemRead]


class PipelinesRead(msgspec.Struct):
    """Every pipeline this API offers, by name; ``refused``: pipeline files left out (a file
    that broke after it was read keeps its last good version in ``pipelines``)."""

    pipelines: list[PipelineRead]
    refused: list[RefusedFileRead] = msgspec.field(default_factory=list)


def _input(slot: InputSlot) -> PipelineInputRead:
    return PipelineInputRead(
        required=slot.required,
        accept=list(slot.accept),
        max_bytes=slot.max_bytes,
        description=slot.description,
        group=slot.group or None,
    )


def _param(param: Param) -> PipelineParamRead:
    return PipelineParamRead(
        type=param.kind.__name__,
        default=param.default,
        minimum=param.minimum,
        maximum=param.maximum,
        choices=list(param.choices),
        description=param.description,
    )


def pipeline_read(spec: PipelineSpec) -> PipelineRead:
    r = spec.resources
    return PipelineRead(
        name=spec.name,
        description=spec.description,
        inputs={s.name: _input(s) for s in spec.inputs},
        params={p.name: _param(p) for p in spec.params},
        resources=PipelineResourcesRead(
            cpus=r.cpus, memory_bytes=r.memory_bytes, gpus=r.gpus, timeout_s=r.timeout_s
        ),
        version=spec.version,
        image=spec.image,
        sha256=spec.digest or None,
    )


class PipelineController(Controller):
    tags = ["pipelines"]
    security = KEY_REQUIRED

    @get(
        "/pipelines",
        operation_id="list_pipelines",
        sync_to_thread=False,
        summary="Every pipeline: its input slots, parameters with bounds, default resources",
        responses=errors(401),
    )
    def list_pipelines(
        self,
        # A protocol, which the signature model cannot check: skipped (the app provides it).
        catalog_source: SkipValidation[CatalogSource],
    ) -> PipelinesRead:
        catalog = catalog_source.current()
        return PipelinesRead(
            pipelines=[pipeline_read(catalog[name]) for name in sorted(catalog)],
            refused=[
                RefusedFileRead(file=p.source, problems=[ProblemRead(f, m) for f, m in p.problems])
                for p in catalog_source.problems
            ],
        )
