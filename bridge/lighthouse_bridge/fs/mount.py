"""The FUSE process: trio, pyfuse3, the bridge client, the event follower, prefetch, and the mount lifecycle."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyfuse3
import trio
from lighthouse_fusefd import MOUNT_DIR, ProtocolError, request_mount

from .cache import BlobCache
from .client import BridgeClient
from .model import FsError, FsModel
from .ops import Operations, choose_no_open, notify_kernel
from .source import SourceError
from .status import MountConfig, allow_other_permitted, prepare_mountpoint, write_status

log = logging.getLogger(__name__)

STREAM_BACKFILL = 500  # events replayed into streams/*.ndjson at start, so a fresh mount is not empty


FETCH_AHEAD_BYTES = 256 << 10  # a changed file up to this size has its new content fetched as its event arrives
FETCH_AHEAD_QUEUE = 64


async def follow_events(client: BridgeClient, model: FsModel, from_position: int) -> None:
    """Apply /events/stream to the model forever; reconnect with backoff from the last position seen."""
    backoff = 0.2
    position = from_position
    limiter = trio.CapacityLimiter(4)
    async with trio.open_nursery() as fetches:
        while True:
            try:
                async for ev in client.events(position):
                    model.status["stream_connected"] = True
                    if "heartbeat" in ev:
                        notify_kernel(model.note_high_water(int(ev["heartbeat"] or 0)))
                        continue
                    backoff = 0.2
                    changes = model.apply_event(ev)
                    if changes:
                        notify_kernel(changes)
                    position = max(position, int(ev.get("position") or 0))
                    sha = changed_content(ev)
                    if sha and limiter.statistics().tasks_waiting < FETCH_AHEAD_QUEUE:
                        fetches.start_soon(fetch_ahead, model, sha, limiter)
                log.info("Event stream closed by the bridge position=%d", position)
            except SourceError as exc:
                log.warning("Event stream failed position=%d error=%s", position, exc)
            model.status["stream_connected"] = False
            model.status["reconnects"] += 1
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def changed_content(ev: dict[str, Any]) -> str | None:
    """The sha256 of a small file's new content, from a file event."""
    data = ev.get("data") or {}
    if ev.get("event_type") not in ("file_created", "file_modified") or int(data.get("size") or 0) > FETCH_AHEAD_BYTES:
        return None
    return str(data.get("sha256") or "") or None


class _Flight:
    __slots__ = ("data", "done")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.data: bytes | None = None


def shared_fetches(fetch: Callable[[str], Awaitable[bytes]]) -> Callable[[str], Awaitable[bytes]]:
    """Concurrent fetches of one blob share one request: a changed file's content fetched ahead as its event arrives,
    and the READ that the event's invalidation brings a moment later, cost the bridge one blob request, not two, and
    the READ gets the content as soon as the first request does. A waiter whose request failed or was cancelled
    fetches on its own (and sees its own error)."""
    flights: dict[str, _Flight] = {}

    async def get(sha256: str) -> bytes:
        flight = flights.get(sha256)
        if flight is None:
            flight = flights[sha256] = _Flight()
            try:
                flight.data = await fetch(sha256)
                return flight.data
            finally:
                del flights[sha256]
                flight.done.set()
        await flight.done.wait()
        return flight.data if flight.data is not None else await fetch(sha256)

    return get


async def fetch_ahead(model: FsModel, sha256: str, limiter: trio.CapacityLimiter) -> None:
    """Fetch a changed file's new content now: a reader that sees the change (its cached pages are invalidated) then
    gets it without waiting for the bridge."""
    async with limiter:
        try:
            await model.blobs.get(sha256)
        except (SourceError, ValueError) as exc:
            log.debug("Fetching changed content ahead failed sha256=%s error=%s", sha256, exc)


READAHEAD_KIB = 4096


def tune_readahead(mountpoint: str, kib: int = READAHEAD_KIB) -> None:
    """Raise the mount's readahead from 128 KiB (best effort: needs a writable /sys). FUSE INIT can only lower it.
    With it, sequential reads arrive as 1 MiB READ requests (the kernel's max_pages limit) instead of 128 KiB ones,
    and a 4 MiB window keeps several in flight, so this loop fills the next while the reader copies the last
    (measured: 128 KiB -> ~1.0 GB/s, 1 MiB -> ~1.7, 4 MiB -> ~2.2; benchmarks/RESULTS.md). `mountpoint` must be a
    real path: stat() on the new mount would wait for our own loop, so the device comes from mountinfo."""
    target = mountpoint
    try:
        with open("/proc/self/mountinfo") as f:
            dev = next(line.split()[2] for line in f if line.split()[4] == target)
        Path(f"/sys/class/bdi/{dev}/read_ahead_kb").write_text(str(kib))
    except (OSError, StopIteration) as exc:
        log.info("Readahead left at the kernel default mountpoint=%s reason=%s", mountpoint, exc)
        return
    log.info("Set readahead mountpoint=%s read_ahead_kb=%d", mountpoint, kib)


