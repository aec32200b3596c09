"""The OpenAPI document: security schemes, the error responses each operation documents, and
``additionalProperties: false`` for the request bodies that refuse unknown fields.

Litestar derives the success responses from the handlers' return types; everything else a
client can get back is declared here, once, so that the document lists every status code the
API answers (checked by schemathesis in tests/e2e/test_openapi.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import (
    Components,
    Discriminator,
    Link,
    OpenAPI,
    OpenAPIType,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from orchestrator.api.auth import API_KEY_HEADER
from orchestrator.service.catalog import Catalog
from pipelines.spec import Param, PipelineSpec

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

# Names of the security schemes, as operations cite them.
API_KEY = "apiKey"
BEARER = "bearer"
HOOK_SECRET = "hookSecret"

# Every client operation needs the key (app-wide guard); /metrics also takes it as a bearer token.
KEY_REQUIRED: list[SecurityRequirement] = [{API_KEY: []}]
KEY_OR_BEARER: list[SecurityRequirement] = [{API_KEY: []}, {BEARER: []}]


class ErrorRead(msgspec.Struct):
    """Every error body: Litestar's own shape, with extra fields where the error has them
    (a 409 carries the task's ``status``, and ``missing`` inputs for start_task)."""

    status_code: Annotated[int, msgspec.Meta(description="the HTTP status code, again")]
    detail: Annotated[str, msgspec.Meta(description="what was wrong, for a person to read")]


_MEANING = {
    401: "Missing, unknown or revoked API key",
    403: "Refused: an admin key is required (or, for a hook, it names storage its upload "
    "does not own)",
    404: "Unknown task, or another project's (or the path names nothing)",
    429: "Too many requests for this key; retry after `Retry-After` seconds",
    409: "The task's state forbids the call; `status` names that state",
    410: "The task was deleted; `deleted_at` and `reason` say when and why",
    422: "The request is well-formed but cannot be honoured; `detail` names the field or "
    "the shortfall (unknown pipeline, bad parameter, no live worker that can run it)",
    503: "A backing service (PostgreSQL, Redis, S3) is unavailable; retry later",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """The documented error responses of one operation (every code in ``_MEANING``)."""
    return {
        code: ResponseSpec(ErrorRead, description=_MEANING[code], generate_examples=False)
        for code in codes
    }


def redirect(description: str) -> dict[int, ResponseSpec]:
    return {307: ResponseSpec(None, description=description, generate_examples=False)}


class StrictStructSchemaPlugin(OpenAPISchemaPlugin):
    """Litestar's schema of a msgspec Struct, plus ``additionalProperties: false`` when the
    Struct is declared ``forbid_unknown_fields`` (the API then answers 400 for an unknown key,
    so the document must not promise that extra keys are accepted)."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return (
            not field_definition.is_union
            and field_definition.is_subclass_of(msgspec.Struct)
            and field_definition.type_.__struct_config__.forbid_unknown_fields
        )

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        # The built-in struct plugin does the work: only the strictness is added.
        from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

        schema = StructSchemaPlugin().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Upload orchestrator",
        version="0.1.0",
        description="Tasks fed by resumable TUS uploads, run in containers, "
        "results via presigned URLs.",
        path="/schema",
        components=Components(
            security_schemes={
                API_KEY: SecurityScheme(
                    type="apiKey",
                    name=API_KEY_HEADER,
                    security_scheme_in="header",
                    description="The API key (settings: API_KEY), on every call but "
                    "/health and the OpenAPI document",
                ),
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="The same API key as a bearer token: what a Prometheus "
                    "scrape sends (GET /metrics only)",
                ),
                HOOK_SECRET: SecurityScheme(
                    type="http",
                    scheme="basic",
                    description="tusd's hook secret (settings: HOOK_SECRET) as the password "
                    "of its -hooks-http URL. It authenticates POST /tusd_hook, which is served "
                    "on the internal listener (HOOK_HOST:HOOK_PORT) only and is therefore not "
                    "an operation of this document",
                ),
            }
        ),
    )


_JSON_TYPES = {bool: OpenAPIType.BOOLEAN, int: OpenAPIType.INTEGER, float: OpenAPIType.NUMBER}


def _param_schema(param: Param) -> Schema:
    return Schema(
        type=_JSON_TYPES.get(param.kind, OpenAPIType.STRING),
        minimum=param.minimum,
        maximum=param.maximum,
        enum=list(param.choices) or None,
        default=param.default,
        description=param.description or None,
    )


def _create_variant(generic: Schema, spec: PipelineSpec) -> Schema:
    """``generic`` (TaskCreate's own schema) narrowed to one pipeline: its name as a constant,
    its parameters as a closed object."""
    properties = dict(generic.properties or {})
    properties["pipeline"] = Schema(type=OpenAPIType.STRING, const=spec.name)
    properties["params"] = Schema(
        type=OpenAPIType.OBJECT,
        properties={p.name: _param_schema(p) for p in spec.params},
        additional_properties=False,
        description="Omitted parameters take their default (GET /pipelines)",
    )
    return Schema(
        type=OpenAPIType.OBJECT,
        title=f"TaskCreate ({spec.name})",
        description=spec.description,
        properties=properties,
        required=["pipeline"],
        additional_properties=False,
    )


# Operations on the task that create_task's answer names (OpenAPI links: what a generated client
# or a stateful tester may call next with the new task_id).
_TASK_OPERATIONS = ("start_task", "query_task", "get_task", "kill_task", "task_logs")


def complete_document(document: OpenAPI, catalog: Catalog) -> None:
    """What Litestar cannot derive from the handlers: create_task's body per pipeline, and the
    links from a created task to the operations on it. Called once the catalog is loaded (in
    the lifespan), before the document is first served."""
    _describe_pipelines(document, catalog)
    _link_created_task(document)


def _link_created_task(document: OpenAPI) -> None:
    create = document.paths.get("/create_task") if document.paths else None
    responses = create.post.responses if create and create.post else None
    created = responses.get("201") if responses else None
    if created is None or isinstance(created, Reference):
        return
    created.links = {
        operation: Link(operation_id=operation, parameters={"task_id": "$response.body#/task_id"})
        for operation in _TASK_OPERATIONS
    }


def _describe_pipelines(document: OpenAPI, catalog: Catalog) -> None:
    """Describe create_task's body per offered pipeline: one variant per pipeline, chosen by
    ``pipeline``, each with that pipeline's parameters, their types, bounds and choices.

    The catalog is known only once the app starts (it is loaded in the lifespan), so the
    generic ``TaskCreate`` that Litestar derives from the Struct is rewritten then, before the
    document is first served."""
    schemas = document.components.schemas if document.components else None
    generic = schemas.get("TaskCreate") if schemas else None
    if schemas is None or generic is None or generic.one_of or not catalog:
        return  # no pipelines to describe, or described already (a second lifespan)
    refs: dict[str, str] = {}
    variants: list[Schema | Reference] = []
    for name in sorted(catalog):
        component = f"TaskCreate_{name}"
        schemas[component] = _create_variant(generic, catalog[name])
        refs[name] = f"#/components/schemas/{component}"
        variants.append(Reference(ref=refs[name]))
    schemas["TaskCreate"] = Schema(
        one_of=variants,
        discriminator=Discriminator(property_name="pipeline", mapping=refs),
        description="A task of one of the offered pipelines (GET /pipelines)",
    )
