"""Named snapshots of the projected tree (also the restart points for rebuild and time travel)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.models import SnapshotIn, SnapshotList, SnapshotOut
from lighthouse_bridge.errors import responses
from lighthouse_bridge.store import events, snapshots

router = APIRouter(tags=["snapshots"])


@router.post("/snapshots", response_model=SnapshotOut, responses=responses(409))
async def create_snapshot(body: SnapshotIn, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
    """Snapshot the tree at the store's current head (409 if the name is taken)."""
    head = await rt.guard("snapshot", events.head_position(rt.pool))
    await rt.guard("snapshot", rt.projection.wait_for(head))
    tree = rt.projection.tree.copy()
    return await rt.guard("snapshot", snapshots.create(rt.pool, body.name, tree))


@router.get("/snapshots", response_model=SnapshotList, responses=responses())
async def list_snapshots(rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
    return {"snapshots": await rt.guard("snapshots", snapshots.list_all(rt.pool))}
