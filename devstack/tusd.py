"""How tusd is run: the flags both the local stack and compose.yml give it.

``tests/integration/deploy/test_compose.py`` holds compose's tusd command against
:func:`tusd_flags`, so the two cannot drift apart. Why each flag is set:

* ``-hooks-http``: the hook secret rides as the password of the URL's userinfo, which tusd sends
  as ``Authorization: Basic``. Go's HTTP client writes that password as ``***`` in every error,
  so a failing hook shows clients and logs the URL without it (a ``?secret=`` query would be
  echoed verbatim); ``-show-startup-logs=false`` keeps tusd from printing the URL at start.
  The URL points at the API's internal hook listener, never at its public port.
* ``pre-finish`` and ``pre-terminate`` hooks: a finish that lost its slot is answered with an
  error, and a DELETE of an input a queued task needs is refused.
* ``-disable-download``: an upload URL must not serve the uploaded file back to its holder.
* ``-disable-concatenation``: partial/final uploads are refused at pre-create anyway.
* ``-hooks-http-timeout``: a stuck API must not hold an upload for ever (tusd >= 2.9).
* ``-behind-proxy`` only where a proxy sets ``X-Forwarded-*`` (compose: ``TUSD_BEHIND_PROXY``).
"""

from __future__ import annotations

from urllib.parse import quote

from .profile import HOST, Profile

HOOK_EVENTS = (
    "pre-create",
    "post-create",
    "post-receive",
    "pre-finish",
    "post-finish",
    "pre-terminate",
    "post-terminate",
)
# The user name in the hook URL's userinfo; only the password (the secret) is checked.
HOOK_USER = "tusd"


def hooks_url(profile: Profile, secret: str) -> str:
    """The API's internal hook listener, with the secret as the userinfo password."""
    return f"http://{HOOK_USER}:{quote(secret, safe='')}@{HOST}:{profile.ports.hooks}/tusd_hook"


def tusd_flags(
    *,
    host: str,
    port: int,
    s3_endpoint: str,
    hooks_url: str,
    behind_proxy: bool = False,
    bucket: str = "uploads",
) -> list[str]:
    return [
        f"-host={host}",
        f"-port={port}",
        "-base-path=/files/",
        f"-behind-proxy={'true' if behind_proxy else 'false'}",
        f"-s3-bucket={bucket}",
        f"-s3-endpoint={s3_endpoint}",
        f"-hooks-http={hooks_url}",
        f"-hooks-enabled-events={','.join(HOOK_EVENTS)}",
        "-hooks-http-retry=3",
        "-hooks-http-backoff=1s",
        "-hooks-http-timeout=10s",
        "-progress-hooks-interval=1s",
        "-disable-download",
        "-disable-concatenation",
        "-show-startup-logs=false",
        "-shutdown-timeout=10s",
    ]
