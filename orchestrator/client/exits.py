"""Exit codes of the ``orchestrator`` command: what happened, for scripts to branch on."""

from __future__ import annotations

from orchestrator.client.errors import (
    ApiError,
    ClientError,
    IntegrityError,
    ServerError,
    Unreachable,
    UploadError,
)

OK = 0  # done, or the command did what it was asked
TASK_ERROR = 1  # the task ended in error
USAGE = 2  # bad command line or input files (argparse's own code)
KILLED = 3  # the task was killed
REFUSED = 4  # the API (or the tus server) refused the request: 4xx, with its message
UNAVAILABLE = 5  # the server or the network is unavailable: no answer, or 5xx
INTEGRITY = 6  # a downloaded result does not match its size or sha256
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); a re-run of the same submit resumes its uploads

HELP = """\
exit codes:
  0    ok; for submit --wait, status, watch: the task is done (or still going, for status)
  1    the task ended in error
  2    bad command line or input file
  3    the task was killed
  4    the API refused the request (4xx); its message is printed
  5    the server or network is unavailable (no answer, 5xx)
  6    a downloaded result failed its size or sha256 check
  130  interrupted (Ctrl-C); re-run the same submit command to resume its uploads
"""


def for_status(status: str) -> int:
    """A task's state as an exit code: only the two bad endings are not 0."""
    return {"error": TASK_ERROR, "killed": KILLED}.get(status, OK)


def for_error(exc: BaseException) -> int:
    if isinstance(exc, ServerError | Unreachable):
        return UNAVAILABLE
    if isinstance(exc, ApiError):
        return REFUSED
    if isinstance(exc, UploadError):
        return REFUSED if exc.status is not None and 400 <= exc.status < 500 else UNAVAILABLE
    if isinstance(exc, IntegrityError):
        return INTEGRITY
    if isinstance(exc, ClientError):
        return UNAVAILABLE
    raise exc
