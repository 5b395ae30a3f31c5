"""S3 access for backups: a bounded-memory multipart writer, checksummed streaming reads, listing and deletion.

Works with any S3-compatible endpoint (endpoint, region, path-style and credentials from settings). Every botocore
error is turned into a StorageError that names the endpoint, bucket and key.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from .errors import IntegrityError, StorageError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
READ_CHUNK = 1 * MiB


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint: str | None = None
    region: str | None = None
    path_style: bool = False
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    @property
    def where(self) -> str:
        return f"s3://{self.bucket} at {self.endpoint or 'AWS'}"


def make_client(s: S3Settings) -> Any:
    import boto3
    from botocore.config import Config

    # Short connect timeout and few retries: an unreachable endpoint fails in seconds, not minutes.
    cfg = Config(
        region_name=s.region or "us-east-1",
        s3={"addressing_style": "path" if s.path_style else "auto"},
        connect_timeout=5,
        read_timeout=120,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=s.endpoint or None,
        aws_access_key_id=s.access_key or None,
        aws_secret_access_key=s.secret_key or None,
        aws_session_token=s.session_token or None,
        config=cfg,
    )


def describe_error(exc: BaseException, settings: S3Settings, key: str | None = None) -> StorageError:
    """One clear line for a botocore failure."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    target = settings.where + (f" key {key}" if key else "")
    if isinstance(exc, EndpointConnectionError):
        return StorageError(f"cannot reach S3 endpoint {settings.endpoint or 'AWS'}: {exc}")
    if isinstance(exc, NoCredentialsError):
        return StorageError("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, msg = err.get("Code", "?"), err.get("Message", "")
        if code in ("NoSuchBucket",):
            return StorageError(f"bucket {settings.bucket!r} does not exist at {settings.endpoint or 'AWS'}")
        if code in ("NoSuchKey", "404"):
            return StorageError(f"object not found: {target}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StorageError(f"S3 refused access to {target}: {code} {msg}".rstrip())
        return StorageError(f"S3 request failed for {target}: {code} {msg}".rstrip())
    return StorageError(f"S3 request failed for {target}: {type(exc).__name__}: {exc}")


class Storage:
    """One bucket on one endpoint."""

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client or make_client(settings)

    def _call(self, key: str | None, fn: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise describe_error(exc, self.settings, key) from exc

    def check(self) -> None:
        """Fails fast (before any dump starts) when the endpoint, credentials or bucket are wrong."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):  # HEAD has no error body
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist at {self.settings.endpoint or 'AWS'}"
                ) from exc
            raise describe_error(exc, self.settings) from exc
        except BotoCoreError as exc:
            raise describe_error(exc, self.settings) from exc

    def list_keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])
        except (BotoCoreError, ClientError) as exc:
            raise describe_error(exc, self.settings, prefix) from exc

    def get_bytes(self, key: str, limit: int = 16 * MiB) -> bytes:
        head = self._call(key, self.client.head_object, Key=key)
        if head["ContentLength"] > limit:
            raise IntegrityError(f"{key} is {head['ContentLength']} bytes, more than the {limit} expected")
        return self._call(key, self.client.get_object, Key=key)["Body"].read()

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._call(key, self.client.put_object, Key=key, Body=data, ContentType=content_type)

    def delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            out = self._call(
                batch[0], self.client.delete_objects, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            if out.get("Errors"):
                e = out["Errors"][0]
                raise StorageError(f"could not delete {e.get('Key')}: {e.get('Code')} {e.get('Message')}")

    def writer(
        self, key: str, content_type: str = "application/octet-stream", part_size: int = 8 * MiB
    ) -> MultipartWriter:
        return MultipartWriter(self, key, content_type, part_size)

    def stream(self, key: str, sink: Callable[[bytes], None] | None = None, if_match: str | None = None) -> Digest:
        """Reads ``key`` in chunks, hashing it; each chunk goes to ``sink``. Memory stays at one chunk."""
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"Key": key}
        if if_match:
            kwargs["IfMatch"] = if_match  # the object must be the one that was verified
        resp = self._call(key, self.client.get_object, **kwargs)
        h, size = hashlib.sha256(), 0
        body = resp["Body"]
        try:
            while chunk := body.read(READ_CHUNK):
                h.update(chunk)
                size += len(chunk)
                if sink is not None:
                    sink(chunk)
        except (BotoCoreError, ClientError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
                raise  # the sink failed (e.g. pg_restore exited): the caller reports that
            raise describe_error(exc, self.settings, key) from exc
        finally:
            body.close()
        return Digest(size=size, sha256=h.hexdigest(), etag=resp.get("ETag"))


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str
    etag: str | None = None


class MultipartWriter:
    """Streams bytes to one S3 object: parts are uploaded while the producer keeps writing.

    Memory is bounded by (1 buffer being filled + ``max_in_flight`` parts uploading) x part size, plus botocore's
    working copy of each uploading part. One part in flight already overlaps the upload with the producer (pg_dump
    is the slower side); a second one bought ~15% on loopback for ~12 MiB more RSS, so it is opt-in. The part size
    doubles every 2000 parts so that the 10,000-part limit allows objects far beyond 1 TiB.
    Use as a context manager: an exception aborts the upload, so no partial object is ever visible.
    """

    def __init__(self, storage: Storage, key: str, content_type: str, part_size: int, max_in_flight: int = 1) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part size must be at least {MIN_PART} bytes")
        self.storage, self.key, self.content_type = storage, key, content_type
        self.part_size = part_size
        self._buf = bytearray()
        self._hash = hashlib.sha256()
        self.size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._pending: list[Future[dict[str, Any]]] = []
        self._slots = threading.Semaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="s3-part")
        self.digest: Digest | None = None

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif self.digest is None:
            self.close()

    def write(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)
        self._buf += data
        while len(self._buf) >= self._current_part_size():
            n = self._current_part_size()
            with memoryview(self._buf) as view:
                part = bytes(view[:n])  # one copy, not two
            del self._buf[:n]
            self._submit(part)

    def _current_part_size(self) -> int:
        return self.part_size * (2 ** (len(self._parts) // 2000))

    def _submit(self, data: bytes) -> None:
        if self._upload_id is None:
            out = self.storage._call(
                self.key, self.storage.client.create_multipart_upload, Key=self.key, ContentType=self.content_type
            )
            self._upload_id = out["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageError(f"{self.key}: more than {MAX_PARTS} parts; raise the part size")
        self._raise_failed()
        self._slots.acquire()  # back-pressure: the producer waits while max_in_flight parts upload
        entry: dict[str, Any] = {"PartNumber": number}
        self._parts.append(entry)
        fut = self._pool.submit(self._upload_part, number, data, entry)
        self._pending.append(fut)

    def _upload_part(self, number: int, data: bytes, entry: dict[str, Any]) -> dict[str, Any]:
        try:
            out = self.storage._call(
                self.key,
                self.storage.client.upload_part,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
            entry["ETag"] = out["ETag"]
            return entry
        finally:
            self._slots.release()

    def _raise_failed(self) -> None:
        done = [f for f in self._pending if f.done()]
        for f in done:
            f.result()  # re-raises a failed part's error in the producer
            self._pending.remove(f)

    def close(self) -> Digest:
        try:
            if self._upload_id is None:
                # Small object: one PUT, no multipart upload at all.
                self.storage._call(
                    self.key,
                    self.storage.client.put_object,
                    Key=self.key,
                    Body=bytes(self._buf),
                    ContentType=self.content_type,
                )
            else:
                if self._buf:
                    self._submit(bytes(self._buf))
                    self._buf.clear()
                for f in self._pending:
                    f.result()
                self._pending.clear()
                self.storage._call(
                    self.key,
                    self.storage.client.complete_multipart_upload,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            self.abort()
            raise
        finally:
            self._pool.shutdown(wait=True)
        self.digest = Digest(size=self.size, sha256=self._hash.hexdigest())
        return self.digest

    def abort(self) -> None:
        for f in self._pending:
            f.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._buf.clear()
        if self._upload_id is not None:
            try:
                self.storage.client.abort_multipart_upload(
                    Bucket=self.storage.bucket, Key=self.key, UploadId=self._upload_id
                )
            except Exception as exc:  # best effort: the original error matters more
                log.warning("Could not abort multipart upload key=%s error=%s", self.key, exc)
            self._upload_id = None


def copy_stream(src: BinaryIO, writer: MultipartWriter, chunk: int = READ_CHUNK) -> None:
    while data := src.read(chunk):
        writer.write(data)
