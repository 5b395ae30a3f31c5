"""Append-only NDJSON streams served as growing files (tail -f friendly)."""

from __future__ import annotations

import json
from typing import Any

STREAM_NAMES = ("events", "file_changes", "validations", "annotations")


def stream_names_for(event_type: str) -> tuple[str, ...]:
    """Every event goes to `events`; file, validation and annotation events also to their own stream."""
    if event_type.startswith(("file_", "directory_")):
        return ("events", "file_changes")
    if "validation" in event_type:
        return ("events", "validations")
    if "annotation" in event_type:
        return ("events", "annotations")
    return ("events",)


class StreamBuffer:
    """Bytes appended line by line. Past `limit` the older half is dropped (like copytruncate log rotation)."""

    def __init__(self, limit: int = 32 * 1024 * 1024) -> None:
        self.data = bytearray()
        self.limit = limit
        self.lines = 0

    def __len__(self) -> int:
        return len(self.data)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True, default=str).encode() + b"\n"
        if len(self.data) + len(line) > self.limit:
            cut = self.data.find(b"\n", len(self.data) // 2)
            del self.data[: cut + 1 if cut >= 0 else len(self.data)]
        self.data += line
        self.lines += 1

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self.data[offset : offset + size])
