"""Client side of the orchestrator: the Python client (``Client``), parallel resumable tus
uploads, and the ``orchestrator`` command built on them."""

from orchestrator.client.api import Client, Downloaded
from orchestrator.client.errors import (
    ApiError,
    ClientError,
    Conflict,
    IntegrityError,
    InvalidRequest,
    NotFound,
    ServerError,
    Unauthorized,
    Unreachable,
    UploadError,
)

__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "Conflict",
    "Downloaded",
    "IntegrityError",
    "InvalidRequest",
    "NotFound",
    "ServerError",
    "Unauthorized",
    "Unreachable",
    "UploadError",
]
