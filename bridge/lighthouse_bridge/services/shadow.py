"""The shadow tree: list, read (optionally at a past position or time), update, search."""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import json
from dataclasses import dataclass
from typing import Any

import regex

from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.errors import InvalidInput, NotFound, TooLarge
from lighthouse_bridge.models import AppendOut, SearchIn, SearchMatch, SearchOut, ShadowContent, ShadowUpdateIn
from lighthouse_bridge.paths import validate_path, validate_prefix
from lighthouse_bridge.services import events as event_service
from lighthouse_bridge.store import blobs, db, events
from lighthouse_bridge.store.tree import FileEntry

EVENT_TYPES = {"create": "file_created", "modify": "file_modified", "delete": "file_deleted", "move": "file_moved"}


@dataclass(frozen=True)
class Listing:
    """Files under a prefix at a position (the API's ShadowList; entries stay dataclasses: listings are large)."""

    position: int
    files: list[FileEntry]
    truncated: bool

    def public(self) -> dict[str, Any]:
        return {"position": self.position, "files": [f.public() for f in self.files], "truncated": self.truncated}


async def file_state(rt: Runtime, path: str, position: int) -> FileEntry | None:
    """One file's entry at `position`: from memory when current, else from its last event (no tree replay)."""
    if position >= rt.projection.position:
        await db.guard("catch_up", rt.projection.wait_for(position))
    if position >= rt.projection.position:
        return rt.projection.tree.files.get(path)
    return await db.guard("file_at", events.file_at(rt.pool, path, position))


async def content_at(rt: Runtime, path: str, position: int) -> bytes | None:
    """A file's bytes at `position`; None where it does not exist."""
    state = await file_state(rt, path, position)
    if state is None:
        return None
    return await rt.read_blob(state.sha256)


async def list_files(rt: Runtime, prefix: str = "", at: str | None = None, limit: int | None = None) -> Listing:
    """Files whose path starts with `prefix`, sorted by path, at `at` (default now); at most `limit`."""
    validate_prefix(prefix, rt.settings.max_path_bytes)
    limit = min(limit or rt.settings.max_list_files, rt.settings.max_list_files)
    position = await rt.resolve_at(at)
    if position >= rt.projection.position:
        await db.guard("catch_up", rt.projection.wait_for(position))
    if position >= rt.projection.position:  # now or later: the live tree (no I/O)
        entries = rt.projection.list(prefix)
        return Listing(rt.projection.position, entries[:limit], len(entries) > limit)
    # A past position: listings there are immutable, so they are cached under (position, prefix, limit).
    key = f"{position}:{limit}:{prefix}"
    cached = await rt.cache.get("list", key)
    if cached is not None:
        doc = json.loads(cached)
        return Listing(doc["position"], [FileEntry(**f) for f in doc["files"]], doc["truncated"])
    tree = await rt.tree_at(position)
    paths = sorted(p for p in tree.files if p.startswith(prefix))
    listing = Listing(position, [tree.files[p] for p in paths[:limit]], len(paths) > limit)
    await rt.cache.set("list", key, json.dumps(listing.public()).encode())
    return listing


async def read(rt: Runtime, path: str, at: str | None = None) -> ShadowContent:
    """A file's content (UTF-8 text, or base64 when binary) with its version, position and author."""
    validate_path(path, rt.settings.max_path_bytes)
    position = await rt.resolve_at(at)
    state = await file_state(rt, path, position)
    if state is None:
        raise NotFound(f"{path!r} does not exist at position {position}")
    content = await rt.read_blob(state.sha256)
    if content is None:  # cannot happen unless the blob table was edited by hand
        raise NotFound(f"blob {state.sha256} of {path!r} is missing")
    try:
        text, encoding = content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(content).decode("ascii"), "base64"
    return ShadowContent(
        path=path,
        content=text,
        encoding=encoding,
        sha256=state.sha256,
        size=state.size,
        version=state.version,
        position=state.position,
        author=state.author,
    )


