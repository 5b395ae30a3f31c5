"""Projection snapshots: the tree at a position, stored so rebuild and time travel replay only the tail."""

from __future__ import annotations

import json
import zlib
from typing import Any

import asyncpg

from lighthouse_bridge.errors import Conflict
from lighthouse_bridge.store.tree import FileEntry, Tree


def encode(tree: Tree) -> bytes:
    rows = [[e.path, e.sha256, e.size, e.author, e.position, e.version, e.modified_at] for e in tree.files.values()]
    return zlib.compress(json.dumps({"position": tree.position, "files": rows}, separators=(",", ":")).encode(), 1)


def decode(blob: bytes) -> Tree:
    doc = json.loads(zlib.decompress(blob))
    return Tree(doc["position"], {r[0]: FileEntry(*r) for r in doc["files"]})


async def create(pool: asyncpg.Pool, name: str, tree: Tree, *, auto: bool = False) -> dict[str, Any]:
    row = await pool.fetchrow(
        "INSERT INTO snapshots (name, position, auto, file_count, tree) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (name) DO NOTHING RETURNING name, position, created_at, file_count, auto",
        name,
        tree.position,
        auto,
        len(tree.files),
        encode(tree),
    )
    if row is None:
        if auto:  # another replica took the same automatic snapshot
            return {}
        raise Conflict(f"snapshot {name!r} already exists")
    return _public(row)


async def prune_auto(pool: asyncpg.Pool, keep: int) -> int:
    """Delete all but the newest `keep` automatic snapshots; time travel before the oldest kept one replays more."""
    status = await pool.execute(
        "DELETE FROM snapshots WHERE auto AND id NOT IN"
        " (SELECT id FROM snapshots WHERE auto ORDER BY position DESC, id DESC LIMIT $1)",
        keep,
    )
    return int(status.split()[-1])


async def latest_at_or_before(pool: asyncpg.Pool, position: int) -> Tree | None:
    blob = await pool.fetchval(
        "SELECT tree FROM snapshots WHERE position <= $1 ORDER BY position DESC, id DESC LIMIT 1", position
    )
    return decode(blob) if blob is not None else None


async def latest_position(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT coalesce(max(position), 0) FROM snapshots")


async def list_all(pool: asyncpg.Pool, limit: int = 1000) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT name, position, created_at, file_count, auto FROM snapshots ORDER BY position DESC, id DESC LIMIT $1",
        limit,
    )
    return [_public(r) for r in rows]


def _public(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "name": row["name"],
        "position": row["position"],
        "created_at": row["created_at"].isoformat(),
        "file_count": row["file_count"],
        "auto": row["auto"],
    }