async def warm_up(ops: Operations, budget: int) -> None:
    """After mounting: encode the listings of current/ (quick), then warm the blob cache (slow)."""
    start = trio.current_time()
    try:
        dirs, entries = await ops.prepare_listings()
    except FsError as exc:  # the tree changed under us: listings are then built on demand
        log.info("Preparing listings stopped error=%s", exc)
    else:
        log.info("Prepared listings directories=%d entries=%d seconds=%.2f", dirs, entries,
                 trio.current_time() - start)
    await prefetch(ops.model, budget)


async def prefetch(model: FsModel, budget: int, workers: int = 4, max_file: int = 256 << 10) -> None:
    """Warm the blob cache with small files (immutable by sha256, so never wasted while they stay cached)."""
    todo = model.prefetch_candidates(max_file, budget)
    if not todo:
        return
    start = trio.current_time()
    it = iter(todo)
    failed = 0

    async def worker() -> None:
        nonlocal failed
        for sha in it:
            try:
                await model.blobs.get(sha)
            except (SourceError, ValueError):
                failed += 1

    async with trio.open_nursery() as n:
        for _ in range(workers):
            n.start_soon(worker)
    log.info("Prefetched blobs count=%d failed=%d seconds=%.2f", len(todo), failed, trio.current_time() - start)


async def backfill(client: BridgeClient, model: FsModel, position: int) -> int:
    """Replay the last STREAM_BACKFILL events into streams/ before mounting, so the mount starts with its backlog
    (and `tail -n 0 -f` started after the mount sees only new events). Returns where the live stream resumes."""
    cursor: int | None = max(1, position - STREAM_BACKFILL + 1)
    last = position
    while cursor is not None:
        batch, cursor = await client.query_events(cursor)
        for ev in batch:
            model.apply_event(ev)
            last = max(last, int(ev.get("position") or 0))
    return last + 1


async def load_with_retry(model: FsModel, cfg: MountConfig) -> int:
    delay = 0.2
    while True:
        try:
            return await model.load()
        except SourceError as exc:
            write_status(cfg.status_file, False, cfg.mountpoint, f"waiting for the bridge: {exc}")
            log.warning("Bridge not reachable yet url=%s error=%s retry_in=%.1fs", cfg.bridge_url, exc, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)


def plugin_mountpoint(fd_socket: str, answer: dict[str, Any]) -> str:
    """Where the plugin mounted: a directory beside its socket (both in the pod's CSI volume)."""
    return os.path.normpath(os.path.join(os.path.dirname(fd_socket), str(answer.get("mountpoint") or MOUNT_DIR)))


