"""A database far larger than the memory bound streams through backup and restore (peak RSS asserted).

The 1 GiB run with throughput figures is benchmarks/backup_restore.py; this is the same path at 200 MB.
"""

from __future__ import annotations

import json

from tests.integration.backup.conftest import BackupTool, sql

DB_BYTES = 200 * 1024 * 1024
RSS_BOUND = 120 * 1024 * 1024  # the tool process (VmHWM); the interpreter with boto3 and asyncpg alone is ~65 MB
MEASURED_FLOOR = 30 * 1024 * 1024  # below this the measurement itself failed (the interpreter is larger)


def generate(url: str, size: int) -> None:
    """Incompressible rows (random bytea), so the dump is as large as the data."""
    rows = size // 1024
    sql(
        url,
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "CREATE TABLE events (position bigint PRIMARY KEY, payload bytea NOT NULL)",
        f"INSERT INTO events SELECT g, gen_random_bytes(1024) FROM generate_series(1, {rows}) g",
        "ANALYZE events",
    )


def test_large_database_streams_in_bounded_memory(backup_tool: BackupTool, postgres_url: str, target_url: str) -> None:
    generate(postgres_url, DB_BYTES)
    db_size = sql(postgres_url, "SELECT pg_database_size(current_database()) AS s")[0][0]["s"]
    assert db_size >= DB_BYTES

    backup = backup_tool.ok("backup", "--json")
    manifest = json.loads(backup.stdout)
    dump_size = manifest["objects"][0]["size"]
    assert dump_size >= DB_BYTES  # random bytes do not compress: the stream really is this large
    assert MEASURED_FLOOR < backup.peak_rss < RSS_BOUND, f"backup peak RSS {backup.peak_rss / 2**20:.0f} MiB"

    restore = backup_tool.ok("restore", "--from", manifest["id"], LIGHTHOUSE_DATABASE_URL=target_url)
    assert MEASURED_FLOOR < restore.peak_rss < RSS_BOUND, f"restore peak RSS {restore.peak_rss / 2**20:.0f} MiB"
    (src,) = sql(
        postgres_url, "SELECT count(*) AS n, md5(string_agg(md5(payload), '' ORDER BY position)) AS h FROM events"
    )[0]
    (dst,) = sql(
        target_url, "SELECT count(*) AS n, md5(string_agg(md5(payload), '' ORDER BY position)) AS h FROM events"
    )[0]
    assert (dst["n"], dst["h"]) == (src["n"], src["h"])
    print(
        f"db={db_size / 2**20:.0f}MiB dump={dump_size / 2**20:.0f}MiB "
        f"backup_rss={backup.peak_rss / 2**20:.0f}MiB (pg_dump {backup.children_peak_rss / 2**20:.0f}MiB) "
        f"restore_rss={restore.peak_rss / 2**20:.0f}MiB (children {restore.children_peak_rss / 2**20:.0f}MiB)"
    )
