"""Per-path history and diffs between two points in time."""

from __future__ import annotations

import difflib

from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.errors import NotFound, TooLarge
from lighthouse_bridge.models import DiffOut, HistoryOut, HistoryVersion
from lighthouse_bridge.paths import validate_path
from lighthouse_bridge.services.shadow import content_at
from lighthouse_bridge.store import db, events


async def history(rt: Runtime, path: str, limit: int = 1000) -> HistoryOut:
    """Every version of `path`, oldest first: its own events plus moves into and out of it."""
    validate_path(path, rt.settings.max_path_bytes)
    rows = await db.guard("history", events.path_history(rt.pool, path, limit))
    if not rows:
        raise NotFound(f"{path!r} has no history")
    versions = []
    for r in rows:
        data = r["data"]
        own = r["aggregate_id"] == path
        versions.append(
            HistoryVersion(
                version=r["version"] if own else data.get("new_version", 0),
                position=r["position"],
                event_type=r["event_type"],
                sha256=data.get("sha256"),
                size=data.get("size"),
                timestamp=r["recorded_at"].isoformat(),
                author=r["source_agent"],
                path=path,
                from_path=None if own else r["aggregate_id"],
                to_path=data.get("new_path") if own and r["event_type"] == "file_moved" else None,
            )
        )
    return HistoryOut(path=path, versions=versions)


async def diff(rt: Runtime, path: str, from_: str | None = None, to: str | None = None) -> DiffOut:
    """Unified diff of `path` between two points (positions or times; default from the beginning to now). A side
    where the file does not exist is empty (/dev/null); NotFound when it exists at neither."""
    validate_path(path, rt.settings.max_path_bytes)
    p_from = await rt.resolve_at(from_) if from_ is not None else 0
    p_to = await rt.resolve_at(to)
    a = await content_at(rt, path, p_from)
    b = await content_at(rt, path, p_to)
    if a is None and b is None:
        raise NotFound(f"{path!r} exists at neither position {p_from} nor {p_to}")
    limit = rt.settings.max_diff_bytes
    if len(a or b"") + len(b or b"") > limit * 4:
        raise TooLarge(f"file versions are too large to diff (limit {limit} bytes of diff)")
    if b"\x00" in (a or b"")[:8192] or b"\x00" in (b or b"")[:8192]:
        text = "" if a == b else f"Binary files a/{path} and b/{path} differ\n"
    else:
        lines = difflib.unified_diff(
            (a or b"").decode("utf-8", errors="replace").splitlines(keepends=True),
            (b or b"").decode("utf-8", errors="replace").splitlines(keepends=True),
            fromfile=f"a/{path}" if a is not None else "/dev/null",
            tofile=f"b/{path}" if b is not None else "/dev/null",
            fromfiledate=f"position {p_from}",
            tofiledate=f"position {p_to}",
        )
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    if len(text.encode()) > limit:
        raise TooLarge(f"diff is larger than {limit} bytes")
    return DiffOut(path=path, from_position=p_from, to_position=p_to, diff=text)
