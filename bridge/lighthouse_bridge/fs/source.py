"""What the filesystem model needs from the bridge, as data types and a protocol.

The HTTP client implements ``Source``; unit tests implement it over an in-memory dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class SourceError(Exception):
    """The bridge could not answer (network error, 5xx, unexpected body)."""


class NotFoundError(SourceError):
    """404 from the bridge."""


class ConflictError(SourceError):
    """409 from the bridge: an optimistic-concurrency conflict."""


class TooLargeError(SourceError):
    """413 from the bridge: the content exceeds its LIGHTHOUSE_MAX_FILE_BYTES."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    path: str
    sha256: str
    size: int
    version: int = 0
    position: int = 0
    author: str | None = None
    mtime_ns: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "version": self.version,
            "position": self.position,
            "author": self.author,
        }


@dataclass(frozen=True, slots=True)
class Listing:
    position: int
    files: tuple[FileMeta, ...]


def parse_time_ns(value: Any) -> int:
    """ISO-8601 (or epoch seconds) -> epoch nanoseconds; 0 when absent or unparsable."""
    if value is None:
        return 0
    if isinstance(value, int | float):
        return int(value * 1e9)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(dt.timestamp() * 1e9)


def file_meta_from_json(item: dict[str, Any]) -> FileMeta:
    return FileMeta(
        path=str(item["path"]),
        sha256=str(item.get("sha256") or ""),
        size=int(item.get("size") or 0),
        version=int(item.get("version") or 0),
        position=int(item.get("position") or 0),
        author=item.get("author"),
        mtime_ns=parse_time_ns(item.get("modified_at")),
    )


class Source(Protocol):
    """The bridge API as the filesystem sees it. ``at`` is a position ("42") or an ISO-8601 UTC time."""

    async def list_files(self, at: str | None = None) -> Listing: ...

    async def stat(self, path: str) -> FileMeta | None: ...

    async def read_blob(self, sha256: str) -> bytes: ...

    async def annotations(self, path: str) -> list[dict[str, Any]]: ...

    async def snapshots(self) -> list[dict[str, Any]]: ...

    async def update(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def health(self) -> dict[str, Any]: ...
