"""The one exception type that means "the inputs cannot give a trustworthy answer"."""

from __future__ import annotations


class InputError(Exception):
    """Unusable input: the CLI prints ``error: <message>`` and exits with code 2.

    Raised instead of returning a number whenever the result could be silently wrong.
    """
