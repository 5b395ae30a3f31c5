"""The annotations table: rows written inside an event append's transaction (see store/events.py TxHook), so the
table and the shadow_annotation_* events never disagree."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

COLUMNS = "id, path, line, end_line, message, category, severity, author, anchor, created_at, updated_at"


async def get(conn: asyncpg.Pool | asyncpg.Connection, aid: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM annotations WHERE id = $1", aid)


async def of_path(conn: asyncpg.Pool | asyncpg.Connection, path: str | None, limit: int) -> list[asyncpg.Record]:
    """Annotations of one path (by line), or of every path (by path, line)."""
    if path is not None:
        return await conn.fetch(
            f"SELECT {COLUMNS} FROM annotations WHERE path = $1 ORDER BY line, created_at LIMIT $2", path, limit
        )
    return await conn.fetch(f"SELECT {COLUMNS} FROM annotations ORDER BY path, line, created_at LIMIT $1", limit)


async def by_authors(conn: asyncpg.Pool | asyncpg.Connection, path: str, authors: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, author FROM annotations WHERE path = $1 AND author = ANY($2::text[])", path, authors
    )


async def insert(
    conn: asyncpg.Connection,
    aid: uuid.UUID,
    path: str,
    line: int,
    end_line: int,
    message: str,
    category: str,
    severity: str,
    author: str,
    anchor: dict[str, Any],
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO annotations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now())"
        f" RETURNING {COLUMNS}",
        aid,
        path,
        line,
        end_line,
        message,
        category,
        severity,
        author,
        anchor,
    )


async def update(
    conn: asyncpg.Connection,
    aid: uuid.UUID,
    line: int,
    end_line: int,
    message: str,
    category: str,
    severity: str,
    author: str,
    anchor: dict[str, Any],
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE annotations SET line = $2, end_line = $3, message = $4, category = $5, severity = $6,"
        f" author = $7, anchor = $8, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        aid,
        line,
        end_line,
        message,
        category,
        severity,
        author,
        anchor,
    )


async def delete(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> int:
    """Delete these rows; returns how many existed."""
    status = await conn.execute("DELETE FROM annotations WHERE id = ANY($1::uuid[])", ids)
    return int(status.split()[-1])
