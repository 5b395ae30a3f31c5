"""manifest.json: what a backup holds, with a size and sha256 per object, written last.

The manifest names objects relative to its own directory, so a backup copied under another prefix (another
bridge's bucket) still restores.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = "lighthouse-backup/v1"
KINDS = ("database", "config", "cache")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """manifest.json is not a valid lighthouse backup manifest."""


@dataclass(frozen=True)
class ObjectEntry:
    name: str  # object name inside the backup directory
    kind: str  # database | config | cache
    size: int
    sha256: str
    content_type: str = "application/octet-stream"
    label: str = ""  # "cache": not authoritative, may be dropped on restore

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ManifestError(f"object {self.name!r}: unknown kind {self.kind!r} (want one of {KINDS})")
        if "/" in self.name or not self.name:
            raise ManifestError(f"object name must be a single path segment: {self.name!r}")
        if not isinstance(self.size, int) or self.size < 0:
            raise ManifestError(f"object {self.name!r}: size must be a non-negative integer")
        if not _SHA256.match(self.sha256):
            raise ManifestError(f"object {self.name!r}: sha256 must be 64 lowercase hex digits")


@dataclass(frozen=True)
class DatabaseStats:
    """What the dump's snapshot held: used to check a restore."""

    name: str
    high_water: int | None  # max(events.position); None when the database has no event store
    tables: dict[str, int]  # "schema.table" -> row count

    @property
    def total_rows(self) -> int:
        return sum(self.tables.values())


@dataclass(frozen=True)
class Manifest:
    id: str
    namespace: str
    name: str
    started_at: str  # ISO 8601 UTC
    completed_at: str
    duration_seconds: float
    tool_version: str
    pg_dump_version: str
    server_version: str
    database: DatabaseStats
    objects: tuple[ObjectEntry, ...]
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format != FORMAT:
            raise ManifestError(f"unsupported manifest format {self.format!r} (this tool reads {FORMAT!r})")
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise ManifestError(f"duplicate object names in manifest: {names}")
        if sum(1 for o in self.objects if o.kind == "database") != 1:
            raise ManifestError("manifest must list exactly one database object")

    @property
    def database_object(self) -> ObjectEntry:
        return next(o for o in self.objects if o.kind == "database")

    @property
    def total_size(self) -> int:
        return sum(o.size for o in self.objects)

    def to_json(self) -> bytes:
        body = asdict(self)
        body["objects"] = [asdict(o) for o in self.objects]
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ManifestError("manifest must be a JSON object")
        try:
            db = body.pop("database")
            objects = tuple(ObjectEntry(**o) for o in body.pop("objects"))
            stats = DatabaseStats(
                name=db["name"], high_water=db["high_water"], tables={str(k): int(v) for k, v in db["tables"].items()}
            )
            return cls(database=stats, objects=objects, **body)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"manifest is missing or has malformed fields: {exc}") from None
