"""Object storage (S3 via the minio SDK): only the calls the orchestrator makes."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.lifecycleconfig import (
    AbortIncompleteMultipartUpload,
    Expiration,
    LifecycleConfig,
    Rule,
)

from orchestrator.errors import StorageError
from orchestrator.settings import Settings, split_endpoint

# A download's own disk full (no space, quota): raised as the OSError it is, not as a storage
# failure, so that the worker can say which disk filled.
LOCAL_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
# Bytes read from S3 per step of a download: what one hash update and one write take.
DOWNLOAD_CHUNK = 1024 * 1024


# The id of the lifecycle rules the service sets on its buckets (``set_expiry``).
RULE_ID = "orchestrator-retention"


@dataclass(frozen=True)
class Expiry:
    """A bucket's lifecycle as the service sets it: objects expire after ``object_days``
    (None: never), unfinished multipart uploads are aborted after ``multipart_days``."""

    object_days: int | None
    multipart_days: int | None


@dataclass(frozen=True)
class Usage:
    objects: int
    bytes: int


class ObjectStorage(Protocol):
    def stat_size(self, bucket: str, key: str) -> int | None: ...
    def download(self, bucket: str, key: str, path: str) -> str: ...
    def upload(self, bucket: str, key: str, path: str, content_type: str) -> None: ...
    def presign_get(self, bucket: str, key: str, expiry_s: int, filename: str) -> str: ...
    def ensure_bucket(self, bucket: str) -> None: ...
    def ping(self) -> None: ...
    def remove_prefix(self, bucket: str, prefix: str) -> int: ...
    def abort_uploads(
        self, bucket: str, *, prefix: str = "", initiated_before: datetime | None = None
    ) -> int: ...
    def set_expiry(self, bucket: str, expiry: Expiry) -> None: ...
    def expiry(self, bucket: str) -> Expiry | None: ...
    def usage(self, bucket: str) -> Usage: ...


class MinioStorage:
    """S3 through the minio SDK; presigned URLs are signed for the *public* endpoint."""

    def __init__(self, settings: Settings) -> None:
        host, secure = split_endpoint(settings.s3_endpoint)
        pub_host, pub_secure = split_endpoint(settings.s3_public)
        # Giving the region stops the SDK from asking the server for it, which matters for the
        # public client: the public endpoint may not be reachable from inside the API's network.
        self._client = Minio(
            host,
            settings.s3_access_key,
            settings.s3_secret_key,
            secure=secure,
            region=settings.s3_region,
        )
        self._public = Minio(
            pub_host,
            settings.s3_access_key,
            settings.s3_secret_key,
            secure=pub_secure,
            region=settings.s3_region,
        )
        self._bucket = settings.uploads_bucket

    def stat_size(self, bucket: str, key: str) -> int | None:
        try:
            size = self._client.stat_object(bucket, key).size
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"):
                return None
            raise StorageError(f"stat {bucket}/{key} failed: {exc.code}") from exc
        except Exception as exc:  # urllib3 errors: storage unreachable
            raise StorageError(f"stat {bucket}/{key} failed: {exc}") from exc
        return int(size) if size is not None else None

    def download(self, bucket: str, key: str, path: str) -> str:
        """Stream the object to ``path``; the sha256 of what was written (hex), hashed on
        the way so that a multi-GB input is read once. Memory stays flat."""
        digest = hashlib.sha256()
        try:
            response = self._client.get_object(bucket, key)
            try:
                with open(path, "wb") as out:
                    for chunk in response.stream(DOWNLOAD_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            finally:
                response.close()
                response.release_conn()
        except OSError as exc:
            if exc.errno in LOCAL_DISK_FULL:  # the local disk, not the store: the caller's
                raise
            raise StorageError(f"download of {bucket}/{key} failed: {exc}") from exc
        except Exception as exc:
            raise StorageError(f"download of {bucket}/{key} failed: {exc}") from exc
        return digest.hexdigest()

    def upload(self, bucket: str, key: str, path: str, content_type: str) -> None:
        try:
            self._client.fput_object(bucket, key, path, content_type=content_type)
        except Exception as exc:
            raise StorageError(f"upload to {bucket}/{key} failed: {exc}") from exc

    def presign_get(self, bucket: str, key: str, expiry_s: int, filename: str) -> str:
        disposition = f'attachment; filename="{filename}"'
        return self._public.presigned_get_object(
            bucket,
            key,
            expires=timedelta(seconds=expiry_s),
            response_headers={"response-content-disposition": disposition},
        )

    def ensure_bucket(self, bucket: str) -> None:
        try:
            if not self._client.bucket_exists(bucket):
                self._client.make_bucket(bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StorageError(f"cannot create bucket {bucket}: {exc.code}") from exc

    def ping(self) -> None:
        try:
            self._client.bucket_exists(self._bucket)
        except Exception as exc:
            raise StorageError(f"S3 unreachable: {exc}") from exc

    # --- lifecycle ---------------------------------------------------------------------------
    def remove_prefix(self, bucket: str, prefix: str) -> int:
        """Remove every object under ``prefix``; how many there were. Idempotent."""
        try:
            names = [
                o.object_name
                for o in self._client.list_objects(bucket, prefix=prefix, recursive=True)
                if o.object_name is not None
            ]
            if names:
                errors = list(self._client.remove_objects(bucket, map(DeleteObject, names)))
                if errors:
                    first = errors[0]
                    raise StorageError(
                        f"cannot remove {bucket}/{first.name}: {first.code} "
                        f"({len(errors)} of {len(names)} objects under {prefix!r} not removed)"
                    )
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"cannot remove {bucket}/{prefix}*: {exc}") from exc
        return len(names)

    def abort_uploads(
        self, bucket: str, *, prefix: str = "", initiated_before: datetime | None = None
    ) -> int:
        """Abort the unfinished multipart uploads of keys under ``prefix`` (and started before
        ``initiated_before``); how many. MinIO lists uploads by exact key only, so every upload
        of the bucket is listed and filtered here: unfinished uploads are few."""
        aborted = 0
        try:
            for key, upload_id, initiated in self._multipart_uploads(bucket):
                if not key.startswith(prefix):
                    continue
                if initiated_before is not None and (
                    initiated is None or initiated >= initiated_before
                ):
                    continue
                try:
                    self._client._abort_multipart_upload(bucket, key, upload_id)
                except S3Error as exc:
                    if exc.code != "NoSuchUpload":  # finished or aborted meanwhile
                        raise
                    continue
                aborted += 1
        except Exception as exc:
            raise StorageError(f"cannot abort multipart uploads in {bucket}: {exc}") from exc
        return aborted

    def _multipart_uploads(self, bucket: str) -> Iterator[tuple[str, str, datetime | None]]:
        # The SDK has no public call for these two S3 operations; its own are used.
        key_marker: str | None = None
        id_marker: str | None = None
        while True:
            page = self._client._list_multipart_uploads(
                bucket, key_marker=key_marker, upload_id_marker=id_marker, max_uploads=1000
            )
            for upload in page.uploads:
                if upload.object_name and upload.upload_id:
                    yield upload.object_name, upload.upload_id, upload.initiated_time
            if not page.is_truncated:
                return
            key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker

    def set_expiry(self, bucket: str, expiry: Expiry) -> None:
        """Replace the bucket's lifecycle with the one rule the service owns."""
        if expiry.object_days is None and expiry.multipart_days is None:
            try:
                self._client.delete_bucket_lifecycle(bucket)
            except Exception as exc:
                raise StorageError(f"cannot clear the lifecycle of {bucket}: {exc}") from exc
            return
        rule = Rule(
            ENABLED,
            rule_filter=Filter(prefix=""),
            rule_id=RULE_ID,
            expiration=None if expiry.object_days is None else Expiration(days=expiry.object_days),
            abort_incomplete_multipart_upload=None
            if expiry.multipart_days is None
            else AbortIncompleteMultipartUpload(expiry.multipart_days),
        )
        try:
            self._client.set_bucket_lifecycle(bucket, LifecycleConfig([rule]))
        except Exception as exc:
            raise StorageError(f"cannot set the lifecycle of {bucket}: {exc}") from exc

    def expiry(self, bucket: str) -> Expiry | None:
        """The service's rule on ``bucket`` as the store has it; None when it has none."""
        try:
            config = self._client.get_bucket_lifecycle(bucket)
        except S3Error as exc:
            if exc.code == "NoSuchLifecycleConfiguration":
                return None
            raise StorageError(f"cannot read the lifecycle of {bucket}: {exc.code}") from exc
        except Exception as exc:
            raise StorageError(f"cannot read the lifecycle of {bucket}: {exc}") from exc
        for rule in config.rules if config is not None else []:
            if rule.rule_id == RULE_ID:
                abort = rule.abort_incomplete_multipart_upload
                return Expiry(
                    object_days=None if rule.expiration is None else rule.expiration.days,
                    multipart_days=None if abort is None else abort.days_after_initiation,
                )
        return None

    def usage(self, bucket: str) -> Usage:
        """Objects and bytes in ``bucket``, by listing it (a measurement, not for hot paths)."""
        objects = size = 0
        try:
            for o in self._client.list_objects(bucket, recursive=True):
                objects += 1
                size += o.size or 0
        except Exception as exc:
            raise StorageError(f"cannot list {bucket}: {exc}") from exc
        return Usage(objects, size)
