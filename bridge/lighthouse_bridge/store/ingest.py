"""First-start ingest of LIGHTHOUSE_PROJECT_PATH as file_created events, exactly once across replicas.

Replicas serialise on a session advisory lock; the one that gets it first ingests and records `initial_ingest` in
bridge_meta, the others then see the marker and skip. Event ids are derived from (path, sha256), so a crash halfway
and a retry append only what is missing (idempotent append) instead of duplicating files.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import asyncpg

from lighthouse_bridge.errors import BridgeError
from lighthouse_bridge.paths import validate_path
from lighthouse_bridge.store import blobs, events
from lighthouse_bridge.store.db import INGEST_LOCK

log = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("6f1c1a4e-3b1e-4d8e-9a59-6c6967687468")
BATCH = 500


def scan(root: Path, exclude: list[str], max_bytes: int, max_path_bytes: int) -> list[tuple[str, Path]]:
    """Regular files under root as (relative posix path, absolute path), sorted; symlinks and oversize skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in exclude and not (Path(dirpath) / d).is_symlink())
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            try:
                validate_path(rel, max_path_bytes)
            except BridgeError:
                log.warning("Skipping file with invalid path path=%r", rel)
                continue
            if full.is_symlink() or not full.is_file():
                continue
            if full.stat().st_size > max_bytes:
                log.warning("Skipping file over the size limit path=%s size=%d", rel, full.stat().st_size)
                continue
            out.append((rel, full))
    return out


async def ingest_once(
    pool: asyncpg.Pool, root: Path, *, exclude: list[str], max_file_bytes: int, max_path_bytes: int
) -> int:
    """Ingest the project tree at `root` if it was never ingested; returns the number of events appended."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", INGEST_LOCK)
        try:
            if await conn.fetchval("SELECT 1 FROM bridge_meta WHERE key = 'initial_ingest'"):
                return 0
            if await conn.fetchval("SELECT 1 FROM events WHERE aggregate_type = 'file' LIMIT 1"):
                log.info("Store already holds files; skipping initial ingest path=%s", root)
                await _mark(conn, root, 0)
                return 0
            files = scan(root, exclude, max_file_bytes, max_path_bytes)
            appended = 0
            for i in range(0, len(files), BATCH):
                chunk = files[i : i + BATCH]
                contents = [p.read_bytes() for _, p in chunk]
                shas = await blobs.put_many(conn, contents)
                batch = [
                    events.NewEvent(
                        event_type="file_created",
                        aggregate_id=rel,
                        aggregate_type="file",
                        data={"path": rel, "sha256": sha},
                        metadata={"source": "initial_ingest"},
                        source_agent="lighthouse-ingest",
                        event_id=str(uuid.uuid5(NAMESPACE, f"{rel}\0{sha}")),
                    )
                    for (rel, _), sha in zip(chunk, shas, strict=True)
                ]
                results = await events.append(pool, batch, max_path_bytes=max_path_bytes)
                appended += sum(1 for r in results if not r.duplicate)
            await _mark(conn, root, len(files))
            log.info("Ingested project path=%s files=%d events=%d", root, len(files), appended)
            return appended
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", INGEST_LOCK)


async def _mark(conn: asyncpg.Connection, root: Path, files: int) -> None:
    await conn.execute(
        "INSERT INTO bridge_meta (key, value) VALUES ('initial_ingest', $1) ON CONFLICT (key) DO NOTHING",
        {"path": str(root), "files": files},
    )
