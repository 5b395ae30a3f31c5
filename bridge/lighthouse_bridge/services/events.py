"""Events: append (one, a batch, or with rows that commit in the same transaction), query, follow live, and blobs."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

from lighthouse_bridge import metrics
from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.errors import BridgeError, NotFound, TooLarge
from lighthouse_bridge.models import AppendOut, BatchOut, BlobOut, EventBatchIn, EventIn, EventPage
from lighthouse_bridge.paths import validate_path
from lighthouse_bridge.store import blobs, db, events
from lighthouse_bridge.store.events import EventFilter  # the typed input of query(), for every front end

log = logging.getLogger(__name__)


async def append(
    rt: Runtime,
    batch: list[events.NewEvent],
    hook: events.TxHook | None = None,
) -> list[events.AppendResult]:
    """Append (group commit with concurrent requests), then let this replica's projection catch up so the caller
    reads its own write. Every write of an event goes through here."""
    for ev in batch:  # ids chosen before the attempt, so a 503 can tell the client what to retry with
        ev.event_id = ev.event_id or str(uuid.uuid4())
    results = await db.guard(
        "append",
        rt.appender.append(batch, hook),
        advice="the append may not have happened; retry with the same event_id(s)",
        event_ids=[ev.event_id for ev in batch],
    )
    metrics.EVENTS_APPENDED.inc(sum(1 for r in results if not r.duplicate))
    try:
        await rt.projection.wait_for(max(r.position for r in results))
    except Exception as exc:  # the write is committed; a lagging projection must not turn it into an error
        log.warning("Projection catch-up after append failed error=%r", exc)
    return results


def out(r: events.AppendResult) -> AppendOut:
    return AppendOut(event_id=r.event_id, position=r.position, version=r.version, duplicate=r.duplicate)


def new_event(rt: Runtime, e: EventIn) -> events.NewEvent:
    if e.aggregate_type == "file" or e.event_type in events.FILE_EVENTS:
        validate_path(e.aggregate_id, rt.settings.max_path_bytes)
    return events.NewEvent(
        event_type=e.event_type,
        aggregate_id=e.aggregate_id,
        aggregate_type=e.aggregate_type,
        data=dict(e.data),
        metadata=e.metadata,
        correlation_id=e.correlation_id,
        causation_id=e.causation_id,
        source_agent=e.source_agent or e.agent_id,
        event_id=e.event_id,
        expected_version=e.expected_version,
    )


async def store_one(rt: Runtime, body: EventIn) -> AppendOut:
    (result,) = await append(rt, [new_event(rt, body)])
    return out(result)


async def store_batch(rt: Runtime, body: EventBatchIn) -> BatchOut:
    if len(body.events) > rt.settings.max_batch_events:
        raise TooLarge(f"{len(body.events)} events in one batch; the limit is {rt.settings.max_batch_events}")
    results = await append(rt, [new_event(rt, e) for e in body.events])
    return BatchOut(results=[out(r) for r in results])


async def query(rt: Runtime, f: EventFilter) -> EventPage:
    """Events matching `f`, by ascending position; `next_from_position` is None on the last page."""
    rows = await db.guard("query", events.query(rt.pool, f))
    out = [events.event_to_dict(r) for r in rows]
    last = len(out) == f.limit
    return EventPage.model_validate({"events": out, "next_from_position": out[-1]["position"] + 1 if last else None})


async def stream_start(rt: Runtime, from_position: int | None) -> int:
    """Where a stream starts: `from_position`, or just after the current head (only new events)."""
    if from_position is not None:
        return from_position
    return await db.guard("stream", events.head_position(rt.pool)) + 1


async def follow(rt: Runtime, cursor: int, idle_timeout: float | None) -> AsyncIterator[bytes]:
    """NDJSON lines: events from `cursor` (inclusive), then live; `{"heartbeat": head}` while idle. Ends when the
    bridge drains, PostgreSQL goes away (the client reconnects elsewhere), or after `idle_timeout` idle seconds."""
    metrics.STREAM_CLIENTS.inc()
    idle_since = time.monotonic()
    try:
        while not rt.draining.is_set():
            try:
                rows = await events.query(rt.pool, EventFilter(from_position=cursor, limit=500))
            except Exception as exc:
                if db.is_connection_error(exc):
                    log.warning("Ending event stream: PostgreSQL unavailable position=%d", cursor)
                    return
                raise
            if rows:
                idle_since = time.monotonic()
                cursor = rows[-1]["position"] + 1
                yield "".join(json.dumps(events.event_to_dict(r)) + "\n" for r in rows).encode()
                continue
            if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                return
            wait = rt.settings.stream_heartbeat
            if idle_timeout is not None:
                wait = min(wait, max(0.01, idle_timeout - (time.monotonic() - idle_since)))
            if not await rt.wait_beyond(cursor - 1, wait) and not rt.draining.is_set():
                yield (json.dumps({"heartbeat": rt.projection.head}) + "\n").encode()
    finally:
        metrics.STREAM_CLIENTS.dec()


async def read_blob(rt: Runtime, sha256: str) -> bytes:
    content = await rt.read_blob(sha256)
    if content is None:
        raise NotFound(f"no blob {sha256}")
    return content


async def put_blob(rt: Runtime, sha256: str, body: bytes) -> BlobOut:
    """Store raw bytes under their sha256 (idempotent); BridgeError (400) when the body does not hash to it."""
    if len(body) > rt.settings.max_file_bytes:
        raise TooLarge(f"blob is {len(body)} bytes; the limit is {rt.settings.max_file_bytes}")
    if blobs.sha256_hex(body) != sha256:
        raise BridgeError(f"body hashes to {blobs.sha256_hex(body)}, not {sha256}")
    await db.guard("put_blob", blobs.put(rt.pool, body))
    return BlobOut(sha256=sha256, size=len(body))
