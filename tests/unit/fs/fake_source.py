"""An in-memory Source for the model's unit tests: the bridge's event log, blobs, annotations and snapshots."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from lighthouse_bridge.fs.source import ConflictError, FileMeta, Listing, NotFoundError, TooLargeError


class FakeSource:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.blobs: dict[str, bytes] = {}
        self.annotation_items: dict[str, list[dict[str, Any]]] = {}
        self.snapshot_items: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.blob_fetches = 0
        self.conflict_next = False
        self.max_file_bytes = 1 << 20

    # -- helpers for tests: what another agent does through the API
    def put(self, path: str, content: bytes, ts: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
        sha = hashlib.sha256(content).hexdigest()
        self.blobs[sha] = content
        cur = self.state().get(path)
        etype = "file_modified" if cur else "file_created"
        return self._append(etype, path, {"path": path, "sha256": sha, "size": len(content)}, ts,
                            (cur.version + 1) if cur else 1)

    def delete(self, path: str, ts: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
        return self._append("file_deleted", path, {"path": path}, ts, self.state()[path].version + 1)

    def _append(self, etype: str, path: str, data: dict[str, Any], ts: str, version: int = 1) -> dict[str, Any]:
        ev = {"position": len(self.events) + 1, "event_type": etype, "aggregate_id": path, "aggregate_type": "file",
              "timestamp": ts, "data": data, "version": version, "source_agent": "tester", "metadata": {}}
        self.events.append(ev)
        return ev

    def state(self, at: str | None = None) -> dict[str, FileMeta]:
        files: dict[str, FileMeta] = {}
        for ev in self.events:
            if at is not None and (ev["position"] > int(at) if at.isdigit() else ev["timestamp"] > at):
                break
            d = ev["data"]
            if ev["event_type"] in ("file_created", "file_modified"):
                files[d["path"]] = FileMeta(d["path"], d["sha256"], d["size"], ev["version"], ev["position"])
            elif ev["event_type"] == "file_deleted":
                files.pop(d["path"], None)
            elif ev["event_type"] == "file_moved":
                m = files.pop(d["path"])
                files[d["new_path"]] = FileMeta(d["new_path"], m.sha256, m.size, d.get("new_version", 1),
                                                ev["position"])
        return files

    # -- the Source protocol
    async def list_files(self, at: str | None = None) -> Listing:
        if at is not None and at.isdigit():
            pos = min(int(at), len(self.events))
        else:
            pos = len([e for e in self.events if at is None or e["timestamp"] <= at])
        return Listing(pos, tuple(self.state(at).values()))

    async def stat(self, path: str) -> FileMeta | None:
        return self.state().get(path)

    async def read_blob(self, sha256: str) -> bytes:
        self.blob_fetches += 1
        if sha256 not in self.blobs:
            raise NotFoundError(sha256)
        return self.blobs[sha256]

    async def annotations(self, path: str) -> list[dict[str, Any]]:
        return list(self.annotation_items.get(path, []))

    async def snapshots(self) -> list[dict[str, Any]]:
        return list(self.snapshot_items)

    async def health(self) -> dict[str, Any]:
        return {"status": "healthy"}

    async def update(self, body: dict[str, Any]) -> dict[str, Any]:
        self.updates.append(body)
        if self.conflict_next:
            self.conflict_next = False
            raise ConflictError("expected_version mismatch")
        op, path = body["operation"], body["path"]
        cur = self.state().get(path)
        if body.get("expected_version") is not None and (cur is None or cur.version != body["expected_version"]):
            raise ConflictError("expected_version mismatch")
        if op in ("create", "modify"):
            content = base64.b64decode(body["content"])
            if len(content) > self.max_file_bytes:
                raise TooLargeError(f"{len(content)} bytes")
            ev = self.put(path, content)
        elif op == "delete":
            if cur is None:
                raise NotFoundError(path)
            ev = self.delete(path)
        else:
            if cur is None:
                raise NotFoundError(path)
            # Like the bridge: the response carries the source's version; the target's is in data.new_version.
            ev = self._append("file_moved", path, {"path": path, "new_path": body["new_path"], "sha256": cur.sha256,
                                                   "size": cur.size, "new_version": 7}, "2026-01-01T00:00:00Z",
                              cur.version + 1)
        return {"event_id": f"e{ev['position']}", "position": ev["position"], "version": ev["version"]}
