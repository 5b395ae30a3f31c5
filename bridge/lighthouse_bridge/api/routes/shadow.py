"""The shadow tree: list, read (optionally at a past position or time), update, search."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Response

from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.problems import responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import (
    AnnotationOut,
    AppendOut,
    SearchIn,
    SearchOut,
    ShadowAnnotateIn,
    ShadowContent,
    ShadowList,
    ShadowUpdateIn,
    Text,
)
from lighthouse_bridge.services import annotations as annotation_service
from lighthouse_bridge.services import shadow

router = APIRouter(tags=["shadow"])

AtQuery = Annotated[
    Text | None,
    Query(max_length=64, description="A position (digits) or an ISO-8601 time; default: the current tree."),
]


@router.get("/shadow/list", response_model=ShadowList, responses=responses())
async def shadow_list(
    rt: RuntimeDep,
    _p: PrincipalDep,
    prefix: Annotated[Text, Query(max_length=4096)] = "",
    at: AtQuery = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Response:
    """Files whose path starts with `prefix`, sorted by path, at `at` (default now)."""
    listing = await shadow.list_files(rt, prefix, at, limit)
    # Hot path with up to LIGHTHOUSE_MAX_LIST_FILES entries: serialised directly (the shape is ShadowList).
    return Response(json.dumps(listing.public(), ensure_ascii=False).encode(), media_type="application/json")


@router.get("/shadow/read/{path:path}", response_model=ShadowContent, responses=responses(404))
async def shadow_read(path: str, rt: RuntimeDep, _p: PrincipalDep, at: AtQuery = None) -> Response:
    """A file's content (UTF-8 text, or base64 when binary) with its version, position and author."""
    return json_model(await shadow.read(rt, path, at))


@router.post("/shadow/update", response_model=AppendOut, responses=responses(404, 409))
async def shadow_update(body: ShadowUpdateIn, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Create, modify, delete or move a file (one event); `file_path` is accepted for `path` (the original's name).
    `expected_version` -> 409 when the file moved on;
    create on an existing path -> 409; modify/delete/move of a missing path -> 404."""
    return json_model(await shadow.update(rt, body))


@router.post("/shadow/annotate", response_model=AnnotationOut, responses=responses(404))
async def shadow_annotate(body: ShadowAnnotateIn, rt: RuntimeDep, p: PrincipalDep) -> Response:
    """The original bridge's annotate call ({file_path, line, annotation, expert_id}; today's names work too):
    the same as POST /annotations, the author defaulting to the caller."""
    return json_model(await annotation_service.annotate(rt, body, p.agent_id or p.name))


@router.post("/shadow/search", response_model=SearchOut, responses=responses())
async def shadow_search(body: SearchIn, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Regex search (Python `regex` syntax, multiline) over the current tree; bounded by max_results, by the bytes
    scanned (LIGHTHOUSE_MAX_SEARCH_BYTES) and by a per-file time limit. One match per line."""
    return json_model(await shadow.search(rt, body))
