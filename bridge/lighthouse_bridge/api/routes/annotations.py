"""Annotations on shadow files, anchored by content hashes so they follow moved lines.

Each change is also an event (shadow_annotation_created|updated|deleted, aggregate_type "annotation"); the
annotations table is written in the same transaction, so the two never disagree.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query

from lighthouse_bridge import anchoring
from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.models import AnnotationIn, AnnotationList, AnnotationOut, AnnotationUpdateIn, Text
from lighthouse_bridge.api.routes.events import append_events
from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.errors import InvalidInput, NotFound, responses
from lighthouse_bridge.paths import validate_path
from lighthouse_bridge.store import events

router = APIRouter(tags=["annotations"])
COLUMNS = "id, path, line, end_line, message, category, severity, author, anchor, created_at, updated_at"


async def _lines(rt: Runtime, path: str) -> list[str] | None:
    entry = rt.projection.tree.files.get(path)
    if entry is None:
        return None
    content = await rt.read_blob(entry.sha256)
    return anchoring.split_lines(content or b"")


def _public(row: asyncpg.Record | dict[str, Any], lines: list[str] | None) -> dict[str, Any]:
    a = row["anchor"]
    anchor = anchoring.Anchor(a["text_hash"], a["context_hash"], a["lines"], a["original_line"])
    line, end_line = row["line"], row["end_line"]
    if lines is None:
        anchor.status = "stale"
    else:
        new_line, anchor.status = anchoring.resolve(lines, anchor, line)
        end_line += new_line - line
        line = new_line
    return {"id": str(row["id"]), "path": row["path"], "line": line, "end_line": end_line, "message": row["message"],
            "category": row["category"], "severity": row["severity"], "author": row["author"],
            "anchor": anchor.public(), "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat()}


async def _anchor(rt: Runtime, path: str, line: int, end_line: int) -> dict[str, Any]:
    lines = await _lines(rt, path)
    if lines is None:
        raise NotFound(f"{path!r} does not exist")
    if end_line > max(len(lines), 1):
        raise InvalidInput(f"{path!r} has {len(lines)} lines; cannot annotate up to line {end_line}")
    a = anchoring.make_anchor(lines, line, end_line)
    return {"text_hash": a.text_hash, "context_hash": a.context_hash, "lines": a.lines, "original_line": line}


def _uuid(annotation_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(annotation_id)
    except ValueError:
        raise NotFound(f"no annotation {annotation_id!r}") from None


@router.post("/annotations", response_model=AnnotationOut, responses=responses(404))
async def create_annotation(body: AnnotationIn, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
    path = validate_path(body.path, rt.settings.max_path_bytes)
    end_line = body.end_line or body.line
    anchor = await _anchor(rt, path, body.line, end_line)
    aid = uuid.uuid4()
    fields = {"path": path, "line": body.line, "end_line": end_line, "message": body.message,
              "category": body.category, "severity": body.severity, "author": body.author, "anchor": anchor}
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _results: list[events.AppendResult]) -> None:
        r = await conn.fetchrow(
            f"INSERT INTO annotations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now())"
            f" RETURNING {COLUMNS}",
            aid, path, body.line, end_line, body.message, body.category, body.severity, body.author, anchor,
        )
        row.update(dict(r))

    ev = events.NewEvent("shadow_annotation_created", str(aid), "annotation", data={"id": str(aid), **fields},
                         source_agent=body.author)
    await append_events(rt, [ev], hook=hook)
    return _public(row, await _lines(rt, path))


@router.put("/annotations/{annotation_id}", response_model=AnnotationOut, responses=responses(404))
async def update_annotation(annotation_id: str, body: AnnotationUpdateIn, rt: RuntimeDep,
                            _p: PrincipalDep) -> dict[str, Any]:
    aid = _uuid(annotation_id)
    current = await rt.guard("annotation", rt.pool.fetchrow(f"SELECT {COLUMNS} FROM annotations WHERE id = $1", aid))
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
        r = await conn.fetchrow(
            "UPDATE annotations SET line = $2, end_line = $3, message = $4, category = $5, severity = $6,"
            f" author = $7, anchor = $8, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
            aid, line, end_line, merged["message"], merged["category"], merged["severity"], merged["author"], anchor,
        )
        if r is None:
            raise NotFound(f"no annotation {annotation_id}")
        row.update(dict(r))

    ev = events.NewEvent("shadow_annotation_updated", str(aid), "annotation",
                         data={"id": str(aid), "line": line, "end_line": end_line, **merged, "anchor": anchor},
                         source_agent=merged["author"])
    await append_events(rt, [ev], hook=hook)
    return _public(row, await _lines(rt, current["path"]))


@router.delete("/annotations/{annotation_id}", responses=responses(404))
async def delete_annotation(annotation_id: str, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
    aid = _uuid(annotation_id)
    current = await rt.guard("annotation", rt.pool.fetchrow("SELECT author FROM annotations WHERE id = $1", aid))
    if current is None:
        raise NotFound(f"no annotation {annotation_id}")

    async def hook(conn: asyncpg.Connection, _results: list[events.AppendResult]) -> None:
        if await conn.fetchval("DELETE FROM annotations WHERE id = $1 RETURNING id", aid) is None:
            raise NotFound(f"no annotation {annotation_id}")

    ev = events.NewEvent("shadow_annotation_deleted", str(aid), "annotation", data={"id": str(aid)},
                         source_agent=current["author"])
    (result,) = await append_events(rt, [ev], hook=hook)
    return {"id": str(aid), "deleted": True, "position": result.position}


@router.get("/annotations", response_model=AnnotationList, responses=responses())
async def list_annotations(
    rt: RuntimeDep,
    _p: PrincipalDep,
    path: Annotated[Text | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, Any]:
    """Annotations (of one path, or all), with line numbers re-resolved against the current content."""
    if path is not None:
        validate_path(path, rt.settings.max_path_bytes)
        rows = await rt.guard("annotations", rt.pool.fetch(
            f"SELECT {COLUMNS} FROM annotations WHERE path = $1 ORDER BY line, created_at LIMIT $2", path, limit))
    else:
        rows = await rt.guard("annotations", rt.pool.fetch(
            f"SELECT {COLUMNS} FROM annotations ORDER BY path, line, created_at LIMIT $1", limit))
    lines_by_path: dict[str, list[str] | None] = {}
    out = []
    for r in rows:
        if r["path"] not in lines_by_path:
            lines_by_path[r["path"]] = await _lines(rt, r["path"])
        out.append(_public(r, lines_by_path[r["path"]]))
    return {"annotations": out}
