"""pyfuse3 Operations adapter: FUSE requests in, model calls out. Counts every request (debug/performance.json)."""

from __future__ import annotations

import errno
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import pyfuse3
import trio
import trio.lowlevel

from .model import Attr, FsError, FsModel, Invalidation
from .nodes import Store

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
LISTING_CACHE = 4096  # directories whose encoded listing is kept
PREPARE_ENTRIES = 100_000  # at most this many entries of current/ are encoded ahead, after mounting
PUSH_WAIT = 0.2  # seconds the end of a listing waits for its files to be in the page cache
BLKSIZE = 128 * 1024  # tools size their read buffers from st_blksize; big reads mean fewer FUSE round trips


def counted(name: str) -> Callable[[F], F]:
    """Count the request and its handler time (debug/performance.json); map FsError and crashes to FUSE errnos."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        async def wrapper(self: Operations, *args: Any) -> Any:
            start = time.perf_counter()
            failed = False
            try:
                return await fn(self, *args)
            except FsError as exc:
                failed = True
                raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
            except pyfuse3.FUSEError:
                failed = True
                raise
            except Exception:
                failed = True
                log.exception("FUSE request failed op=%s", name)
                raise pyfuse3.FUSEError(errno.EIO) from None
            finally:
                self.model.stats.record(name, time.perf_counter() - start, failed)
                if self.model.pending:
                    pending, self.model.pending = self.model.pending, []
                    notify_kernel(pending)

        return cast(F, wrapper)

    return deco


NO_OPEN_KERNEL = (5, 1)  # zero-message opendir (FUSE_NO_OPENDIR_SUPPORT, protocol 7.29); zero-message open is older


def choose_no_open(writable: bool, kernel_release: str, inode_as_fh: bool) -> tuple[bool, str]:
    """Whether a mount answers OPEN and OPENDIR with ENOSYS (the kernel's no-open mode), and why (or why not).

    No-open is a property of the whole FUSE connection: after the first ENOSYS the kernel sends no OPEN for any file
    of the mount, opens for writing included, and no RELEASE. A writable mount keeps OPEN: its writes are buffered
    per open handle and sent on release, and libfuse's atomic O_TRUNC travels only in OPEN (without it `> file`
    would not truncate). The binding must pass the inode to read/readdir (`inode_as_fh`, our pyfuse3 patch)."""
    if writable:
        return False, "writable mount: writes are buffered per open handle"
    if not inode_as_fh:
        return False, "pyfuse3 without inode_as_fh (not the patched build)"
    try:
        version = tuple(int(x) for x in kernel_release.split("-")[0].split(".")[:2])
    except ValueError:
        return False, f"unknown kernel release {kernel_release!r}"
    if version < NO_OPEN_KERNEL:
        return False, f"kernel {kernel_release} older than {'.'.join(map(str, NO_OPEN_KERNEL))}"
    return True, "read-only mount"


def entry_attributes(attr: Attr) -> pyfuse3.EntryAttributes:
    e = pyfuse3.EntryAttributes()
    e.st_ino = attr.ino
    e.generation = 0
    e.entry_timeout = attr.timeout
    e.attr_timeout = attr.timeout
    e.st_mode = attr.mode
    e.st_nlink = attr.nlink
    e.st_uid = attr.uid
    e.st_gid = attr.gid
    e.st_rdev = 0
    e.st_size = attr.size
    e.st_blksize = BLKSIZE
    e.st_blocks = (attr.size + 511) // 512
    e.st_atime_ns = attr.mtime_ns
    e.st_mtime_ns = attr.mtime_ns
    e.st_ctime_ns = attr.mtime_ns
    return e


Done = Callable[[list[Invalidation | Store]], None]  # called with the items the kernel refused
_notify_queue: queue.SimpleQueue[tuple[list[Invalidation | Store], Done | None, bool]] = queue.SimpleQueue()
# What the worker told the kernel, by kind (shown in debug/performance.json as kernel_notifications).
NOTIFIED: dict[str, int] = {}
_notify_thread: threading.Thread | None = None
_notify_lock = threading.Lock()


def _notify_worker() -> None:
    while True:
        batch, done, early = _notify_queue.get()
        stores = 0  # counted once per batch: a first grep -r waits on batches of stores, a call each
        failed: list[Invalidation | Store] = []
        retry = early  # see _store
        for i, item in enumerate(batch):
            if early and failed:
                # The kernel creates a listing's inodes in order: the rest of the batch would be refused too.
                failed += batch[i:]
                NOTIFIED["store_deferred"] = NOTIFIED.get("store_deferred", 0) + len(batch) - i
                break
            try:
                if isinstance(item, Store):
                    retry = _store(item, early, retry)
                    stores += 1
                    continue
                kind = "inval_inode" if item.name is None else "inval_entry"
                if item.name is None:
                    pyfuse3.invalidate_inode(item.ino, attr_only=False)
                else:
                    pyfuse3.invalidate_entry(item.ino, os.fsencode(item.name))
            except OSError as exc:
                failed.append(item)
                kind = _kind(item) + "_unknown"
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # the kernel did not know it: nothing cached
                    kind = kind.replace("_unknown", "_failed")
                    log.warning("Kernel cache notification failed item=%s error=%s", item, exc)
            except Exception:
                failed.append(item)
                kind = _kind(item) + "_failed"
                log.exception("Kernel cache notification failed item=%s", item)
            NOTIFIED[kind] = NOTIFIED.get(kind, 0) + 1
        if stores:
            NOTIFIED["store"] = NOTIFIED.get("store", 0) + stores
        if done is not None:
            try:
                done(failed)
            except Exception:  # trio.RunFinishedError: the loop that waited is gone
                log.debug("Nobody waits for kernel cache notifications any more", exc_info=True)


def _store(item: Store, early: bool, retry: bool) -> bool:
    """pyfuse3.notify_store. In an early batch, the first store that finds no inode is tried once more after giving
    way (the GIL, and the CPU if someone else wants it): the reader is most likely still parsing the listing, which it
    started when we answered. Never more than once per batch: waiting longer for a reader that has no CPU yet (a
    busy machine) cost far more than the round trip it saves. Returns whether the batch may still retry."""
    try:
        pyfuse3.notify_store(item.ino, 0, item.data)  # type: ignore[arg-type]  # takes any buffer
        return retry
    except OSError as exc:
        if not (early and retry and exc.errno == errno.ENOENT):
            raise
    NOTIFIED["store_early_retry"] = NOTIFIED.get("store_early_retry", 0) + 1
    os.sched_yield()
    pyfuse3.notify_store(item.ino, 0, item.data)  # type: ignore[arg-type]
    return False


def _kind(item: Invalidation | Store) -> str:
    return "store" if isinstance(item, Store) else "inval_inode" if item.name is None else "inval_entry"


def notify_kernel(items: Iterable[Invalidation | Store], done: Done | None = None, early: bool = False) -> None:
    """Tell the kernel to drop what it cached (or to cache file content), in order, from a thread of its own.
    Invalidating an inode's pages waits for their page locks, and a writer holds those while it waits for our answer
    to its WRITE: done on the trio thread that must send that answer, it deadlocks (seen with a write racing a change
    from the event stream). One queue keeps stores and invalidations in the order the model produced them. `done` is
    called (in that thread) once these items, and all before them, were sent, with those the kernel refused. `early`:
    stores for inodes the kernel may still be creating (see Operations._push_early): the first refused store is tried
    once more (see _store), and a refusal after that hands the rest of the batch back as refused."""
    global _notify_thread
    with _notify_lock:
        if _notify_thread is None:
            _notify_thread = threading.Thread(target=_notify_worker, name="fuse-notify", daemon=True)
            _notify_thread.start()
    batch = list(items)
    if batch or done is not None:
        _notify_queue.put((batch, done, early))


class Push:
    """Stores handed to the notification thread, which a request handler may wait for later (at most PUSH_WAIT).
    That thread wakes the trio loop itself, and only when someone waits: two thread switches per wait, not the four
    of a worker thread blocking on an event."""

    __slots__ = ("_event", "_lock", "_token", "failed", "finished")

    def __init__(self, stores: list[Store], early: bool = False) -> None:
        self._event = trio.Event()
        self._lock = threading.Lock()
        self._token: trio.lowlevel.TrioToken | None = None  # set by a waiter
        self.finished = False
        self.failed: list[Store] = []
        notify_kernel(stores, self._done, early)

    def _done(self, failed: list[Invalidation | Store]) -> None:  # in the notification thread
        with self._lock:
            self.failed = [item for item in failed if isinstance(item, Store)]
            self.finished = True
            token = self._token
        if token is not None:
            token.run_sync_soon(self._event.set)

    async def wait(self) -> bool:
        """Whether every store was sent (refused ones included) within PUSH_WAIT."""
        with self._lock:
            if self.finished:
                return True
            self._token = trio.lowlevel.current_trio_token()
        with trio.move_on_after(PUSH_WAIT):
            await self._event.wait()
        return self.finished


async def stored(stores: list[Store]) -> None:
    """Hand `stores` to the notification thread and wait (at most PUSH_WAIT) until the kernel has them."""
    await Push(stores).wait()


class Operations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False  # a write must reach us so it is buffered per handle

    def __init__(self, model: FsModel) -> None:
        super().__init__()
        self.model = model
        # No-open mode: open/opendir answer ENOSYS, and pyfuse3 (read at init) passes inodes instead of handles.
        self.no_open = model.no_open
        self.inode_as_fh = model.no_open
        model.kernel_notifications = NOTIFIED
        self._dirs: dict[int, tuple[int, list[tuple[bytes, pyfuse3.EntryAttributes]] | None]] = {}
        # No-open mode: a listing the kernel is reading in several requests, kept so its offsets stay stable.
        self._partial: dict[int, list[tuple[bytes, pyfuse3.EntryAttributes]]] = {}
        # No-open mode: stores started with a directory's listing, awaited at its end (see _push_early).
        self._pushes: dict[int, Push] = {}
        self._next_dir = 1
        # Encoded listings reused across opendir calls while the model's stamp for the directory holds.
        self._listings: dict[int, tuple[tuple[int, int], list[tuple[bytes, pyfuse3.EntryAttributes]]]] = {}

    @counted("lookup")
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return entry_attributes(await self.model.lookup(parent_inode, os.fsdecode(name)))

    @counted("getattr")
    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return entry_attributes(await self.model.getattr(inode))

    async def forget(self, inode_list: Any) -> None:
        stale: list[Invalidation] = []
        for ino, n in inode_list:
            stale += self.model.forget(ino, n)
        if stale:
            notify_kernel(set(stale))
        self.model.stats.record("forget", 0.0)

    @counted("readlink")
    async def readlink(self, inode: int, ctx: Any) -> bytes:
        return await self.model.readlink(inode)

    @counted("opendir")
    async def opendir(self, inode: int, ctx: Any) -> int:
        if self.no_open:
            raise pyfuse3.FUSEError(errno.ENOSYS)  # no OPENDIR/RELEASEDIR from now on; listings cached by the kernel
        if not (await self.model.getattr(inode)).is_dir:
            raise FsError(errno.ENOTDIR)
        fh = self._next_dir
        self._next_dir += 1
        self._dirs[fh] = (inode, None)
        return fh

    @counted("readdir")
    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        if self.no_open:
            ino = fh  # the inode (inode_as_fh)
            listing = self._partial.pop(ino, None) if start_id else None
            entries = listing if listing is not None else await self._listing(ino)
        else:
            ino, cached = self._dirs[fh]
            entries = cached if cached is not None and start_id else await self._listing(ino)
            self._dirs[fh] = (ino, entries)  # one listing per open directory: stable offsets
        reply, ref = pyfuse3.readdir_reply, self.model.inodes.ref
        for i in range(start_id, len(entries)):
            name, attr = entries[i]
            if not reply(token, name, attr, i + 1):
                if self.no_open:
                    if len(self._partial) >= LISTING_CACHE:
                        self._partial.clear()  # readers that never came back for the rest
                    self._partial[ino] = entries
                break
            ref(attr.st_ino)
        else:
            if self.no_open and start_id == 0 and entries:
                self._push_early(ino)
        if self.no_open and start_id >= len(entries) > 0:
            await self._end_of_listing(ino)

    def _push_early(self, ino: int) -> None:
        """The whole listing fits in this answer: start storing its files' pages now. The kernel parses the answer
        (creating an inode per entry) while the notification thread starts, which holds the GIL only once this loop
        has sent the answer and waits for the next request; a store that still finds no inode is sent again at the
        end of the listing. The reader asks for the end once it has parsed every entry, so by then the stores have
        had that round trip's time."""
        stores = self.model.pages_to_push(ino)
        if stores:
            if len(self._pushes) >= LISTING_CACHE:
                self._pushes.clear()  # readers that never came back for the end of the listing
            self._pushes[ino] = Push(stores, early=True)

    async def _end_of_listing(self, ino: int) -> None:
        """The kernel asks past the end once it has parsed every entry: it has their inodes now, and a reader that
        lists a directory usually reads its files next. The reader waits for this (empty) answer, so holding it
        until the files are stored saves it a READ round trip per file. The stores run in the notification thread
        while this loop keeps serving (a store waits for a page that a pending READ holds locked: from this thread
        it would deadlock)."""
        push = self._pushes.pop(ino, None)
        if push is not None and await push.wait() and push.failed:
            # Sent before the kernel had these inodes. Worked out again from the current tree, never resent as they
            # were: an event may have changed a file since (its invalidation is already queued ahead of us).
            self.model.unpush(ino, [s.ino for s in push.failed])
        stores = self.model.pages_to_push(ino)
        if stores:
            await stored(stores)

    async def prepare_listings(self, max_entries: int = PREPARE_ENTRIES) -> tuple[int, int]:
        """Encode the listings of current/ ahead, right after mounting (read-only mounts, whose listings are cached
        while the tree is unchanged): the first walk of the tree (grep -r, find) then waits for none of them. Gives
        the inode numbers out now rather than then; the kernel learns them only from a listing or a lookup. Returns
        (directories, entries) encoded."""
        dirs = entries = 0
        for rel in sorted(self.model.live.dirs):
            ino = self.model.inodes.ino(("current", "", rel))
            if self.model.listing_stamp(ino) is None or len(self._listings) >= LISTING_CACHE:
                break
            entries += len(await self._listing(ino))
            self.model.push_plan(ino)
            dirs += 1
            if entries >= max_entries:
                break
            if dirs % 32 == 0:
                await trio.lowlevel.checkpoint()  # let requests in between
        return dirs, entries

    async def _listing(self, ino: int) -> list[tuple[bytes, pyfuse3.EntryAttributes]]:
        stamp = self.model.listing_stamp(ino)
        if stamp is not None:
            cached = self._listings.get(ino)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        entries = [(os.fsencode(name), entry_attributes(attr)) for name, attr in await self.model.readdir(ino)]
        if stamp is not None:
            if len(self._listings) >= LISTING_CACHE:
                self._listings.clear()  # stamps go stale together on every change: no finer eviction needed
            self._listings[ino] = (stamp, entries)
        return entries

    @counted("releasedir")
    async def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    @counted("open")
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        if self.no_open:
            # The kernel takes ENOSYS as success and sends no OPEN or RELEASE again on this mount: file pages stay
            # cached across opens (dropped by our invalidations), and READ arrives with the inode.
            raise pyfuse3.FUSEError(errno.ENOSYS)
        res = await self.model.open(inode, flags)
        return pyfuse3.FileInfo(fh=res.fh, direct_io=res.direct_io, keep_cache=res.keep_cache)

    @counted("create")
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        res, attr = await self.model.create(parent_inode, os.fsdecode(name), flags)
        return pyfuse3.FileInfo(fh=res.fh, direct_io=res.direct_io, keep_cache=res.keep_cache), entry_attributes(attr)

    @counted("read")
    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:  # type: ignore[override]  # any buffer
        if self.no_open:
            data = await self.model.read_inode(fh, off, size)
            if off == 0:
                notify_kernel(self.model.pages_to_push(fh))  # its neighbours, before the reader asks for them
            return data
        return await self.model.read(fh, off, size)

    @counted("write")
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self.model.write(fh, off, buf)

    @counted("flush")
    async def flush(self, fh: int) -> None:
        if not self.model.writable:
            # Nothing to send on close in a read-only mount. ENOSYS makes the kernel stop sending FLUSH for the
            # whole connection (fc->no_flush): one request fewer per close(), close() itself still succeeds.
            raise pyfuse3.FUSEError(errno.ENOSYS)
        await self.model.flush(fh)

    @counted("fsync")
    async def fsync(self, fh: int, datasync: bool) -> None:
        await self.model.flush(fh)

    @counted("release")
    async def release(self, fh: int) -> None:
        await self.model.release(fh)

    @counted("setattr")
    async def setattr(
        self, inode: int, attr: pyfuse3.EntryAttributes, fields: Any, fh: int | None, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        size = attr.st_size if fields.update_size else None
        return entry_attributes(await self.model.setattr(inode, size, fh))

    @counted("unlink")
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.model.unlink(parent_inode, os.fsdecode(name))

    @counted("mkdir")
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        return entry_attributes(await self.model.mkdir(parent_inode, os.fsdecode(name)))

    @counted("rmdir")
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.model.rmdir(parent_inode, os.fsdecode(name))

    @counted("rename")
    async def rename(
        self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes, flags: int, ctx: Any
    ) -> None:
        await self.model.rename(
            parent_inode_old, os.fsdecode(name_old), parent_inode_new, os.fsdecode(name_new), flags
        )

    @counted("symlink")
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        raise FsError(errno.EPERM if self.model.key_of(parent_inode)[0] == "current" and self.model.writable
                      else errno.EROFS)

    @counted("link")
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        raise FsError(errno.EPERM if self.model.key_of(new_parent_inode)[0] == "current" and self.model.writable
                      else errno.EROFS)

    @counted("mknod")
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any) -> pyfuse3.EntryAttributes:
        raise FsError(errno.EPERM if self.model.key_of(parent_inode)[0] == "current" and self.model.writable
                      else errno.EROFS)

    @counted("statfs")
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        info = self.model.statfs()
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = info["bsize"]
        s.f_blocks = info["blocks"]
        s.f_bfree = s.f_bavail = 0
        s.f_files = info["files"]
        s.f_ffree = s.f_favail = 0
        s.f_namemax = info["namemax"]
        return s
