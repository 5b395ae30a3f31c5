"""The shadow tree: list, read (optionally at a past position or time), update, search."""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import json
from typing import Annotated, Any

import regex
from fastapi import APIRouter, Query, Response

from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.models import (
    AppendOut,
    SearchIn,
    SearchOut,
    ShadowContent,
    ShadowList,
    ShadowUpdateIn,
    Text,
)
from lighthouse_bridge.api.routes.events import _out, append_events
from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.errors import InvalidInput, NotFound, TooLarge, responses
from lighthouse_bridge.paths import validate_path, validate_prefix
from lighthouse_bridge.store import blobs, events

router = APIRouter(tags=["shadow"])

AtQuery = Annotated[
    Text | None,
    Query(max_length=64, description="A position (digits) or an ISO-8601 time; default: the current tree."),
]


async def file_state(rt: Runtime, path: str, position: int) -> dict[str, Any] | None:
    """One file's entry at `position`: from memory when current, else from its last event (no tree replay)."""
    if position >= rt.projection.position:
        await rt.guard("catch_up", rt.projection.wait_for(position))
    if position >= rt.projection.position:
        entry = rt.projection.tree.files.get(path)
        return entry.public() if entry else None
    return await rt.guard("file_at", events.file_at(rt.pool, path, position))


async def file_content(rt: Runtime, path: str, position: int) -> tuple[dict[str, Any], bytes]:
    state = await file_state(rt, path, position)
    if state is None:
        raise NotFound(f"{path!r} does not exist at position {position}")
    content = await rt.read_blob(state["sha256"])
    if content is None:  # cannot happen unless the blob table was edited by hand
        raise NotFound(f"blob {state['sha256']} of {path!r} is missing")
    return state, content


@router.get("/shadow/list", response_model=ShadowList, responses=responses())
async def shadow_list(
    rt: RuntimeDep,
    _p: PrincipalDep,
    prefix: Annotated[Text, Query(max_length=4096)] = "",
    at: AtQuery = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Any:
    """Files whose path starts with `prefix`, sorted by path, at `at` (default now)."""
    validate_prefix(prefix, rt.settings.max_path_bytes)
    limit = min(limit or rt.settings.max_list_files, rt.settings.max_list_files)
    position = await rt.resolve_at(at)
    if position >= rt.projection.position:
        await rt.guard("catch_up", rt.projection.wait_for(position))
    if position >= rt.projection.position:  # now or later: the live tree (no I/O), serialised directly
        entries = rt.projection.list(prefix)
        body = {"position": rt.projection.position, "files": [e.public() for e in entries[:limit]],
                "truncated": len(entries) > limit}
        return Response(json.dumps(body, ensure_ascii=False).encode(), media_type="application/json")
    # A past position: listings there are immutable, so they are cached under (position, prefix, limit).
    key = f"{position}:{limit}:{prefix}"
    cached = await rt.cache.get("list", key)
    if cached is not None:
        return json.loads(cached)
    tree = await rt.tree_at(position)
    paths = sorted(p for p in tree.files if p.startswith(prefix))
    body = {"position": position, "files": [tree.files[p].public() for p in paths[:limit]],
            "truncated": len(paths) > limit}
    await rt.cache.set("list", key, json.dumps(body).encode())
    return body


@router.get("/shadow/read/{path:path}", response_model=ShadowContent, responses=responses(404))
async def shadow_read(path: str, rt: RuntimeDep, _p: PrincipalDep, at: AtQuery = None) -> Response:
    """A file's content (UTF-8 text, or base64 when binary) with its version, position and author."""
    validate_path(path, rt.settings.max_path_bytes)
    position = await rt.resolve_at(at)
    state, content = await file_content(rt, path, position)
    try:
        text, encoding = content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(content).decode("ascii"), "base64"
    body = {"path": path, "content": text, "encoding": encoding, "sha256": state["sha256"], "size": state["size"],
            "version": state["version"], "position": state["position"], "author": state["author"]}
    # Hot path: serialise directly (the shape is ShadowContent, documented via response_model).
    return Response(json.dumps(body, ensure_ascii=False).encode(), media_type="application/json")


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


@router.post("/shadow/update", response_model=AppendOut, responses=responses(404, 409))
async def shadow_update(body: ShadowUpdateIn, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, object]:
    """Create, modify, delete or move a file (one event). `expected_version` -> 409 when the file moved on;
    create on an existing path -> 409; modify/delete/move of a missing path -> 404."""
    s = rt.settings
    path = validate_path(body.path, s.max_path_bytes)
    data: dict[str, Any] = {"path": path}
    if body.operation in ("create", "modify"):
        raw = decode_content(body.content, body.encoding, s.max_file_bytes)
        data["sha256"] = await rt.guard("put_blob", blobs.put(rt.pool, raw))
        await rt.cache.set("blob", data["sha256"], raw)
    elif body.operation == "move":
        if body.new_path is None:
            raise InvalidInput("new_path is required for move")
        data["new_path"] = validate_path(body.new_path, s.max_path_bytes)
    event_type = {"create": "file_created", "modify": "file_modified", "delete": "file_deleted",
                  "move": "file_moved"}[body.operation]
    ev = events.NewEvent(event_type=event_type, aggregate_id=path, aggregate_type="file", data=data,
                         source_agent=body.agent_id, event_id=body.event_id, expected_version=body.expected_version)
    (result,) = await append_events(rt, [ev])
    return _out(result)


def _search(compiled: Any, files: list[tuple[str, bytes]], max_results: int, timeout: float,
            ) -> tuple[list[dict[str, Any]], bool]:
    matches: list[dict[str, Any]] = []
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
                matches.append({"path": path, "line": line + 1, "text": text[starts[line]:end][:1000]})
                if len(matches) >= max_results:
                    return matches, True
        except TimeoutError:
            raise InvalidInput(f"pattern took longer than {timeout}s on {path!r}; simplify it") from None
    return matches, False


@router.post("/shadow/search", response_model=SearchOut, responses=responses())
async def shadow_search(body: SearchIn, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
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
    matches: list[dict[str, Any]] = []
    scanned, truncated = 0, False
    for i in range(0, len(entries), 200):
        chunk = entries[i:i + 200]
        contents = await rt.guard("search", blobs.get_many(rt.pool, list({e.sha256 for e in chunk})))
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
    return {"matches": matches, "truncated": truncated}
