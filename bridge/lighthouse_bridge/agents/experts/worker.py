"""The expert worker: follows file_created/file_modified events and keeps each built-in expert's annotations current.

One replica at a time runs it (session advisory lock on a dedicated connection; another replica takes over when
that connection dies). Progress is a checkpoint position in `bridge_meta`, written in the same transaction as the
annotations and their events, so a crash replays at most the file being processed and never duplicates findings:
each pass replaces the expert's earlier annotations on that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from lighthouse_bridge import anchoring
from lighthouse_bridge.agents.experts import Finding, performance, security
from lighthouse_bridge.store import annotations as annotation_rows
from lighthouse_bridge.store import events
from lighthouse_bridge.store.db import is_connection_error

log = logging.getLogger(__name__)

EXPERT_LOCK = 0x4C48_0701
CHECKPOINT_KEY = "agents.experts.checkpoint"
MAX_SCAN_BYTES = 2 << 20
SCANNERS: dict[str, Callable[[str, str], list[Finding]]] = {
    security.NAME: security.scan,
    performance.NAME: performance.scan,
}


async def register_builtins(pool: asyncpg.Pool) -> None:
    for name, caps in ((security.NAME, security.CAPABILITIES), (performance.NAME, performance.CAPABILITIES)):
        await pool.execute(
            "INSERT INTO experts (agent_id, agent_type, capabilities, builtin, registered_by) VALUES ($1, $2, $3, true,"
            " 'bridge') ON CONFLICT (agent_id) DO UPDATE SET capabilities = $3, last_seen_at = now()",
            name,
            name.split(":", 1)[1],
            caps,
        )


async def checkpoint(pool: asyncpg.Pool | asyncpg.Connection) -> int:
    v = await pool.fetchval("SELECT value FROM bridge_meta WHERE key = $1", CHECKPOINT_KEY)
    return int(v) if v is not None else 0


async def process_file(pool: asyncpg.Pool, path: str, content: bytes, position: int) -> int:
    """Replace the built-in experts' annotations on `path` with fresh findings; returns the number written."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    lines = anchoring.split_lines(content) if text is not None else []
    old = await annotation_rows.by_authors(pool, path, list(SCANNERS))
    new: list[tuple[uuid.UUID, str, Finding, dict[str, Any]]] = []
    if text is not None and len(content) <= MAX_SCAN_BYTES:
        for name, scan in SCANNERS.items():
            for f in scan(path, text):
                new.append((uuid.uuid4(), name, f, anchoring.make_anchor(lines, f.line, f.line).stored()))
    batch = [
        events.NewEvent(
            "shadow_annotation_deleted",
            str(r["id"]),
            "annotation",
            data={"id": str(r["id"])},
            source_agent=r["author"],
            metadata={"source_component": "experts"},
        )
        for r in old
    ]
    for aid, name, f, anchor in new:
        batch.append(
            events.NewEvent(
                "shadow_annotation_created",
                str(aid),
                "annotation",
                data={
                    "id": str(aid),
                    "path": path,
                    "line": f.line,
                    "end_line": f.line,
                    "message": f.message,
                    "category": f.category,
                    "severity": f.severity,
                    "author": name,
                    "anchor": anchor,
                    "rule": f.rule,
                    "source_position": position,
                },
                source_agent=name,
                metadata={"source_component": "experts"},
            )
        )

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        if old:
            await annotation_rows.delete(conn, [r["id"] for r in old])
        for aid, name, f, anchor in new:
            await annotation_rows.insert(
                conn, aid, path, f.line, f.line, f"[{f.rule}] {f.message}", f.category, f.severity, name, anchor
            )
        await _save_checkpoint(conn, position)

    if batch:
        await events.append(pool, batch, hook=hook)
    else:
        async with pool.acquire() as conn:
            await _save_checkpoint(conn, position)
    return len(new)


async def _save_checkpoint(conn: asyncpg.Connection, position: int) -> None:
    await conn.execute(
        "INSERT INTO bridge_meta (key, value, updated_at) VALUES ($1, $2, now())"
        " ON CONFLICT (key) DO UPDATE SET value = $2, updated_at = now()",
        CHECKPOINT_KEY,
        position,
    )


class ExpertWorker:
    def __init__(self, runtime: Any, batch: int = 200) -> None:
        self.rt = runtime
        self.batch = batch
        self.leader = False
        self.processed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="expert-worker")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.leader = False
                if not is_connection_error(exc):
                    log.exception("Expert worker failed; restarting")
                await asyncio.sleep(2.0)

    async def _lead(self) -> None:
        pool: asyncpg.Pool = self.rt.pool
        async with pool.acquire() as lock_conn:
            while not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", EXPERT_LOCK):  # noqa: ASYNC110
                await asyncio.sleep(5.0)  # another replica leads; poll for takeover
            try:
                self.leader = True
                log.info("Expert worker leading experts=%s", ",".join(SCANNERS))
                while True:
                    await lock_conn.fetchval("SELECT 1")  # lose leadership promptly if our session died
                    cp = await checkpoint(pool)
                    if not await self.step(cp):
                        await self.rt.projection.wait_beyond(self.rt.projection.head, 2.0)
            finally:
                self.leader = False
                with contextlib.suppress(Exception):
                    await lock_conn.execute("SELECT pg_advisory_unlock($1)", EXPERT_LOCK)

    async def step(self, cp: int) -> bool:
        """Process file events after `cp`; False when there was nothing to do."""
        rows = await self.rt.pool.fetch(
            "SELECT position, event_type, aggregate_id, data FROM events WHERE position > $1 ORDER BY position"
            " LIMIT $2",
            cp,
            self.batch,
        )
        if not rows:
            return False
        for r in rows:
            if r["event_type"] in ("file_created", "file_modified"):
                content = await self.rt.read_blob(r["data"]["sha256"])
                n = await process_file(self.rt.pool, r["aggregate_id"], content or b"", r["position"])
                self.processed += 1
                if n:
                    log.info("Annotated file path=%s findings=%d position=%d", r["aggregate_id"], n, r["position"])
        last = rows[-1]["position"]
        if last > await checkpoint(self.rt.pool):
            async with self.rt.pool.acquire() as conn:
                await _save_checkpoint(conn, last)
        return True
