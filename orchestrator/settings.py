"""Process settings, read once from the environment.

Every field is an environment variable of the same name in upper case. ``Settings()`` is built
once per process by the bootstrap (``orchestrator.bootstrap``) and passed down; nothing else reads
the environment and nothing here connects to anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.defaults import (
    DEV_HOOK_PORT,
    DEV_POSTGRES_PORT,
    DEV_REDIS_PORT,
    DEV_S3_PORT,
    DEV_TUS_PORT,
)
from pipelines.catalog import SHIPPED as SHIPPED_PIPELINES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- state and queue -------------------------------------------------------------------
    database_url: str = Field(
        f"postgresql+psycopg://orchestrator@127.0.0.1:{DEV_POSTGRES_PORT}/orchestrator",
        description="SQLAlchemy URL of the PostgreSQL database holding task state (the truth).",
    )
    redis_url: str = Field(
        f"redis://127.0.0.1:{DEV_REDIS_PORT}/0", description="Redis URL of the RQ job queues."
    )
    db_connect_timeout_s: int = Field(
        2,
        ge=2,
        description="Seconds to open a PostgreSQL connection before giving up (libpq's "
        "connect_timeout, whose minimum is 2).",
    )
    db_statement_timeout_s: float = Field(
        1.5,
        gt=0,
        description="Seconds one PostgreSQL statement may run (the server's statement_timeout). "
        "The client gives up on any round trip 0.5 s later, which also covers a frozen server "
        "that cannot enforce anything. Either way the API answers 503.",
    )
    db_pool_timeout_s: float = Field(
        2.0,
        gt=0,
        description="Seconds a request waits for a pooled PostgreSQL connection before 503.",
    )
    db_pool_size: int = Field(
        20,
        ge=1,
        description="PostgreSQL connections one process keeps open for reuse; up to 10 more "
        "are opened under load and closed when returned. A process opens only what it uses "
        "at once (a worker slot: one or two); the API under load uses up to this many, and "
        "each connection opened per request instead costs a server process and a login.",
    )

    # --- object storage --------------------------------------------------------------------
    s3_endpoint: str = Field(
        f"http://127.0.0.1:{DEV_S3_PORT}",
        description="S3 endpoint the API and workers use (scheme://host:port).",
    )
    s3_public_endpoint: str = Field(
        "",
        description="S3 endpoint clients reach for presigned downloads; empty = s3_endpoint.",
    )
    s3_access_key: str = Field("orchestrator", description="S3 access key id.")
    s3_secret_key: str = Field("orchestrator-secret", description="S3 secret key.")
    s3_region: str = Field("us-east-1", description="S3 region used for SigV4 signatures.")
    uploads_bucket: str = Field("uploads", description="Bucket the TUS server writes uploads to.")
    results_bucket: str = Field("results", description="Bucket workers write task results to.")
    presign_expiry_s: int = Field(
        3600,
        ge=1,
        le=7 * 24 * 3600,
        description="Lifetime of presigned result URLs in seconds (SigV4 caps it at 7 days).",
    )

    # --- uploads and hooks -----------------------------------------------------------------
    tus_public_url: str = Field(
        f"http://127.0.0.1:{DEV_TUS_PORT}/files/",
        description="TUS creation endpoint as clients reach it; upload URLs are built from it.",
    )
    hook_secret: str = Field(
        "dev-hook-secret",
        description="Secret tusd sends as the password of the hook URL's userinfo "
        "(http://tusd:SECRET@api:8001/tusd_hook → Authorization: Basic); checked in constant "
        "time. Go redacts userinfo passwords in errors, so a failing hook never shows it.",
    )
    health_cache_s: float = Field(
        1.0,
        ge=0,
        description="Seconds GET /health may answer from its last look at PostgreSQL, Redis "
        "and S3 (0: look on every call). Bounds the load a flood of health checks makes.",
    )
    api_threads: int = Field(
        40,
        ge=1,
        description="Threads that run the API's blocking handlers (those that call PostgreSQL, "
        "Redis or S3). Each holds its thread for at most the DB_* timeouts when a service "
        "hangs; handlers that need none of them never wait for one.",
    )
    hook_host: str = Field(
        "127.0.0.1",
        description="Address of the API's internal hook listener, the only one that serves "
        "/tusd_hook. Reachable by tusd only: loopback, or a private network; never published.",
    )
    hook_port: int = Field(
        DEV_HOOK_PORT,
        ge=1,
        le=65535,
        description="Port of the internal hook listener (see hook_host).",
    )
    upload_stalled_after_s: float = Field(
        120.0,
        gt=0,
        description="Seconds without upload progress after which a slot shows as 'stalled' in "
        "query_task, another upload may take the slot over, and the service checks storage "
        "for an upload whose post-finish was lost.",
    )
    max_upload_metadata_bytes: int = Field(
        2048,
        ge=256,
        le=4096,
        description="Largest Upload-Metadata (keys plus values, bytes) pre-create accepts; "
        "keeps every hook answer under tusd's 5 KiB hook response limit.",
    )
    upload_token_secret: str = Field(
        "dev-upload-token-secret",
        description="HMAC key for the slot-scoped upload capability carried in upload URLs.",
    )

    # --- API -------------------------------------------------------------------------------
    api_key: str = Field(
        "", description="When set, every endpoint but /health, /schema, /tusd_hook needs X-API-Key."
    )
    log_level: str = Field("INFO", description="Log level of every process.")
    log_json: bool = Field(True, description="Structured JSON logs (one object per line).")

    # --- webhooks --------------------------------------------------------------------------
    webhook_secret: str = Field(
        "dev-webhook-secret",
        description="HMAC-SHA256 key that signs task notifications POSTed to a task's notify_url.",
    )
    webhook_allow_private: bool = Field(
        False,
        description="Allow notify_url hosts that resolve to loopback, private, link-local or "
        "reserved addresses (off: a user cannot make the API probe its own network).",
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Deliveries tried per notification before giving up."
    )
    webhook_backoff_s: float = Field(
        2.0, gt=0, description="First retry delay in seconds; doubles per attempt (capped at 1 h)."
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a receiver has to answer one delivery."
    )
    webhook_interval_s: float = Field(
        1.0, gt=0, description="Seconds between the API's passes that create and send webhooks."
    )

    rate_limit_per_s: int = Field(
        20,
        ge=0,
        description="Requests one API key may make per second and API process; past it, 429 "
        "with Retry-After. The bootstrap API_KEY is not limited. 0: no limit.",
    )
    key_cache_s: float = Field(
        5.0,
        ge=0,
        description="Seconds a process remembers who holds an API key (one PostgreSQL read per "
        "key and interval, not per request). A revoked key keeps working this long at most.",
    )

    # --- pipelines -------------------------------------------------------------------------
    pipelines_path: str = Field(
        "shipped",
        description="Colon-separated directories of pipeline files (TOML, see "
        "pipelines/pipefile.py): each directory's *.toml and */pipeline.toml, read in this "
        "order. The word `shipped` stands for the pipelines that come with the package; leave "
        "it out to offer only your own.",
    )
    pipelines_reload_s: float = Field(
        2.0,
        ge=0,
        description="Seconds between checks of the pipeline files for changes; a changed file "
        "is re-read without a restart. 0: only on SIGHUP.",
    )

    # --- workers and scheduling ------------------------------------------------------------
    executor: Literal["docker", "local"] = Field(
        "docker", description="How a worker runs pipelines: docker containers or local rlimits."
    )
    worker_queues: str = Field(
        "default", description="Comma-separated RQ queues this worker listens on (gpu too)."
    )
    worker_work_dir: str = Field(
        "/tmp/orchestrator-work",
        description="Where a worker stages inputs and outputs of running tasks.",
    )
    heartbeat_interval_s: float = Field(
        5.0, gt=0, description="Seconds between a running task's heartbeats to PostgreSQL."
    )
    heartbeat_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds without heartbeat after which the reconciler deems a worker dead.",
    )
    reconcile_interval_s: float = Field(
        10.0, gt=0, description="Seconds between reconciler passes (run inside the API)."
    )
    max_attempts: int = Field(
        3, ge=1, description="Runs a task may start before a lost worker fails it for good."
    )
    worker_host: str = Field(
        "", description="Host name this worker announces; empty = the machine's host name."
    )
    worker_slots: int = Field(
        0, ge=0, description="Tasks one worker process may run at once; 0 = one per CPU."
    )
    worker_cpus: float = Field(
        0.0, ge=0, description="CPUs tasks on this worker may use in total; 0 = all CPUs."
    )
    worker_memory_bytes: int = Field(
        0,
        ge=0,
        description="Memory (bytes) tasks on this worker may use in total; 0 = all but 512 MiB.",
    )
    worker_announce_interval_s: float = Field(
        5.0, gt=0, description="Seconds between a worker's announcements to the registry."
    )
    worker_lost_after_s: float = Field(
        30.0, gt=0, description="Seconds of silence after which a worker is listed as lost."
    )
    optional_inputs_grace_s: float = Field(
        30.0,
        ge=0,
        description="Seconds without upload activity after which a task whose required inputs "
        "are all in starts although optional slots are still empty (start_task starts at once).",
    )
    kill_poll_interval_s: float = Field(
        1.0, gt=0, description="Seconds between a worker's checks for a kill request."
    )

    # --- retention and priorities (orchestrator.domain.lifecycle, .priority) ----------------
    input_retention_s: float = Field(
        86_400.0,
        ge=0,
        description="Seconds after a task ends that its uploaded inputs are removed (1 day; "
        "0 keeps them). A finished task never reads them again.",
    )
    result_retention_s: float = Field(
        30 * 86_400.0,
        ge=0,
        description="Seconds after a task ends that its results and stored log are removed "
        "(30 days; 0 keeps them). query_task shows the date as results_expire_at. The results "
        "bucket also gets an S3 expiration rule of as many whole days, as a backstop.",
    )
    waiting_expiry_s: float = Field(
        7 * 86_400.0,
        ge=0,
        description="Seconds a waiting task may go without upload activity before it is "
        'killed with the reason "expired: no uploads for ..." (7 days; 0: never).',
    )
    multipart_abort_s: float = Field(
        2 * 86_400.0,
        ge=0,
        description="Seconds after which an upload started and never finished (an incomplete "
        "multipart upload in the uploads bucket) is aborted (2 days; 0: never).",
    )
    priority_ageing_s: float = Field(
        600.0,
        gt=0,
        description="Seconds a queued task waits in its priority band before it moves up one "
        "(low → normal → high), so low-priority work never starves.",
    )

    @property
    def s3_public(self) -> str:
        return self.s3_public_endpoint or self.s3_endpoint

    @property
    def pipeline_dirs(self) -> list[Path]:
        entries = [p.strip() for p in self.pipelines_path.split(":") if p.strip()]
        return [SHIPPED_PIPELINES if p == "shipped" else Path(p) for p in entries]

    @property
    def queues(self) -> list[str]:
        return [q.strip() for q in self.worker_queues.split(",") if q.strip()]


def split_endpoint(url: str) -> tuple[str, bool]:
    """``http://host:port`` → (``host:port``, secure) as the minio SDK wants it."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.netloc, parts.scheme == "https"
