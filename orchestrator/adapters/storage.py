"""Object storage (S3 via the minio SDK): only the calls the orchestrator makes."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Protocol

from minio import Minio
from minio.error import S3Error

from orchestrator.errors import StorageError
from orchestrator.settings import Settings, split_endpoint

# Bytes read from S3 per step of a download: what one hash update and one write take.
DOWNLOAD_CHUNK = 1024 * 1024


class ObjectStorage(Protocol):
    def stat_size(self, bucket: str, key: str) -> int | None: ...
    def download(self, bucket: str, key: str, path: str) -> str: ...
    def upload(self, bucket: str, key: str, path: str, content_type: str) -> None: ...
    def presign_get(self, bucket: str, key: str, expiry_s: int, filename: str) -> str: ...
    def ensure_bucket(self, bucket: str) -> None: ...
    def ping(self) -> None: ...


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
