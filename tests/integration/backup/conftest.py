"""Backup integration fixtures: the real CLI as a subprocess against real PostgreSQL and the S3 server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.harness.rss import Measured, run_measured
from tests.harness.services import ServiceEnv, fresh_database, run_sync, unique_name


@dataclass
class BackupTool:
    """``lighthouse-bridge backup|restore`` with this test's bucket, bridge name and source database."""

    env: dict[str, str]

    def run(self, *args: str, timeout: float = 900, **env: str) -> Measured:
        """Runs the CLI as a subprocess; the result carries its peak RSS (tests.harness.rss)."""
        return run_measured([sys.executable, "-m", "lighthouse_bridge.cli", *args], {**self.env, **env}, timeout)

    def ok(self, *args: str, **env: str) -> Measured:
        r = self.run(*args, **env)
        assert r.returncode == 0, f"{args} exited {r.returncode}:\n{r.stderr}"
        return r


@pytest.fixture
def backup_tool(services: ServiceEnv, s3_bucket: str, postgres_url: str) -> BackupTool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTHOUSE_")}
    env.update(services.env)
    env.update(
        {
            "LIGHTHOUSE_S3_BUCKET": s3_bucket,
            "LIGHTHOUSE_S3_PREFIX": "backups",
            "LIGHTHOUSE_NAMESPACE": "test",
            "LIGHTHOUSE_NAME": unique_name("bridge-"),
            "LIGHTHOUSE_DATABASE_URL": postgres_url,
            "LIGHTHOUSE_LOG_LEVEL": "info",
        }
    )
    return BackupTool(env)


@pytest.fixture
def target_url(services: ServiceEnv) -> Iterator[str]:
    """A second fresh database to restore into."""
    with fresh_database(services) as url:
        yield url


async def _exec(url: str, *sql: str) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        # fetch for queries; execute (simple protocol, several statements allowed) for everything else
        return [await (conn.fetch(s) if s.lstrip().upper().startswith("SELECT") else conn.execute(s)) for s in sql]
    finally:
        await conn.close()


def sql(url: str, *statements: str) -> list[Any]:
    return run_sync(_exec(url, *statements))


SCHEMA = """
CREATE TABLE events (
    position bigint PRIMARY KEY, event_type text NOT NULL, data jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE blobs (sha256 text PRIMARY KEY, content bytea NOT NULL);
CREATE TABLE notes (id bigserial PRIMARY KEY, body text);
CREATE VIEW event_types AS SELECT event_type, count(*) AS n FROM events GROUP BY 1;
CREATE FUNCTION high_water() RETURNS bigint LANGUAGE sql AS 'SELECT coalesce(max(position), 0) FROM events';
"""


def seed(url: str, events: int = 2000) -> None:
    sql(
        url,
        SCHEMA,
        f"INSERT INTO events (position, event_type, data) SELECT g, 'file_' || (g % 3), "
        f"jsonb_build_object('path', 'src/' || g || '.py', 'n', g) FROM generate_series(1, {events}) g",
        "INSERT INTO blobs SELECT md5(g::text) || md5((g * 7)::text), "
        "decode(repeat(md5(g::text), 8), 'hex') FROM generate_series(1, 300) g",
        "INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 17) g",
    )


def fingerprint(url: str) -> dict[str, Any]:
    """Row count and an order-independent content checksum of every table, plus sequences and the high-water."""
    tables = [
        r["t"] for r in sql(url, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")[0]
    ]
    out: dict[str, Any] = {}
    for t in tables:
        (row,) = sql(
            url,
            f"SELECT count(*) AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM \"{t}\" x",
        )[0]
        out[t] = (row["n"], row["h"])
    out["notes_id_seq"] = (
        sql(url, "SELECT last_value FROM notes_id_seq")[0][0]["last_value"] if "notes" in tables else None
    )
    out["high_water()"] = sql(url, "SELECT high_water() AS h")[0][0]["h"] if "events" in tables else None
    return out
