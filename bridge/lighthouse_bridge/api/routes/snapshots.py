"""Named snapshots of the projected tree (also the restart points for rebuild and time travel)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.problems import responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import SnapshotIn, SnapshotList, SnapshotOut
from lighthouse_bridge.services import snapshots

router = APIRouter(tags=["snapshots"])


@router.post("/snapshots", response_model=SnapshotOut, responses=responses(409))
async def create_snapshot(body: SnapshotIn, rt: RuntimeDep, _p: PrincipalDep) -> Response:
    """Snapshot the tree at the store's current head (409 if the name is taken)."""
    return json_model(await snapshots.create(rt, body))


@router.get("/snapshots", response_model=SnapshotList, responses=responses())
async def list_snapshots(rt: RuntimeDep, _p: PrincipalDep) -> Response:
    return json_model(await snapshots.list_all(rt))
