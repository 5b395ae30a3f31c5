"""Append-only event store on PostgreSQL.

Global position: dense, gap-free, commit-ordered
------------------------------------------------
A bigserial would hand out numbers in *allocation* order while transactions commit in a different order, so a
reader polling `position > N` could see 11 before 10 commits and skip 10 forever. Here positions are assigned in
*commit* order instead:

1. All per-request work runs concurrently: blob inserts, locking the affected stream rows (`streams`, one row per
   aggregate, `FOR UPDATE` in sorted order), idempotency and expected-version checks, stream version updates.
   Writers on different aggregates never wait for each other during this part.
2. The last step takes a transaction-scoped advisory lock (`pg_advisory_xact_lock(COMMIT_ORDER_LOCK)`), then one
   statement reads the head (`max(position)` via the primary key index), inserts the events at head+1..head+n and
   queues a NOTIFY; then COMMIT. The lock is released by the commit itself, after the transaction became visible
   (PostgreSQL ends the transaction in the proc array before releasing its locks), so the next holder's
   `max(position)` - a fresh READ COMMITTED snapshot taken after acquiring the lock - always sees it.

Hence positions are 1..N with no holes (a rolled-back transaction never consumed a number), and a reader that sees
position N has every position below N available. No row is updated by every writer; the only global section is
"insert n rows + commit" and batching amortises it (see benchmarks/bridge_append.py). Positions continue after a
crash because they are derived from the stored events, not from process memory.

Idempotency: a client-supplied event_id that already exists returns the original {event_id, position, version}.
Optimistic concurrency: expected_version must equal the stream version before the event (0 = new stream), else 409.
File events (file_created/modified/deleted/moved) are validated against the live state kept on the stream row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from lighthouse_bridge.errors import Conflict, InvalidInput, NotFound
from lighthouse_bridge.paths import validate_path
from lighthouse_bridge.store.db import COMMIT_ORDER_LOCK, NOTIFY_CHANNEL
from lighthouse_bridge.store.tree import FileEntry

FILE_EVENTS = ("file_created", "file_modified", "file_deleted", "file_moved")

EVENT_COLUMNS = (
    "position, event_id, event_type, aggregate_id, aggregate_type, version, data, metadata, "
    "correlation_id, causation_id, source_agent, recorded_at"
)


@dataclass
class NewEvent:
    event_type: str
    aggregate_id: str
    aggregate_type: str
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    causation_id: str | None = None
    source_agent: str | None = None
    event_id: str | None = None
    expected_version: int | None = None


@dataclass
class AppendResult:
    event_id: str
    position: int
    version: int
    duplicate: bool = False


@dataclass
class _Stream:
    aggregate_type: str
    version: int
    live: bool | None
    sha256: str | None
    size: int | None
    dirty: bool = False


TxHook = Callable[[asyncpg.Connection, list[AppendResult]], Awaitable[None]]


def event_to_dict(row: asyncpg.Record) -> dict[str, Any]:
    ts: datetime = row["recorded_at"]
    return {
        "position": row["position"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "aggregate_id": row["aggregate_id"],
        "aggregate_type": row["aggregate_type"],
        "timestamp": ts.isoformat(),
        "data": row["data"],
        "metadata": row["metadata"],
        "correlation_id": row["correlation_id"],
        "causation_id": row["causation_id"],
        "source_agent": row["source_agent"],
        "version": row["version"],
    }


async def append(
    pool: asyncpg.Pool, events: list[NewEvent], *, max_path_bytes: int = 1024, hook: TxHook | None = None
) -> list[AppendResult]:
    """Append events atomically; returns one result per input event, in order."""
    for ev in events:
        if ev.event_id is None:
            ev.event_id = str(uuid.uuid4())
    for attempt in range(3):
        try:
            # READ COMMITTED explicitly: the head must be read with a snapshot taken after the lock (see above).
            async with pool.acquire() as conn, conn.transaction(isolation="read_committed"):
                return await _append_tx(conn, events, max_path_bytes, hook)
        except asyncpg.UniqueViolationError as exc:
            # A concurrent request committed the same event_id first (different aggregate locks): retry, and the
            # retry returns the original result.
            if exc.constraint_name != "events_event_id_key" or attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _append_tx(
    conn: asyncpg.Connection, events: list[NewEvent], max_path_bytes: int, hook: TxHook | None
) -> list[AppendResult]:
    # 1. lock every stream touched, in sorted order so concurrent batches cannot deadlock.
    types: dict[str, str] = {}
    for ev in events:
        types.setdefault(ev.aggregate_id, ev.aggregate_type)
        if ev.event_type == "file_moved":
            new_path = ev.data.get("new_path")
            if not isinstance(new_path, str):
                raise InvalidInput("file_moved needs data.new_path")
            validate_path(new_path, max_path_bytes)
            types.setdefault(new_path, "file")
    ids = sorted(types)
    await conn.execute(
        "INSERT INTO streams (aggregate_id, aggregate_type) SELECT * FROM unnest($1::text[], $2::text[])"
        " ON CONFLICT DO NOTHING",
        ids,
        [types[i] for i in ids],
    )
    rows = await conn.fetch(
        "SELECT aggregate_id, aggregate_type, version, live, sha256, size FROM streams"
        " WHERE aggregate_id = ANY($1::text[]) ORDER BY aggregate_id FOR UPDATE",
        ids,
    )
    streams = {
        r["aggregate_id"]: _Stream(r["aggregate_type"], r["version"], r["live"], r["sha256"], r["size"]) for r in rows
    }

    # 2. idempotency, checked under the stream locks so a concurrent retry of the same id waits and then sees it.
    existing = {
        r["event_id"]: AppendResult(r["event_id"], r["position"], r["version"], duplicate=True)
        for r in await conn.fetch(
            "SELECT event_id, position, version FROM events WHERE event_id = ANY($1::text[])",
            [ev.event_id for ev in events],
        )
    }
    fresh = [ev for ev in events if ev.event_id not in existing]
    seen: set[str] = set()
    for ev in fresh:
        if ev.event_id in seen:
            raise InvalidInput(f"event_id {ev.event_id} appears twice in the batch")
        seen.add(ev.event_id or "")
    if not fresh:
        return [existing[ev.event_id or ""] for ev in events]

    # 3. per-event checks in order, updating the local stream state as we go.
    shas = {ev.data.get("sha256") for ev in fresh if ev.event_type in ("file_created", "file_modified")}
    shas_list = [s for s in shas if isinstance(s, str)]
    blob_sizes = {
        r["sha256"]: r["size"]
        for r in (
            await conn.fetch("SELECT sha256, size FROM blobs WHERE sha256 = ANY($1::text[])", shas_list)
            if shas_list
            else []
        )
    }
    versions: list[int] = []
    for ev in fresh:
        st = streams[ev.aggregate_id]
        if st.aggregate_type != ev.aggregate_type:
            raise Conflict(f"aggregate {ev.aggregate_id!r} has type {st.aggregate_type!r}, not {ev.aggregate_type!r}")
        if ev.expected_version is not None and ev.expected_version != st.version:
            raise Conflict(
                f"expected version {ev.expected_version} of {ev.aggregate_id!r} but it is at {st.version}",
                current_version=st.version,
            )
        if ev.event_type in FILE_EVENTS or ev.aggregate_type == "file":
            _apply_file_event(ev, st, streams, blob_sizes)
        st.version += 1
        st.dirty = True
        versions.append(st.version)

    dirty = [(k, s) for k, s in streams.items() if s.dirty]
    await conn.execute(
        "UPDATE streams s SET version = v.version, live = v.live, sha256 = v.sha256, size = v.size"
        " FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::text[], $5::bigint[])"
        " AS v(aggregate_id, version, live, sha256, size) WHERE s.aggregate_id = v.aggregate_id",
        [k for k, _ in dirty],
        [s.version for _, s in dirty],
        [s.live for _, s in dirty],
        [s.sha256 for _, s in dirty],
        [s.size for _, s in dirty],
    )

    results_fresh = [AppendResult(ev.event_id or "", 0, v) for ev, v in zip(fresh, versions, strict=True)]
    if hook is not None:
        await hook(conn, results_fresh)

    # 4. commit-ordered section: everything from here to COMMIT runs under the advisory lock.
    await conn.execute("SELECT pg_advisory_xact_lock($1)", COMMIT_ORDER_LOCK)
    # One statement (a fresh snapshot, taken after the lock): read the head, insert at head+1.., queue the NOTIFY.
    first = await conn.fetchval(
        "WITH head AS (SELECT coalesce(max(position), 0) AS h,"
        "   greatest(clock_timestamp(), max(recorded_at)) AS now_ts"
        "   FROM (SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1) last),"
        " ins AS (INSERT INTO events (position, event_id, event_type, aggregate_id, aggregate_type, version, data,"
        "   metadata, correlation_id, causation_id, source_agent, recorded_at)"
        "   SELECT head.h + o, e, t, a, at, v, d::jsonb, m::jsonb, c, ca, s, head.now_ts"
        "   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],"
        "     $8::text[], $9::text[], $10::text[]) WITH ORDINALITY AS x(e, t, a, at, v, d, m, c, ca, s, o), head"
        "   RETURNING position)"
        " SELECT min(position) FROM ins, pg_notify($11, (SELECT max(position) FROM ins)::text)",
        [ev.event_id for ev in fresh],
        [ev.event_type for ev in fresh],
        [ev.aggregate_id for ev in fresh],
        [ev.aggregate_type for ev in fresh],
        versions,
        [json.dumps(ev.data) for ev in fresh],
        [json.dumps(ev.metadata) for ev in fresh],
        [ev.correlation_id for ev in fresh],
        [ev.causation_id for ev in fresh],
        [ev.source_agent for ev in fresh],
        NOTIFY_CHANNEL,
    )
    for i, r in enumerate(results_fresh):
        r.position = first + i
    by_id = {r.event_id: r for r in results_fresh}
    return [existing.get(ev.event_id or "") or by_id[ev.event_id or ""] for ev in events]


def _apply_file_event(ev: NewEvent, st: _Stream, streams: dict[str, _Stream], blob_sizes: dict[str, int]) -> None:
    """Validate a file event against the path's live state and update that state (mutates ev.data)."""
    if ev.event_type not in FILE_EVENTS:
        raise InvalidInput(f"aggregate_type 'file' only takes {', '.join(FILE_EVENTS)}; got {ev.event_type!r}")
    if ev.aggregate_type != "file":
        raise InvalidInput(f"{ev.event_type} needs aggregate_type 'file'")
    path = ev.aggregate_id
    if ev.data.get("path", path) != path:
        raise InvalidInput("data.path must equal aggregate_id")
    ev.data["path"] = path
    if ev.event_type in ("file_created", "file_modified"):
        sha = ev.data.get("sha256")
        if not isinstance(sha, str) or sha not in blob_sizes:
            raise InvalidInput(f"data.sha256 must name a stored blob (PUT /blobs/{{sha256}} first); got {sha!r}")
        if ev.event_type == "file_created" and st.live:
            raise Conflict(f"{path!r} already exists", current_version=st.version)
        if ev.event_type == "file_modified" and not st.live:
            raise NotFound(f"{path!r} does not exist")
        ev.data["size"] = blob_sizes[sha]
        st.live, st.sha256, st.size = True, sha, blob_sizes[sha]
    elif ev.event_type == "file_deleted":
        if not st.live:
            raise NotFound(f"{path!r} does not exist")
        ev.data.update(sha256=st.sha256, size=st.size)
        st.live, st.sha256, st.size = False, None, None
    else:  # file_moved
        new_path = ev.data["new_path"]
        if not st.live:
            raise NotFound(f"{path!r} does not exist")
        if new_path == path:
            raise InvalidInput("new_path equals path")
        target = streams[new_path]
        if target.aggregate_type != "file":
            raise Conflict(f"{new_path!r} is not a file aggregate")
        if target.live:
            raise Conflict(f"{new_path!r} already exists", current_version=target.version)
        target.live, target.sha256, target.size = True, st.sha256, st.size
        target.version += 1
        target.dirty = True
        ev.data.update(sha256=st.sha256, size=st.size, new_version=target.version)
        st.live, st.sha256, st.size = False, None, None


