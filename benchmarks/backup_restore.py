"""Backup and restore throughput of `lighthouse-bridge backup|restore` (pg_dump streamed to S3 multipart, verified
restore) against plain `pg_dump` to a local file and `pg_restore` from it, on the same database in the same run;
plus the tool's peak RSS (it and its pg_dump/pg_restore/psql children).

    .venv/bin/python benchmarks/backup_restore.py [--size-mib 1024]

The database holds incompressible rows (1 KiB random bytea), so the dump is about as large as the data.
MB/s = database size (pg_database_size) / wall time. The S3 server is moto on loopback (in-memory, single process).
Peak RSS is VmHWM of each process (tests/harness/rss.py), polled every 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _bridge import append_results, fresh_database, services_env

from tests.harness.rss import run_measured

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000


async def _sql(url: str, *statements: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        out = None
        for s in statements:
            out = await conn.fetchval(s) if s.startswith("SELECT") else await conn.execute(s)
        return out
    finally:
        await conn.close()


def sql(url: str, *statements: str) -> object:
    return asyncio.run(_sql(url, *statements))


def generate(url: str, size_mib: int) -> int:
    rows = size_mib * 1024
    sql(
        url,
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "CREATE TABLE events (position bigint PRIMARY KEY, payload bytea NOT NULL)",
    )
    step = 100_000
    for start in range(1, rows + 1, step):
        end = min(rows, start + step - 1)
        sql(url, f"INSERT INTO events SELECT g, gen_random_bytes(1024) FROM generate_series({start}, {end}) g")
        print(f"  generated {end}/{rows} rows", file=sys.stderr)
    sql(url, "VACUUM ANALYZE events")
    return int(sql(url, "SELECT pg_database_size(current_database())"))  # type: ignore[arg-type]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS of the command and peak RSS of its largest child (bytes); exits on failure."""
    m = run_measured(cmd, env, timeout=7200)
    if m.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{m.stderr[-3000:]}")
    return m.seconds, m.peak_rss, m.children_peak_rss


def pg_tool(name: str) -> str:
    from lighthouse_bridge.backup.postgres import find_tool

    return find_tool(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="generated data size (default 1024)")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()
    env = {**os.environ, **services_env()}
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=env["LIGHTHOUSE_S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    lines: list[str] = []
    try:
        with (
            fresh_database(env) as src,
            fresh_database(env) as plain_dst,
            fresh_database(env) as tool_dst,
            tempfile.TemporaryDirectory() as tmp,
        ):
            print(f"Generating {args.size_mib} MiB", file=sys.stderr)
            db_size = generate(src, args.size_mib)
            pw_env = {**env, "PGPASSWORD": "lighthouse"}
            safe = lambda u: u.replace("lighthouse:lighthouse@", "lighthouse@")  # noqa: E731

            dump_file = Path(tmp) / "plain.dump"
            print("Plain pg_dump to local disk", file=sys.stderr)
            t_pd, rss_pd, _ = timed(
                [pg_tool("pg_dump"), "--format=custom", f"--file={dump_file}", f"--dbname={safe(src)}"], pw_env
            )
            plain_size = dump_file.stat().st_size
            print("Plain pg_restore from local disk", file=sys.stderr)
            t_pr, rss_pr, _ = timed(
                [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={safe(plain_dst)}", str(dump_file)],
                pw_env,
            )
            dump_file.unlink()

            tool_env = {
                **env,
                "LIGHTHOUSE_S3_BUCKET": bucket,
                "LIGHTHOUSE_S3_PREFIX": "bench",
                "LIGHTHOUSE_NAMESPACE": "bench",
                "LIGHTHOUSE_NAME": "backup-restore",
                "LIGHTHOUSE_DATABASE_URL": src,
                "LIGHTHOUSE_LOG_LEVEL": "warning",
            }
            cli = [sys.executable, "-m", "lighthouse_bridge.cli"]
            print("lighthouse-bridge backup", file=sys.stderr)
            t_b, rss_b, rss_b_child = timed([*cli, "backup"], tool_env)
            print("lighthouse-bridge restore", file=sys.stderr)
            t_r, rss_r, rss_r_child = timed(
                [*cli, "restore", "--from", "latest"], {**tool_env, "LIGHTHOUSE_DATABASE_URL": tool_dst}
            )
            tool_size = sum(
                o["Size"]
                for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
                if o["Key"].endswith("database.dump")
            )
            rows_src = sql(src, "SELECT count(*) FROM events")
            rows_dst = sql(tool_dst, "SELECT count(*) FROM events")
            assert rows_src == rows_dst, (rows_src, rows_dst)

        mbs = lambda t: db_size / MB / t  # noqa: E731
        lines = [
            f"- database: {db_size / 2**20:,.0f} MiB (pg_database_size), {rows_src:,} rows of 1 KiB random bytea; "
            f"dump {plain_size / 2**20:,.0f} MiB (plain) / {tool_size / 2**20:,.0f} MiB (tool)",
            f"- plain pg_dump -Fc to local file: {t_pd:.1f} s = {mbs(t_pd):.1f} MB/s "
            f"(peak RSS {rss_pd / 2**20:.0f} MiB)",
            f"- plain pg_restore from local file: {t_pr:.1f} s = {mbs(t_pr):.1f} MB/s "
            f"(peak RSS {rss_pr / 2**20:.0f} MiB)",
            f"- lighthouse-bridge backup (pg_dump -> S3 multipart, moto on loopback): {t_b:.1f} s = "
            f"{mbs(t_b):.1f} MB/s, "
            f"ratio to plain {t_pd / t_b:.2f}x, peak RSS {rss_b / 2**20:.0f} MiB "
            f"(+ pg_dump child {rss_b_child / 2**20:.0f} MiB)",
            f"- lighthouse-bridge restore (verify sha256 pass + pg_restore|psql in one transaction + count check): "
            f"{t_r:.1f} s = {mbs(t_r):.1f} MB/s, ratio to plain {t_pr / t_r:.2f}x, peak RSS {rss_r / 2**20:.0f} MiB "
            f"(+ largest child {rss_r_child / 2**20:.0f} MiB)",
        ]
    finally:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)
    if args.no_record:
        print("\n".join(lines))
        return
    append_results("backup_restore", f"python benchmarks/backup_restore.py --size-mib {args.size_mib}", lines)


if __name__ == "__main__":
    main()
