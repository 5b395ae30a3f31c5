"""The operations behind the CLI: create a backup, list, prune, restore. Each raises BackupError on failure."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from lighthouse_bridge import __version__

from . import cachedump, configdump, postgres
from .errors import BackupError, IntegrityError, StorageError
from .layout import CACHE, CONFIG, DATABASE_DUMP, MANIFEST, Layout, backup_id, parse_id
from .manifest import Manifest, ManifestError, ObjectEntry
from .retention import BackupRef, Policy, select_for_deletion
from .settings import BackupSettings
from .storage import Digest, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    time: datetime
    complete: bool
    size: int
    objects: int


# ---------------------------------------------------------------- catalog
def catalog(storage: Storage, layout: Layout) -> list[CatalogEntry]:
    """Every backup directory under the bridge's root, oldest first; complete = has a manifest."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for obj in storage.list_keys(layout.root):
        split = layout.split(obj["Key"])
        if split is not None:
            groups.setdefault(split[0], []).append((split[1], int(obj.get("Size", 0))))
    return [
        CatalogEntry(
            id=bid,
            time=parse_id(bid),
            complete=any(n == MANIFEST for n, _ in objs),
            size=sum(s for _, s in objs),
            objects=len(objs),
        )
        for bid, objs in sorted(groups.items())
    ]


def read_manifest(storage: Storage, layout: Layout, bid: str) -> Manifest:
    raw = storage.get_bytes(layout.key(bid, MANIFEST))
    try:
        return Manifest.from_json(raw)
    except ManifestError as exc:
        raise IntegrityError(f"backup {bid}: {exc}") from None


def resolve(storage: Storage, layout: Layout, source: str) -> str:
    """``latest`` -> the newest complete backup; an id must name a complete backup."""
    entries = catalog(storage, layout)
    complete = [e for e in entries if e.complete]
    where = f"{storage.settings.where}/{layout.root}"
    if source == "latest":
        if not complete:
            raise StorageError(f"no complete backup under {where}")
        return complete[-1].id
    try:
        parse_id(source)
    except ValueError as exc:
        raise BackupError(f"--from: {exc} or 'latest'") from None
    match = next((e for e in entries if e.id == source), None)
    if match is None:
        raise StorageError(f"backup {source} not found under {where}")
    if not match.complete:
        raise IntegrityError(f"backup {source} is incomplete (no {MANIFEST}): it never finished and cannot be restored")
    return source


# ---------------------------------------------------------------- create
def _new_id(storage: Storage, layout: Layout) -> tuple[str, datetime]:
    """A fresh id; waits for the next second if a backup already uses this one."""
    for _ in range(5):
        started = datetime.now(UTC)
        bid = backup_id(started)
        if not any(True for _ in storage.list_keys(layout.directory(bid))):
            return bid, started
        time.sleep(1.05 - started.microsecond / 1e6)
    raise BackupError("could not allocate a backup id: backups under this prefix are being created every second")


def _upload(
    storage: Storage,
    key: str,
    produce: Callable[[Callable[[bytes], None]], None],
    part_size: int,
    content_type: str = "application/octet-stream",
) -> Digest:
    with storage.writer(key, content_type=content_type, part_size=part_size) as writer:
        produce(writer.write)
        return writer.close()


