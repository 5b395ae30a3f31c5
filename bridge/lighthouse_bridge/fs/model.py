"""The mount as a pure model: which names exist, their attributes, their bytes, and what a change invalidates.

No FUSE and no HTTP here: the pyfuse3 adapter (ops.py) translates requests into these calls, and the data comes
from a ``Source`` (the bridge client, or a fake in unit tests). Errors are ``FsError(errno)``.

Layout:
    current/                          the live tree (writable with --writable)
    shadows/<path>.annotations.json   annotations of each live file
    history/<position>/... history/<ISO-8601 UTC>/...   the tree as it was; snapshot names are symlinks to positions
    context/{manifest,files,context}.json
    streams/<name>.ndjson             append-only event streams
    debug/{health,cache_stats,performance}.json
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import Any

from .cache import Blob, BlobCache
from .nodes import BLOB_FH, MAX_NAME, Attr, FsError, Handle, Invalidation, OpenResult, Stats, Store, validate_name
from .source import FileMeta, NotFoundError, Source, SourceError, parse_time_ns
from .streams import STREAM_NAMES, StreamBuffer, stream_names_for
from .tree import ROOT_INO, ROOT_KEY, Inodes, Key, Tree, join, parent_key, split
from .writes import WritePath

log = logging.getLogger(__name__)

AREAS = ("current", "shadows", "history", "context", "streams", "debug")
SHADOW_SUFFIX = ".annotations.json"
CONTEXT_FILES = ("manifest.json", "files.json", "context.json")
DEBUG_FILES = ("health.json", "cache_stats.json", "performance.json")
FILE_EVENTS = ("file_created", "file_modified", "file_deleted", "file_moved")

# Kernel cache lifetimes. Long, because every change is invalidated explicitly (see Invalidation);
# debug files change on every read and are the only ones with a zero timeout.
LIVE_TIMEOUT = 300.0
IMMUTABLE_TIMEOUT = 3600.0
VOLATILE_TIMEOUT = 0.0
RECENT_POSITIONS = 20
HISTORY_TREES = 16
# No-open mode: after the first READ in a directory, its other small files are stored in the page cache at once.
PUSH_MAX_FILE = 256 << 10
PUSH_MAX_BYTES = 16 << 20  # per directory and tree generation
PUSH_PLANS = 4096  # directories whose push candidates are kept (as many as the adapter keeps listings)


def parse_history_time(label: str) -> datetime | None:
    """'2026-11-29T20:00:00Z' -> aware datetime; None when the label is not an ISO-8601 UTC time."""
    if "T" not in label:
        return None
    try:
        dt = datetime.fromisoformat(label.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.astimezone(UTC)


class FsModel(WritePath):
    def __init__(
        self,
        source: Source,
        *,
        writable: bool = False,
        uid: int | None = None,
        gid: int | None = None,
        blobs: BlobCache | None = None,
        agent_id: str | None = None,
        info: dict[str, Any] | None = None,
        clock: Any = time.time,
        no_open: bool = False,
    ) -> None:
        self.source = source
        self.writable = writable
        # The kernel's no-open mode (read-only mounts): no OPEN/RELEASE, so no per-open state; reads come by inode
        # and the kernel keeps file pages and directory listings cached until invalidated.
        self.no_open = no_open
        self.uid = os.getuid() if uid is None else uid
        self.gid = os.getgid() if gid is None else gid
        self.blobs = blobs or BlobCache(source.read_blob)
        self.agent_id = agent_id
        self.info = info or {}  # bridge url, mountpoint: shown in debug/health.json
        self.clock = clock
        self.inodes = Inodes()
        self.live = Tree()
        self.base_position = 0  # the live tree reflects every event up to here
        self.high_water = 0  # the newest position the bridge told us about
        self.path_positions: dict[str, int] = {}  # newest applied change per path (tombstones included)
        self.recent_positions: deque[int] = deque(maxlen=RECENT_POSITIONS)
        self.recent_changes: deque[dict[str, Any]] = deque(maxlen=50)
        self.streams = {name: StreamBuffer() for name in STREAM_NAMES}
        self.stream_position = 0
        self.generation = 0
        self.handles: dict[int, Handle] = {}
        self.writers: dict[str, Handle] = {}
        self.pending: list[Invalidation] = []  # produced while handling a request; the adapter sends them after it
        self.stats = Stats()
        self.kernel_notifications: dict[str, int] = {}  # filled by the adapter's notification thread
        self.status: dict[str, Any] = {"stream_connected": False, "last_event_at": None, "reconnects": 0}
        self._next_fh = 1
        self._history: OrderedDict[str, Tree] = OrderedDict()
        self._annotations: dict[str, bytes] = {}
        self._snapshots: dict[str, int] = {}
        self._snapshots_at = -1e9
        self._generated: dict[str, tuple[int, bytes]] = {}
        self._debug: dict[str, tuple[bytes, int]] = {}  # no-open mode: debug file -> (content, mtime_ns)
        self._debug_mtime = 0
        self._in_kernel: dict[int, str] = {}  # no-open: file inode -> sha256 of the content the kernel got from us
        self._pushed_dirs: dict[int, int] = {}  # no-open: directory inode -> tree generation of its last push
        self._push_plans: dict[int, tuple[tuple[int, int], list[tuple[int, str, int]]]] = {}  # see push_plan
        self.started_at = clock()

    # ------------------------------------------------------------------ loading and events

    async def load(self) -> int:
        """Initial state: the live listing. Returns its position (follow the event stream from there)."""
        listing = await self.source.list_files(None)
        self.live = Tree(listing.files, listing.position)
        self.base_position = listing.position
        self.high_water = max(self.high_water, listing.position)
        self.recent_positions.append(listing.position)
        self.generation += 1
        return listing.position

    def note_high_water(self, position: int) -> list[Invalidation]:
        """The bridge reached `position`. history/ lists the current position: its listing changes with it."""
        if int(position) <= self.high_water:
            return []
        self.high_water = int(position)
        return self._history_root_invalidations()

    def _history_root_invalidations(self) -> list[Invalidation]:
        ino = self.inodes.known(("history", "", ""))
        return [] if ino is None else [Invalidation(ino)]

    def apply_event(self, event: dict[str, Any]) -> list[Invalidation]:
        """Apply one event from /events/stream; returns what the kernel must forget. Idempotent per position."""
        position = int(event.get("position") or 0)
        etype = str(event.get("event_type") or "")
        data = event.get("data") or {}
        out: list[Invalidation] = self.note_high_water(position)
        if position > self.stream_position:
            self.stream_position = position
            self.status["last_event_at"] = event.get("timestamp")
            for name in stream_names_for(etype):
                self.streams[name].append(event)
                ino = self.inodes.known(("streams", "", f"{name}.ndjson"))
                if ino is not None:
                    out.append(Invalidation(ino))
        if etype in FILE_EVENTS and event.get("aggregate_type", "file") == "file":
            generation = self.generation
            out += self._apply_file_event(position, etype, data, event)
            if self.generation != generation:
                out += self.context_invalidations()
        elif "annotation" in etype:
            path = data.get("path") or data.get("file_path") or ""
            out += self.forget_annotations(path or None)
        elif etype.startswith("snapshot_"):
            self._snapshots_at = -1e9
            out += self._history_root_invalidations()  # snapshot names are listed there
        return out

    def _apply_file_event(
        self, position: int, etype: str, data: dict[str, Any], event: dict[str, Any]
    ) -> list[Invalidation]:
        path = str(data.get("path") or event.get("aggregate_id") or "")
        if not path:
            return []
        change = {"position": position, "event_type": etype, "path": path, "timestamp": event.get("timestamp")}
        if data.get("new_path"):
            change["new_path"] = data["new_path"]
        if position not in self.recent_positions:
            self.recent_positions.append(position)
        if position <= max(self.base_position, self.path_positions.get(path, 0)):
            return []  # already reflected (the initial listing, or our own write)
        self.recent_changes.append(change)
        meta = FileMeta(
            path=path,
            sha256=str(data.get("sha256") or ""),
            size=int(data.get("size") or 0),
            version=int(event.get("version") or 0),
            position=position,
            author=event.get("source_agent") or (event.get("metadata") or {}).get("agent_id"),
            mtime_ns=parse_time_ns(event.get("timestamp")) or int(self.clock() * 1e9),
        )
        self.path_positions[path] = position
        if etype == "file_deleted":
            return self._live_remove(path)
        if etype == "file_moved":
            new_path = str(data.get("new_path") or "")
            out = self._live_remove(path)
            if new_path:
                self.path_positions[new_path] = position
                version = int(data.get("new_version") or meta.version)
                out += self._live_put(FileMeta(new_path, meta.sha256, meta.size, version, position,
                                               meta.author, meta.mtime_ns))
            return out
        return self._live_put(meta)

    def _live_put(self, meta: FileMeta) -> list[Invalidation]:
        existed = meta.path in self.live.files
        created = self.live.put(meta)
        self._changed()
        out = []
        ino = self.inodes.known(("current", "", meta.path))
        if ino is not None:
            out.append(Invalidation(ino))
            self._in_kernel.pop(ino, None)
        parent = split(meta.path)[0]
        top = split(created[0])[0] if created else parent
        for d in {parent, top}:
            for area in ("current", "shadows"):
                pino = self.inodes.known((area, "", d))
                if pino is not None:
                    out.append(Invalidation(pino))
        if not existed:
            out += self._entry_invalidations(created[0] if created else meta.path)
        out += self.forget_annotations(meta.path)  # the bridge re-anchors annotation lines when content changes
        return out

    def _live_remove(self, path: str) -> list[Invalidation]:
        if path not in self.live.files:
            return []
        gone = self.live.remove(path)
        self._changed()
        top = gone[-1] if gone else path
        out = self._entry_invalidations(top)
        for area in ("current", "shadows"):
            pino = self.inodes.known((area, "", split(top)[0]))
            if pino is not None:
                out.append(Invalidation(pino))
        self._annotations.pop(path, None)
        return out

    def _entry_invalidations(self, path: str) -> list[Invalidation]:
        """The name `path` (in current/ and its shadow in shadows/) appeared or went away."""
        parent, name = split(path)
        out = []
        for area, nm in (("current", name), ("shadows", name), ("shadows", name + SHADOW_SUFFIX)):
            pino = self.inodes.known((area, "", parent))
            if pino is not None:
                out.append(Invalidation(pino, nm))
        return out

    def _changed(self) -> None:
        self.generation += 1

    def context_invalidations(self) -> list[Invalidation]:
        out = []
        for name in CONTEXT_FILES:
            ino = self.inodes.known(("context", "", name))
            if ino is not None:
                out.append(Invalidation(ino))
        return out

    def forget_annotations(self, path: str | None) -> list[Invalidation]:
        paths = [path] if path else list(self._annotations)
        out = []
        for p in paths:
            self._annotations.pop(p, None)
            ino = self.inodes.known(("shadows", "", p + SHADOW_SUFFIX))
            if ino is not None:
                out.append(Invalidation(ino))
        return out

    def prefetch_candidates(self, max_file_bytes: int, budget_bytes: int) -> list[str]:
        """Blobs of small live files, by path, up to `budget_bytes`: warmed in the background after mounting so the
        first `grep -r` does not pay one HTTP round trip per file."""
        out, total, seen = [], 0, set()
        for path in sorted(self.live.files):
            meta = self.live.files[path]
            if not meta.sha256 or meta.size > max_file_bytes or meta.sha256 in seen:
                continue
            if total + meta.size > budget_bytes:
                break
            seen.add(meta.sha256)
            out.append(meta.sha256)
            total += meta.size
        return out

    # ------------------------------------------------------------------ name resolution

    def key_of(self, ino: int) -> Key:
        key = self.inodes.key(ino)
        if key is None:
            raise FsError(errno.ESTALE)
        return key

    async def lookup(self, parent_ino: int, name: str) -> Attr:
        key = self._child_key(self.key_of(parent_ino), name)
        if self.no_open and key[0] == "debug":
            # Debug files have no cache lifetime, so every open() looks them up again: without OPEN, this is
            # where a reader gets its snapshot (its size and bytes stay consistent until the next lookup).
            self._debug.pop(key[2], None)
        attr = await self._attr(key)
        self.inodes.ref(attr.ino)
        return attr

    async def getattr(self, ino: int) -> Attr:
        return await self._attr(self.key_of(ino))

    def forget(self, ino: int, n: int) -> list[Invalidation]:
        """The kernel dropped `n` lookups of `ino`. When its number goes away, a listing the kernel cached (no-open
        mode) would still name it: that directory's listing is invalidated."""
        key = self.inodes.forget(ino, n)
        if key is not None:
            self._in_kernel.pop(ino, None)
            self._pushed_dirs.pop(ino, None)
        parent = parent_key(key) if key is not None and self.no_open else None
        pino = self.inodes.known(parent) if parent is not None else None
        return [] if pino is None else [Invalidation(pino)]

    def _child_key(self, parent: Key, name: str) -> Key:
        area, view, rel = parent
        if name in (".", ".."):
            raise FsError(errno.ENOENT)
        if parent == ROOT_KEY:
            if name not in AREAS:
                raise FsError(errno.ENOENT)
            return (name, "", "")
        if area == "history" and not view:
            return ("history", name, "")
        if area in ("context", "streams", "debug") and rel:
            raise FsError(errno.ENOTDIR)
        return (area, view, join(rel, name))

    async def _attr(self, key: Key) -> Attr:
        area, view, rel = key
        if key == ROOT_KEY or (not rel and not view):
            return self._dir(key, LIVE_TIMEOUT, writable=area == "current")
        if area == "current":
            kind = self.live.kind(rel)
            if kind == "dir":
                return self._dir(key, LIVE_TIMEOUT, nlink=2 + self.live.subdir_count(rel), writable=True)
            if kind == "file":
                return self._file(key, self._live_size(rel), LIVE_TIMEOUT, self.live.files[rel].mtime_ns,
                                  writable=True)
            raise FsError(errno.ENOENT)
        if area == "shadows":
            if self.live.kind(rel) == "dir":
                return self._dir(key, LIVE_TIMEOUT, nlink=2 + self.live.subdir_count(rel))
            if rel.endswith(SHADOW_SUFFIX) and self.live.kind(rel[: -len(SHADOW_SUFFIX)]) == "file":
                content = await self.shadow_content(rel[: -len(SHADOW_SUFFIX)])
                return self._file(key, len(content), LIVE_TIMEOUT)
            raise FsError(errno.ENOENT)
        if area == "history":
            return await self._history_attr(key)
        if area == "context" and rel in CONTEXT_FILES:
            return self._file(key, len(self.context_content(rel)), LIVE_TIMEOUT)
        if area == "streams" and rel.endswith(".ndjson") and rel[: -len(".ndjson")] in self.streams:
            return self._file(key, len(self.streams[rel[: -len(".ndjson")]]), LIVE_TIMEOUT)
        if area == "debug" and rel in DEBUG_FILES:
            if self.no_open:
                content, mtime_ns = self._debug_snapshot(rel)
                return self._file(key, len(content), VOLATILE_TIMEOUT, mtime_ns)
            return self._file(key, len(self.debug_content(rel)), VOLATILE_TIMEOUT)
        raise FsError(errno.ENOENT)

    def _live_size(self, path: str) -> int:
        writer = self.writers.get(path)
        if writer is not None and writer.buf is not None and (writer.dirty or writer.new):
            return len(writer.buf)
        return self.live.files[path].size

    def _dir(self, key: Key, timeout: float, nlink: int = 2, writable: bool = False) -> Attr:
        mode = stat.S_IFDIR | (0o755 if writable and self.writable else 0o555)
        # A directory that may change without an event (an unsettled history/<time>/) gets a new mtime on every
        # getattr: the kernel drops a listing it cached (no-open mode) when the directory's mtime changes.
        mtime = int(self.clock() * 1e9) if timeout == VOLATILE_TIMEOUT else self._default_mtime()
        return Attr(self.inodes.ino(key), mode, 0, nlink, self.uid, self.gid, mtime, timeout)

    def _file(self, key: Key, size: int, timeout: float, mtime_ns: int = 0, writable: bool = False) -> Attr:
        mode = stat.S_IFREG | (0o644 if writable and self.writable else 0o444)
        return Attr(self.inodes.ino(key), mode, size, 1, self.uid, self.gid, mtime_ns or self._default_mtime(),
                    timeout)

    def _default_mtime(self) -> int:
        return int(self.started_at * 1e9)

    # ------------------------------------------------------------------ history

    async def _history_attr(self, key: Key) -> Attr:
        _, label, rel = key
        if not rel:
            target = await self._snapshot_target(label)
            if target is not None:
                ino = self.inodes.ino(key)
                return Attr(ino, stat.S_IFLNK | 0o777, len(target), 1, self.uid, self.gid, self._default_mtime(),
                            LIVE_TIMEOUT)
            _, timeout = self._history_at(label)
            return self._dir(key, timeout)
        tree = await self.history_tree(label)
        timeout = self._history_at(label)[1]
        kind = tree.kind(rel)
        if kind == "dir":
            return self._dir(key, timeout, nlink=2 + tree.subdir_count(rel))
        if kind == "file":
            meta = tree.files[rel]
            return self._file(key, meta.size, timeout, meta.mtime_ns)
        raise FsError(errno.ENOENT)

    def _history_at(self, label: str) -> tuple[str, float]:
        """history/<label> -> (the API's `at`, kernel cache timeout). Past positions and times never change."""
        if label.isdigit():
            if int(label) > self.high_water:
                raise FsError(errno.ENOENT)
            return str(int(label)), IMMUTABLE_TIMEOUT
        when = parse_history_time(label)
        if when is None:
            raise FsError(errno.ENOENT)
        at = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        settled = when.timestamp() < self.clock() - 2
        return at, IMMUTABLE_TIMEOUT if settled else VOLATILE_TIMEOUT

    async def history_tree(self, label: str) -> Tree:
        at, timeout = self._history_at(label)
        tree = self._history.get(at)
        if tree is not None:
            self._history.move_to_end(at)
            return tree
        try:
            listing = await self.source.list_files(at)
        except NotFoundError as exc:
            raise FsError(errno.ENOENT) from exc
        except SourceError as exc:
            log.warning("History listing failed at=%s error=%s", at, exc)
            raise FsError(errno.EIO) from exc
        tree = Tree(listing.files, listing.position)
        if timeout:  # only settled points in time are cached
            self._history[at] = tree
            while len(self._history) > HISTORY_TREES:
                self._history.popitem(last=False)
        return tree

    async def snapshots(self, refresh: bool = False) -> dict[str, int]:
        if refresh or self.clock() - self._snapshots_at > 2.0:
            try:
                items = await self.source.snapshots()
            except SourceError as exc:
                log.warning("Listing snapshots failed error=%s", exc)
                items = None
            if items is not None:
                self._snapshots = {
                    str(s["name"]): int(s["position"])
                    for s in items
                    if s.get("name") and "/" not in str(s["name"]) and not str(s["name"]).isdigit()
                }
                self._snapshots_at = self.clock()
        return self._snapshots

    async def _snapshot_target(self, label: str) -> str | None:
        if label.isdigit() or parse_history_time(label) is not None:
            return None
        snaps = await self.snapshots()
        if label not in snaps:
            raise FsError(errno.ENOENT)
        return str(snaps[label])

    async def readlink(self, ino: int) -> bytes:
        area, view, rel = self.key_of(ino)
        if area != "history" or rel or not view:
            raise FsError(errno.EINVAL)
        target = await self._snapshot_target(view)
        if target is None:
            raise FsError(errno.EINVAL)
        return target.encode()

    # ------------------------------------------------------------------ listing

    def listing_stamp(self, ino: int) -> tuple[int, int] | None:
        """A value that changes whenever the listing of directory `ino` (names, attributes, inode numbers) may
        change, so the adapter can reuse it across opendir calls; None when it must be built every time. Only
        read-only mounts: there a listing of current/ changes only through events (which bump the generation)."""
        if self.writable:
            return None
        key = self.inodes.key(ino)
        if key is None:
            return None
        area, view, _ = key
        if area == "current":
            return (self.generation, self.inodes.epoch)
        if area == "history" and view:
            try:
                settled = self._history_at(view)[1] == IMMUTABLE_TIMEOUT
            except FsError:
                return None
            return (0, self.inodes.epoch) if settled else None
        return None

    async def readdir(self, ino: int) -> list[tuple[str, Attr]]:
        key = self.key_of(ino)
        area, view, rel = key
        names: list[str]
        if key == ROOT_KEY:
            names = list(AREAS)
        elif area == "current":
            if self.live.kind(rel) != "dir":
                raise FsError(errno.ENOTDIR)
            names = sorted(self.live.children(rel))
        elif area == "shadows":
            if self.live.kind(rel) != "dir":
                raise FsError(errno.ENOTDIR)
            names = sorted(n if is_dir else n + SHADOW_SUFFIX for n, is_dir in self.live.children(rel).items())
        elif area == "history" and not view:
            recent = sorted({p for p in self.recent_positions if p <= self.high_water} | {self.high_water})
            positions = recent[-RECENT_POSITIONS:]
            names = [str(p) for p in positions] + sorted(await self.snapshots(refresh=True))
        elif area == "history":
            tree = await self.history_tree(view)
            if tree.kind(rel) != "dir":
                raise FsError(errno.ENOTDIR)
            names = sorted(tree.children(rel))
        elif area == "context":
            names = list(CONTEXT_FILES)
        elif area == "streams":
            names = [f"{n}.ndjson" for n in STREAM_NAMES]
        elif area == "debug":
            names = list(DEBUG_FILES)
        else:
            raise FsError(errno.ENOTDIR)
        out = []
        for name in names:
            try:
                out.append((name, await self._attr(self._child_key(key, name))))
            except FsError as exc:
                if exc.errno != errno.ENOENT:  # raced with a deletion: skip it
                    raise
        return out

    # ------------------------------------------------------------------ generated content

    async def shadow_content(self, path: str) -> bytes:
        content = self._annotations.get(path)
        if content is None:
            try:
                items = await self.source.annotations(path)
            except SourceError as exc:
                log.warning("Annotations fetch failed path=%s error=%s", path, exc)
                raise FsError(errno.EIO) from exc
            content = (json.dumps({"path": path, "annotations": items}, indent=2, sort_keys=True) + "\n").encode()
            self._annotations[path] = content
        return content

    def context_content(self, name: str) -> bytes:
        cached = self._generated.get(name)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        files = [self.live.files[p].as_json() for p in sorted(self.live.files)]
        position = max(self.base_position, self.stream_position)
        if name == "manifest.json":
            doc: dict[str, Any] = {
                "kind": "LighthouseContextPackage",
                "position": position,
                "file_count": len(files),
                "total_size": sum(f["size"] for f in files),
                "files": "files.json",
                "context": "context.json",
            }
        elif name == "files.json":
            doc = {"position": position, "files": files}
        else:
            doc = {
                "position": position,
                "recent_changes": list(self.recent_changes),
                "snapshots": self._snapshots,
                "annotated_files": sorted(p for p, c in self._annotations.items() if b'"annotations": []' not in c),
            }
        content = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        self._generated[name] = (self.generation, content)
        return content

    def _debug_snapshot(self, name: str) -> tuple[bytes, int]:
        cached = self._debug.get(name)
        if cached is None:
            # A new mtime for each snapshot: the kernel drops the pages of the previous one when it sees it.
            self._debug_mtime = max(self._debug_mtime + 1, int(self.clock() * 1e9))
            cached = self._debug[name] = (self.debug_content(name), self._debug_mtime)
        return cached

    def debug_content(self, name: str) -> bytes:
        now = self.clock()
        if name == "health.json":
            doc: dict[str, Any] = {
                "status": "ok" if self.status.get("stream_connected") else "degraded",
                **self.info,
                **self.status,
                "position": max(self.base_position, self.stream_position),
                "high_water": self.high_water,
                "lag": max(0, self.high_water - max(self.base_position, self.stream_position)),
                "files": len(self.live.files),
                "writable": self.writable,
                "no_open": self.no_open,
                "uptime_seconds": round(now - self.started_at, 3),
            }
        elif name == "cache_stats.json":
            blobs = self.blobs.stats()
            doc = {
                "cache_hit_rate": blobs["cache_hit_rate"],
                "blobs": blobs,
                "history_trees": len(self._history),
                "annotations": len(self._annotations),
                "inodes": len(self.inodes),
                "open_handles": len(self.handles),
            }
        else:
            doc = {
                "requests": dict(sorted(self.stats.requests.items())),
                "errors": dict(sorted(self.stats.errors.items())),
                "mean_ms": {
                    op: round(self.stats.seconds[op] * 1000 / n, 4) for op, n in sorted(self.stats.requests.items())
                },
                "requests_total": sum(self.stats.requests.values()),
                "kernel_notifications": dict(sorted(dict(self.kernel_notifications).items())),  # copied at once
            }
        return (json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n").encode()

    # ------------------------------------------------------------------ open / read

    def _new_handle(self, ino: int, key: Key, kind: str, **kw: Any) -> Handle:
        h = Handle(self._next_fh, ino, key, kind, **kw)
        self._next_fh += 1
        self.handles[h.fh] = h
        return h

    async def open(self, ino: int, flags: int) -> OpenResult:
        key = self.key_of(ino)
        area, _, rel = key
        wants_write = flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC)
        if not wants_write and area == "current" and rel in self.live.files:
            return OpenResult(BLOB_FH | ino, direct_io=False, keep_cache=True)  # the hot path of grep -r
        attr = await self._attr(key)
        if attr.is_dir:
            raise FsError(errno.EISDIR)
        if wants_write:
            self._require_writable(key)
            meta = self.live.files[rel]
            existing = self.writers.get(rel)
            if flags & os.O_TRUNC:
                buf = bytearray()
            elif existing is not None and existing.buf is not None:
                buf = bytearray(existing.buf)
            else:
                buf = bytearray(await self._blob(meta.sha256))
            h = self._new_handle(ino, key, "write", buf=buf, dirty=bool(flags & os.O_TRUNC) and meta.size > 0,
                                 new=existing.new if existing else False, base_version=meta.version)
            self.writers[rel] = h
            return OpenResult(h.fh, direct_io=False, keep_cache=False)
        if area in ("current", "history"):
            # No per-handle state: the handle is the inode (marked), so open/release allocate nothing.
            return OpenResult(BLOB_FH | ino, direct_io=False, keep_cache=True)
        if area == "streams":
            h = self._new_handle(ino, key, "stream")
            return OpenResult(h.fh, direct_io=True, keep_cache=False)
        if area == "shadows":
            content = await self.shadow_content(rel[: -len(SHADOW_SUFFIX)])
        elif area == "context":
            content = self.context_content(rel)
        else:
            content = self.debug_content(rel)
        h = self._new_handle(ino, key, "snapshot", content=content)
        return OpenResult(h.fh, direct_io=True, keep_cache=False)

    async def _blob(self, sha256: str) -> Blob:
        try:
            return await self.blobs.get(sha256)
        except NotFoundError as exc:
            log.warning("Blob missing sha256=%s", sha256)
            raise FsError(errno.EIO) from exc
        except (SourceError, ValueError) as exc:
            log.warning("Blob fetch failed sha256=%s error=%s", sha256, exc)
            raise FsError(errno.EIO) from exc

    def _handle(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:
            raise FsError(errno.EBADF)
        return h

    async def read(self, fh: int, offset: int, size: int) -> bytes | memoryview:
        if fh & BLOB_FH:
            return await self._read_blob(self.key_of(fh & ~BLOB_FH), offset, size)
        h = self._handle(fh)
        if h.kind == "write":
            assert h.buf is not None
            return bytes(h.buf[offset : offset + size])
        if h.kind == "snapshot":
            return h.content[offset : offset + size]
        if h.kind == "stream":
            return self.streams[h.key[2][: -len(".ndjson")]].read(offset, size)
        return await self._read_blob(h.key, offset, size)

    async def read_inode(self, ino: int, offset: int, size: int) -> bytes | memoryview:
        """READ in no-open mode: there is no handle, the inode says what to read. Generated files are read from the
        content their attributes were computed from, so the bytes match the size the kernel has cached."""
        key = self.key_of(ino)
        area, _, rel = key
        if not rel or (area == "shadows" and not rel.endswith(SHADOW_SUFFIX)):
            raise FsError(errno.EISDIR)  # the kernel reads directories with READDIR, never READ
        if area in ("current", "history"):
            return await self._read_blob(key, offset, size)
        if area == "streams":
            return self.streams[rel[: -len(".ndjson")]].read(offset, size)
        if area == "shadows":
            content = await self.shadow_content(rel[: -len(SHADOW_SUFFIX)])
        elif area == "context":
            content = self.context_content(rel)
        else:
            content = self._debug_snapshot(rel)[0]
        return memoryview(content)[offset : offset + size]

    def pages_to_push(self, ino: int) -> list[Store]:
        """No-open mode: small files of directory `ino` (or of the directory holding file `ino`, which the kernel just
        READ) for the kernel's page cache (`pyfuse3.notify_store`), so that reading them next (grep -r, cat *) sends
        no READ round trip. Called when the kernel reached the end of a listing (it then has an inode for every name
        in it) and on a file's first READ. Only blobs already in memory, each content once, and a directory at most
        once per tree generation. The reader waits for these: the candidates come from `push_plan`, worked out
        ahead (prepare_listings) where the tree allows."""
        key = self.inodes.key(ino)
        tree = self._cached_tree(key) if key is not None else None
        if key is None or tree is None:
            return []
        area, view, rel = key
        if rel in tree.files:
            self._in_kernel[ino] = tree.files[rel].sha256
            rel = split(rel)[0]
            ino = self.inodes.known((area, view, rel)) or 0
        if not ino or tree.kind(rel) != "dir" or self._pushed_dirs.get(ino) == self.generation:
            return []
        self._pushed_dirs[ino] = self.generation
        out: list[Store] = []
        budget = PUSH_MAX_BYTES
        sent, in_kernel, peek = self._in_kernel, self.inodes.in_kernel, self.blobs.peek
        for fino, sha, size in self.push_plan(ino):
            # A number the kernel does not hold (given out by a listing prepared ahead) cannot take a store.
            if size > budget or sent.get(fino) == sha or not in_kernel(fino):
                continue
            data = peek(sha)
            if data is None or len(data) != size:
                continue
            out.append(Store(fino, data))
            sent[fino] = sha
            budget -= size
        return out

    def unpush(self, ino: int, files: list[int]) -> None:
        """Stores for `files` of directory `ino` did not reach the kernel: the next pages_to_push(ino) tries them
        again (with the content they have then)."""
        for fino in files:
            self._in_kernel.pop(fino, None)
        self._pushed_dirs.pop(ino, None)

    def push_plan(self, ino: int) -> list[tuple[int, str, int]]:
        """The files of directory `ino` that a push may store: (inode, sha256, size), small ones with a number, in
        listing order. Kept while the directory's listing stamp holds (tree generation and inode epoch), and only
        when every file had a number (a number given out later does not bump the epoch)."""
        stamp = self.listing_stamp(ino)
        cached = self._push_plans.get(ino)
        if cached is not None and stamp is not None and cached[0] == stamp:
            return cached[1]
        key = self.inodes.key(ino)
        tree = self._cached_tree(key) if key is not None else None
        if key is None or tree is None:
            return []
        area, view, rel = key
        plan, complete = [], True
        for name, is_dir in sorted(tree.children(rel).items()):
            meta = tree.files.get(join(rel, name)) if not is_dir else None
            if meta is None or not meta.sha256 or meta.size > PUSH_MAX_FILE:
                continue
            fino = self.inodes.known((area, view, meta.path))
            if fino is None:
                complete = False
                continue
            plan.append((fino, meta.sha256, meta.size))
        if stamp is not None and complete:
            if len(self._push_plans) >= PUSH_PLANS:
                self._push_plans.clear()  # stamps go stale together on every change
            self._push_plans[ino] = (stamp, plan)
        return plan

    def _cached_tree(self, key: Key) -> Tree | None:
        """The tree a file of current/ or of a settled history view is in, if it is at hand (no fetch)."""
        if key[0] == "current":
            return self.live
        if key[0] != "history" or not key[1]:
            return None
        try:
            at, timeout = self._history_at(key[1])
        except FsError:
            return None
        return self._history.get(at) if timeout == IMMUTABLE_TIMEOUT else None

    async def _read_blob(self, key: Key, offset: int, size: int) -> bytes | memoryview:
        area, view, rel = key
        # Reads follow the inode's current content so the kernel page cache never mixes versions.
        tree = self.live if area == "current" else await self.history_tree(view)
        meta = tree.files.get(rel)
        if meta is None:
            return b""
        data = await self._blob(meta.sha256)
        return memoryview(data)[offset : offset + size]  # no copy: pyfuse3 takes any buffer

    # ------------------------------------------------------------------ statfs

    def statfs(self) -> dict[str, int]:
        used = sum(m.size for m in self.live.files.values())
        return {"bsize": 4096, "blocks": (used + 4095) // 4096, "files": len(self.live.files), "namemax": MAX_NAME}


__all__ = ["ROOT_INO", "Attr", "FsError", "FsModel", "Handle", "Invalidation", "OpenResult", "validate_name"]
