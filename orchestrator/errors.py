"""Errors raised by the orchestrator's own code.

    OrchestratorError
    ├── NotFound            unknown task / pipeline id          → 404
    ├── Gone                a deleted task (its tombstone)      → 410
    ├── Conflict            the task's state forbids the call   → 409
    ├── InvalidRequest      bad parameters or body              → 422 / 400
    ├── HookRefused         a hook names storage its upload does not own → 403
    └── DependencyError     a backing service failed (transient) → 503
        ├── DatabaseError   PostgreSQL down, frozen past the deadline, or out of connections
        ├── StorageError    S3
        ├── QueueError      Redis / RQ
        └── ExecutorError   Docker engine / local runner

Foreign exceptions are re-raised as one of these ``from`` the original.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""


class NotFound(OrchestratorError):
    pass


class Gone(OrchestratorError):
    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.extra = extra


class Conflict(OrchestratorError):
    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.extra = extra


class InvalidRequest(OrchestratorError):
    pass


class HookRefused(OrchestratorError):
    """A tusd hook that must not be honoured (a forged or misrouted bucket or key)."""


class DependencyError(OrchestratorError):
    pass


class DatabaseError(DependencyError):
    pass


class StorageError(DependencyError):
    pass


class QueueError(DependencyError):
    pass


class ExecutorError(DependencyError):
    pass
