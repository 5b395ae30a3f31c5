"""Where a backup's objects live: ``<prefix>/<namespace>/<name>/<id>/<object>``, id = UTC timestamp."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

ID_FORMAT = "%Y%m%dT%H%M%SZ"
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z$")
MANIFEST = "manifest.json"
DATABASE_DUMP = "database.dump"
CONFIG = "config.json"
CACHE = "cache-redis.jsonl"
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def backup_id(when: datetime) -> str:
    """The id of a backup started at ``when`` (sortable: lexical order is time order)."""
    if when.tzinfo is None:
        raise ValueError("backup time must be timezone-aware")
    return when.astimezone(UTC).strftime(ID_FORMAT)


def parse_id(value: str) -> datetime:
    if not ID_PATTERN.match(value):
        raise ValueError(f"not a backup id (want e.g. 20260102T030405Z): {value!r}")
    return datetime.strptime(value, ID_FORMAT).replace(tzinfo=UTC)


def is_id(value: str) -> bool:
    try:
        parse_id(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Layout:
    """Key arithmetic for one bridge's backups in one bucket."""

    prefix: str
    namespace: str
    name: str

    def __post_init__(self) -> None:
        for label, value in (("namespace", self.namespace), ("name", self.name)):
            if not _SEGMENT.match(value):
                raise ValueError(
                    f"{label} must be a plain path segment ([A-Za-z0-9._-], not starting with . or -): {value!r}"
                )
        if ".." in self.prefix.split("/"):
            raise ValueError(f"prefix must not contain '..': {self.prefix!r}")

    @property
    def root(self) -> str:
        """``<prefix>/<namespace>/<name>/`` without a leading slash; an empty prefix is allowed."""
        parts = [p for p in self.prefix.strip("/").split("/") if p] + [self.namespace, self.name]
        return "/".join(parts) + "/"

    def directory(self, backup: str) -> str:
        parse_id(backup)
        return f"{self.root}{backup}/"

    def key(self, backup: str, obj: str) -> str:
        if "/" in obj or not obj:
            raise ValueError(f"object name must be a single segment: {obj!r}")
        return self.directory(backup) + obj

    def split(self, key: str) -> tuple[str, str] | None:
        """``(id, object)`` of a key under :attr:`root`, or None for a key that is not part of a backup."""
        if not key.startswith(self.root):
            return None
        rest = key[len(self.root) :].split("/")
        if len(rest) != 2 or not is_id(rest[0]) or not rest[1]:
            return None
        return rest[0], rest[1]
