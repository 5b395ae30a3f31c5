"""MultipartWriter against an in-memory fake S3 client (unit tier: the real server is in tests/integration)."""

import hashlib
import threading
import time
from typing import Any

import pytest
from lighthouse_bridge.backup.storage import MiB, MultipartWriter, S3Settings, Storage


class FakeS3:
    def __init__(self, fail_part: int | None = None, slow: float = 0.0) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.aborted: list[str] = []
        self.fail_part, self.slow = fail_part, slow
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Key] = Body
        return {}

    def create_multipart_upload(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        uid = f"u{len(self.uploads)}"
        self.uploads[uid] = {}
        return {"UploadId": uid}

    def upload_part(self, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.slow)
            if PartNumber == self.fail_part:
                raise OSError("boom")
            self.uploads[UploadId][PartNumber] = Body
            return {"ETag": f'"{PartNumber}"'}
        finally:
            with self.lock:
                self.in_flight -= 1

    def complete_multipart_upload(self, Bucket: str, Key: str, UploadId: str, MultipartUpload: Any) -> None:
        parts = MultipartUpload["Parts"]
        assert [p["PartNumber"] for p in parts] == list(range(1, len(parts) + 1))
        assert all(p["ETag"] == f'"{p["PartNumber"]}"' for p in parts)
        uploaded = self.uploads.pop(UploadId)
        self.objects[Key] = b"".join(uploaded[p["PartNumber"]] for p in parts)

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> None:
        self.aborted.append(UploadId)
        self.uploads.pop(UploadId, None)


def storage(fake: FakeS3) -> Storage:
    return Storage(S3Settings(bucket="b"), client=fake)


def test_small_object_is_a_single_put() -> None:
    fake = FakeS3()
    with MultipartWriter(storage(fake), "k", "x", 5 * MiB) as w:
        w.write(b"hello")
        d = w.close()
    assert fake.objects["k"] == b"hello" and not fake.uploads
    assert d.size == 5 and d.sha256 == hashlib.sha256(b"hello").hexdigest()


def test_large_stream_is_split_into_parts_and_reassembled() -> None:
    fake = FakeS3(slow=0.01)
    data = bytes(range(256)) * (4 * 23 * 1024 + 7)  # ~23.5 MiB, written in odd-sized chunks
    with MultipartWriter(storage(fake), "k", "x", 5 * MiB, max_in_flight=2) as w:
        for i in range(0, len(data), 777_777):
            w.write(data[i : i + 777_777])
        d = w.close()
    assert fake.objects["k"] == data
    assert d.sha256 == hashlib.sha256(data).hexdigest() and d.size == len(data)
    assert 1 <= fake.max_in_flight <= 2


def test_failed_part_aborts_the_upload_and_raises() -> None:
    fake = FakeS3(fail_part=2)
    with pytest.raises(OSError, match="boom"):
        with MultipartWriter(storage(fake), "k", "x", 5 * MiB) as w:
            for _ in range(4):
                w.write(b"\0" * (5 * MiB))
            w.close()
    assert "k" not in fake.objects
    assert fake.aborted == ["u0"]


def test_producer_error_aborts_without_publishing() -> None:
    fake = FakeS3()
    with pytest.raises(RuntimeError):
        with MultipartWriter(storage(fake), "k", "x", 5 * MiB) as w:
            w.write(b"\0" * (6 * MiB))
            raise RuntimeError("pg_dump died")
    assert "k" not in fake.objects and fake.aborted == ["u0"]


def test_part_size_below_s3_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        MultipartWriter(storage(FakeS3()), "k", "x", MiB)