async def acquire_fd(cfg: MountConfig) -> int:
    """fuse.mode csi: ask the node plugin for a fresh mount (it replaces one an earlier process of this pod left) and
    return its /dev/fuse descriptor. Retries with backoff while the plugin is away (restarting, not yet registered)."""
    assert cfg.fd_socket
    delay = 0.5
    while True:
        try:
            fd, answer = await trio.to_thread.run_sync(
                request_mount, cfg.fd_socket, not cfg.writable, abandon_on_cancel=True
            )
        except (OSError, ProtocolError) as exc:
            write_status(cfg.status_file, False, cfg.mountpoint, f"waiting for the FUSE node plugin: {exc}")
            log.warning("FUSE node plugin not answering socket=%s error=%s retry_in=%.1fs", cfg.fd_socket, exc, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        where = plugin_mountpoint(cfg.fd_socket, answer)
        if where != cfg.mountpoint:
            log.warning("The node plugin mounted elsewhere mountpoint=%s configured=%s", where, cfg.mountpoint)
            cfg.mountpoint = where
        log.info("Received a FUSE mount from the node plugin socket=%s mountpoint=%s fd=%d", cfg.fd_socket,
                 cfg.mountpoint, fd)
        return fd


async def serve(cfg: MountConfig) -> None:
    client = BridgeClient(cfg.bridge_url, cfg.token)
    no_open, why = choose_no_open(cfg.writable, os.uname().release, hasattr(pyfuse3.Operations, "inode_as_fh"))
    model = FsModel(
        client,
        writable=cfg.writable,
        blobs=BlobCache(shared_fetches(client.read_blob), max_bytes=cfg.cache_bytes, disk_dir=cfg.cache_dir),
        agent_id=cfg.agent_id,
        info={"bridge_url": cfg.bridge_url, "mountpoint": cfg.mountpoint, "pid": os.getpid()},
        no_open=no_open,
    )
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        stopped = False
        position = resume = 0
        fd: int | None = None  # fuse.mode csi: the descriptor of the node plugin's mount

        async def stop_on_signal(scope: trio.CancelScope) -> None:
            nonlocal stopped
            async for signum in signals:
                log.info("Stopping before mount signal=%s", signal.Signals(signum).name)
                stopped = True
                scope.cancel()
                return

        async with trio.open_nursery() as early:
            early.start_soon(stop_on_signal, early.cancel_scope)
            position = await load_with_retry(model, cfg)
            try:
                resume = await backfill(client, model, position)
            except SourceError as exc:
                log.warning("Stream backfill failed, streams start empty error=%s", exc)
                resume = position + 1
            if cfg.fd_socket:
                fd = await acquire_fd(cfg)
            early.cancel_scope.cancel()
        if stopped:
            await client.aclose()
            if fd is not None:
                os.close(fd)
            write_status(cfg.status_file, False, cfg.mountpoint, None)
            return
        ops = Operations(model)
        options = set(pyfuse3.default_options) | {"fsname=lighthouse", "subtype=lighthouse"}
        if not cfg.writable:
            options.add("ro")  # the VFS refuses writes, and reads no longer invalidate cached atimes (a GETATTR each)
        if allow_other_permitted():
            options.add("allow_other")  # agents in the pod run as other users
        # With a descriptor libfuse (>= 3.3) mounts nothing: the plugin did, with the options it was asked for.
        pyfuse3.init(ops, cfg.mountpoint if fd is None else f"/dev/fd/{fd}", options)
        log.info("Mounted shadow filesystem mountpoint=%s bridge=%s writable=%s no_open=%s reason=%r pyfuse3=%s "
                 "position=%d files=%d", cfg.mountpoint, cfg.bridge_url, cfg.writable, no_open, why,
                 pyfuse3.__version__, position, len(model.live.files))
        write_status(cfg.status_file, True, cfg.mountpoint, None)
        error: str | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow_events, client, model, resume)
                nursery.start_soon(_terminate_on_signal, signals)
                nursery.start_soon(warm_up, ops, min(cfg.prefetch_bytes, cfg.cache_bytes // 2))
                nursery.start_soon(_tune_after_init, cfg.mountpoint)
                await pyfuse3.main()
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            error = f"{exc.__class__.__name__}: {exc}"
            raise
        finally:
            pyfuse3.close(unmount=True)
            await client.aclose()
            write_status(cfg.status_file, False, cfg.mountpoint, error)
            log.info("Unmounted shadow filesystem mountpoint=%s", cfg.mountpoint)


async def _tune_after_init(mountpoint: str) -> None:
    # The kernel sets the readahead while it processes FUSE INIT, which our loop answers after main() starts.
    await trio.sleep(1.0)
    tune_readahead(mountpoint)


async def _terminate_on_signal(signals: Any) -> None:
    async for signum in signals:
        log.info("Unmounting on signal signal=%s", signal.Signals(signum).name)
        pyfuse3.terminate()
        return


def run_mount(cfg: MountConfig) -> int:
    """Entry point of `lighthouse-bridge fuse`: prepare the mount point, serve until unmounted or signalled."""
    if cfg.fd_socket:
        # The node plugin mounts, and replaces a mount an earlier process left: no stale-mount handling here (and no
        # stat() of a mount point that may still be served by a hung process).
        cfg.mountpoint = os.path.abspath(cfg.mountpoint)
        cfg.fd_socket = os.path.abspath(cfg.fd_socket)
    else:
        try:
            prepare_mountpoint(cfg.mountpoint)
            # Resolved now: once mounted, resolving it would stat() the mount and wait for our own request loop.
            cfg.mountpoint = os.path.realpath(cfg.mountpoint)
        except (OSError, RuntimeError) as exc:
            log.error("Cannot mount mountpoint=%s error=%s", cfg.mountpoint, exc)
            write_status(cfg.status_file, False, cfg.mountpoint, str(exc))
            return 1
    if not cfg.fd_socket and not os.path.exists("/dev/fuse"):
        write_status(cfg.status_file, False, cfg.mountpoint, "/dev/fuse is not available")
        log.error("Cannot mount mountpoint=%s error=/dev/fuse is not available", cfg.mountpoint)
        return 1
    try:
        trio.run(serve, cfg)
    except Exception as exc:
        log.exception("Shadow filesystem failed mountpoint=%s", cfg.mountpoint)
        write_status(cfg.status_file, False, cfg.mountpoint, f"{exc.__class__.__name__}: {exc}")
        return 1
    return 0
