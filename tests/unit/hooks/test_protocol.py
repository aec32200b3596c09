"""The tusd v2 hook wire format: decoding tusd's requests, encoding our responses.

Every request here is a body recorded from the real tusd (``tests/unit/hooks/recorded``), as
recorded or with a few fields changed through ``tests.hookdata.hook_request``.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from hooks.protocol import (
    FileInfoChanges,
    HookRequest,
    HookResponse,
    HookType,
    HTTPResponse,
    decode_request,
)
from tests.hookdata import HOOK_TYPES, hook_request, recorded

LATER_HOOKS = [t for t in HOOK_TYPES if t != "pre-create"]


def _encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _decode(body: dict[str, Any]) -> HookRequest:
    return decode_request(_encode(body))


# --- the recordings --------------------------------------------------------------------------
def test_there_is_a_recording_for_every_hook_type() -> None:
    assert set(HOOK_TYPES) == {t.value for t in HookType}


@pytest.mark.parametrize("hook_type", HOOK_TYPES)
def test_every_recorded_request_decodes_without_loss(hook_type: str) -> None:
    body = recorded(hook_type)
    req = _decode(body)
    assert req.Type is HookType(hook_type)
    # Every field tusd sends is one of ours: encoding the decoded request gives the body back.
    assert msgspec.to_builtins(req) == body


@pytest.mark.parametrize("hook_type", HOOK_TYPES)
def test_every_recorded_request_round_trips(hook_type: str) -> None:
    req = _decode(recorded(hook_type))
    assert msgspec.json.decode(msgspec.json.encode(req), type=HookRequest) == req


def test_pre_create_has_empty_id_and_no_storage() -> None:
    req = _decode(recorded("pre-create"))
    assert req.upload.ID == ""
    assert req.upload.Storage is None
    assert req.upload.meta == {"filename": "scan.las"}
    assert req.Event.HTTPRequest.Method == "POST"
    assert "task=" in req.Event.HTTPRequest.URI and "token=" in req.Event.HTTPRequest.URI


@pytest.mark.parametrize("hook_type", LATER_HOOKS)
def test_later_hooks_name_their_s3_object(hook_type: str) -> None:
    upload = _decode(recorded(hook_type)).upload
    object_id, plus, multipart_id = upload.ID.rpartition("+")
    assert plus and object_id and multipart_id
    assert upload.Storage == {"Type": "s3store", "Bucket": "uploads", "Key": object_id}
    assert {"task_id", "slot", "filename"} <= set(upload.meta)


@pytest.mark.parametrize(
    ("hook_type", "method"),
    [
        ("pre-create", "POST"),
        ("post-create", "POST"),
        ("post-receive", "PATCH"),
        ("pre-finish", "PATCH"),
        ("post-finish", "PATCH"),
        ("pre-terminate", "DELETE"),
        ("post-terminate", "DELETE"),
    ],
)
def test_each_hook_carries_the_client_request_that_caused_it(hook_type: str, method: str) -> None:
    http = _decode(recorded(hook_type)).Event.HTTPRequest
    assert http.Method == method
    assert http.Header is not None and http.Header["Tus-Resumable"] == ["1.0.0"]


def test_decodes_a_full_tusd_request() -> None:
    req = _decode(recorded("post-finish"))
    assert req.Type is HookType.POST_FINISH
    assert req.upload.Size == req.upload.Offset == 6291456
    assert req.upload.meta["slot"] == "pre"
    assert req.upload.IsPartial is False and req.upload.PartialUploads is None
    assert req.Event.HTTPRequest.Header is not None
    assert req.Event.HTTPRequest.Header["Upload-Offset"] == ["3145728"]


# --- what tusd may send besides ----------------------------------------------------------------
def test_null_maps_from_go_are_accepted() -> None:
    body = hook_request("post-create", MetaData=None, Storage=None, PartialUploads=None)
    body["Event"]["HTTPRequest"]["Header"] = None
    req = _decode(body)
    assert req.upload.MetaData is None and req.upload.meta == {}
    assert req.upload.Storage is None
    assert req.Event.HTTPRequest.Header is None


def test_absent_optional_fields_take_their_defaults() -> None:
    body = hook_request("post-create")
    upload = body["Event"]["Upload"]
    for field in ("Offset", "MetaData", "IsPartial", "IsFinal", "PartialUploads", "Storage"):
        del upload[field]
    del body["Event"]["HTTPRequest"]
    req = _decode(body)
    assert req.upload.Offset == 0 and req.upload.meta == {} and req.upload.Storage is None
    assert req.Event.HTTPRequest.URI == "" and req.Event.HTTPRequest.Header is None


@pytest.mark.parametrize("hook_type", HOOK_TYPES)
def test_unknown_fields_are_ignored_for_forward_compatibility(hook_type: str) -> None:
    body = hook_request(hook_type, SomethingNew=1)
    body["Event"]["Context"] = {}
    body["Event"]["HTTPRequest"]["Proto"] = "HTTP/1.1"
    body["Extra"] = [1, 2]
    assert _decode(body) == _decode(recorded(hook_type))


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


def _with_type(body: dict[str, Any], hook_type: str) -> dict[str, Any]:
    body["Type"] = hook_type
    return body


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        _encode({"Type": "pre-create"}),
        _encode({"Type": "pre-create", "Event": {}}),
        _encode(_without(hook_request("pre-create"), "Type")),
        _encode(_without(hook_request("pre-create"), "Event")),
        _encode(_without(hook_request("post-finish"), "Event", "Upload")),
        _encode(_with_type(hook_request("post-finish"), "post-upload")),
        _encode(_with_type(hook_request("post-finish"), "PostFinish")),
        _encode(hook_request("post-finish", Size="big")),
        _encode(hook_request("post-finish", Offset=None)),
        _encode(hook_request("post-finish", MetaData={"a": 1})),
        _encode(hook_request("post-finish", Storage={"Key": ["k"]})),
        _encode(hook_request("post-finish", ID=42)),
    ],
)
def test_bodies_not_in_tusd_shape_are_refused(body: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode_request(body)


# --- responses -------------------------------------------------------------------------------
def _wire(response: HookResponse) -> object:
    return json.loads(msgspec.json.encode(response))


def test_empty_response_encodes_as_empty_object() -> None:
    assert msgspec.json.encode(HookResponse()) == b"{}"


def test_rejection_encodes_in_tusd_field_names() -> None:
    response = HookResponse(
        RejectUpload=True,
        HTTPResponse=HTTPResponse(StatusCode=413, Body="too big", Header={"X": "y"}),
    )
    assert _wire(response) == {
        "RejectUpload": True,
        "HTTPResponse": {"StatusCode": 413, "Body": "too big", "Header": {"X": "y"}},
    }


def test_change_file_info_carries_id_and_metadata() -> None:
    response = HookResponse(ChangeFileInfo=FileInfoChanges(ID="t/pre/n", MetaData={"slot": "a"}))
    assert _wire(response) == {"ChangeFileInfo": {"ID": "t/pre/n", "MetaData": {"slot": "a"}}}


def test_change_file_info_carries_metadata_alone() -> None:
    response = HookResponse(ChangeFileInfo=FileInfoChanges(MetaData={"slot": "a"}))
    assert _wire(response) == {"ChangeFileInfo": {"MetaData": {"slot": "a"}}}


def test_http_response_alone_changes_the_answer_without_rejecting() -> None:
    response = HookResponse(HTTPResponse=HTTPResponse(StatusCode=409, Body="no"))
    assert _wire(response) == {"HTTPResponse": {"StatusCode": 409, "Body": "no"}}


@pytest.mark.parametrize("flag", ["StopUpload", "RejectTermination"])
def test_stop_and_keep_flags_encode_in_tusd_field_names(flag: str) -> None:
    response = msgspec.structs.replace(
        HookResponse(HTTPResponse=HTTPResponse(StatusCode=409, Body="no")), **{flag: True}
    )
    assert _wire(response) == {flag: True, "HTTPResponse": {"StatusCode": 409, "Body": "no"}}
