"""The audit trail: an append-only JSON-lines file plus an event in the event store for every security action.

Each line is written with one O_APPEND write(2), so lines from concurrent requests (and from several processes
sharing the file) never interleave. Events that are not part of a larger transaction are handed to `EventSink`,
which appends them in batches in the background so a burst of auth failures or cached decisions costs one
PostgreSQL transaction, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client import Counter

from lighthouse_bridge.metrics import REGISTRY
from lighthouse_bridge.store import events

log = logging.getLogger(__name__)

AUDIT_LINES = Counter("lighthouse_bridge_audit_records_total", "Audit records written", ["action"], registry=REGISTRY)
AUDIT_FAILURES = Counter(
    "lighthouse_bridge_audit_write_failures_total",
    "Audit file or event writes that failed",
    ["sink"],
    registry=REGISTRY,
)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._host = socket.gethostname()
        self._warned = False

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def write(self, action: str, outcome: str, actor: str | None, **details: Any) -> dict[str, Any]:
        record = {
            "ts": datetime.now(UTC).isoformat(),
            "action": action,
            "outcome": outcome,
            "actor": actor,
            "replica": self._host,
            **details,
        }
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            try:
                os.write(self._open(), line)
                self._warned = False
            except OSError as exc:
                AUDIT_FAILURES.labels("file").inc()
                if not self._warned:
                    log.error("Audit log write failed path=%s error=%r", self.path, exc)
                    self._warned = True
        AUDIT_LINES.labels(action).inc()
        return record

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class EventSink:
    """Background, batched appends of audit events (auth failures, rule decisions, policy reloads)."""

    def __init__(self, pool: asyncpg.Pool, max_batch: int = 500, linger: float = 0.05) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.linger = linger
        self._queue: asyncio.Queue[events.NewEvent] = asyncio.Queue(maxsize=100_000)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-event-sink")

    def emit(self, event: events.NewEvent) -> None:
        try:
            self._queue.put_nowait(event)
            self._idle.clear()
        except asyncio.QueueFull:
            AUDIT_FAILURES.labels("event_queue_full").inc()
            log.error("Audit event queue full; dropped event_type=%s", event.event_type)

    async def flush(self, within: float = 10.0) -> None:
        """Wait until everything emitted so far is appended (tests, shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            # linger briefly so a burst becomes one transaction (and one NOTIFY to every replica's projection)
            await asyncio.sleep(self.linger)
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._append(batch)
            if self._queue.empty():
                self._idle.set()

    async def _append(self, batch: list[events.NewEvent]) -> None:
        for attempt in range(3):
            try:
                await events.append(self.pool, batch)
                return
            except Exception as exc:
                if attempt == 2:
                    AUDIT_FAILURES.labels("event").inc(len(batch))
                    log.error("Audit events not stored count=%d error=%r (the audit file has them)", len(batch), exc)
                    return
                await asyncio.sleep(0.5 * (attempt + 1))

    async def stop(self) -> None:
        await self.flush(5.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def event(
    event_type: str, aggregate_type: str, aggregate_id: str, data: dict[str, Any], agent: str | None = None
) -> events.NewEvent:
    return events.NewEvent(
        event_type, aggregate_id, aggregate_type, data=data, source_agent=agent, metadata={"source_component": "agents"}
    )


def tail(path: Path, limit: int) -> list[dict[str, Any]]:
    """The last `limit` records of an audit file (blocking; run in a thread)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit * 4096))
            lines = f.read().splitlines()[-limit:]
    except FileNotFoundError:
        return []
    out = []
    for raw in lines:
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # the first line of the window may be cut
    return out
