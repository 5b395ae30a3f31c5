"""The write path of the model: buffered handles in current/, one POST /shadow/update per written handle.

A mixin of FsModel, kept apart because it is the only part that changes the bridge's state.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from .nodes import BLOB_FH, Attr, FsError, Handle, Invalidation, OpenResult, validate_name
from .source import ConflictError, FileMeta, NotFoundError, SourceError, TooLargeError
from .tree import Inodes, Key, Tree, join

if TYPE_CHECKING:
    from .cache import Blob, BlobCache
    from .source import Source

log = logging.getLogger(__name__)
MAX_WRITE_BUFFER = 64 << 20  # per open handle; the bridge's own limit (LIGHTHOUSE_MAX_FILE_BYTES) applies on close


class WritePath:
    if TYPE_CHECKING:  # provided by FsModel
        source: Source
        live: Tree
        inodes: Inodes
        blobs: BlobCache
        writable: bool
        agent_id: str | None
        handles: dict[int, Handle]
        writers: dict[str, Handle]
        path_positions: dict[str, int]
        pending: list[Invalidation]
        clock: Any

        def key_of(self, ino: int) -> Key: ...
        def _handle(self, fh: int) -> Handle: ...
        def _new_handle(self, ino: int, key: Key, kind: str, **kw: Any) -> Handle: ...
        def _child_key(self, parent: Key, name: str) -> Key: ...
        def _changed(self) -> None: ...
        def _entry_invalidations(self, path: str) -> list[Invalidation]: ...
        async def _attr(self, key: Key) -> Attr: ...
        async def _blob(self, sha256: str) -> Blob: ...

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self._handle(fh)
        if h.kind != "write" or h.buf is None:
            raise FsError(errno.EBADF)
        if offset + len(data) > MAX_WRITE_BUFFER:
            raise FsError(errno.EFBIG)
        if offset > len(h.buf):
            h.buf.extend(b"\0" * (offset - len(h.buf)))
        h.buf[offset : offset + len(data)] = data
        h.dirty = h.written = True
        return len(data)

    async def flush(self, fh: int) -> None:
        # close() of any descriptor of the handle. Data written so far is sent now, so a conflict reaches close()
        # as EIO. A handle that was only created or truncated (O_TRUNC) waits for release: shells open, dup2 and
        # close the first descriptor before writing, and that close must not send an empty file.
        if fh & BLOB_FH:
            return  # a read-only handle: nothing buffered
        h = self._handle(fh)
        if h.kind == "write" and h.written:
            await self._commit(h)

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is None or h.kind != "write":
            return
        try:
            if h.dirty or h.new:
                await self._commit(h)
        finally:
            rel = h.key[2]
            if self.writers.get(rel) is h:
                del self.writers[rel]

    async def create(self, parent_ino: int, name: str, flags: int) -> tuple[OpenResult, Attr]:
        parent = self.key_of(parent_ino)
        self._require_writable(parent)
        validate_name(name)
        key = self._child_key(parent, name)
        rel = key[2]
        if self.live.kind(rel) is not None:
            raise FsError(errno.EEXIST)
        # A placeholder makes the name visible now; the create event is sent on close with the content.
        self.live.put(FileMeta(rel, "", 0, 0, 0, self.agent_id, int(self.clock() * 1e9)))
        self._changed()
        ino = self.inodes.ino(key)
        h = self._new_handle(ino, key, "write", buf=bytearray(), new=True, base_version=None)
        self.writers[rel] = h
        attr = await self._attr(key)
        self.inodes.ref(ino)
        return OpenResult(h.fh, direct_io=False, keep_cache=False), attr

    async def _commit(self, h: Handle) -> None:
        assert h.buf is not None
        rel = h.key[2]
        content = bytes(h.buf)
        body: dict[str, Any] = {
            "operation": "create" if h.new else "modify",
            "path": rel,
            "content": base64.b64encode(content).decode(),
            "encoding": "base64",
        }
        if not h.new:
            body["expected_version"] = h.base_version
        if self.agent_id:
            body["agent_id"] = self.agent_id
        try:
            result = await self.source.update(body)
        except ConflictError as exc:
            h.dirty = h.new = h.written = False
            log.warning("Write rejected by the bridge path=%s operation=%s expected_version=%s size=%d sha256=%s "
                        "reason=conflict detail=%s", rel, body["operation"], h.base_version, len(content),
                        hashlib.sha256(content).hexdigest(), exc)
            self._drop_placeholder(rel, body["operation"])
            raise FsError(errno.EIO) from exc
        except TooLargeError as exc:
            h.dirty = h.new = h.written = False
            log.warning("Write rejected by the bridge path=%s operation=%s size=%d reason=too_large detail=%s", rel,
                        body["operation"], len(content), exc)
            self._drop_placeholder(rel, body["operation"])
            raise FsError(errno.EFBIG) from exc
        except SourceError as exc:
            log.warning("Write failed path=%s operation=%s error=%s (kept buffered; retried on release)", rel,
                        body["operation"], exc)
            raise FsError(errno.EIO) from exc
        sha = hashlib.sha256(content).hexdigest()
        self.blobs.put(sha, content)
        position = int(result.get("position") or 0)
        version = int(result.get("version") or (h.base_version or 0) + 1)
        self.path_positions[rel] = max(self.path_positions.get(rel, 0), position)
        self.live.put(FileMeta(rel, sha, len(content), version, position, self.agent_id,
                               int(self.clock() * 1e9)))
        self._changed()
        h.dirty = h.new = h.written = False
        h.base_version = version
        log.info("Updated shadow file path=%s operation=%s version=%d size=%d", rel, body["operation"], version,
                 len(content))

    def _drop_placeholder(self, rel: str, operation: str) -> None:
        """A rejected create leaves no file behind (the placeholder has no content hash)."""
        meta = self.live.files.get(rel)
        if operation == "create" and meta is not None and meta.sha256 == "":
            self.live.remove(rel)
            self._changed()
            # The kernel cached the name when create() answered: it must forget it (sent after this request).
            self.pending += self._entry_invalidations(rel)

    async def setattr(self, ino: int, size: int | None, fh: int | None) -> Attr:
        key = self.key_of(ino)
        if size is None:
            if key[0] != "current" or not self.writable:
                raise FsError(errno.EROFS)
            return await self._attr(key)  # chmod/chown/utimes: accepted, not stored (the bridge has no modes)
        self._require_writable(key)
        rel = key[2]
        if self.live.kind(rel) != "file":
            raise FsError(errno.EISDIR if self.live.kind(rel) == "dir" else errno.ENOENT)
        h = self.handles.get(fh) if fh is not None else self.writers.get(rel)
        if h is not None and h.kind == "write" and h.buf is not None:
            self._resize(h.buf, size)
            h.dirty = True
            return await self._attr(key)
        meta = self.live.files[rel]
        buf = bytearray(await self._blob(meta.sha256))
        self._resize(buf, size)
        temp = Handle(0, ino, key, "write", buf=buf, dirty=True, base_version=meta.version)
        await self._commit(temp)
        return await self._attr(key)

    @staticmethod
    def _resize(buf: bytearray, size: int) -> None:
        if size > MAX_WRITE_BUFFER:
            raise FsError(errno.EFBIG)
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(b"\0" * (size - len(buf)))

    async def unlink(self, parent_ino: int, name: str) -> None:
        parent = self.key_of(parent_ino)
        self._require_writable(parent)
        rel = join(parent[2], name)
        kind = self.live.kind(rel)
        if kind == "dir":
            raise FsError(errno.EISDIR)
        if kind is None:
            raise FsError(errno.ENOENT)
        if self.live.files[rel].sha256 == "" and rel in self.writers:  # never committed: nothing to delete upstream
            self.writers[rel].new = False
            self.writers[rel].dirty = False
            self.live.remove(rel)
            self._changed()
            return
        await self._send({"operation": "delete", "path": rel}, rel)
        self.live.remove(rel)
        self._changed()

    async def _send(self, body: dict[str, Any], rel: str) -> dict[str, Any]:
        if self.agent_id:
            body["agent_id"] = self.agent_id
        try:
            result = await self.source.update(body)
        except NotFoundError as exc:
            raise FsError(errno.ENOENT) from exc
        except ConflictError as exc:
            log.warning("Change rejected by the bridge path=%s operation=%s reason=conflict detail=%s", rel,
                        body["operation"], exc)
            raise FsError(errno.EIO) from exc
        except SourceError as exc:
            log.warning("Change failed path=%s operation=%s error=%s", rel, body["operation"], exc)
            raise FsError(errno.EIO) from exc
        position = int(result.get("position") or 0)
        for p in (rel, body.get("new_path")):
            if p:
                self.path_positions[p] = max(self.path_positions.get(p, 0), position)
        log.info("Updated shadow file path=%s operation=%s position=%d", rel, body["operation"], position)
        return result

    async def mkdir(self, parent_ino: int, name: str) -> Attr:
        parent = self.key_of(parent_ino)
        self._require_writable(parent)
        validate_name(name)
        key = self._child_key(parent, name)
        if self.live.kind(key[2]) is not None:
            raise FsError(errno.EEXIST)
        # The bridge stores files only: a new directory lives here until a file is created in it.
        self.live.mkdir(key[2])
        self._changed()
        attr = await self._attr(key)
        self.inodes.ref(attr.ino)
        return attr

    async def rmdir(self, parent_ino: int, name: str) -> None:
        parent = self.key_of(parent_ino)
        self._require_writable(parent)
        rel = join(parent[2], name)
        kind = self.live.kind(rel)
        if kind is None:
            raise FsError(errno.ENOENT)
        if kind != "dir":
            raise FsError(errno.ENOTDIR)
        if self.live.children(rel):
            raise FsError(errno.ENOTEMPTY)
        self.live.rmdir(rel)
        self._changed()

    async def rename(self, old_parent: int, old_name: str, new_parent: int, new_name: str, flags: int = 0) -> None:
        src_parent, dst_parent = self.key_of(old_parent), self.key_of(new_parent)
        self._require_writable(src_parent)
        self._require_writable(dst_parent)
        validate_name(new_name)
        src, dst = join(src_parent[2], old_name), join(dst_parent[2], new_name)
        kind, dst_kind = self.live.kind(src), self.live.kind(dst)
        if kind is None:
            raise FsError(errno.ENOENT)
        if flags & 2:  # RENAME_EXCHANGE has no counterpart in the event model
            raise FsError(errno.EINVAL)
        if dst_kind is not None and flags & 1:  # RENAME_NOREPLACE
            raise FsError(errno.EEXIST)
        if src == dst:
            return
        if kind == "dir":
            if dst == src or dst.startswith(src + "/"):
                raise FsError(errno.EINVAL)
            if dst_kind == "file":
                raise FsError(errno.ENOTDIR)
            if dst_kind == "dir" and self.live.children(dst):
                raise FsError(errno.ENOTEMPTY)
            # Not atomic: the bridge moves files one at a time (one file_moved event each).
            for path in self.live.files_under(src):
                await self._move_file(path, dst + path[len(src):])
            for d in self.live.dirs_under(src):
                if d in self.live.kept:
                    self.live.mkdir(dst + d[len(src):])
            for d in reversed(self.live.dirs_under(src)):
                self.live.kept.discard(d)
                self.live.rmdir(d)
        else:
            if dst_kind == "dir":
                raise FsError(errno.EISDIR)
            if dst_kind == "file":
                await self.unlink(new_parent, new_name)  # replace semantics: delete the target first
            await self._move_file(src, dst)
        self.inodes.rekey(("current", "", src), ("current", "", dst))
        self._changed()

    async def _move_file(self, src: str, dst: str) -> None:
        meta = self.live.files[src]
        writer = self.writers.get(src)
        if not (meta.sha256 == "" and writer is not None):  # uncommitted creates move locally only
            result = await self._send({"operation": "move", "path": src, "new_path": dst}, src)
            # The response carries the source path's version; the next write to `dst` needs dst's own version.
            try:
                moved = await self.source.stat(dst)
            except SourceError:
                moved = None
            version = moved.version if moved is not None else 0
            meta = FileMeta(dst, meta.sha256, meta.size, version, int(result.get("position") or meta.position),
                            meta.author, int(self.clock() * 1e9))
        else:
            meta = FileMeta(dst, meta.sha256, meta.size, meta.version, meta.position, meta.author, meta.mtime_ns)
        self.live.remove(src)
        self.live.put(meta)
        if writer is not None:
            del self.writers[src]
            self.writers[dst] = writer
            writer.key = ("current", "", dst)

    def _require_writable(self, key: Key) -> None:
        if key[0] != "current" or not self.writable:
            raise FsError(errno.EROFS)
