"""Admin view of the audit trail (the file is the record; events carry the same facts)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from lighthouse_bridge.agents import audit
from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep

router = APIRouter(tags=["audit"])


@router.get("/audit")
async def audit_tail(rt: RuntimeDep, _p: PrincipalDep,
                     limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> dict[str, Any]:
    """Admin: the last `limit` records of this replica's audit log file."""
    path = rt.settings.audit_log
    return {"records": await asyncio.to_thread(audit.tail, path, limit), "path": str(path)}
