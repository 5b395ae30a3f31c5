"""Named snapshots of the projected tree (also the restart points for rebuild and time travel)."""

from __future__ import annotations

from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.models import SnapshotIn, SnapshotList, SnapshotOut
from lighthouse_bridge.store import db, events, snapshots


async def create(rt: Runtime, body: SnapshotIn) -> SnapshotOut:
    """Snapshot the tree at the store's current head (Conflict if the name is taken)."""
    head = await db.guard("snapshot", events.head_position(rt.pool))
    await db.guard("snapshot", rt.projection.wait_for(head))
    tree = rt.projection.tree.copy()
    return SnapshotOut.model_validate(await db.guard("snapshot", snapshots.create(rt.pool, body.name, tree)))


async def list_all(rt: Runtime) -> SnapshotList:
    return SnapshotList.model_validate({"snapshots": await db.guard("snapshots", snapshots.list_all(rt.pool))})
