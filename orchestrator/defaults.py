"""Constants more than one process or package relies on, each with its unit.

What an operator may change is a setting (``orchestrator/settings.py``); these are fixed by
the code, and live here so that the API, the worker and the dev stack agree on them.
"""

from __future__ import annotations

# --- the local stack's ports ----------------------------------------------------------------
# `make up` binds these (devstack/profile.py; the test stack adds 100), and the settings'
# defaults point at them, so that the server and the CLI work on a dev machine with no
# configuration at all.
DEV_POSTGRES_PORT = 15432
DEV_REDIS_PORT = 16379
DEV_S3_PORT = 18333  # MinIO
DEV_TUS_PORT = 11080  # tusd
DEV_API_PORT = 8000  # the public API
DEV_HOOK_PORT = 8001  # the API's internal listener for tusd's hooks

# --- a task's results --------------------------------------------------------------------
# Object names in the results bucket, under the task's prefix (``result_key``). The worker
# writes them; the API presigns them.
LOG_FILE = "logs.txt"  # the pipeline container's output, stdout and stderr interleaved
MANIFEST_FILE = "manifest.json"  # name, bytes, sha256 and content type of every result
PROVENANCE_FILE = "provenance.json"  # what ran, on which inputs, where (worker.provenance)


def result_key(task_id: str, name: str) -> str:
    """The object key of result ``name`` of task ``task_id`` in the results bucket."""
    return f"{task_id}/{name}"


# --- stopping a pipeline -----------------------------------------------------------------
# Seconds between SIGTERM and SIGKILL when a run is stopped (killed, timed out, its worker
# shutting down cold). A stopped run is discarded, so the grace is short; with the 1 s kill
# poll it keeps "kill request → container gone" well inside 10 s. Both executors use it.
STOP_GRACE_S = 3
