"""Leader election on a coordination.k8s.io/v1 Lease (the way client-go does it), so that a standby replica can run
next to the leader: only the leader reconciles (kopf does not even start on a standby) and writes.

    elector = LeaseElector(client, namespace, name, identity)
    await elector.acquire()       # a standby waits here: it watches the one Lease and writes nothing
    elector.keep(on_lost)         # the leader renews; `on_lost` when it cannot (the process must then exit)
    await elector.release()       # a clean shutdown hands over at once: the holder is cleared

Timings (Timings, seconds): the Lease lasts `duration` (10). The leader renews every `renew` (3) with an optimistic
write on the resourceVersion it last wrote (no read first), retries every `retry` (1) after a failure, and gives up
when no renewal succeeded for `deadline` (8): before a standby may take over. A standby takes over when the record
has not changed for `duration` by its own clock (another node's clock is never trusted), or at once when the holder
is cleared. So after a kill -9 of the leader a standby leads within `duration` plus at most one renewal period.

The leader renews from a thread of its own, with its own event loop and HTTP session: the reconcile's loop may be
busy for seconds (a new leader's first LISTs of ~20,000 children, a wave of reconciles) without the Lease lapsing,
and `on_lost` is called from that thread, so a leader that cannot renew stops even while its main loop is stuck.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import metrics
from .api import ApiError, Conflict, Obj, Reader, Stream, Writer

log = logging.getLogger(__name__)

API_VERSION, KIND = "coordination.k8s.io/v1", "Lease"
MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime


@dataclass(frozen=True)
class Timings:
    duration: float = 10.0
    renew: float = 3.0
    deadline: float = 8.0
    retry: float = 1.0
    request: float = 2.5  # one request's bound: several attempts fit in the deadline

    def __post_init__(self) -> None:
        if not 0 < self.renew < self.deadline < self.duration:
            raise ValueError(
                f"leader election needs 0 < renew ({self.renew}) < deadline ({self.deadline}) "
                f"< duration ({self.duration})"
            )


class LeaseApi(Reader, Writer, Stream, Protocol):
    """What the elector needs from a client: get, create, patch, watch."""


def micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(MICRO)


def spec_of(lease: Obj | None) -> dict[str, Any]:
    return dict((lease or {}).get("spec") or {})


class LeaseElector:
    def __init__(
        self,
        client: LeaseApi,
        namespace: str,
        name: str,
        identity: str,
        timings: Timings = Timings(),
        renew_client: Callable[[], LeaseApi] | None = None,
    ):
        """`renew_client` makes the renewal thread's client (an aiohttp session belongs to the loop it was made on);
        without it the renewals share `client` (a loop-agnostic fake in unit tests)."""
        self.client = client
        self._renew_client = renew_client or (lambda: client)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.t = timings
        self.leading = False
        self.last_renewal = 0.0  # monotonic time of the last successful write as the holder
        self._lease: Obj | None = None  # as last read or written
        self._record: tuple[Any, ...] | None = None
        self._record_seen = 0.0  # monotonic time the record last changed, by our clock
        self._changed = asyncio.Event()  # the standby's, on the main loop
        self._thread: threading.Thread | None = None
        self._renew_loop: asyncio.AbstractEventLoop | None = None
        self._renew_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------------ the record

    @property
    def holder(self) -> str | None:
        return spec_of(self._lease).get("holderIdentity") or None

    def _observe(self, lease: Obj | None) -> None:
        self._lease = lease
        spec = spec_of(lease)
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        if record != self._record:
            self._record, self._record_seen = record, time.monotonic()
            if not self.leading:  # only a standby waits on it; a leader observes from the renewal thread
                self._changed.set()

    def _free(self) -> bool:
        """Nobody holds the Lease, or its holder has not renewed it for its duration (by our clock)."""
        holder = self.holder
        if not holder or holder == self.identity:
            return True
        duration = float(spec_of(self._lease).get("leaseDurationSeconds") or self.t.duration)
        return time.monotonic() - self._record_seen >= duration

    async def _read(self, client: LeaseApi | None = None) -> None:
        """Read the Lease (with `client`: the renewal thread's, or by default the main loop's)."""
        self._observe(await (client or self.client).get(API_VERSION, KIND, self.namespace, self.name))

    async def _write(self, client: LeaseApi) -> bool:
        """Take or renew the Lease: an optimistic write on the resourceVersion last seen. False when someone else
        wrote first (the record is read again) or still holds it."""
        if self._lease is None:
            await self._read(client)
        if self._lease is None:
            now = micro_now()
            manifest = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": int(self.t.duration),
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            created = await client.create(manifest)
            if created is None:  # someone else created it first
                await self._read(client)
                return False
            self._observe(created)
            return True
        if not self._free():
            return False
        spec, now = spec_of(self._lease), micro_now()
        new: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.t.duration),
            "renewTime": now,
        }
        if spec.get("holderIdentity") != self.identity:
            new["acquireTime"] = now
            new["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        patch = {"metadata": {"resourceVersion": self._lease["metadata"]["resourceVersion"]}, "spec": new}
        try:
            out = await client.patch(API_VERSION, KIND, self.namespace, self.name, patch)
        except Conflict:
            await self._read(client)
            return False
        if out is None:  # deleted under us
            self._lease = None
            return False
        self._observe(out)
        return True

    async def _attempt(self, client: LeaseApi, bound: float | None = None) -> bool:
        try:
            ok = await asyncio.wait_for(self._write(client), bound or self.t.request)
        except (ApiError, TimeoutError, OSError) as e:
            log.debug("Lease write failed lease=%s/%s error=%s", self.namespace, self.name, e)
            ok = False
        except Exception as e:  # aiohttp's own errors: the same as a failed request
            log.debug("Lease write failed lease=%s/%s error=%r", self.namespace, self.name, e)
            ok = False
        metrics.LEASE_WRITES.labels(result="ok" if ok else "failed").inc()
        return ok

    # ----------------------------------------------------------------------------------------------- the standby

    async def acquire(self) -> None:
        """Wait until this process holds the Lease. Reads only: one GET, then a watch of the one Lease."""
        watcher = asyncio.ensure_future(self._watch())
        try:
            try:
                await self._read()
            except Exception as e:  # the watcher reads again
                log.info("Could not read the Lease lease=%s/%s error=%s", self.namespace, self.name, e)
            announced = None
            while True:
                if self._free() and await self._attempt(self.client):
                    break
                holder = self.holder
                if holder != announced:
                    log.info("Standing by lease=%s/%s holder=%s", self.namespace, self.name, holder)
                    announced = holder
                wait = self.t.retry
                if holder and holder != self.identity:
                    duration = float(spec_of(self._lease).get("leaseDurationSeconds") or self.t.duration)
                    wait = max(0.05, duration - (time.monotonic() - self._record_seen))
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    pass
        finally:
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                pass
        self.leading = True
        self.last_renewal = time.monotonic()
        metrics.LEADER.set(1)
        log.info("Became leader lease=%s/%s identity=%s", self.namespace, self.name, self.identity)

    async def _watch(self) -> None:
        """Follow the Lease so a release is seen at once; a failed or forbidden watch degrades to reading it every
        `retry` seconds."""
        field = f"metadata.name={self.name}"
        while True:
            try:
                rv = ((self._lease or {}).get("metadata") or {}).get("resourceVersion")
                if not rv:
                    page = await self.client.list_page(API_VERSION, KIND, self.namespace, field_selector=field)
                    self._observe(page.items[0] if page.items else None)
                    rv = page.resource_version
                async for ev in self.client.watch(
                    API_VERSION, KIND, self.namespace, resource_version=rv, field_selector=field, timeout_seconds=300
                ):
                    if ev.type in ("ADDED", "MODIFIED"):
                        self._observe(ev.object)
                    elif ev.type == "DELETED":
                        self._observe(None)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("Lease watch ended lease=%s/%s error=%s", self.namespace, self.name, e)
                await asyncio.sleep(self.t.retry)
                try:
                    await self._read()
                except Exception:
                    pass

    # ------------------------------------------------------------------------------------------------ the leader

    def keep(self, on_lost: Callable[[str], None]) -> None:
        """Renew from a thread of its own; `on_lost(why)` (called on that thread) when leadership is gone. It must
        stop all work at once (exit): past the deadline a standby may already lead."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._renewer, args=(on_lost, ready), name="lease-renewer", daemon=True)
        self._thread.start()
        ready.wait()

    def _renewer(self, on_lost: Callable[[str], None], ready: threading.Event) -> None:
        async def run() -> None:
            self._renew_loop = asyncio.get_running_loop()
            self._renew_task = asyncio.current_task()
            ready.set()
            client = self._renew_client()
            try:
                await self._renew(client, on_lost)
            finally:
                close = getattr(client, "close", None)
                if client is not self.client and close is not None:
                    await close()

        try:
            asyncio.run(run())
        except asyncio.CancelledError:  # release() stopped it
            pass
        finally:
            ready.set()

    async def _renew(self, client: LeaseApi, on_lost: Callable[[str], None]) -> None:
        while self.leading:
            # Every `renew` seconds from the start of the last renewal, not from its answer: a slow API server
            # (1.4 s per renewal at 1,000 bridges and load 17) must not eat the margin left for a retry before the
            # deadline.
            await asyncio.sleep(max(0.0, self.last_renewal + self.t.renew - time.monotonic()))
            while self.leading:
                started = time.monotonic()
                # The one guard against lateness that correctness needs: this thread can itself run late (the GIL
                # held by a long C call, a starved or paused process). Past the deadline a standby may lead, so a
                # late renewer gives up rather than writes. (The old watchdog thread added nothing to this: it runs
                # late for the same reasons, and the reconcile's loop no longer renews.)
                left = self.last_renewal + self.t.deadline - started
                if left <= 0:
                    self._lost(on_lost, f"no renewal for {self.t.deadline:.0f} s")
                    return
                if await self._attempt(client, min(self.t.request, left)):
                    # From when it was sent: the API server stored it later, so a standby counts from later still.
                    self.last_renewal = started
                    break
                holder = self.holder
                if holder and holder != self.identity:
                    self._lost(on_lost, f"the Lease is held by {holder}")
                    return
                await asyncio.sleep(min(self.t.retry, max(0.0, self.last_renewal + self.t.deadline - started)))

    def _stop_renewing(self) -> None:
        loop, task, thread = self._renew_loop, self._renew_task, self._thread
        if thread is None:
            return
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # its loop already ended (leadership was lost)
                pass
        if thread is not threading.current_thread():
            thread.join(self.t.request + 1)
        self._thread = self._renew_loop = self._renew_task = None

    def _lost(self, on_lost: Callable[[str], None], why: str) -> None:
        if not self.leading:
            return
        self.leading = False
        metrics.LEADER.set(0)
        log.error("Lost leadership lease=%s/%s identity=%s reason=%s", self.namespace, self.name, self.identity, why)
        on_lost(why)

    async def release(self) -> None:
        """Hand over at once (a clean shutdown): clear the holder, if it is still us. Never raises."""
        was = self.leading
        self.leading = False
        self._stop_renewing()  # joined: no renewal races the release below
        metrics.LEADER.set(0)
        if not was or self._lease is None:
            return
        for _ in range(2):
            if self.holder != self.identity:
                return
            patch = {
                "metadata": {"resourceVersion": self._lease["metadata"]["resourceVersion"]},
                "spec": {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": micro_now()},
            }
            metrics.LEASE_WRITES.labels(result="release").inc()
            try:
                await asyncio.wait_for(
                    self.client.patch(API_VERSION, KIND, self.namespace, self.name, patch), self.t.request
                )
                log.info("Released leadership lease=%s/%s identity=%s", self.namespace, self.name, self.identity)
                return
            except Conflict:
                await self._read()
            except Exception as e:
                log.warning("Could not release the Lease lease=%s/%s error=%s", self.namespace, self.name, e)
                return


__all__ = ["LeaseApi", "LeaseElector", "Timings", "micro_now"]
