"""PostgreSQL side of backups: tool discovery, a consistent exported snapshot with its statistics, pg_dump streaming
and the restore pipeline (pg_restore | psql, one transaction).

The statistics (row counts of every table in schema ``public`` and the event store's high-water ``max(position)``)
are read inside the very snapshot pg_dump dumps (``pg_export_snapshot`` + ``pg_dump --snapshot``), so a restore can
be checked against them exactly even while the bridge keeps writing.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import BackupError, ConfigError, RefusedError
from .manifest import DatabaseStats

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
_SYSTEM_FILTER = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"


# ---------------------------------------------------------------- connection and tools
@dataclass(frozen=True)
class PgTarget:
    """A database URL split so the password travels in the environment, never on a command line."""

    url: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
            raise ConfigError("database URL must look like postgresql://user:password@host:port/database")

    @property
    def dbname(self) -> str:
        return unquote(urlsplit(self.url).path.lstrip("/")) or (urlsplit(self.url).username or "postgres")

    @property
    def safe_url(self) -> str:
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        password = urlsplit(self.url).password
        if password is not None:
            env["PGPASSWORD"] = unquote(password)
        env.setdefault("PGCONNECT_TIMEOUT", "10")
        return env


def find_tool(name: str) -> str:
    """``$LIGHTHOUSE_PG_BINDIR/name``, else the newest Debian /usr/lib/postgresql/*/bin/name, else $PATH."""
    bindir = os.environ.get("LIGHTHOUSE_PG_BINDIR")
    candidates = [os.path.join(bindir, name)] if bindir else []
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0),
        reverse=True,
    )
    candidates += versions
    which = shutil.which(name)
    if which:
        candidates.append(which)
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    raise ConfigError(
        f"{name} not found: install the PostgreSQL client (Debian: postgresql-client) or set LIGHTHOUSE_PG_BINDIR"
    )


def tool_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"(\d+(?:\.\d+)+|\d+)", out)
    if not m:
        raise ConfigError(f"cannot read the version of {path}: {out.strip()!r}")
    return m.group(1)


def major(version: str) -> int:
    return int(version.split(".")[0].split()[0])


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- statistics
async def _connect(target: PgTarget) -> Any:
    import asyncpg

    try:
        return await asyncpg.connect(target.url, timeout=15)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BackupError(f"cannot connect to PostgreSQL {target.safe_url}: {exc}") from None


async def wait_ready(target: PgTarget, wait_seconds: float, interval: float = 2.0) -> int:
    """Retry connecting until PostgreSQL accepts connections or ``wait_seconds`` pass, for a database that is
    still starting (a new StatefulSet initialising, a failover). Returns the number of failed attempts. Errors that
    waiting cannot fix (wrong password, no such database) fail at once."""
    import asyncpg

    transient = (
        OSError,
        TimeoutError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.ConnectionDoesNotExistError,
    )
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    failures = 0
    while True:
        try:
            conn = await asyncpg.connect(target.url, timeout=15)
        except transient as exc:
            failures += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackupError(
                    f"PostgreSQL {target.safe_url} did not accept connections within {wait_seconds:g}s "
                    f"(last error: {type(exc).__name__}: {exc})"
                ) from None
            log.info("Waiting for PostgreSQL url=%s attempt=%d error=%s", target.safe_url, failures, exc)
            await asyncio.sleep(min(interval, left))
            continue
        except asyncpg.PostgresError as exc:
            raise BackupError(f"cannot connect to PostgreSQL {target.safe_url}: {exc}") from None
        await conn.close()
        if failures:
            log.info("PostgreSQL is ready url=%s after_attempts=%d", target.safe_url, failures)
        return failures


async def collect_stats(conn: Any, dbname: str) -> DatabaseStats:
    """Row counts of every table in schema public and the event store's high-water mark."""
    rows = await conn.fetch(
        "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1, 2"
    )
    tables: dict[str, int] = {}
    for r in rows:
        tables[f"{r['schema']}.{r['name']}"] = int(
            await conn.fetchval(f"SELECT count(*) FROM {quote_ident(r['schema'])}.{quote_ident(r['name'])}")
        )
    has_events = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = 'events' AND column_name = 'position')"
    )
    high_water = None
    if has_events:
        high_water = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM public.events"))
    return DatabaseStats(name=dbname, high_water=high_water, tables=tables)


@dataclass(frozen=True)
class Snapshot:
    id: str
    stats: DatabaseStats
    server_version: str


@asynccontextmanager
async def exported_snapshot(target: PgTarget) -> AsyncIterator[Snapshot]:
    """Holds a REPEATABLE READ transaction whose snapshot pg_dump imports; yields it with its statistics."""
    conn = await _connect(target)
    try:
        tr = conn.transaction(isolation="repeatable_read", readonly=True)
        await tr.start()
        snapshot_id = await conn.fetchval("SELECT pg_export_snapshot()")
        stats = await collect_stats(conn, target.dbname)
        server_version = str(await conn.fetchval("SHOW server_version")).split()[0]
        yield Snapshot(id=snapshot_id, stats=stats, server_version=server_version)
        await tr.rollback()
    finally:
        await conn.close()


async def current_stats(target: PgTarget) -> DatabaseStats:
    conn = await _connect(target)
    try:
        return await collect_stats(conn, target.dbname)
    finally:
        await conn.close()


async def user_objects(target: PgTarget) -> tuple[list[str], int]:
    """Up to 5 example names of user relations/functions in the target, and their total count; plus server version."""
    conn = await _connect(target)
    try:
        rows = await conn.fetch(
            "SELECT n.nspname || '.' || c.relname AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE {_SYSTEM_FILTER} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
            "UNION ALL SELECT n.nspname || '.' || p.proname || '()' FROM pg_proc p "
            f"JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_SYSTEM_FILTER} ORDER BY 1"
        )
        version_num = int(await conn.fetchval("SHOW server_version_num"))
        return [r["name"] for r in rows], version_num
    finally:
        await conn.close()


async def user_schemas(target: PgTarget) -> list[str]:
    conn = await _connect(target)
    try:
        rows = await conn.fetch(f"SELECT n.nspname FROM pg_namespace n WHERE {_SYSTEM_FILTER} ORDER BY 1")
        return [r["nspname"] for r in rows]
    finally:
        await conn.close()


def compare_stats(expected: DatabaseStats, actual: DatabaseStats) -> list[str]:
    """Human-readable differences (empty when the restore matches the manifest)."""
    problems = []
    if expected.high_water != actual.high_water:
        problems.append(f"event store high-water: manifest {expected.high_water}, restored {actual.high_water}")
    for table in sorted(set(expected.tables) | set(actual.tables)):
        want, got = expected.tables.get(table), actual.tables.get(table)
        if want != got:
            problems.append(
                f"{table}: manifest {want if want is not None else 'absent'} rows, "
                f"restored {got if got is not None else 'absent'}"
            )
    return problems


# ---------------------------------------------------------------- processes
class _StderrTail(threading.Thread):
    """Drains a child's stderr (so it never blocks) and keeps the last few KiB for the error message."""

    def __init__(self, stream: IO[bytes], limit: int = 16 * 1024) -> None:
        super().__init__(daemon=True)
        self.stream, self.limit, self.data = stream, limit, b""

    def run(self) -> None:
        while chunk := self.stream.read(4096):
            self.data = (self.data + chunk)[-self.limit :]

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace").strip()


def dump(target: PgTarget, snapshot_id: str, sink: Callable[[bytes], None], compress: int | None = None) -> None:
    """Runs pg_dump (custom format) in the exported snapshot and hands its output to ``sink`` chunk by chunk."""
    cmd = [
        find_tool("pg_dump"),
        "--format=custom",
        "--no-password",
        f"--snapshot={snapshot_id}",
        f"--dbname={target.safe_url}",
    ]
    if compress is not None:
        cmd.append(f"--compress={compress}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=target.env())
    assert proc.stdout is not None and proc.stderr is not None
    tail = _StderrTail(proc.stderr)
    tail.start()
    try:
        while chunk := proc.stdout.read(CHUNK):
            sink(chunk)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    rc = proc.wait()
    tail.join(10)
    if rc != 0:
        raise BackupError(f"pg_dump failed (exit {rc}): {tail.text or 'no output'}")


def restore(target: PgTarget, feed: Callable[[Callable[[bytes], None]], None], preamble: list[str]) -> None:
    """Streams an archive through ``pg_restore -f -`` into ``psql``, all inside one transaction.

    ``feed(write)`` pushes the archive bytes. ``preamble`` SQL (e.g. the --replace drop) runs first in the same
    transaction. COMMIT is sent only after pg_restore exited 0 and the feed finished; on any failure psql is killed,
    the server rolls back, and the database is left as it was. (psql's own --single-transaction would COMMIT a
    truncated script at EOF, hence the explicit BEGIN/COMMIT.)
    """
    restore_cmd = [find_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--file=-"]
    psql_cmd = [
        find_tool("psql"),
        "--no-psqlrc",
        "--quiet",
        "--no-password",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={target.safe_url}",
        "--file=-",
    ]
    psql = subprocess.Popen(
        psql_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=target.env()
    )
    pgr = subprocess.Popen(restore_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert psql.stdin and psql.stderr and pgr.stdin and pgr.stdout and pgr.stderr
    tails = _StderrTail(pgr.stderr), _StderrTail(psql.stderr)
    for t in tails:
        t.start()
    pump_error: list[BaseException] = []

    def pump() -> None:  # pg_restore's SQL -> psql, one chunk at a time
        assert pgr.stdout and psql.stdin
        try:
            psql.stdin.write(("BEGIN;\n" + "".join(f"{sql};\n" for sql in preamble)).encode())
            while chunk := pgr.stdout.read(CHUNK):
                psql.stdin.write(chunk)
        except BaseException as exc:
            pump_error.append(exc)
            pgr.kill()

    pumper = threading.Thread(target=pump, name="restore-pump", daemon=True)
    pumper.start()
    feed_error: BaseException | None = None
    stdin = pgr.stdin

    def write(chunk: bytes) -> None:
        stdin.write(chunk)

    try:
        feed(write)
    except BrokenPipeError:
        pass  # pg_restore stopped reading: its exit code and stderr say why
    except BaseException as exc:
        feed_error = exc
        pgr.kill()
    finally:
        try:
            pgr.stdin.close()
        except BrokenPipeError:
            pass
    rc_restore = pgr.wait()
    pumper.join()
    ok = feed_error is None and not pump_error and rc_restore == 0
    if ok:
        try:
            psql.stdin.write(b"COMMIT;\n")
            psql.stdin.close()
        except BrokenPipeError:
            ok = False
    if not ok:
        psql.kill()  # the open transaction dies with the connection: nothing was committed
    rc_psql = psql.wait()
    for t in tails:
        t.join(10)
    if feed_error is not None:
        raise feed_error
    if not ok or rc_psql != 0:
        detail = "; ".join(x for x in (tails[0].text, tails[1].text) if x) or "no output"
        if pump_error and not isinstance(pump_error[0], BrokenPipeError):
            detail = f"{pump_error[0]!r}; {detail}"
        raise BackupError(
            f"restore failed (pg_restore exit {rc_restore}, psql exit {rc_psql}); "
            f"the transaction was rolled back: {detail}"
        )


def replace_preamble(schemas: list[str], server_version_num: int) -> list[str]:
    """SQL that empties the database (every user schema) and recreates a default ``public`` schema."""
    stmts = [f"DROP SCHEMA IF EXISTS {quote_ident(s)} CASCADE" for s in schemas]
    if server_version_num >= 150000:
        stmts += ["CREATE SCHEMA public AUTHORIZATION pg_database_owner", "GRANT USAGE ON SCHEMA public TO PUBLIC"]
    else:
        stmts += ["CREATE SCHEMA public", "GRANT ALL ON SCHEMA public TO PUBLIC"]
    return stmts


def check_empty(names: list[str], replace: bool, dbname: str) -> None:
    if names and not replace:
        sample = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise RefusedError(
            f"database {dbname!r} is not empty ({len(names)} objects: {sample}); "
            "restore into an empty database or pass --replace to drop its contents"
        )
