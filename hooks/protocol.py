"""tusd v2 HTTP hook request and response, field for field as tusd's ``pkg/hooks`` defines them.

tusd POSTs ``{"Type": ..., "Event": {"Upload": FileInfo, "HTTPRequest": HTTPRequest}}`` and
expects a 2xx ``application/json`` answer shaped like ``HookResponse``. Field names keep tusd's
capitalisation so the structs encode and decode the wire format with no renaming.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class HookType(StrEnum):
    PRE_CREATE = "pre-create"
    POST_CREATE = "post-create"
    POST_RECEIVE = "post-receive"
    PRE_FINISH = "pre-finish"
    POST_FINISH = "post-finish"
    PRE_TERMINATE = "pre-terminate"
    POST_TERMINATE = "post-terminate"


class FileInfo(msgspec.Struct):
    """An upload as tusd knows it. In pre-create ``ID`` is "" and ``Storage`` is absent."""

    ID: str = ""
    Size: int = 0
    SizeIsDeferred: bool = False
    Offset: int = 0
    # Go encodes an empty map as null: both are accepted, read through ``meta``.
    MetaData: dict[str, str] | None = None
    IsPartial: bool = False
    IsFinal: bool = False
    PartialUploads: list[str] | None = None
    # s3store: {"Type": "s3store", "Bucket": ..., "Key": ...}; filestore: {"Type", "Path"}.
    Storage: dict[str, str] | None = None

    @property
    def meta(self) -> dict[str, str]:
        return self.MetaData or {}


class HTTPRequest(msgspec.Struct):
    """The client request that caused the hook (for PATCH-driven hooks: the last PATCH)."""

    Method: str = ""
    URI: str = ""
    RemoteAddr: str = ""
    Header: dict[str, list[str]] | None = None


class HookEvent(msgspec.Struct):
    # Required: a body without Event.Upload is not a tusd hook and is refused with 400.
    Upload: FileInfo
    HTTPRequest: HTTPRequest = msgspec.field(default_factory=HTTPRequest)


class HookRequest(msgspec.Struct):
    Type: HookType
    Event: HookEvent

    @property
    def upload(self) -> FileInfo:
        return self.Event.Upload


class HTTPResponse(msgspec.Struct, omit_defaults=True):
    """Changes to the response tusd sends the client.

    Honoured by pre-create (with ``RejectUpload``: the refusal the client sees; otherwise merged
    into the 201), post-receive (with ``StopUpload``) and pre-finish / pre-terminate; ignored by
    every other hook.
    """

    StatusCode: int = 0
    Body: str = ""
    Header: dict[str, str] = msgspec.field(default_factory=dict)


class FileInfoChanges(msgspec.Struct, omit_defaults=True):
    """Honoured by pre-create only. ``MetaData`` replaces the client's metadata wholesale."""

    ID: str = ""
    MetaData: dict[str, str] | None = None
    Storage: dict[str, str] | None = None


class HookResponse(msgspec.Struct, omit_defaults=True):
    """What the API answers to every hook; the empty object means "carry on"."""

    # pre-create, post-receive, pre-finish, pre-terminate.
    HTTPResponse: HTTPResponse | None = None
    # pre-create only: refuse to create the upload.
    RejectUpload: bool = False
    # pre-create only.
    ChangeFileInfo: FileInfoChanges | None = None
    # post-receive only: stop the running PATCH and terminate the upload.
    StopUpload: bool = False
    # pre-terminate only: keep the upload despite the client's DELETE.
    RejectTermination: bool = False


def decode_request(body: bytes) -> HookRequest:
    """Parse a hook body; raise ``msgspec.DecodeError`` / ``ValidationError`` when not tusd's."""
    return msgspec.json.decode(body, type=HookRequest)