def decode_content(content: str | None, encoding: str, limit: int) -> bytes:
    if content is None:
        raise InvalidInput("content is required for create and modify")
    if encoding == "base64":
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("content is not valid base64") from None
    else:
        try:
            raw = content.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("content is not valid Unicode") from None
    if len(raw) > limit:
        raise TooLarge(f"content is {len(raw)} bytes; the limit is {limit}")
    return raw


async def update(rt: Runtime, body: ShadowUpdateIn) -> AppendOut:
    """Create, modify, delete or move a file (one event). Conflict when `expected_version` is stale or a created
    path exists; NotFound when a modified, deleted or moved path does not."""
    s = rt.settings
    path = validate_path(body.path, s.max_path_bytes)
    data: dict[str, Any] = {"path": path}
    if body.operation in ("create", "modify"):
        raw = decode_content(body.content, body.encoding, s.max_file_bytes)
        data["sha256"] = await db.guard("put_blob", blobs.put(rt.pool, raw))
        await rt.cache.set("blob", data["sha256"], raw)
    elif body.operation == "move":
        if body.new_path is None:
            raise InvalidInput("new_path is required for move")
        data["new_path"] = validate_path(body.new_path, s.max_path_bytes)
    ev = events.NewEvent(
        event_type=EVENT_TYPES[body.operation],
        aggregate_id=path,
        aggregate_type="file",
        data=data,
        source_agent=body.agent_id,
        event_id=body.event_id,
        expected_version=body.expected_version,
    )
    (result,) = await event_service.append(rt, [ev])
    return event_service.out(result)


def _search(
    compiled: Any,
    files: list[tuple[str, bytes]],
    max_results: int,
    timeout: float,
) -> tuple[list[SearchMatch], bool]:
    matches: list[SearchMatch] = []
    for path, content in files:
        if b"\x00" in content[:8192]:
            continue  # binary
        text = content.decode("utf-8", errors="replace")
        starts = [0]
        starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
        last_line = -1
        try:
            for m in compiled.finditer(text, timeout=timeout):
                line = bisect.bisect_right(starts, m.start()) - 1
                if line == last_line:
                    continue
                last_line = line
                end = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
                matches.append(SearchMatch(path=path, line=line + 1, text=text[starts[line] : end][:1000]))
                if len(matches) >= max_results:
                    return matches, True
        except TimeoutError:
            raise InvalidInput(f"pattern took longer than {timeout}s on {path!r}; simplify it") from None
    return matches, False


async def search(rt: Runtime, body: SearchIn) -> SearchOut:
    """Regex search (Python `regex` syntax, multiline) over the current tree; bounded by max_results, by the bytes
    scanned (LIGHTHOUSE_MAX_SEARCH_BYTES) and by a per-file time limit. One match per line."""
    s = rt.settings
    prefix = validate_prefix(body.path_prefix or "", s.max_path_bytes)
    try:
        compiled = regex.compile(body.pattern, regex.MULTILINE)
    except (regex.error, ValueError, OverflowError) as exc:
        raise InvalidInput(f"invalid pattern: {exc}") from None
    max_results = min(body.max_results, s.max_search_results)
    entries = rt.projection.list(prefix)
    matches: list[SearchMatch] = []
    scanned, truncated = 0, False
    for i in range(0, len(entries), 200):
        chunk = entries[i : i + 200]
        contents = await db.guard("search", blobs.get_many(rt.pool, list({e.sha256 for e in chunk})))
        files = []
        for e in chunk:
            if scanned + e.size > s.max_search_bytes:
                truncated = True
                break
            scanned += e.size
            files.append((e.path, contents.get(e.sha256, b"")))
        found, full = await asyncio.to_thread(_search, compiled, files, max_results - len(matches), s.search_timeout)
        matches.extend(found)
        if full or truncated:
            truncated = True
            break
    return SearchOut(matches=matches, truncated=truncated)
