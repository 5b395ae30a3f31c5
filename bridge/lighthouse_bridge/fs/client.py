"""The bridge HTTP API as a ``Source`` (httpx; runs under trio through anyio). Loopback TCP or a unix socket."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from lighthouse_bridge.core.config import DEFAULT_BRIDGE_URL

from .source import ConflictError, FileMeta, Listing, NotFoundError, SourceError, TooLargeError, file_meta_from_json

log = logging.getLogger(__name__)


def make_http_client(url: str, token: str | None = None, timeout: float = 30.0) -> httpx.AsyncClient:
    """`http://host:port` or `unix:///path/to.sock`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if url.startswith("unix://"):
        transport = httpx.AsyncHTTPTransport(uds=url[len("unix://"):])
        return httpx.AsyncClient(transport=transport, base_url="http://bridge", headers=headers, timeout=timeout)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"bridge URL must start with http://, https:// or unix://, got {url!r}")
    return httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout)


class BridgeClient:
    def __init__(self, url: str = DEFAULT_BRIDGE_URL, token: str | None = None) -> None:
        self.url = url
        self.token = token  # from core.config.FuseSettings (fs/status.py MountConfig)
        self.http = make_http_client(url, self.token)
        self.requests = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        self.requests += 1
        try:
            resp = await self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise SourceError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        if resp.status_code == 404:
            raise NotFoundError(_detail(resp))
        if resp.status_code == 409:
            raise ConflictError(_detail(resp))
        if resp.status_code == 413:
            raise TooLargeError(_detail(resp))
        if resp.status_code >= 400:
            raise SourceError(f"{method} {path}: HTTP {resp.status_code}: {_detail(resp)}")
        return resp

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self._request(method, path, **kw)
        try:
            return resp.json()
        except ValueError as exc:
            raise SourceError(f"{method} {path}: body is not JSON") from exc

    async def list_files(self, at: str | None = None) -> Listing:
        params = {"at": at} if at is not None else {}
        body = await self._json("GET", "/shadow/list", params=params)
        files = tuple(file_meta_from_json(item) for item in body.get("files", []))
        if body.get("truncated"):
            # The listing has no cursor yet: raise the bridge's LIGHTHOUSE_MAX_LIST_FILES for bigger projects.
            log.warning("Shadow listing truncated by the bridge at=%s files=%d (LIGHTHOUSE_MAX_LIST_FILES)", at,
                        len(files))
        return Listing(int(body.get("position") or 0), files)

    async def stat(self, path: str) -> FileMeta | None:
        body = await self._json("GET", "/shadow/list", params={"prefix": path})
        for item in body.get("files", []):
            if item.get("path") == path:
                return file_meta_from_json(item)
        return None

    async def read_blob(self, sha256: str) -> bytes:
        resp = await self._request("GET", f"/blobs/{sha256}")
        return resp.content

    async def annotations(self, path: str) -> list[dict[str, Any]]:
        body = await self._json("GET", "/annotations", params={"path": path})
        return list(body.get("annotations", []))

    async def snapshots(self) -> list[dict[str, Any]]:
        body = await self._json("GET", "/snapshots")
        return list(body.get("snapshots", []))

    async def update(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("POST", "/shadow/update", json=body))

    async def health(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/health"))

    async def read(self, path: str, at: str | None = None) -> dict[str, Any]:
        params = {"at": at} if at is not None else {}
        return dict(await self._json("GET", f"/shadow/read/{quote(path)}", params=params))

    async def query_events(self, from_position: int, limit: int = 1000) -> tuple[list[dict[str, Any]], int | None]:
        body = await self._json("GET", "/event/query", params={"from_position": from_position, "limit": limit})
        nxt = body.get("next_from_position")
        return list(body.get("events", [])), (int(nxt) if nxt is not None else None)

    async def events(self, from_position: int) -> AsyncIterator[dict[str, Any]]:
        """Follow /events/stream: yields events and heartbeats. Returns when the server closes the stream."""
        timeout = httpx.Timeout(30.0, read=30.0)  # heartbeats come every ~5 s: a silent minute means a dead link
        try:
            async with self.http.stream(
                "GET", "/events/stream", params={"from_position": from_position}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise SourceError(f"GET /events/stream: HTTP {resp.status_code}: {_detail(resp)}")
                async for line in resp.aiter_lines():
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        yield json.loads(line)
                    except ValueError:
                        log.warning("Skipped a malformed stream line line=%r", line[:200])
        except httpx.HTTPError as exc:
            raise SourceError(f"GET /events/stream: {exc.__class__.__name__}: {exc}") from exc


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)
    return str(body)[:200]
