"""The pyfuse3 adapter without a mount: attribute conversion, errno mapping, request counting."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3
import pytest
from lighthouse_bridge.fs.model import ROOT_INO, Attr, FsModel
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
