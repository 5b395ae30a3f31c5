"""asyncpg pool, connection errors (classified and translated, once) and versioned migrations.

Migrations are numbered SQL files in migrations/ (NNNN_name.sql). They run at start inside one transaction each,
under a session-level pg_advisory_lock, so several replicas starting together apply each file exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable
from importlib import resources
from typing import Any, TypeVar

import asyncpg

from lighthouse_bridge import metrics
from lighthouse_bridge.errors import NotFound, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x4C48_0001  # pg_advisory_lock key for migrations ("LH" + 1)
INGEST_LOCK = 0x4C48_0002  # initial project ingest
COMMIT_ORDER_LOCK = 0x4C48_0003  # transaction-scoped: assigns global positions in commit order (see events.py)
NOTIFY_CHANNEL = "lighthouse_events"

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,  # "connection is closed", pool closing
    asyncpg.exceptions.InternalClientError,
)


def is_connection_error(exc: BaseException) -> bool:
    """True when the failure means PostgreSQL is unreachable (-> 503), not that the request was wrong."""
    return isinstance(exc, _CONNECTION_ERRORS)


def unavailable(exc: BaseException, operation: str, advice: str | None = None, **extra: Any) -> StoreUnavailable | None:
    """The one translation of a PostgreSQL connection failure: a StoreUnavailable (503 over HTTP: nothing was
    acknowledged, the client may retry), counted per operation. None when `exc` is not a connection failure."""
    if not is_connection_error(exc):
        return None
    metrics.STORE_FAILURES.labels(operation).inc()
    detail = f"PostgreSQL unavailable during {operation}" + (f"; {advice}" if advice else "")
    return StoreUnavailable(f"{detail}: {exc!r}", **extra)


async def guard(operation: str, aw: Awaitable[T], advice: str | None = None, **extra: Any) -> T:
    """Await a store call; a connection failure becomes `unavailable(...)`."""
    try:
        return await aw
    except Exception as exc:
        translated = unavailable(exc, operation, advice, **extra)
        if translated is not None:
            raise translated from exc
        raise


def parse_id(row_id: str, what: str) -> uuid.UUID:
    """A row id from a client: a malformed one names no row (NotFound, like an unknown one)."""
    try:
        return uuid.UUID(row_id)
    except ValueError:
        raise NotFound(f"no {what} {row_id!r}") from None


async def fetch_by_id(conn: asyncpg.Pool | asyncpg.Connection, sql: str, row_id: str, what: str) -> asyncpg.Record:
    """The row `sql` selects for the id ($1); NotFound for a malformed or unknown id."""
    row = await conn.fetchrow(sql, parse_id(row_id, what))
    if row is None:
        raise NotFound(f"no {what} {row_id!r}")
    return row


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int, max_size: int, op_timeout: float) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=op_timeout,
        timeout=op_timeout,  # connect timeout for new pool connections
        init=_init_connection,
        max_inactive_connection_lifetime=60.0,
    )


async def connect_with_retry(
    dsn: str, *, min_size: int, max_size: int, op_timeout: float, deadline: float
) -> asyncpg.Pool:
    """Retry the first connection until `deadline` seconds pass: PostgreSQL may start after the bridge."""
    start = time.monotonic()
    delay = 0.2
    while True:
        try:
            return await create_pool(dsn, min_size=min_size, max_size=max_size, op_timeout=op_timeout)
        except Exception as exc:  # asyncpg raises many types on refused/auth/DNS errors
            if not is_connection_error(exc) or time.monotonic() - start + delay > deadline:
                raise
            log.warning("Waiting for PostgreSQL error=%r retry_in=%.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) sorted by version."""
    out = []
    for entry in resources.files("lighthouse_bridge.store").joinpath("migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must be 1..N without gaps, found {versions}")
    return out


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied_now: list[int] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                log.info("Applied migration version=%d name=%s", version, name)
                applied_now.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now
