"""Value types shared by the model and its write path: attributes, handles, invalidations, errors."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from typing import NamedTuple

from .tree import Key

MAX_NAME = 255
# Read-only handles of project files carry no state: fh = BLOB_FH | inode (handles with state count up from 1).
BLOB_FH = 1 << 63


class FsError(OSError):
    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code, detail or os.strerror(code))
        self.errno = code


@dataclass(slots=True)
class Attr:
    ino: int
    mode: int
    size: int
    nlink: int
    uid: int
    gid: int
    mtime_ns: int
    timeout: float

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass(frozen=True, slots=True)
class Invalidation:
    """Something the kernel may have cached: an inode's attributes/data, or a name in a directory."""

    ino: int
    name: str | None = None  # set: invalidate the entry `name` in directory `ino`


class Store(NamedTuple):
    """File content for the kernel's page cache (pyfuse3.notify_store), so reading it sends no READ. A tuple: a first
    grep -r makes one per file, on the path the reader waits on."""

    ino: int
    data: bytes | memoryview

    def __repr__(self) -> str:
        return f"Store(ino={self.ino}, bytes={len(self.data)})"


@dataclass(slots=True)
class Handle:
    fh: int
    ino: int
    key: Key
    kind: str  # "blob" | "snapshot" | "stream" | "write"
    content: bytes = b""
    buf: bytearray | None = None
    dirty: bool = False  # differs from what the bridge has (written or truncated)
    written: bool = False  # write() happened since the last commit
    new: bool = False
    base_version: int | None = None


@dataclass(slots=True)
class OpenResult:
    fh: int
    direct_io: bool
    keep_cache: bool


@dataclass(slots=True)
class Stats:
    """Per-operation request counts and total time, filled by the FUSE adapter."""

    requests: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def record(self, op: str, seconds: float, error: bool = False) -> None:
        self.requests[op] = self.requests.get(op, 0) + 1
        self.seconds[op] = self.seconds.get(op, 0.0) + seconds
        if error:
            self.errors[op] = self.errors.get(op, 0) + 1


def validate_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise FsError(errno.EINVAL)
    if any(ord(c) < 32 or 0xDC80 <= ord(c) <= 0xDCFF for c in name):
        raise FsError(errno.EINVAL, "names must be UTF-8 without control characters")