def create_backup(settings: BackupSettings, environ: Mapping[str, str] | None = None) -> Manifest:
    environ = os.environ if environ is None else environ
    layout = settings.layout
    target = postgres.PgTarget(settings.require_database())
    storage = Storage(settings.s3)
    storage.check()  # before any dump: a wrong endpoint/bucket fails in seconds
    pg_dump = postgres.find_tool("pg_dump")
    pg_dump_version = postgres.tool_version(pg_dump)
    bid, started = _new_id(storage, layout)
    t0 = time.monotonic()
    # A database that is restarting, or a NetworkPolicy that admits this new pod a moment after it starts (the
    # operator's backup Jobs): connections are refused for a while, which waiting fixes.
    if settings.database_wait > 0:
        asyncio.run(postgres.wait_ready(target, settings.database_wait))
    log.info(
        "Starting backup id=%s database=%s destination=%s/%s",
        bid,
        target.dbname,
        storage.settings.where,
        layout.directory(bid),
    )
    objects: list[ObjectEntry] = []

    async def dump_database() -> tuple[postgres.Snapshot, Digest]:
        async with postgres.exported_snapshot(target) as snap:
            if postgres.major(pg_dump_version) < postgres.major(snap.server_version):
                raise BackupError(
                    f"pg_dump {pg_dump_version} is older than the server ({snap.server_version}): "
                    f"install postgresql-client-{postgres.major(snap.server_version)}"
                )
            digest = await asyncio.to_thread(
                _upload,
                storage,
                layout.key(bid, DATABASE_DUMP),
                lambda write: postgres.dump(target, snap.id, write, settings.compress),
                settings.part_size,
            )
            return snap, digest

    snap, digest = asyncio.run(dump_database())
    objects.append(
        ObjectEntry(DATABASE_DUMP, "database", digest.size, digest.sha256, "application/vnd.postgresql.custom-dump")
    )
    log.info("Uploaded object key=%s size=%d sha256=%s", layout.key(bid, DATABASE_DUMP), digest.size, digest.sha256)

    config = configdump.snapshot(environ, list(settings.config_files))
    storage.put_bytes(layout.key(bid, CONFIG), config, "application/json")
    objects.append(ObjectEntry(CONFIG, "config", len(config), _sha256(config), "application/json"))

    if settings.include_cache and settings.redis_url:
        try:
            cache_digest = _upload(
                storage,
                layout.key(bid, CACHE),
                lambda write: _count_keys(settings, write),
                settings.part_size,
                "application/x-ndjson",
            )
            objects.append(
                ObjectEntry(
                    CACHE, "cache", cache_digest.size, cache_digest.sha256, "application/x-ndjson", label="cache"
                )
            )
        except StorageError:
            raise
        except Exception as exc:  # the cache is not authoritative: a backup without it is still whole
            log.warning("Skipped Redis cache snapshot error=%s", exc)

    completed = datetime.now(UTC)
    manifest = Manifest(
        id=bid,
        namespace=layout.namespace,
        name=layout.name,
        started_at=started.isoformat(),
        completed_at=completed.isoformat(),
        duration_seconds=round(time.monotonic() - t0, 3),
        tool_version=__version__,
        pg_dump_version=pg_dump_version,
        server_version=snap.server_version,
        database=snap.stats,
        objects=tuple(objects),
    )
    # The manifest goes last: only now does the backup exist for list/restore/retention.
    storage.put_bytes(layout.key(bid, MANIFEST), manifest.to_json(), "application/json")
    log.info(
        "Completed backup id=%s size=%d high_water=%s tables=%d rows=%d duration=%.1fs",
        bid,
        manifest.total_size,
        snap.stats.high_water,
        len(snap.stats.tables),
        snap.stats.total_rows,
        manifest.duration_seconds,
    )
    if settings.policy.enabled:
        prune(storage, layout, settings.policy)
    return manifest


def _count_keys(settings: BackupSettings, write: Callable[[bytes], None]) -> None:
    assert settings.redis_url
    n = cachedump.dump_keys(settings.redis_url, settings.redis_prefix, write)
    log.info("Dumped Redis cache keys=%d prefix=%s", n, settings.redis_prefix)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- retention
def prune(storage: Storage, layout: Layout, policy: Policy, now: datetime | None = None) -> list[str]:
    entries = catalog(storage, layout)
    refs = [BackupRef(e.id, e.time, e.complete) for e in entries]
    doomed = select_for_deletion(refs, policy, now or datetime.now(UTC))
    for ref in doomed:
        keys = [o["Key"] for o in storage.list_keys(layout.directory(ref.id))]
        # Manifest first: an interrupted prune leaves an incomplete backup, never a "complete" one with holes.
        first = [k for k in keys if k.endswith("/" + MANIFEST)]
        for batch in (first, [k for k in keys if k not in first]):
            if batch:
                storage.delete_keys(batch)
        log.info("Deleted backup id=%s complete=%s objects=%d", ref.id, ref.complete, len(keys))
    return [r.id for r in doomed]


