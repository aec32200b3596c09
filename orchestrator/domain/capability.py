"""Slot-scoped upload capabilities.

An upload URL carries ``task``, ``slot`` and ``token``; the token is an HMAC-SHA256 of the task
id and the slot under the server secret, so a leaked URL can fill that one slot of that one task
and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlencode, urlsplit


def slot_token(secret: str, task_id: str, slot: str) -> str:
    msg = f"upload:v1:{task_id}:{slot}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def verify_slot_token(secret: str, task_id: str, slot: str, token: str) -> bool:
    return hmac.compare_digest(slot_token(secret, task_id, slot), token)


def upload_url(base: str, secret: str, task_id: str, slot: str) -> str:
    """The TUS creation endpoint for one slot, usable as-is by any standard TUS client."""
    query = urlencode({"task": task_id, "slot": slot, "token": slot_token(secret, task_id, slot)})
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{query}"


def parse_upload_query(uri: str) -> tuple[str, str, str] | None:
    """(task, slot, token) from a request URI such as ``/files/?task=..&slot=..&token=..``."""
    query = parse_qs(urlsplit(uri).query)
    try:
        return query["task"][0], query["slot"][0], query["token"][0]
    except (KeyError, IndexError):
        return None
