"""The filesystem model against an in-memory source: names, attributes, bytes, history, writes, invalidation."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat

import pytest
from lighthouse_bridge.fs.model import ROOT_INO, FsError, FsModel, Invalidation

from tests.unit.fs.fake_source import FakeSource


async def make(writable: bool = False, **files: bytes) -> tuple[FsModel, FakeSource]:
    src = FakeSource()
    for path, content in files.items():
        src.put(path.replace("__", "/"), content)
    model = FsModel(src, writable=writable, uid=1234, gid=5678)
    await model.load()
    return model, src


async def resolve(model: FsModel, path: str) -> int:
    ino = ROOT_INO
    for part in path.split("/"):
        ino = (await model.lookup(ino, part)).ino
    return ino


async def cat(model: FsModel, path: str) -> bytes:
    ino = await resolve(model, path)
    fh = (await model.open(ino, os.O_RDONLY)).fh
    out = b""
    while chunk := await model.read(fh, len(out), 4):
        out += chunk
    await model.release(fh)
    return out


async def names(model: FsModel, path: str) -> list[str]:
    ino = await resolve(model, path) if path else ROOT_INO
    return [n for n, _ in await model.readdir(ino)]


async def test_root_lists_the_layout() -> None:
    model, _ = await make()
    assert await names(model, "") == ["current", "shadows", "history", "context", "streams", "debug"]


async def test_current_tree_sizes_are_exact_and_ownership_consistent() -> None:
    model, _ = await make(**{"src__app.py": b"print('hi')\n", "README.md": b"x" * 5000})
    assert await names(model, "current") == ["README.md", "src"]
    attr = await model.getattr(await resolve(model, "current/README.md"))
    assert attr.size == 5000
    assert stat.S_IMODE(attr.mode) == 0o444  # read-only mount
    assert (attr.uid, attr.gid) == (1234, 5678)
    src_dir = await model.getattr(await resolve(model, "current/src"))
    assert src_dir.is_dir and stat.S_IMODE(src_dir.mode) == 0o555
    assert await cat(model, "current/src/app.py") == b"print('hi')\n"


async def test_writable_mount_has_write_bits_only_in_current() -> None:
    model, _ = await make(writable=True, **{"a.txt": b"a"})
    assert stat.S_IMODE((await model.getattr(await resolve(model, "current/a.txt"))).mode) == 0o644
    assert stat.S_IMODE((await model.getattr(await resolve(model, "history"))).mode) == 0o555


async def test_lookup_is_stable_and_missing_names_are_enoent() -> None:
    model, _ = await make(**{"a.txt": b"a"})
    assert await resolve(model, "current/a.txt") == await resolve(model, "current/a.txt")
    with pytest.raises(FsError) as exc:
        await resolve(model, "current/nope")
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(FsError) as exc:
        await resolve(model, "bogus")
    assert exc.value.errno == errno.ENOENT


async def test_forget_releases_inodes() -> None:
    model, _ = await make(**{"a.txt": b"a"})
    ino = await resolve(model, "current/a.txt")
    model.forget(ino, 1)
    with pytest.raises(FsError) as exc:
        await model.getattr(ino)
    assert exc.value.errno == errno.ESTALE


async def test_blobs_are_cached_by_sha256() -> None:
    model, src = await make(**{"a.txt": b"same", "b.txt": b"same"})
    assert await cat(model, "current/a.txt") == b"same"
    assert await cat(model, "current/b.txt") == b"same"
    assert src.blob_fetches == 1
    stats = json.loads(await cat(model, "debug/cache_stats.json"))
    assert stats["cache_hit_rate"] > 0


async def test_change_event_updates_tree_and_invalidates_known_inodes() -> None:
    model, src = await make(**{"src__a.py": b"one"})
    a = await resolve(model, "current/src/a.py")
    src_dir = await resolve(model, "current/src")
    ev = src.put("src/a.py", b"two!")
    inv = model.apply_event(ev)
    assert Invalidation(a) in inv
    assert (await model.getattr(a)).size == 4
    assert await cat(model, "current/src/a.py") == b"two!"
    inv = model.apply_event(src.put("src/b.py", b"new"))
    assert Invalidation(src_dir) in inv  # the directory's attributes change
    assert "b.py" in await names(model, "current/src")
    inv = model.apply_event(src.delete("src/a.py"))
    assert Invalidation(src_dir, "a.py") in inv
    assert await names(model, "current/src") == ["b.py"]


async def test_events_are_idempotent_and_listing_events_are_not_reapplied() -> None:
    model, src = await make(**{"a.txt": b"a"})
    first = src.events[0]
    assert model.apply_event(first) == []  # part of the initial listing
    ev = src.put("a.txt", b"bb")
    model.apply_event(ev)
    model.apply_event(ev)
    assert model.streams["file_changes"].lines == 2
    assert (await model.getattr(await resolve(model, "current/a.txt"))).size == 2


async def test_deleting_the_last_file_removes_its_directories() -> None:
    model, src = await make(**{"a__b__c.txt": b"x", "top.txt": b"t"})
    model.apply_event(src.delete("a/b/c.txt"))
    assert await names(model, "current") == ["top.txt"]


async def test_moved_event() -> None:
    model, src = await make(**{"old.txt": b"content"})
    cur = src.state()["old.txt"]
    ev = src._append("file_moved", "old.txt", {"path": "old.txt", "new_path": "dir/new.txt", "sha256": cur.sha256,
                                                "size": cur.size}, "2026-01-01T00:00:00Z", 2)
    model.apply_event(ev)
    assert await names(model, "current") == ["dir"]
    assert await cat(model, "current/dir/new.txt") == b"content"


async def test_history_by_position_matches_the_source() -> None:
    model, src = await make(**{"a.txt": b"v1"})
    for ev in (src.put("a.txt", b"version2"), src.put("b.txt", b"b")):
        model.apply_event(ev)
    assert await names(model, "history/1") == ["a.txt"]
    assert await cat(model, "history/1/a.txt") == b"v1"
    assert (await model.getattr(await resolve(model, "history/1/a.txt"))).size == 2
    assert await names(model, "history/3") == ["a.txt", "b.txt"]
    assert await cat(model, "history/2/a.txt") == b"version2"
    listed = await names(model, "history")
    assert {"1", "2", "3"} <= set(listed)
    with pytest.raises(FsError) as exc:
        await resolve(model, "history/99")  # the future does not exist yet
    assert exc.value.errno == errno.ENOENT


async def test_history_by_time_and_snapshots() -> None:
    src = FakeSource()
    src.put("a.txt", b"early", ts="2026-01-01T00:00:00Z")
    src.put("a.txt", b"late", ts="2026-01-02T00:00:00Z")
    src.snapshot_items.append({"name": "release-1", "position": 1, "created_at": "2026-01-01T00:00:01Z"})
    model = FsModel(src)
    await model.load()
    assert await cat(model, "history/2026-01-01T12:00:00Z/a.txt") == b"early"
    assert "release-1" in await names(model, "history")
    link = await resolve(model, "history/release-1")
    assert stat.S_ISLNK((await model.getattr(link)).mode)
    assert await model.readlink(link) == b"1"
    with pytest.raises(FsError):
        await resolve(model, "history/not-a-time")


async def test_shadows_carry_annotations_with_exact_size() -> None:
    model, src = await make(**{"src__a.py": b"x"})
    src.annotation_items["src/a.py"] = [{"id": "1", "line": 1, "message": "hardcoded secret"}]
    assert await names(model, "shadows/src") == ["a.py.annotations.json"]
    ino = await resolve(model, "shadows/src/a.py.annotations.json")
    body = await cat(model, "shadows/src/a.py.annotations.json")
    assert json.loads(body)["annotations"][0]["message"] == "hardcoded secret"
    assert (await model.getattr(ino)).size == len(body)
    src.annotation_items["src/a.py"].append({"id": "2", "line": 2, "message": "more"})
    inv = model.apply_event({"position": 2, "event_type": "shadow_annotation_created", "data": {"path": "src/a.py"}})
    assert Invalidation(ino) in inv
    assert len(json.loads(await cat(model, "shadows/src/a.py.annotations.json"))["annotations"]) == 2


async def test_streams_grow_and_invalidate() -> None:
    model, src = await make()
    ino = await resolve(model, "streams/file_changes.ndjson")
    assert (await model.getattr(ino)).size == 0
    inv = model.apply_event(src.put("a.txt", b"a"))
    assert Invalidation(ino) in inv
    model.apply_event({"position": 2, "event_type": "validation_decision_made", "data": {}})
    lines = (await cat(model, "streams/file_changes.ndjson")).splitlines()
    assert [json.loads(line)["event_type"] for line in lines] == ["file_created"]
    assert len((await cat(model, "streams/events.ndjson")).splitlines()) == 2
    assert len((await cat(model, "streams/validations.ndjson")).splitlines()) == 1


async def test_context_and_debug_files_are_json() -> None:
    model, _ = await make(**{"a.txt": b"abc"})
    manifest = json.loads(await cat(model, "context/manifest.json"))
    assert manifest["file_count"] == 1 and manifest["total_size"] == 3
    files = json.loads(await cat(model, "context/files.json"))["files"]
    assert files[0]["path"] == "a.txt"
    json.loads(await cat(model, "context/context.json"))
    assert "cache_hit_rate" in json.loads(await cat(model, "debug/cache_stats.json"))
    assert json.loads(await cat(model, "debug/health.json"))["files"] == 1
    json.loads(await cat(model, "debug/performance.json"))


@pytest.mark.parametrize("path", ["history", "context", "streams", "debug", "shadows"])
async def test_everything_outside_current_is_read_only(path: str) -> None:
    model, _ = await make(writable=True, **{"a.txt": b"a"})
    ino = await resolve(model, path)
    with pytest.raises(FsError) as exc:
        await model.create(ino, "x", os.O_WRONLY)
    assert exc.value.errno == errno.EROFS
    with pytest.raises(FsError) as exc:
        await model.mkdir(ino, "d")
    assert exc.value.errno == errno.EROFS


async def test_current_is_read_only_without_the_flag() -> None:
    model, _ = await make(**{"a.txt": b"a"})
    with pytest.raises(FsError) as exc:
        await model.open(await resolve(model, "current/a.txt"), os.O_WRONLY)
    assert exc.value.errno == errno.EROFS
    with pytest.raises(FsError) as exc:
        await model.unlink(await resolve(model, "current"), "a.txt")
    assert exc.value.errno == errno.EROFS


async def test_writes_are_buffered_and_sent_once_on_release() -> None:
    model, src = await make(writable=True, **{"a.txt": b"hello"})
    ino = await resolve(model, "current/a.txt")
    fh = (await model.open(ino, os.O_RDWR)).fh
    await model.write(fh, 5, b" world")
    await model.write(fh, 0, b"J")
    assert (await model.getattr(ino)).size == 11  # the buffered size is what stat shows
    assert src.updates == []
    await model.release(fh)
    assert len(src.updates) == 1
    assert src.updates[0]["operation"] == "modify" and src.updates[0]["expected_version"] == 1
    assert src.state()["a.txt"].size == 11
    assert await cat(model, "current/a.txt") == b"Jello world"


async def test_flush_without_writes_sends_nothing_and_create_sends_one_event() -> None:
    model, src = await make(writable=True)
    current = await resolve(model, "current")
    res, attr = await model.create(current, "new.txt", os.O_WRONLY)
    assert attr.size == 0 and "new.txt" in await names(model, "current")
    await model.flush(res.fh)  # a shell dup2()s and closes before writing
    assert src.updates == []
    await model.write(res.fh, 0, b"data")
    await model.flush(res.fh)
    await model.release(res.fh)
    assert [u["operation"] for u in src.updates] == ["create"]
    assert src.state()["new.txt"].size == 4


async def test_empty_create_still_creates_the_file() -> None:
    model, src = await make(writable=True)
    res, _ = await model.create(await resolve(model, "current"), "empty", os.O_WRONLY)
    await model.release(res.fh)
    assert src.state()["empty"].size == 0


async def test_conflict_gives_eio_and_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    model, src = await make(writable=True, **{"a.txt": b"mine"})
    ino = await resolve(model, "current/a.txt")
    fh = (await model.open(ino, os.O_WRONLY | os.O_TRUNC)).fh
    await model.write(fh, 0, b"ours")
    src.put("a.txt", b"theirs")  # another agent wrote in between: version moved on
    with caplog.at_level(logging.WARNING), pytest.raises(FsError) as exc:
        await model.flush(fh)
    assert exc.value.errno == errno.EIO
    assert "reason=conflict" in caplog.text and "path=a.txt" in caplog.text
    await model.release(fh)  # no second attempt
    assert len(src.updates) == 1
    assert src.blobs[src.state()["a.txt"].sha256] == b"theirs"


async def test_truncate_unlink_mkdir_rmdir_rename() -> None:
    model, src = await make(writable=True, **{"d__a.txt": b"abcdef", "b.txt": b"b"})
    await model.setattr(await resolve(model, "current/d/a.txt"), 3, None)
    assert src.blobs[src.state()["d/a.txt"].sha256] == b"abc"
    current = await resolve(model, "current")
    await model.unlink(current, "b.txt")
    assert "b.txt" not in src.state()
    await model.mkdir(current, "empty")
    assert "empty" in await names(model, "current")
    with pytest.raises(FsError) as exc:
        await model.rmdir(current, "d")
    assert exc.value.errno == errno.ENOTEMPTY
    await model.rmdir(current, "empty")
    assert "empty" not in await names(model, "current")
    d = await resolve(model, "current/d")
    await model.rename(d, "a.txt", current, "moved.txt")
    assert set(src.state()) == {"moved.txt"}
    assert await cat(model, "current/moved.txt") == b"abc"
    await model.mkdir(current, "dir")
    await model.rename(current, "moved.txt", await resolve(model, "current/dir"), "x.txt")
    await model.rename(current, "dir", current, "renamed")
    assert set(src.state()) == {"renamed/x.txt"}
    assert await names(model, "current") == ["renamed"]


async def test_rename_replaces_an_existing_target() -> None:
    model, src = await make(writable=True, **{"a": b"A", "b": b"B"})
    current = await resolve(model, "current")
    await model.rename(current, "a", current, "b")
    assert {p: src.blobs[m.sha256] for p, m in src.state().items()} == {"b": b"A"}


async def test_bad_names_are_rejected() -> None:
    model, _ = await make(writable=True)
    current = await resolve(model, "current")
    for bad in ("a\nb", "x" * 300):
        with pytest.raises(FsError) as exc:
            await model.create(current, bad, os.O_WRONLY)
        assert exc.value.errno == errno.EINVAL


async def test_shell_redirect_sends_one_modify() -> None:
    # `echo x > file`: open(O_TRUNC), dup2, close(original) -> flush before any write, then write, close.
    model, src = await make(writable=True, **{"a.txt": b"old content"})
    fh = (await model.open(await resolve(model, "current/a.txt"), os.O_WRONLY | os.O_TRUNC)).fh
    await model.flush(fh)
    await model.write(fh, 0, b"x\n")
    await model.flush(fh)
    await model.release(fh)
    assert [u["operation"] for u in src.updates] == ["modify"]
    assert src.blobs[src.state()["a.txt"].sha256] == b"x\n"


async def test_truncate_only_handle_is_sent_on_release() -> None:
    model, src = await make(writable=True, **{"a.txt": b"old"})
    fh = (await model.open(await resolve(model, "current/a.txt"), os.O_WRONLY | os.O_TRUNC)).fh
    await model.flush(fh)
    assert src.updates == []
    await model.release(fh)
    assert src.state()["a.txt"].size == 0


async def test_write_after_rename_uses_the_target_version() -> None:
    model, src = await make(writable=True, **{"a.txt": b"abc"})
    current = await resolve(model, "current")
    await model.rename(current, "a.txt", current, "b.txt")
    await model.setattr(await resolve(model, "current/b.txt"), 1, None)  # expected_version must be b.txt's
    assert src.updates[-1]["expected_version"] == 7
    assert src.blobs[src.state()["b.txt"].sha256] == b"a"


async def test_too_large_for_the_bridge_is_efbig_and_memory_is_bounded() -> None:
    model, src = await make(writable=True)
    src.max_file_bytes = 10
    res, _ = await model.create(await resolve(model, "current"), "big.bin", os.O_WRONLY)
    await model.write(res.fh, 0, b"x" * 11)
    with pytest.raises(FsError) as exc:
        await model.flush(res.fh)
    assert exc.value.errno == errno.EFBIG
    with pytest.raises(FsError) as exc:
        await model.write(res.fh, 64 << 20, b"x")  # past the per-handle buffer limit
    assert exc.value.errno == errno.EFBIG
    await model.release(res.fh)
    assert "big.bin" not in src.state()
    assert "big.bin" not in await names(model, "current")  # no ghost file in the mount either
    assert Invalidation(await resolve(model, "current"), "big.bin") in model.pending  # nor in the kernel's cache