# ---------------------------------------------------------------- restore
@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    duration_seconds: float
    replaced: bool


def verify_objects(storage: Storage, layout: Layout, manifest: Manifest) -> dict[str, Digest]:
    """Streams every object of the backup and checks size and sha256 against the manifest."""
    digests = {}
    for obj in manifest.objects:
        key = layout.key(manifest.id, obj.name)
        got = storage.stream(key)
        if got.size != obj.size or got.sha256 != obj.sha256:
            raise IntegrityError(
                f"backup {manifest.id}: object {obj.name} does not match the manifest "
                f"(size {got.size}, sha256 {got.sha256}; manifest: size {obj.size}, sha256 {obj.sha256}); "
                "nothing was changed"
            )
        log.info("Verified object key=%s size=%d sha256=%s", key, got.size, got.sha256)
        digests[obj.name] = got
    return digests


def restore_backup(settings: BackupSettings, source: str, replace: bool = False) -> RestoreResult:
    layout = settings.layout
    target = postgres.PgTarget(settings.require_database())
    storage = Storage(settings.s3)
    storage.check()
    bid = resolve(storage, layout, source)
    manifest = read_manifest(storage, layout, bid)
    if manifest.id != bid:
        log.warning(
            "Manifest id differs from its directory (copied backup?) manifest_id=%s directory=%s", manifest.id, bid
        )
        manifest = dataclasses.replace(manifest, id=bid)
    pg_restore_version = postgres.tool_version(postgres.find_tool("pg_restore"))
    if postgres.major(pg_restore_version) < postgres.major(manifest.pg_dump_version):
        raise BackupError(
            f"pg_restore {pg_restore_version} cannot read a dump made by pg_dump "
            f"{manifest.pg_dump_version}: install a newer PostgreSQL client"
        )
    t0 = time.monotonic()

    if settings.database_wait > 0:  # a database that is still starting (the operator's restore Job)
        asyncio.run(postgres.wait_ready(target, settings.database_wait))
    names, version_num = asyncio.run(postgres.user_objects(target))
    postgres.check_empty(names, replace, target.dbname)
    log.info("Verifying backup id=%s objects=%d size=%d", bid, len(manifest.objects), manifest.total_size)
    digests = verify_objects(storage, layout, manifest)

    # Only now is anything changed. One transaction: a failure leaves the database as it was.
    preamble = postgres.replace_preamble(asyncio.run(postgres.user_schemas(target)), version_num) if names else []
    db_obj = manifest.database_object
    key = layout.key(bid, db_obj.name)
    streamed: list[Digest] = []
    log.info("Restoring backup id=%s database=%s replace=%s", bid, target.dbname, bool(names))

    def feed(write: Callable[[bytes], None]) -> None:
        streamed.append(storage.stream(key, sink=write, if_match=digests[db_obj.name].etag))
        if streamed[0].sha256 != db_obj.sha256:
            raise IntegrityError(f"object {db_obj.name} changed while restoring (sha256 {streamed[0].sha256})")

    postgres.restore(target, feed, preamble)

    actual = asyncio.run(postgres.current_stats(target))
    problems = postgres.compare_stats(manifest.database, actual)
    if problems:
        raise IntegrityError(f"restored database {target.dbname!r} does not match backup {bid}: " + "; ".join(problems))
    duration = time.monotonic() - t0
    log.info(
        "Restored backup id=%s database=%s high_water=%s tables=%d rows=%d duration=%.1fs",
        bid,
        target.dbname,
        actual.high_water,
        len(actual.tables),
        actual.total_rows,
        duration,
    )
    return RestoreResult(manifest=manifest, duration_seconds=duration, replaced=bool(names))
