"""Content-addressed blobs: sha256 -> bytes, stored once however many events refer to them."""

from __future__ import annotations

import hashlib
import re

import asyncpg

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def put(conn: asyncpg.Pool | asyncpg.Connection, content: bytes) -> str:
    """Store content (idempotent) and return its sha256."""
    sha = sha256_hex(content)
    await conn.execute(
        "INSERT INTO blobs (sha256, size, content) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
        sha,
        len(content),
        content,
    )
    return sha


async def put_many(conn: asyncpg.Pool | asyncpg.Connection, contents: list[bytes]) -> list[str]:
    shas = [sha256_hex(c) for c in contents]
    await conn.execute(
        "INSERT INTO blobs (sha256, size, content)"
        " SELECT s, octet_length(c), c FROM unnest($1::text[], $2::bytea[]) AS x(s, c) ON CONFLICT DO NOTHING",
        shas,
        contents,
    )
    return shas


async def get(conn: asyncpg.Pool | asyncpg.Connection, sha: str) -> bytes | None:
    return await conn.fetchval("SELECT content FROM blobs WHERE sha256 = $1", sha)


async def get_many(conn: asyncpg.Pool | asyncpg.Connection, shas: list[str]) -> dict[str, bytes]:
    rows = await conn.fetch("SELECT sha256, content FROM blobs WHERE sha256 = ANY($1::text[])", shas)
    return {r["sha256"]: r["content"] for r in rows}


async def count(conn: asyncpg.Pool | asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM blobs")
