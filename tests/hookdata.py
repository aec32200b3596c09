"""Hook requests recorded from the real tusd (``tests/unit/hooks/recorded/<type>.json``), and
copies of them with the fields a test cares about changed.

The recordings are made, and checked against the tusd that the stack runs, by
``tests/integration/hooks/test_recorded_hooks.py`` (``RECORD_TUSD_HOOKS=1`` rewrites them).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from devstack.tusd import HOOK_EVENTS

RECORDED = Path(__file__).resolve().parent / "unit" / "hooks" / "recorded"
# Every hook tusd is configured to send, hence every one recorded.
HOOK_TYPES = HOOK_EVENTS


def recorded(hook_type: str) -> dict[str, Any]:
    """The body tusd POSTed for ``hook_type``, exactly as recorded."""
    body: dict[str, Any] = json.loads((RECORDED / f"{hook_type}.json").read_text())
    return body


_UNSET: Any = object()


def hook_request(
    hook_type: str,
    *,
    upload_id: str = _UNSET,
    size: int = _UNSET,
    offset: int = _UNSET,
    meta: dict[str, str] = _UNSET,
    uri: str = _UNSET,
    storage: dict[str, str] | None = _UNSET,
    deferred: bool = _UNSET,
    **upload: Any,
) -> dict[str, Any]:
    """A recorded ``hook_type`` body with the given upload fields replaced."""
    body = copy.deepcopy(recorded(hook_type))
    info = body["Event"]["Upload"]
    changes = {
        "ID": upload_id,
        "Size": size,
        "Offset": offset,
        "MetaData": meta,
        "SizeIsDeferred": deferred,
        **upload,
    }
    for key, value in changes.items():
        if value is not _UNSET:
            info[key] = value
    if storage is not _UNSET:
        if storage is None:
            info.pop("Storage", None)
        else:
            info["Storage"] = storage
    if uri is not _UNSET:
        body["Event"]["HTTPRequest"]["URI"] = uri
    return body
