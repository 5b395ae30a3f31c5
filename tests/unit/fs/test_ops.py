"""The pyfuse3 adapter without a mount: attribute conversion, errno mapping, request counting."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import pytest
from lighthouse_bridge.fs.model import ROOT_INO, Attr, FsModel
from lighthouse_bridge.fs.nodes import BLOB_FH
from lighthouse_bridge.fs.ops import Operations, entry_attributes

from tests.unit.fs.fake_source import FakeSource


async def make_ops(writable: bool = False) -> tuple[Operations, FakeSource]:
    src = FakeSource()
    src.put("a.txt", b"hello")
    model = FsModel(src, writable=writable)
    await model.load()
    return Operations(model), src


def test_entry_attributes_carry_exact_size_and_timeouts() -> None:
    e = entry_attributes(Attr(7, stat.S_IFREG | 0o444, 1025, 1, 10, 20, 5_000_000_000, 300.0))
    assert (e.st_ino, e.st_size, e.st_blocks, e.st_uid, e.st_gid) == (7, 1025, 3, 10, 20)
    assert e.entry_timeout == e.attr_timeout == 300.0
    assert e.st_mtime_ns == 5_000_000_000


async def test_errors_become_fuse_errnos_and_every_request_is_counted() -> None:
    ops, _ = await make_ops()
    current = await ops.lookup(ROOT_INO, b"current")
    entry = await ops.lookup(current.st_ino, b"a.txt")
    assert entry.st_size == 5
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.lookup(current.st_ino, b"missing")
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.open(entry.st_ino, os.O_WRONLY, None)
    assert exc.value.errno == errno.EROFS
    fi = await ops.open(entry.st_ino, os.O_RDONLY, None)
    assert fi.keep_cache and not fi.direct_io
    assert bytes(await ops.read(fi.fh, 1, 3)) == b"ell"
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.flush(fi.fh)  # read-only mount: the kernel stops sending FLUSH after this ENOSYS
    assert exc.value.errno == errno.ENOSYS
    await ops.release(fi.fh)
    stats = ops.model.stats
    assert stats.requests["lookup"] == 3 and stats.errors["lookup"] == 1
    assert stats.requests["open"] == 2 and stats.requests["read"] == 1


async def test_generated_files_bypass_the_page_cache() -> None:
    ops, _ = await make_ops()
    debug = await ops.lookup(ROOT_INO, b"debug")
    health = await ops.lookup(debug.st_ino, b"health.json")
    assert health.attr_timeout == 0
    fi = await ops.open(health.st_ino, os.O_RDONLY, None)
    assert fi.direct_io


async def test_read_only_opens_of_project_files_carry_no_state() -> None:
    ops, src = await make_ops()
    current = await ops.lookup(ROOT_INO, b"current")
    entry = await ops.lookup(current.st_ino, b"a.txt")
    fi = await ops.open(entry.st_ino, os.O_RDONLY, None)
    assert fi.fh & BLOB_FH and fi.keep_cache and not fi.direct_io
    assert ops.model.handles == {}  # nothing to allocate on open or to free on release
    assert bytes(await ops.read(fi.fh, 0, 100)) == b"hello"
    # A change from the event stream: reads of the same inode follow its current content and size.
    ops.model.apply_event(src.put("a.txt", b"hello, world"))
    assert bytes(await ops.read(fi.fh, 0, 100)) == b"hello, world"
    assert (await ops.getattr(entry.st_ino)).st_size == 12
    await ops.release(fi.fh)
    with pytest.raises(pyfuse3.FUSEError) as exc:
        await ops.write(fi.fh, 0, b"x")
    assert exc.value.errno == errno.EBADF


async def test_read_only_handles_close_cleanly_in_a_writable_mount() -> None:
    ops, _ = await make_ops(writable=True)
    current = await ops.lookup(ROOT_INO, b"current")
    entry = await ops.lookup(current.st_ino, b"a.txt")
    fi = await ops.open(entry.st_ino, os.O_RDONLY, None)
    await ops.flush(fi.fh)  # close(): no EBADF, nothing sent
    await ops.fsync(fi.fh, False)
    await ops.release(fi.fh)
    assert ops.model.source.updates == []  # type: ignore[attr-defined]
    wfi = await ops.open(entry.st_ino, os.O_WRONLY, None)
    assert not wfi.fh & BLOB_FH and wfi.fh in ops.model.handles  # writes keep their per-handle buffer
    await ops.release(wfi.fh)


def _collect_replies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, int, int]]:
    replies: list[tuple[bytes, int, int]] = []

    def reply(token: object, name: bytes, attr: pyfuse3.EntryAttributes, next_id: int) -> bool:
        replies.append((name, attr.st_ino, attr.st_size))
        return True

    monkeypatch.setattr(pyfuse3, "readdir_reply", reply)
    return replies


async def _ls(ops: Operations, replies: list[tuple[bytes, int, int]], ino: int) -> dict[bytes, tuple[int, int]]:
    replies.clear()
    fh = await ops.opendir(ino, None)
    await ops.readdir(fh, 0, None)
    await ops.releasedir(fh)
    return {name: (i, size) for name, i, size in replies}


async def test_listings_are_reused_until_the_tree_or_inode_numbers_change(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = _collect_replies(monkeypatch)
    ops, src = await make_ops()
    built = 0
    real_readdir = ops.model.readdir

    async def counting_readdir(ino: int) -> list[tuple[str, Attr]]:
        nonlocal built
        built += 1
        return await real_readdir(ino)

    monkeypatch.setattr(ops.model, "readdir", counting_readdir)
    current = await ops.lookup(ROOT_INO, b"current")
    first = await _ls(ops, replies, current.st_ino)
    assert await _ls(ops, replies, current.st_ino) == first == {b"a.txt": (first[b"a.txt"][0], 5)}
    assert built == 1  # the second opendir reused the encoded listing
    ops.model.apply_event(src.put("b.txt", b"bee"))
    ops.model.apply_event(src.put("a.txt", b"longer content"))
    after = await _ls(ops, replies, current.st_ino)
    assert built == 2 and {n: s for n, (_, s) in after.items()} == {b"a.txt": 14, b"b.txt": 3}
    # The kernel forgets a listed inode: the next listing must not hand out its old number.
    old_ino = after[b"b.txt"][0]
    await ops.forget([(old_ino, 1)])  # the lookup count the listing gave it
    again = await _ls(ops, replies, current.st_ino)
    assert built == 3 and again[b"b.txt"][0] != old_ino
    assert ops.model.inodes.key(again[b"b.txt"][0]) == ("current", "", "b.txt")


async def test_writable_mounts_and_volatile_areas_always_build_listings(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = _collect_replies(monkeypatch)
    ops, _ = await make_ops(writable=True)
    current = await ops.lookup(ROOT_INO, b"current")
    assert ops.model.listing_stamp(current.st_ino) is None
    ro, _ = await make_ops()
    for area in (b"streams", b"debug", b"context", b"shadows", b"history"):
        assert ro.model.listing_stamp((await ro.lookup(ROOT_INO, area)).st_ino) is None, area
    assert ro.model.listing_stamp((await ro.lookup(ROOT_INO, b"current")).st_ino) is not None
    history = await ro.lookup(ROOT_INO, b"history")
    settled = await ro.lookup(history.st_ino, b"1")
    assert ro.model.listing_stamp(settled.st_ino) is not None
    assert await _ls(ro, replies, settled.st_ino) == {b"a.txt": (replies[0][1], 5)}


async def test_listings_prepared_ahead_are_served_without_building(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = _collect_replies(monkeypatch)
    src = FakeSource()
    for path in ("a.txt", "d/b.txt", "d/e/c.txt", "f/g.txt"):
        src.put(path, path.encode())
    model = FsModel(src)
    await model.load()
    ops = Operations(model)
    assert await ops.prepare_listings() == (4, 7)  # current/, d, d/e and f: every directory, every entry
    built = 0
    real_readdir = model.readdir

    async def counting_readdir(ino: int) -> list[tuple[str, Attr]]:
        nonlocal built
        built += 1
        return await real_readdir(ino)

    monkeypatch.setattr(model, "readdir", counting_readdir)
    current = await ops.lookup(ROOT_INO, b"current")
    d = await ops.lookup(current.st_ino, b"d")
    assert set(await _ls(ops, replies, current.st_ino)) == {b"a.txt", b"d", b"f"}
    assert {n: s for n, (_, s) in (await _ls(ops, replies, d.st_ino)).items()} == {b"b.txt": 7, b"e": 0}
    assert built == 0
    # A limit stops early; a writable mount prepares nothing (its listings are built on every opendir).
    assert await Operations(model).prepare_listings(max_entries=2) == (1, 3)
    rw, _ = await make_ops(writable=True)
    assert await rw.prepare_listings() == (0, 0)
