"""Event store routes: append (single, batch), query, live stream, and blobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.problems import responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import MAX_POSITION, AppendOut, BatchOut, BlobOut, EventBatchIn, EventIn, EventPage, Text
from lighthouse_bridge.services import events

router = APIRouter(tags=["events"])

SHA_PATTERN = r"^[0-9a-f]{64}$"
Sha256Path = Annotated[str, Path(pattern=SHA_PATTERN, description="64 lowercase hex characters")]


@router.post("/event/store", response_model=AppendOut, responses=responses(404, 409))
async def store_event(body: EventIn, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Append one event. With `event_id`, a retry returns the original result; `expected_version` -> 409 on conflict."""
    return json_model(await events.store_one(rt, body))


@router.post("/events", response_model=BatchOut, responses=responses(404, 409))
async def store_events(body: EventBatchIn, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Append a batch atomically: all events get consecutive positions, or none is stored."""
    return json_model(await events.store_batch(rt, body))


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
) -> Response:
    """Events matching all filters, by ascending position. `from_position` is inclusive; pass
    `next_from_position` back to get the next page (null when this page was the last)."""
    f = events.EventFilter(
        event_type=event_type,
        aggregate_id=aggregate_id,
        agent_id=agent_id,
        start_time=start_time,
        end_time=end_time,
        from_position=from_position,
        limit=limit,
    )
    return json_model(await events.query(rt, f))


@router.get(
    "/events/stream",
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One JSON event per line"}, **responses()},
)
async def stream_events(
    rt: RuntimeDep,
    _p: PrincipalDep,
    from_position: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
    idle_timeout: Annotated[
        float | None, Query(gt=0, le=86400, description="Close after this many idle seconds")
    ] = None,
) -> StreamingResponse:
    """NDJSON stream of events from `from_position` (inclusive; default: only new events), then live. While idle,
    a `{"heartbeat": <head position>}` line every LIGHTHOUSE_STREAM_HEARTBEAT seconds."""
    cursor = await events.stream_start(rt, from_position)
    return StreamingResponse(events.follow(rt, cursor, idle_timeout), media_type="application/x-ndjson")


@router.get(
    "/blobs/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "Blob bytes"}, **responses(404)},
)
async def read_blob(sha256: Sha256Path, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Raw blob bytes by sha256; immutable, so clients and proxies may cache forever."""
    return Response(
        await events.read_blob(rt, sha256),
        media_type="application/octet-stream",
        headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{sha256}"'},
    )


@router.put(
    "/blobs/{sha256}",
    response_model=BlobOut,
    responses=responses(400),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_blob(sha256: Sha256Path, request: Request, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Store raw bytes under their sha256 (400 if the body does not hash to it). Idempotent."""
    return json_model(await events.put_blob(rt, sha256, await request.body()))
