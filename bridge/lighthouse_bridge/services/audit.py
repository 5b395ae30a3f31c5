"""The audit trail as the admin reads it (the file is the record; events carry the same facts)."""

from __future__ import annotations

import asyncio
from typing import Any

from lighthouse_bridge.agents import audit
from lighthouse_bridge.core.config import Settings


async def tail(settings: Settings, limit: int = 100) -> dict[str, Any]:
    """The last `limit` records of this replica's audit log file: {records, path}."""
    path = settings.audit_log
    return {"records": await asyncio.to_thread(audit.tail, path, limit), "path": str(path)}
