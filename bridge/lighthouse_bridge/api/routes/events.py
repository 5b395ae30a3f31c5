"""Event store routes: append (single, batch), query, live stream, and blobs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from lighthouse_bridge import metrics
from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.models import (
    MAX_POSITION,
    AppendOut,
    BatchOut,
    BlobOut,
    EventBatchIn,
    EventIn,
    EventPage,
    Text,
)
from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.errors import BridgeError, NotFound, StoreUnavailable, TooLarge, responses
from lighthouse_bridge.paths import validate_path
from lighthouse_bridge.store import blobs, events
from lighthouse_bridge.store.db import is_connection_error

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])

SHA_PATTERN = r"^[0-9a-f]{64}$"
Sha256Path = Annotated[str, Path(pattern=SHA_PATTERN, description="64 lowercase hex characters")]


def to_new_event(e: EventIn, rt: Runtime) -> events.NewEvent:
    if e.aggregate_type == "file" or e.event_type in events.FILE_EVENTS:
        validate_path(e.aggregate_id, rt.settings.max_path_bytes)
    return events.NewEvent(
        event_type=e.event_type, aggregate_id=e.aggregate_id, aggregate_type=e.aggregate_type, data=dict(e.data),
        metadata=e.metadata, correlation_id=e.correlation_id, causation_id=e.causation_id,
        source_agent=e.source_agent or e.agent_id, event_id=e.event_id, expected_version=e.expected_version,
    )


async def append_events(rt: Runtime, batch: list[events.NewEvent], hook: events.TxHook | None = None,
                        ) -> list[events.AppendResult]:
    """Append, then let this replica's projection catch up so the caller reads its own write."""
    import uuid

    for ev in batch:  # ids chosen before the attempt, so a 503 can tell the client what to retry with
        ev.event_id = ev.event_id or str(uuid.uuid4())
    try:
        results = await rt.appender.append(batch, hook)  # group commit with concurrent requests (store/group_commit.py)
    except Exception as exc:
        if is_connection_error(exc):
            metrics.STORE_FAILURES.labels("append").inc()
            raise StoreUnavailable(
                f"PostgreSQL unavailable; the append may not have happened. Retry with the same event_id(s): {exc!r}",
                event_ids=[ev.event_id for ev in batch],
            ) from exc
        raise
    metrics.EVENTS_APPENDED.inc(sum(1 for r in results if not r.duplicate))
    try:
        await rt.projection.wait_for(max(r.position for r in results))
    except Exception as exc:  # the write is committed; a lagging projection must not turn it into an error
        log.warning("Projection catch-up after append failed error=%r", exc)
    return results


def _out(r: events.AppendResult) -> dict[str, object]:
    return {"event_id": r.event_id, "position": r.position, "version": r.version, "duplicate": r.duplicate}


@router.post("/event/store", response_model=AppendOut, responses=responses(404, 409))
async def store_event(body: EventIn, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, object]:
    """Append one event. With `event_id`, a retry returns the original result; `expected_version` -> 409 on conflict."""
    (result,) = await append_events(rt, [to_new_event(body, rt)])
    return _out(result)


@router.post("/events", response_model=BatchOut, responses=responses(404, 409))
async def store_events(body: EventBatchIn, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, object]:
    """Append a batch atomically: all events get consecutive positions, or none is stored."""
    if len(body.events) > rt.settings.max_batch_events:
        raise TooLarge(f"{len(body.events)} events in one batch; the limit is {rt.settings.max_batch_events}")
    results = await append_events(rt, [to_new_event(e, rt) for e in body.events])
    return {"results": [_out(r) for r in results]}


@router.get("/event/query", response_model=EventPage, responses=responses())
async def query_events(
    rt: RuntimeDep,
    _p: PrincipalDep,
    event_type: Annotated[Text | None, Query(max_length=128)] = None,
    aggregate_id: Annotated[Text | None, Query(max_length=1024)] = None,
    agent_id: Annotated[Text | None, Query(max_length=256)] = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    from_position: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, object]:
    """Events matching all filters, by ascending position. `from_position` is inclusive; pass
    `next_from_position` back to get the next page (null when this page was the last)."""
    rows = await rt.guard("query", events.query(
        rt.pool, event_type=event_type, aggregate_id=aggregate_id, agent_id=agent_id, start_time=start_time,
        end_time=end_time, from_position=from_position, limit=limit,
    ))
    out = [events.event_to_dict(r) for r in rows]
    return {"events": out, "next_from_position": out[-1]["position"] + 1 if len(out) == limit else None}


@router.get(
    "/events/stream",
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One JSON event per line"},
               **responses()},
)
async def stream_events(
    rt: RuntimeDep,
    _p: PrincipalDep,
    from_position: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
    idle_timeout: Annotated[float | None, Query(gt=0, le=86400, description="Close after this many idle seconds")]
    = None,
) -> StreamingResponse:
    """NDJSON stream of events from `from_position` (inclusive; default: only new events), then live. While idle,
    a `{"heartbeat": <head position>}` line every LIGHTHOUSE_STREAM_HEARTBEAT seconds."""
    if from_position is None:
        head = await rt.guard("stream", events.head_position(rt.pool))
        from_position = head + 1
    return StreamingResponse(_stream(rt, from_position, idle_timeout), media_type="application/x-ndjson")


async def _stream(rt: Runtime, cursor: int, idle_timeout: float | None) -> AsyncIterator[bytes]:
    metrics.STREAM_CLIENTS.inc()
    idle_since = time.monotonic()
    try:
        while not rt.draining.is_set():
            try:
                rows = await events.query(rt.pool, from_position=cursor, limit=500)
            except Exception as exc:
                if is_connection_error(exc):
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


@router.get(
    "/blobs/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "Blob bytes"}, **responses(404)},
)
async def read_blob(sha256: Sha256Path, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Raw blob bytes by sha256; immutable, so clients and proxies may cache forever."""
    content = await rt.read_blob(sha256)
    if content is None:
        raise NotFound(f"no blob {sha256}")
    return Response(content, media_type="application/octet-stream",
                    headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{sha256}"'})


@router.put(
    "/blobs/{sha256}",
    response_model=BlobOut,
    responses=responses(400),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def put_blob(sha256: Sha256Path, request: Request, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, object]:
    """Store raw bytes under their sha256 (400 if the body does not hash to it). Idempotent."""
    body = await request.body()
    if len(body) > rt.settings.max_file_bytes:
        raise TooLarge(f"blob is {len(body)} bytes; the limit is {rt.settings.max_file_bytes}")
    if blobs.sha256_hex(body) != sha256:
        raise BridgeError(f"body hashes to {blobs.sha256_hex(body)}, not {sha256}")
    await rt.guard("put_blob", blobs.put(rt.pool, body))
    return {"sha256": sha256, "size": len(body)}
