"""The parts of the OpenAPI document that Litestar does not derive (orchestrator/api/openapi.py),
built from the app without any backing service."""

from __future__ import annotations

from typing import Any

from orchestrator.api.openapi import complete_document
from orchestrator.app import create_app
from pipelines.checksum.spec import SPEC as CHECKSUM


def document(catalog: dict[str, Any]) -> dict[str, Any]:
    app = create_app(catalog=catalog, reconcile=False)
    complete_document(app.openapi_schema, catalog)
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def test_create_task_has_one_closed_variant_per_pipeline() -> None:
    schemas = document({CHECKSUM.name: CHECKSUM})["components"]["schemas"]
    create = schemas["TaskCreate"]
    assert create["discriminator"]["propertyName"] == "pipeline"
    assert create["discriminator"]["mapping"] == {
        "checksum": "#/components/schemas/TaskCreate_checksum"
    }
    variant = schemas["TaskCreate_checksum"]
    assert variant["additionalProperties"] is False
    assert variant["properties"]["pipeline"] == {"type": "string", "const": "checksum"}
    params = variant["properties"]["params"]
    assert params["additionalProperties"] is False
    assert set(params["properties"]) == {p.name for p in CHECKSUM.params}
    sleep = params["properties"]["sleep_s"]
    assert sleep["type"] == "integer" and sleep["minimum"] == 0 and sleep["maximum"] == 3600
    assert params["properties"]["algorithm"]["enum"] == ["sha256"]


def test_strict_bodies_refuse_unknown_keys_in_the_document_too() -> None:
    schemas = document({})["components"]["schemas"]
    # No catalog: the generic body stays, closed as the Struct is (forbid_unknown_fields).
    assert schemas["TaskCreate"]["additionalProperties"] is False
    assert schemas["ResourcesRequest"]["additionalProperties"] is False


def test_every_operation_documents_its_errors_and_security() -> None:
    doc = document({CHECKSUM.name: CHECKSUM})
    assert set(doc["components"]["securitySchemes"]) == {"apiKey", "bearer", "hookSecret"}
    ops = {o["operationId"]: o for path in doc["paths"].values() for o in path.values()}
    assert set(ops["kill_task"]["responses"]) >= {"200", "202", "401", "404", "409", "503"}
    assert "201" not in ops["kill_task"]["responses"]
    assert set(ops["task_logs"]["responses"]) >= {"200", "307", "401", "404", "409"}
    assert set(ops["create_task"]["responses"]) >= {"201", "400", "401", "422", "503"}
    assert ops["health"].get("security") is None  # public
    assert ops["metrics"]["security"] == [{"apiKey": []}, {"bearer": []}]
    assert all(ops[o]["security"] == [{"apiKey": []}] for o in ("create_task", "list_tasks"))
    links = ops["create_task"]["responses"]["201"]["links"]
    assert links["start_task"]["parameters"] == {"task_id": "$response.body#/task_id"}
    assert "tusd_hook" not in ops  # internal listener only
