"""The follower that keeps one replica's copy of the shadow tree (store/tree.py) current.

Each bridge replica holds the current tree in memory and follows the global position: a dedicated connection
LISTENs on `lighthouse_events` (payload = the new head position), a poll every `projection_poll_interval` covers
lost notifications and reconnects, and writers on this replica catch up synchronously before answering (read your
own writes). Start-up and time travel load the newest snapshot at or before the target and replay only the tail.
Lag (head - applied position, and seconds since the oldest unapplied notification) is exported as metrics.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from typing import Any

import asyncpg

from lighthouse_bridge import metrics
from lighthouse_bridge.store import snapshots
from lighthouse_bridge.store.db import NOTIFY_CHANNEL, is_connection_error
from lighthouse_bridge.store.tree import FileEntry, Tree, apply

log = logging.getLogger(__name__)

REPLAY_PAGE = 10000
REPLAY_SQL = (
    "SELECT position, event_type, aggregate_id, version,"
    " CASE WHEN event_type IN ('file_created', 'file_modified', 'file_deleted', 'file_moved') THEN data END AS data,"
    " source_agent, recorded_at FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3"
)


async def replay(pool: asyncpg.Pool, tree: Tree, up_to: int) -> tuple[int, bool]:
    """Apply events (tree.position, up_to] in pages; returns (events read, whether the set of paths changed)."""
    n, changed = 0, False
    while tree.position < up_to:
        rows = await pool.fetch(REPLAY_SQL, tree.position, up_to, REPLAY_PAGE)
        if not rows:
            break
        for r in rows:
            changed |= apply(
                tree,
                r["position"],
                r["event_type"],
                r["aggregate_id"],
                r["version"],
                r["data"],
                r["source_agent"],
                r["recorded_at"],
            )
        n += len(rows)
        if len(rows) < REPLAY_PAGE:
            break
    return n, changed


async def build(pool: asyncpg.Pool, up_to: int, *, use_snapshots: bool = True) -> Tree:
    """The tree at position `up_to`: newest snapshot at or before it, plus the tail."""
    tree = (await snapshots.latest_at_or_before(pool, up_to) if use_snapshots else None) or Tree()
    await replay(pool, tree, up_to)
    return tree


class Projection:
    """One replica's live copy of the tree, following the store."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        poll_interval: float = 1.0,
        snapshot_interval: int = 0,
        snapshot_keep: int = 100,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.poll_interval = poll_interval
        self.snapshot_interval = snapshot_interval
        self.snapshot_keep = snapshot_keep
        self.tree = Tree()
        self.head = 0
        self.listening = False
        self.last_snapshot_position = 0
        self._lock = asyncio.Lock()
        self._advanced = asyncio.Event()
        self._wake = asyncio.Event()
        self._sorted: list[str] | None = None
        self._behind_since: float | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def position(self) -> int:
        return self.tree.position

    async def start(self) -> None:
        t0 = time.monotonic()
        snap = await snapshots.latest_at_or_before(self.pool, 2**62)
        if snap is not None:
            self.tree = snap
            self.last_snapshot_position = snap.position
        replayed = await self.catch_up()
        log.info(
            "Projection ready position=%d files=%d snapshot=%d replayed=%d seconds=%.3f",
            self.position,
            len(self.tree.files),
            self.last_snapshot_position,
            replayed,
            time.monotonic() - t0,
        )
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="projection-listen"),
            asyncio.create_task(self._poll_loop(), name="projection-poll"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def _note_head(self, head: int) -> None:
        if head > self.head:
            self.head = head
            if self._behind_since is None and head > self.position:
                self._behind_since = time.monotonic()
            self._advanced.set()
            self._advanced = asyncio.Event()
        self._update_metrics()

    def _update_metrics(self) -> None:
        metrics.PROJECTION_POSITION.set(self.position)
        metrics.STORE_HEAD.set(self.head)
        metrics.PROJECTION_LAG_EVENTS.set(max(0, self.head - self.position))
        lag_s = 0.0 if self._behind_since is None else time.monotonic() - self._behind_since
        metrics.PROJECTION_LAG_SECONDS.set(lag_s)

    async def catch_up(self, target: int | None = None) -> int:
        """Apply everything committed (at least up to `target`); returns the number of events applied."""
        if target is not None and target <= self.position:
            return 0
        async with self._lock:
            if target is not None and target <= self.position:  # another waiter caught up meanwhile
                return 0
            n, changed = await replay(self.pool, self.tree, 2**62)
            if changed:
                self._sorted = None
            if self.position >= self.head:
                self._behind_since = None
            self._note_head(self.position)
            if n:
                self._advanced.set()
                self._advanced = asyncio.Event()
            await self._maybe_snapshot()
            return n

    async def _maybe_snapshot(self) -> None:
        if not self.snapshot_interval or self.position - self.last_snapshot_position < self.snapshot_interval:
            return
        try:
            await snapshots.create(self.pool, f"auto-{self.position}", self.tree.copy(), auto=True)
            self.last_snapshot_position = self.position
            await snapshots.prune_auto(self.pool, self.snapshot_keep)
            log.info("Created Snapshot name=auto-%d files=%d", self.position, len(self.tree.files))
        except Exception as exc:
            log.warning("Automatic snapshot failed position=%d error=%r", self.position, exc)

    async def wait_for(self, position: int) -> None:
        if position > self.position:
            await self.catch_up(position)

    async def wait_beyond(self, position: int, wait_seconds: float) -> bool:
        """Wait until the store head moves beyond `position`; False on timeout."""
        if self.head > position:
            return True
        ev = self._advanced
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), wait_seconds)
        return self.head > position

    def list(self, prefix: str = "") -> list[FileEntry]:
        if self._sorted is None:
            self._sorted = sorted(self.tree.files)
        keys = self._sorted
        lo = bisect.bisect_left(keys, prefix)
        out = []
        for k in keys[lo:]:
            if not k.startswith(prefix):
                break
            out.append(self.tree.files[k])
        return out

    async def _listen_loop(self) -> None:
        delay = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self.listening = True
                delay = 0.2
                self._wake.set()  # catch up on what happened while not listening
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 5.0)
                    if not lost.is_set():
                        await conn.execute("SELECT 1", timeout=5)  # notices a silently dead socket
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening:
                    log.warning("Lost LISTEN connection error=%r", exc)
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._note_head(int(payload))
        except ValueError:
            return
        self._wake.set()

    async def _poll_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                self._note_head(await self.pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
                if self.head > self.position:
                    await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_connection_error(exc):
                    log.exception("Projection catch-up failed")
                await asyncio.sleep(self.poll_interval)
