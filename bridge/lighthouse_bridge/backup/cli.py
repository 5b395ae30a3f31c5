"""``lighthouse-bridge backup [list|prune]`` and ``lighthouse-bridge restore``, added by ``add_subcommands``.

Exit codes: 0 ok, 1 failure, 2 configuration, 3 S3 unreachable or refusing, 4 integrity (checksum or count
mismatch), 5 refused (non-empty database without --replace).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from lighthouse_bridge.core.config import BackupEnv

log = logging.getLogger(__name__)
S = argparse.SUPPRESS  # flags left out do not shadow the environment (and do not clobber a parent's value)


def _s3_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("S3 and identity (flags override the environment)")
    g.add_argument("--bucket", default=S, help="bucket (env LIGHTHOUSE_S3_BUCKET)")
    g.add_argument("--prefix", default=S, help="key prefix (env LIGHTHOUSE_S3_PREFIX)")
    g.add_argument("--endpoint", default=S, help="S3 endpoint URL (env LIGHTHOUSE_S3_ENDPOINT; unset: AWS)")
    g.add_argument("--region", default=S, help="region (env LIGHTHOUSE_S3_REGION, AWS_REGION)")
    g.add_argument(
        "--path-style",
        dest="path_style",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="path-style addressing (env LIGHTHOUSE_S3_PATH_STYLE; default: on with a custom endpoint)",
    )
    g.add_argument("--namespace", default=S, help="bridge namespace (env LIGHTHOUSE_NAMESPACE)")
    g.add_argument("--name", default=S, help="bridge name (env LIGHTHOUSE_NAME)")
    g.add_argument("--json", action="store_true", default=S, help="print the result as JSON on stdout")


def _db_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url", dest="database_url", default=S, help="PostgreSQL URL (env LIGHTHOUSE_DATABASE_URL)"
    )


def _wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait-for-database",
        dest="wait_for_database",
        type=int,
        default=S,
        metavar="SECONDS",
        help="wait up to SECONDS for PostgreSQL to accept connections (env "
        "LIGHTHOUSE_DATABASE_WAIT_SECONDS, default 0)",
    )


def _retention_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep-last",
        dest="keep_last",
        type=int,
        default=S,
        help="keep the N newest complete backups (env LIGHTHOUSE_BACKUP_KEEP_LAST)",
    )
    p.add_argument(
        "--max-age",
        dest="max_age",
        default=S,
        help="delete complete backups older than e.g. 30d, 12h (env LIGHTHOUSE_BACKUP_MAX_AGE)",
    )


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    b = subparsers.add_parser(
        "backup",
        help="back up the database and configuration to S3 (see also: backup list, backup prune)",
        description="Streams a consistent pg_dump and the configuration to "
        "s3://BUCKET/PREFIX/NAMESPACE/NAME/<UTC timestamp>/, writes manifest.json last, then applies "
        "retention.",
    )
    _s3_flags(b)
    _db_flag(b)
    _wait_flag(b)
    _retention_flags(b)
    b.add_argument(
        "--config-file",
        dest="config_file",
        action="append",
        default=S,
        metavar="PATH",
        help="also store this file (repeatable; env LIGHTHOUSE_BACKUP_CONFIG_FILES, ':'-separated)",
    )
    b.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="include a Redis snapshot of the bridge's keys, labelled cache (env LIGHTHOUSE_BACKUP_CACHE)",
    )
    b.add_argument(
        "--part-size-mib",
        dest="part_size_mib",
        type=int,
        default=S,
        help="multipart part size, >= 5 (env LIGHTHOUSE_BACKUP_PART_SIZE_MIB, default 8)",
    )
    b.add_argument("--compress", type=int, default=S, help="pg_dump compression level 0-9 (default: pg_dump's)")
    b.set_defaults(func=_run(cmd_backup), handler=_run(cmd_backup))
    bsub = b.add_subparsers(dest="backup_command", metavar="{list,prune}")
    ls = bsub.add_parser("list", help="list the backups of this bridge, oldest first")
    _s3_flags(ls)
    ls.set_defaults(func=_run(cmd_list), handler=_run(cmd_list))
    pr = bsub.add_parser("prune", help="apply retention now (never deletes the newest complete backup)")
    _s3_flags(pr)
    _retention_flags(pr)
    pr.set_defaults(func=_run(cmd_prune), handler=_run(cmd_prune))

    r = subparsers.add_parser(
        "restore",
        help="restore the database from a backup",
        description="Verifies every object's sha256 before changing anything, restores into an empty database in "
        "one transaction (or replaces its contents with --replace), then checks the event store's "
        "high-water mark and every table's row count against the manifest.",
    )
    r.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="ID|latest",
        help="backup id (a UTC timestamp such as 20260102T030405Z) or 'latest'",
    )
    r.add_argument("--replace", action="store_true", help="drop the database's current contents (same transaction)")
    _wait_flag(r)
    _s3_flags(r)
    _db_flag(r)
    r.set_defaults(func=_run(cmd_restore), handler=_run(cmd_restore))


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=BackupEnv().log_level.upper(),
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns BackupError into one line on stderr and its exit code."""

    def wrapper(args: argparse.Namespace) -> int:
        from .errors import BackupError

        _setup_logging()
        try:
            return fn(args)
        except BackupError as exc:
            print(f"lighthouse-bridge {args.command}: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except Exception as exc:  # a bug or an unforeseen failure: keep the traceback for the report
            log.exception("Unexpected failure")
            print(f"lighthouse-bridge {args.command}: error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"lighthouse-bridge {args.command}: interrupted; nothing partial was published", file=sys.stderr)
            return 130

    wrapper.__name__ = fn.__name__
    return wrapper


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text)


def _write_result(path: str | None, backup_id: str, completed_at: str, size: int) -> None:
    """The operator reads which backup a Job made from its pod's termination message: the CronJob sets
    LIGHTHOUSE_BACKUP_RESULT_FILE=/dev/termination-log. A small JSON object, far below the kubelet's 4 KiB cap."""
    if not path:
        return
    try:
        with open(path, "w") as f:
            json.dump({"id": backup_id, "time": completed_at, "size": size}, f, separators=(",", ":"))
    except OSError as exc:  # the backup itself is complete: only its report is lost
        log.warning("Could not write the result file path=%s error=%s", path, exc)


def cmd_backup(args: argparse.Namespace) -> int:
    if getattr(args, "backup_command", None):  # pragma: no cover - subparsers dispatch their own func
        return 2
    from .runner import create_backup
    from .settings import resolve

    env = BackupEnv()
    manifest = create_backup(resolve(args, env))
    _write_result(env.backup_result_file, manifest.id, manifest.completed_at, manifest.total_size)
    _emit(
        args,
        json.loads(manifest.to_json()),
        f"{manifest.id} complete size={manifest.total_size} high_water={manifest.database.high_water} "
        f"duration={manifest.duration_seconds:.1f}s",
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .runner import catalog, read_manifest
    from .settings import resolve
    from .storage import Storage

    settings = resolve(args)
    storage = Storage(settings.s3)
    storage.check()
    rows = []
    for e in catalog(storage, settings.layout):
        row: dict[str, Any] = {
            "id": e.id,
            "time": e.time.isoformat(),
            "complete": e.complete,
            "size": e.size,
            "objects": e.objects,
            "high_water": None,
            "duration_seconds": None,
        }
        if e.complete:
            m = read_manifest(storage, settings.layout, e.id)
            row["high_water"], row["duration_seconds"] = m.database.high_water, m.duration_seconds
        rows.append(row)
    lines = [f"{'ID':<18} {'STATUS':<10} {'SIZE':>14} {'HIGH-WATER':>12} {'DURATION':>9}"]
    for row in rows:
        hw = "-" if row["high_water"] is None else str(row["high_water"])
        dur = "-" if row["duration_seconds"] is None else f"{row['duration_seconds']:.1f}s"
        lines.append(
            f"{row['id']:<18} {'complete' if row['complete'] else 'incomplete':<10} {row['size']:>14} {hw:>12} {dur:>9}"
        )
    _emit(args, rows, "\n".join(lines))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .runner import prune
    from .settings import resolve
    from .storage import Storage

    settings = resolve(args)
    if not settings.policy.enabled:
        raise ConfigError("no retention set: pass --keep-last and/or --max-age")
    storage = Storage(settings.s3)
    storage.check()
    deleted = prune(storage, settings.layout, settings.policy)
    _emit(args, {"deleted": deleted}, "\n".join(f"deleted {d}" for d in deleted) or "nothing to delete")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .runner import restore_backup
    from .settings import resolve

    env = BackupEnv()
    result = restore_backup(resolve(args, env), args.source, replace=args.replace)
    m = result.manifest
    summary = {
        "id": m.id,
        "replaced": result.replaced,
        "high_water": m.database.high_water,
        "tables": m.database.tables,
        "duration_seconds": round(result.duration_seconds, 3),
    }
    _write_restore_result(env.restore_result_file, summary)
    _emit(
        args,
        summary,
        f"restored {m.id} high_water={m.database.high_water} tables={len(m.database.tables)} "
        f"rows={m.database.total_rows} duration={result.duration_seconds:.1f}s",
    )
    return 0


def _write_restore_result(path: str | None, summary: dict[str, Any]) -> None:
    """LIGHTHOUSE_RESTORE_RESULT_FILE (the operator's restore Job sets /dev/termination-log): the result as one JSON
    line, so the operator learns which backup `latest` resolved to from the pod status, without reading logs."""
    if not path:
        return
    brief = {k: summary[k] for k in ("id", "replaced", "high_water", "duration_seconds")}
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(brief, sort_keys=True) + "\n")
    except OSError as exc:  # the restore itself succeeded: do not fail it over a report
        log.warning("Could not write the result file path=%s error=%s", path, exc)
