"""Admin view of the audit trail (the file is the record; events carry the same facts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lighthouse_bridge.api.deps import PrincipalDep, SettingsDep
from lighthouse_bridge.services import audit

router = APIRouter(tags=["audit"])


@router.get("/audit")
async def audit_tail(
    settings: SettingsDep, _p: PrincipalDep, limit: Annotated[int, Query(ge=1, le=10000)] = 100
) -> dict[str, Any]:
    """Admin: the last `limit` records of this replica's audit log file."""
    return await audit.tail(settings, limit)
