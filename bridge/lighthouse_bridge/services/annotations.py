"""Annotations on shadow files, anchored by content hashes so they follow moved lines.

Each change is also an event (shadow_annotation_created|updated|deleted, aggregate_type "annotation"); the
annotations table is written in the same transaction, so the two never disagree.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from lighthouse_bridge import anchoring
from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.errors import InvalidInput, NotFound
from lighthouse_bridge.models import AnnotationIn, AnnotationList, AnnotationOut, AnnotationUpdateIn, ShadowAnnotateIn
from lighthouse_bridge.paths import validate_path
from lighthouse_bridge.services import events as event_service
from lighthouse_bridge.store import annotations as table
from lighthouse_bridge.store import db, events


async def _lines(rt: Runtime, path: str) -> list[str] | None:
    entry = rt.projection.tree.files.get(path)
    if entry is None:
        return None
    content = await rt.read_blob(entry.sha256)
    return anchoring.split_lines(content or b"")


def _public(row: asyncpg.Record | dict[str, Any], lines: list[str] | None) -> AnnotationOut:
    """The row with its line numbers re-resolved against the current content (`lines`; None: the file is gone)."""
    anchor = anchoring.Anchor.from_stored(row["anchor"])
    line, end_line = row["line"], row["end_line"]
    if lines is None:
        anchor.status = "stale"
    else:
        new_line, anchor.status = anchoring.resolve(lines, anchor, line)
        end_line += new_line - line
        line = new_line
    return AnnotationOut.model_validate(
        {
            "id": str(row["id"]),
            "path": row["path"],
            "line": line,
            "end_line": end_line,
            "message": row["message"],
            "category": row["category"],
            "severity": row["severity"],
            "author": row["author"],
            "anchor": anchor.public(),
            "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat(),
        }
    )


async def _anchor(rt: Runtime, path: str, line: int, end_line: int) -> dict[str, Any]:
    lines = await _lines(rt, path)
    if lines is None:
        raise NotFound(f"{path!r} does not exist")
    if end_line > max(len(lines), 1):
        raise InvalidInput(f"{path!r} has {len(lines)} lines; cannot annotate up to line {end_line}")
    return anchoring.make_anchor(lines, line, end_line).stored()


async def create(rt: Runtime, body: AnnotationIn) -> AnnotationOut:
    path = validate_path(body.path, rt.settings.max_path_bytes)
    end_line = body.end_line or body.line
    anchor = await _anchor(rt, path, body.line, end_line)
    aid = uuid.uuid4()
    fields = {
        "path": path,
        "line": body.line,
        "end_line": end_line,
        "message": body.message,
        "category": body.category,
        "severity": body.severity,
        "author": body.author,
        "anchor": anchor,
    }
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _results: list[events.AppendResult]) -> None:
        row.update(
            await table.insert(
                conn, aid, path, body.line, end_line, body.message, body.category, body.severity, body.author, anchor
            )
        )

    ev = events.NewEvent(
        "shadow_annotation_created", str(aid), "annotation", data={"id": str(aid), **fields}, source_agent=body.author
    )
    await event_service.append(rt, [ev], hook=hook)
    return _public(row, await _lines(rt, path))


async def annotate(rt: Runtime, body: ShadowAnnotateIn, caller: str) -> AnnotationOut:
    """The original bridge's /shadow/annotate: `create` with its field names; the author defaults to the caller."""
    return await create(
        rt,
        AnnotationIn(
            path=body.path,
            line=body.line,
            end_line=body.end_line,
            message=body.message,
            category=body.category,
            severity=body.severity,
            author=body.author or caller,
        ),
    )


async def update(rt: Runtime, annotation_id: str, body: AnnotationUpdateIn) -> AnnotationOut:
    aid = db.parse_id(annotation_id, "annotation")
    current = await db.guard("annotation", table.get(rt.pool, aid))
    if current is None:
        raise NotFound(f"no annotation {annotation_id}")
    changes = body.model_dump(exclude_none=True)
    line = changes.get("line", current["line"])
    end_line = changes.get("end_line", current["end_line"] if "line" not in changes else line)
    if end_line < line:
        raise InvalidInput("end_line must be >= line")
    merged = {k: changes.get(k, current[k]) for k in ("message", "category", "severity", "author")}
    anchor = current["anchor"]
    if "line" in changes or "end_line" in changes:
        anchor = await _anchor(rt, current["path"], line, end_line)
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _results: list[events.AppendResult]) -> None:
        r = await table.update(
            conn,
            aid,
            line,
            end_line,
            merged["message"],
            merged["category"],
            merged["severity"],
            merged["author"],
            anchor,
        )
        if r is None:
            raise NotFound(f"no annotation {annotation_id}")
        row.update(r)

    ev = events.NewEvent(
        "shadow_annotation_updated",
        str(aid),
        "annotation",
        data={"id": str(aid), "line": line, "end_line": end_line, **merged, "anchor": anchor},
        source_agent=merged["author"],
    )
    await event_service.append(rt, [ev], hook=hook)
    return _public(row, await _lines(rt, current["path"]))


async def delete(rt: Runtime, annotation_id: str) -> dict[str, Any]:
    """{id, deleted, position}."""
    aid = db.parse_id(annotation_id, "annotation")
    current = await db.guard("annotation", table.get(rt.pool, aid))
    if current is None:
        raise NotFound(f"no annotation {annotation_id}")

    async def hook(conn: asyncpg.Connection, _results: list[events.AppendResult]) -> None:
        if not await table.delete(conn, [aid]):
            raise NotFound(f"no annotation {annotation_id}")

    ev = events.NewEvent(
        "shadow_annotation_deleted", str(aid), "annotation", data={"id": str(aid)}, source_agent=current["author"]
    )
    (result,) = await event_service.append(rt, [ev], hook=hook)
    return {"id": str(aid), "deleted": True, "position": result.position}


async def list_(rt: Runtime, path: str | None = None, limit: int = 1000) -> AnnotationList:
    """Annotations (of one path, or all), with line numbers re-resolved against the current content."""
    if path is not None:
        validate_path(path, rt.settings.max_path_bytes)
    rows = await db.guard("annotations", table.of_path(rt.pool, path, limit))
    lines_by_path: dict[str, list[str] | None] = {}
    out = []
    for r in rows:
        if r["path"] not in lines_by_path:
            lines_by_path[r["path"]] = await _lines(rt, r["path"])
        out.append(_public(r, lines_by_path[r["path"]]))
    return AnnotationList(annotations=out)
