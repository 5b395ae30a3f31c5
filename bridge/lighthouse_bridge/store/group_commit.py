"""Group commit: concurrent appends on one replica share one transaction.

Every append ends in the commit-ordered section (see events.py), so commits - and their WAL flushes - happen one
at a time. Instead of queueing on the advisory lock, concurrent requests queue here: one task drains the queue and
appends everything waiting as one transaction, so one WAL flush acknowledges many requests. Each request still gets
only its own results, and nothing is acknowledged before the shared commit.

If the combined append fails for a reason that belongs to one request (409, 404, 422, an event_id used twice), the
group is rolled back and every request of it is retried on its own, so one bad request never fails its neighbours.
Connection failures fail the whole group (503): nothing was acknowledged and each client may retry with its ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg

from lighthouse_bridge.errors import BridgeError
from lighthouse_bridge.store import events
from lighthouse_bridge.store.events import AppendResult, NewEvent, TxHook

log = logging.getLogger(__name__)


@dataclass
class _Request:
    events: list[NewEvent]  # (this field shadows the module inside the class body)
    hook: TxHook | None
    future: asyncio.Future[list[AppendResult]]


class GroupCommitter:
    def __init__(self, pool: asyncpg.Pool, *, max_path_bytes: int = 1024, max_group_events: int = 2000) -> None:
        self.pool = pool
        self.max_path_bytes = max_path_bytes
        self.max_group_events = max_group_events
        self._queue: list[_Request] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.groups = 0
        self.grouped_requests = 0

    async def append(
        self,
        batch: list[events.NewEvent],
        hook: events.TxHook | None = None,
    ) -> list[events.AppendResult]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-commit")
        fut: asyncio.Future[list[events.AppendResult]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(batch, hook, fut))
        self._wake.set()
        return await fut

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for req in self._queue:
            if not req.future.done():
                req.future.set_exception(RuntimeError("bridge shutting down"))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                group: list[_Request] = []
                n = 0
                while self._queue and (not group or n + len(self._queue[0].events) <= self.max_group_events):
                    req = self._queue.pop(0)
                    n += len(req.events)
                    if not req.future.done():  # a cancelled request is dropped before it is attempted
                        group.append(req)
                if group:
                    await self._commit(group)

    async def _commit(self, group: list[_Request]) -> None:
        if len(group) == 1:
            await self._single(group[0])
            return
        merged = [ev for req in group for ev in req.events]
        hooks = [req for req in group if req.hook is not None]

        async def hook(conn: asyncpg.Connection, results: list[events.AppendResult]) -> None:
            by_id = {r.event_id: r for r in results}
            for req in hooks:
                assert req.hook is not None
                await req.hook(conn, [by_id[ev.event_id or ""] for ev in req.events if ev.event_id in by_id])

        try:
            results = await events.append(
                self.pool, merged, max_path_bytes=self.max_path_bytes, hook=hook if hooks else None
            )
        except (BridgeError, asyncpg.UniqueViolationError):
            for req in group:  # someone's own error: retry each alone so only that request fails
                await self._single(req)
            return
        except Exception as exc:
            for req in group:
                if not req.future.done():
                    req.future.set_exception(exc)
            return
        self.groups += 1
        self.grouped_requests += len(group)
        i = 0
        for req in group:
            part = results[i : i + len(req.events)]
            i += len(req.events)
            if not req.future.done():
                req.future.set_result(part)

    async def _single(self, req: _Request) -> None:
        try:
            result = await events.append(self.pool, req.events, max_path_bytes=self.max_path_bytes, hook=req.hook)
        except Exception as exc:
            if not req.future.done():
                req.future.set_exception(exc)
            return
        if not req.future.done():
            req.future.set_result(result)
