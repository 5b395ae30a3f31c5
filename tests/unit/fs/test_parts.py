"""Small pieces of the FUSE package: blob cache, stream buffers, tree, client URLs, supervisor decisions."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import trio
import trio.testing
from lighthouse_bridge.fs.cache import HUGE_BLOB, BlobCache
from lighthouse_bridge.fs.client import make_http_client
from lighthouse_bridge.fs.model import FsModel
from lighthouse_bridge.fs.mount import FETCH_AHEAD_BYTES, changed_content, shared_fetches
from lighthouse_bridge.fs.source import FileMeta, SourceError
from lighthouse_bridge.fs.status import usable_status_file, write_status
from lighthouse_bridge.fs.streams import StreamBuffer, stream_names_for
from lighthouse_bridge.fs.supervisor import fuse_unavailable_reason
from lighthouse_bridge.fs.tree import Inodes, Tree

from tests.unit.fs.fake_source import FakeSource


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


async def test_blob_cache_evicts_by_bytes_and_verifies_checksums(tmp_path: Path) -> None:
    store = {sha(b"a" * 10): b"a" * 10, sha(b"b" * 10): b"b" * 10, "0" * 64: b"corrupt"}
    fetched: list[str] = []

    async def fetch(key: str) -> bytes:
        fetched.append(key)
        return store[key]

    cache = BlobCache(fetch, max_bytes=15)
    assert await cache.get(sha(b"a" * 10)) == b"a" * 10
    assert await cache.get(sha(b"a" * 10)) == b"a" * 10
    assert len(fetched) == 1
    await cache.get(sha(b"b" * 10))  # evicts a: only 15 bytes fit
    assert cache.stats()["evictions"] == 1
    with pytest.raises(ValueError):
        await cache.get("0" * 64)
    assert await cache.get(hashlib.sha256(b"").hexdigest()) == b""
    disk = BlobCache(fetch, disk_dir=tmp_path)
    await disk.get(sha(b"a" * 10))
    again = BlobCache(fetch, disk_dir=tmp_path)
    fetched.clear()
    assert await again.get(sha(b"a" * 10)) == b"a" * 10
    assert fetched == [] and again.stats()["disk_hits"] == 1


async def test_big_blobs_are_cached_in_huge_pages_and_read_back_exactly(tmp_path: Path) -> None:
    big = bytes(range(256)) * ((HUGE_BLOB + 4096) // 256)
    src = FakeSource()
    src.put("big.bin", big)
    model = FsModel(src, writable=True, blobs=BlobCache(src.read_blob, disk_dir=tmp_path))
    await model.load()
    blob = await model.blobs.get(sha(big))
    assert isinstance(blob, memoryview) and blob.readonly  # an mmap advised MADV_HUGEPAGE, not the bytes
    assert bytes(blob) == big and model.blobs.stats()["bytes"] == len(big)
    assert await model.blobs.get(sha(big)) is blob and src.blob_fetches == 1
    assert (tmp_path / sha(big)[:2] / sha(big)).read_bytes() == big  # the disk cache got the same bytes
    current = await model.lookup(1, "current")
    ino = (await model.lookup(current.ino, "big.bin")).ino
    fh = (await model.open(ino, os.O_RDONLY)).fh
    assert bytes(await model.read(fh, HUGE_BLOB - 10, 1 << 20)) == big[HUGE_BLOB - 10 :]
    wfh = (await model.open(ino, os.O_RDWR)).fh  # a write handle copies it into its own buffer
    await model.write(wfh, 0, b"X")
    assert bytes(await model.read(wfh, 0, 3)) == b"X" + big[1:3]
    assert bytes(await model.read(fh, 0, 3)) == big[:3]  # the cached blob is untouched


def test_stream_buffer_appends_lines_and_rotates() -> None:
    buf = StreamBuffer(limit=200)
    for i in range(20):
        buf.append({"i": i})
    assert len(buf) <= 200
    lines = buf.read(0, 1000).splitlines()
    assert json.loads(lines[-1]) == {"i": 19}
    assert all(json.loads(line) for line in lines)  # rotation cuts at line boundaries
    assert stream_names_for("file_modified") == ("events", "file_changes")
    assert stream_names_for("validation_decision_made") == ("events", "validations")
    assert stream_names_for("shadow_annotation_created") == ("events", "annotations")
    assert stream_names_for("agent_session_started") == ("events",)


def test_tree_derives_and_prunes_directories() -> None:
    tree = Tree([FileMeta("a/b/c.txt", "x", 1), FileMeta("a/d.txt", "y", 1)])
    assert tree.kind("a/b") == "dir" and tree.subdir_count("a") == 1
    assert tree.remove("a/b/c.txt") == ["a/b"]
    tree.mkdir("a/empty")
    assert tree.remove("a/d.txt") == []  # a/ still holds the kept empty directory
    assert tree.kind("a/empty") == "dir"


def test_inodes_are_stable_until_forgotten_and_follow_renames() -> None:
    inodes = Inodes()
    a = inodes.ino(("current", "", "a"))
    child = inodes.ino(("current", "", "a/x"))
    assert inodes.ino(("current", "", "a")) == a
    inodes.rekey(("current", "", "a"), ("current", "", "b"))
    assert inodes.known(("current", "", "b/x")) == child and inodes.known(("current", "", "a")) is None
    inodes.ref(a, 2)
    inodes.forget(a, 1)
    assert inodes.key(a) == ("current", "", "b")
    inodes.forget(a, 1)
    assert inodes.key(a) is None


def test_bridge_url_forms() -> None:
    assert str(make_http_client("http://127.0.0.1:8765/").base_url) == "http://127.0.0.1:8765"
    assert str(make_http_client("unix:///run/lighthouse/api.sock").base_url) == "http://bridge"
    with pytest.raises(ValueError, match="unix://"):
        make_http_client("ftp://x")


def test_supervisor_reports_why_fuse_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "disabled" in (fuse_unavailable_reason("disabled") or "")
    monkeypatch.setattr("os.path.exists", lambda p: False)
    assert "/dev/fuse" in (fuse_unavailable_reason("auto") or "")


def test_status_file_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run/status.json"
    write_status(str(path), True, "/mnt/x", None)
    assert json.loads(path.read_text()) == {"mounted": True, "mountpoint": "/mnt/x", "error": None}
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def test_status_file_falls_back_when_its_directory_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert usable_status_file(str(tmp_path / "ok/status.json")) == str(tmp_path / "ok/status.json")
    assert usable_status_file(str(blocker / "status.json")).endswith("lighthouse-fuse-status.json")


def test_small_changed_contents_are_fetched_ahead() -> None:
    def ev(etype: str, size: int) -> dict[str, object]:
        return {"event_type": etype, "data": {"path": "a", "sha256": "ab" * 32, "size": size}}

    assert changed_content(ev("file_modified", 10)) == "ab" * 32
    assert changed_content(ev("file_created", FETCH_AHEAD_BYTES)) == "ab" * 32
    assert changed_content(ev("file_modified", FETCH_AHEAD_BYTES + 1)) is None  # a big file waits for a reader
    assert changed_content(ev("file_deleted", 10)) is None
    assert changed_content({"event_type": "file_modified", "data": {"path": "a"}}) is None


def test_concurrent_fetches_of_one_blob_share_one_request() -> None:
    calls: list[str] = []
    release = trio.Event()
    fail = {"bad"}

    async def fetch(sha256: str) -> bytes:
        calls.append(sha256)
        await release.wait()
        if sha256 in fail:
            fail.discard(sha256)  # only the first request fails
            raise SourceError("bridge down")
        return sha256.encode()

    get = shared_fetches(fetch)

    async def main() -> None:
        got: dict[str, list[object]] = {}

        async def one(sha: str) -> None:
            try:
                got.setdefault(sha, []).append(await get(sha))
            except SourceError as exc:
                got.setdefault(sha, []).append(exc)

        async with trio.open_nursery() as n:
            for sha in ("a", "a", "a", "b", "bad", "bad"):
                n.start_soon(one, sha)
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(calls) == ["a", "b", "bad"]  # one request per blob in flight
            release.set()
        assert got["a"] == [b"a"] * 3 and got["b"] == [b"b"]
        # The request of "bad" failed: its first caller sees the error, the one waiting on it fetches on its own.
        assert [type(x) for x in got["bad"]] == [SourceError, bytes] and calls.count("bad") == 2
        assert await get("a") == b"a" and calls.count("a") == 2  # nothing kept once the flight is over

    trio.run(main)
