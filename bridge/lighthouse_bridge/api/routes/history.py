"""Per-path history and diffs between two points in time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.problems import responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import DiffOut, HistoryOut, Text
from lighthouse_bridge.services import history as service

router = APIRouter(tags=["history"])


@router.get("/history/{path:path}", response_model=HistoryOut, responses=responses(404))
async def history(
    path: str, rt: RuntimeDep, _p: PrincipalDep, limit: Annotated[int, Query(ge=1, le=10000)] = 1000
) -> Response:
    """Every version of `path`, oldest first: its own events plus moves into and out of it."""
    return json_model(await service.history(rt, path, limit))


@router.get("/diff", response_model=DiffOut, responses=responses(404))
async def diff(
    rt: RuntimeDep,
    _p: PrincipalDep,
    path: Annotated[Text, Query(min_length=1, max_length=4096)],
    from_: Annotated[Text | None, Query(alias="from", max_length=64, description="Position or ISO-8601 time")] = None,
    to: Annotated[Text | None, Query(max_length=64, description="Position or ISO-8601 time; default now")] = None,
) -> Response:
    """Unified diff of `path` between two points (positions or times). A side where the file does not exist
    is empty (/dev/null); 404 when it exists at neither."""
    return json_model(await service.diff(rt, path, from_, to))
