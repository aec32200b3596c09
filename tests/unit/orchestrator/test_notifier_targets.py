"""The notifier refuses non-public targets before connecting (unless allowed by settings)."""

from __future__ import annotations

from orchestrator.notifier import _post
from orchestrator.settings import Settings


def test_loopback_target_is_refused_without_a_connection() -> None:
    settings = Settings(webhook_allow_private=False)
    # Port 9 (discard) on loopback: were a connection attempted, the error would be a refusal
    # to connect, not this message.
    code, error = _post("http://127.0.0.1:9/hook", {}, b"{}", settings)
    assert code is None
    assert error is not None and error.startswith("refused: 127.0.0.1 resolves to a non-public")


def test_localhost_name_is_refused_too() -> None:
    code, error = _post("http://localhost:9/hook", {}, b"{}", Settings(webhook_allow_private=False))
    assert code is None and error is not None and "non-public" in error


def test_allowed_when_configured() -> None:
    code, error = _post("http://127.0.0.1:9/hook", {}, b"{}", Settings(webhook_allow_private=True))
    assert code is None and error is not None and "non-public" not in error