async def head_position(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")


async def position_at_time(conn: asyncpg.Connection | asyncpg.Pool, at: datetime) -> int:
    """The last position recorded at or before `at` (recorded_at is monotonic in position)."""
    return await conn.fetchval(
        "SELECT coalesce((SELECT position FROM events WHERE recorded_at <= $1 ORDER BY position DESC LIMIT 1), 0)", at
    )


@dataclass(frozen=True)
class EventFilter:
    """Which events a query returns: those matching every field that is set (from_position and times inclusive)."""

    event_type: str | None = None
    aggregate_id: str | None = None
    agent_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    from_position: int | None = None
    limit: int = 100


async def query(pool: asyncpg.Pool, f: EventFilter) -> list[asyncpg.Record]:
    """Events matching `f`, ascending by position, at most `f.limit`."""
    where: list[str] = []
    args: list[Any] = []
    for column, op, value in (
        ("event_type", "=", f.event_type),
        ("aggregate_id", "=", f.aggregate_id),
        ("source_agent", "=", f.agent_id),
        ("recorded_at", ">=", f.start_time),
        ("recorded_at", "<=", f.end_time),
        ("position", ">=", f.from_position),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} {op} ${len(args)}")
    args.append(f.limit)
    sql = f"SELECT {EVENT_COLUMNS} FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY position LIMIT ${len(args)}"
    return await pool.fetch(sql, *args)


async def path_history(pool: asyncpg.Pool, path: str, limit: int, up_to: int | None = None) -> list[asyncpg.Record]:
    """File events that touched `path` (as its own stream or as a move target), ascending."""
    return await pool.fetch(
        f"SELECT {EVENT_COLUMNS} FROM ("
        "  SELECT * FROM events WHERE aggregate_id = $1 AND event_type = ANY($2::text[])"
        "  UNION ALL"
        "  SELECT * FROM events WHERE event_type = 'file_moved' AND data->>'new_path' = $1"
        ") h WHERE position <= $3 ORDER BY position LIMIT $4",
        path,
        list(FILE_EVENTS),
        up_to if up_to is not None else 2**62,
        limit,
    )


async def file_at(pool: asyncpg.Pool, path: str, position: int) -> FileEntry | None:
    """The state of one file at `position` from its last event, without replaying the tree; None if absent."""
    row = await pool.fetchrow(
        f"SELECT {EVENT_COLUMNS} FROM ("
        "  (SELECT * FROM events WHERE aggregate_id = $1 AND event_type = ANY($2::text[]) AND position <= $3"
        "   ORDER BY position DESC LIMIT 1)"
        "  UNION ALL"
        "  (SELECT * FROM events WHERE event_type = 'file_moved' AND data->>'new_path' = $1 AND position <= $3"
        "   ORDER BY position DESC LIMIT 1)"
        ") h ORDER BY position DESC LIMIT 1",
        path,
        list(FILE_EVENTS),
        position,
    )
    if row is None:
        return None
    data = row["data"]
    if row["aggregate_id"] == path and row["event_type"] in ("file_deleted", "file_moved"):
        return None
    version = data.get("new_version", row["version"]) if row["aggregate_id"] != path else row["version"]
    return FileEntry(
        path,
        data["sha256"],
        data["size"],
        row["source_agent"],
        row["position"],
        version,
        row["recorded_at"].isoformat(),
    )
