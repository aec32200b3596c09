"""The tusd v2 hook wire format: decoding tusd's requests, encoding our responses."""

from __future__ import annotations

import json

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

# A post-finish body as tusd v2 (s3store) sends it.
POST_FINISH = {
    "Type": "post-finish",
    "Event": {
        "Upload": {
            "ID": "24e533e02ec3bc40c387f1a0e460e216+2~AbCd",
            "Size": 1024,
            "SizeIsDeferred": False,
            "Offset": 1024,
            "MetaData": {"filename": "a.las", "task_id": "t", "slot": "pre"},
            "IsPartial": False,
            "IsFinal": False,
            "PartialUploads": None,
            "Storage": {
                "Type": "s3store",
                "Bucket": "uploads",
                "Key": "24e533e02ec3bc40c387f1a0e460e216",
            },
        },
        "HTTPRequest": {
            "Method": "PATCH",
            "URI": "/files/24e533e02ec3bc40c387f1a0e460e216+2~AbCd",
            "RemoteAddr": "1.2.3.4:5678",
            "Header": {"Tus-Resumable": ["1.0.0"]},
        },
    },
}


def _encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_decodes_a_full_tusd_request() -> None:
    req = decode_request(_encode(POST_FINISH))
    assert req.Type is HookType.POST_FINISH
    assert req.upload.Size == 1024
    assert req.upload.Storage == {
        "Type": "s3store",
        "Bucket": "uploads",
        "Key": "24e533e02ec3bc40c387f1a0e460e216",
    }
    assert req.upload.meta["slot"] == "pre"
    assert req.Event.HTTPRequest.Header == {"Tus-Resumable": ["1.0.0"]}


def test_pre_create_has_empty_id_and_no_storage() -> None:
    body = {
        "Type": "pre-create",
        "Event": {
            "Upload": {"ID": "", "Size": 5, "MetaData": {"filename": "x"}},
            "HTTPRequest": {"Method": "POST", "URI": "/files/?task=a&slot=b&token=c"},
        },
    }
    req = decode_request(_encode(body))
    assert req.upload.ID == ""
    assert req.upload.Storage is None


def test_null_maps_from_go_are_accepted() -> None:
    body = {
        "Type": "post-create",
        "Event": {
            "Upload": {"ID": "x", "MetaData": None, "Storage": None},
            "HTTPRequest": {"Header": None},
        },
    }
    req = decode_request(_encode(body))
    assert req.upload.meta == {}


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    body = json.loads(json.dumps(POST_FINISH))
    body["Event"]["Upload"]["SomethingNew"] = 1
    body["Event"]["Context"] = {}
    assert decode_request(_encode(body)).upload.ID


@pytest.mark.parametrize("hook_type", [t.value for t in HookType])
def test_every_tusd_hook_type_decodes(hook_type: str) -> None:
    body = {"Type": hook_type, "Event": {"Upload": {"ID": "x"}}}
    assert decode_request(_encode(body)).Type.value == hook_type


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        _encode({"Type": "pre-create"}),
        _encode({"Type": "pre-create", "Event": {}}),
        _encode({"Type": "post-upload", "Event": {"Upload": {}}}),
        _encode({"Type": "post-finish", "Event": {"Upload": {"Size": "big"}}}),
        _encode({"Type": "post-finish", "Event": {"Upload": {"MetaData": {"a": 1}}}}),
    ],
)
def test_bodies_not_in_tusd_shape_are_refused(body: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode_request(body)


def test_empty_response_encodes_as_empty_object() -> None:
    assert msgspec.json.encode(HookResponse()) == b"{}"


def test_rejection_encodes_in_tusd_field_names() -> None:
    response = HookResponse(
        RejectUpload=True,
        HTTPResponse=HTTPResponse(StatusCode=413, Body="too big", Header={"X": "y"}),
    )
    assert json.loads(msgspec.json.encode(response)) == {
        "RejectUpload": True,
        "HTTPResponse": {"StatusCode": 413, "Body": "too big", "Header": {"X": "y"}},
    }


def test_change_file_info_carries_metadata() -> None:
    response = HookResponse(ChangeFileInfo=FileInfoChanges(MetaData={"slot": "a"}))
    assert json.loads(msgspec.json.encode(response)) == {
        "ChangeFileInfo": {"MetaData": {"slot": "a"}}
    }


def test_request_round_trips() -> None:
    req = decode_request(_encode(POST_FINISH))
    assert msgspec.json.decode(msgspec.json.encode(req), type=HookRequest) == req
