"""Blob cache: content addressed by sha256 is immutable, so entries never go stale; only memory bounds them."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class BlobCache:
    """In-memory LRU bounded by bytes, optionally backed by a directory (LIGHTHOUSE_FUSE_CACHE_DIR)."""

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[bytes]],
        max_bytes: int = 256 * 1024 * 1024,
        disk_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._fetch = fetch
        self._mem: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self.max_bytes = max_bytes
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0
        self.evictions = 0

    async def get(self, sha256: str) -> bytes:
        if sha256 in ("", EMPTY_SHA256):
            return b""
        data = self._mem.get(sha256)
        if data is not None:
            self.hits += 1
            self._mem.move_to_end(sha256)
            return data
        data = self._disk_get(sha256)
        if data is not None:
            self.disk_hits += 1
        else:
            self.misses += 1
            data = await self._fetch(sha256)
            if hashlib.sha256(data).hexdigest() != sha256:
                # A corrupt blob must not be cached forever.
                raise ValueError(f"blob {sha256} failed its checksum")
            self._disk_put(sha256, data)
        self.put(sha256, data)
        return data

    def put(self, sha256: str, data: bytes) -> None:
        if sha256 in self._mem or len(data) > self.max_bytes:
            return
        self._mem[sha256] = data
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            _, old = self._mem.popitem(last=False)
            self._bytes -= len(old)
            self.evictions += 1

    def stats(self) -> dict[str, Any]:
        lookups = self.hits + self.misses + self.disk_hits
        return {
            "entries": len(self._mem),
            "bytes": self._bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "disk_hits": self.disk_hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "cache_hit_rate": round((self.hits + self.disk_hits) / lookups, 4) if lookups else 1.0,
            "disk_dir": str(self.disk_dir) if self.disk_dir else None,
        }

    def _disk_path(self, sha256: str) -> Path | None:
        if self.disk_dir is None:
            return None
        return self.disk_dir / sha256[:2] / sha256

    def _disk_get(self, sha256: str) -> bytes | None:
        path = self._disk_path(sha256)
        if path is None or not path.exists():
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            path.unlink(missing_ok=True)
            return None
        return data

    def _disk_put(self, sha256: str, data: bytes) -> None:
        path = self._disk_path(sha256)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:  # a full cache disk only costs speed
            log.warning("Blob cache write failed sha256=%s error=%s", sha256, exc)
