"""The shadow tree as data: files by path at a position, and how one event changes it (pure, no I/O).

Shared by the projection (store/projection.py), which keeps it current, and the snapshots (store/snapshots.py),
which store and load it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class FileEntry:
    path: str
    sha256: str
    size: int
    author: str | None
    position: int
    version: int
    modified_at: str

    def public(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "author": self.author,
            "position": self.position,
            "version": self.version,
            "modified_at": self.modified_at,
        }


@dataclass
class Tree:
    position: int = 0
    files: dict[str, FileEntry] = field(default_factory=dict)

    def copy(self) -> Tree:
        return Tree(self.position, dict(self.files))


def apply(
    tree: Tree,
    position: int,
    event_type: str,
    aggregate_id: str,
    version: int,
    data: dict[str, Any] | None,
    author: str | None,
    recorded_at: datetime | str,
) -> bool:
    """Apply one event to the tree; returns True when the file set changed. Non-file events only advance."""
    tree.position = position
    if data is None:
        return False
    ts = recorded_at if isinstance(recorded_at, str) else recorded_at.isoformat()
    if event_type in ("file_created", "file_modified"):
        tree.files[aggregate_id] = FileEntry(aggregate_id, data["sha256"], data["size"], author, position, version, ts)
        return event_type == "file_created"
    if event_type == "file_deleted":
        tree.files.pop(aggregate_id, None)
        return True
    if event_type == "file_moved":
        old = tree.files.pop(aggregate_id, None)
        new_path = data["new_path"]
        tree.files[new_path] = FileEntry(
            new_path,
            data.get("sha256") or (old.sha256 if old else ""),
            int(data["size"]) if data.get("size") is not None else (old.size if old else 0),
            author,
            position,
            data.get("new_version", 1),
            ts,
        )
        return True
    return False
