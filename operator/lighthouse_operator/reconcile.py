"""One idempotent, level-based reconcile per LighthouseBridge: the loop, and nothing else.

Every trigger (the resource's own watch events, a timer, a child changing) ends in the same function, which reads
the current object, decides what to do from observed state only (`decide`, and the pure plans of the modules it
calls), then acts through the applier. Nothing depends on which event arrived, so a missed or repeated event, or an
operator restart in the middle, converges to the same result without duplicates (children have fixed names and are
server-side applied). Triggers for one resource are serialised and coalesced.

    read (observe.py, gate.py) -> decide (status, rollout, restore, backup: pure) -> write (applier.py)
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import kopf

from . import backup, builders, clock, events, fuse, gate, metrics, naming, observe, restore, rollout, storage
from . import status as st
from .api import ApiError, Invalid, Obj, Prober, Reader
from .applier import Applier
from .builders import expose, monitoring
from .models import API_VERSION, KIND, LighthouseBridge
from .validation import InvalidSpec, parse

log = logging.getLogger(__name__)

SNAPSHOT_RETRY_SECONDS = 30
RETRY_BASE, RETRY_MAX = 2.0, 300.0  # a failed pass is retried after 2, 4, 8 ... 300 s
SNAPSHOT_POLL_SECONDS = 5  # while the final backup Job runs


@dataclass(frozen=True)
class Decision:
    action: Literal["stall", "pause", "apply"]
    mark_reconciling: bool  # the spec changed since status.observedGeneration: say so before anything else
    reason: str = ""
    message: str = ""


def decide(generation: int, status: dict[str, Any], problems: list[str], missing: list[str], paused: bool) -> Decision:
    spec_changed = status.get("observedGeneration") != generation
    if problems:
        return Decision("stall", False, "InvalidSpec", "; ".join(problems))
    if missing:
        return Decision("stall", False, "MissingReference", "; ".join(missing))
    if paused:
        return Decision("pause", False)
    return Decision("apply", spec_changed)


@dataclass
class Outcome:
    result: str
    writes: int = 0


class Reconciler:
    """`reader` serves every read (the client itself, or a watch cache in front of it); `applier` makes every write.

    Triggers go through a work queue (`enqueue`): a bridge is queued at most once and reconciled by one worker at a
    time; a trigger that arrives while it runs queues it again. A pass that fails is retried with an exponential
    backoff (RETRY_BASE to RETRY_MAX), and during the backoff only an urgent trigger (the bridge itself changed)
    runs it earlier: an error the API server gives every time (a quota, no Service IPs left) costs one request per
    backoff step, not one per event of its children."""

    def __init__(self, reader: Reader, applier: Applier, prober: Prober | None = None):
        self.reader = reader
        self.applier = applier
        self.prober = prober  # asks the bridge pods for their FUSE state (FuseAvailable); None: not asked
        self.gate = gate.Gate(reader, applier)
        self._wakeups: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiting: set[tuple[str, str]] = set()
        self._own_rv: dict[tuple[str, str], str] = {}
        self.known: set[tuple[str, str]] = set()
        # The work queue: keys waiting (with the trigger that queued them), keys being reconciled, failures so far
        # and the time before which a failed key waits.
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._dirty: dict[tuple[str, str], str] = {}
        self._active: set[tuple[str, str]] = set()
        self._failures: dict[tuple[str, str], int] = {}
        self._retry_at: dict[tuple[str, str], float] = {}

    def is_own_write(self, namespace: str, name: str, resource_version: str | None) -> bool:
        """The watch event echoes our own status patch: nothing new to look at."""
        return resource_version is not None and self._own_rv.get((namespace, name)) == resource_version

    def forget(self, namespace: str, name: str) -> None:
        k = (namespace, name)
        self.known.discard(k)
        self._own_rv.pop(k, None)
        self._locks.pop(k, None)
        self._failures.pop(k, None)
        self._retry_at.pop(k, None)
        self.gate.forget(namespace, name)
        metrics.forget_bridge(namespace, name)
        if (handle := self._wakeups.pop(k, None)) is not None:
            handle.cancel()

    # ------------------------------------------------------------------------------------------------ entry points

    def enqueue(self, namespace: str, name: str, trigger: str, *, urgent: bool = False) -> None:
        """Ask for a pass. Not urgent: a key in its retry backoff waits for the retry."""
        k = (namespace, name)
        if not urgent and self._retry_at.get(k, 0.0) > time.monotonic():
            return
        if k in self._dirty:
            return
        self._dirty[k] = trigger
        if k not in self._active:
            self._queue.put_nowait(k)
        metrics.QUEUE_DEPTH.set(len(self._dirty))

    async def work(self, workers: int) -> None:
        """Reconcile what is queued, `workers` bridges at a time, until cancelled."""
        await asyncio.gather(*(self._worker() for _ in range(workers)))

    async def _worker(self) -> None:
        while True:
            k = await self._queue.get()
            trigger = self._dirty.pop(k, None)
            metrics.QUEUE_DEPTH.set(len(self._dirty))
            if trigger is None:
                continue
            self._active.add(k)
            try:
                await self._attempt(k, trigger)
            finally:
                self._active.discard(k)
                if k in self._dirty:  # triggered again while it ran
                    self._queue.put_nowait(k)

    async def _attempt(self, k: tuple[str, str], trigger: str) -> None:
        try:
            outcome = await self.trigger(*k, trigger)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            n = self._failures[k] = self._failures.get(k, 0) + 1
            delay = min(RETRY_MAX, RETRY_BASE * 2 ** (n - 1))
            self._retry_at[k] = time.monotonic() + delay
            self._later(k, delay, "retry")
            level = logging.WARNING if isinstance(e, ApiError) or n == 1 else logging.ERROR
            log.log(
                level,
                "Reconcile failed name=%s namespace=%s trigger=%s attempt=%d retry_in=%.0fs error=%s",
                k[1],
                k[0],
                trigger,
                n,
                delay,
                e,
                exc_info=not isinstance(e, ApiError | TimeoutError | OSError),
            )
            return
        self._failures.pop(k, None)
        self._retry_at.pop(k, None)
        if outcome is not None and outcome.result == "gone":
            self.forget(*k)

    def _later(self, k: tuple[str, str], delay: float, trigger: str) -> None:
        """An urgent pass in `delay` seconds (replacing an earlier one that is due later)."""
        loop = asyncio.get_running_loop()
        if (old := self._wakeups.get(k)) is not None:
            if old.when() <= loop.time() + delay:
                return
            old.cancel()

        def fire() -> None:
            self._wakeups.pop(k, None)
            self.enqueue(*k, trigger, urgent=True)

        self._wakeups[k] = loop.call_later(delay, fire)

    async def resync(self, interval: float) -> None:
        """A level-based look at every known bridge every `interval` seconds, spread over the interval (a burst of
        a thousand passes at once would only queue up). Until cancelled."""
        while True:
            keys = sorted(self.known)
            if not keys:
                await asyncio.sleep(interval)
                continue
            step = interval / len(keys)
            for k in keys:
                if k in self.known:
                    self.enqueue(*k, "timer")
                await asyncio.sleep(step)

    async def trigger(self, namespace: str, name: str, trigger: str) -> Outcome | None:
        """Reconcile with the freshest object. If a run for this resource is already waiting for the lock, it will
        read the newest state anyway, so this trigger is dropped (coalesced)."""
        k = (namespace, name)
        if k in self._waiting:
            return None
        self._waiting.add(k)
        lock = self._locks.setdefault(k, asyncio.Lock())
        async with lock:
            self._waiting.discard(k)
            started = time.monotonic()
            try:
                outcome = await self._reconcile(namespace, name)
            except Exception as e:
                metrics.RECONCILES.labels(trigger=trigger, outcome="error").inc()
                metrics.RECONCILE_ERRORS.labels(error=type(e).__name__).inc()
                metrics.RECONCILE_SECONDS.labels(outcome="error").observe(time.monotonic() - started)
                raise
            metrics.RECONCILES.labels(trigger=trigger, outcome=outcome.result).inc()
            metrics.RECONCILE_SECONDS.labels(outcome=outcome.result).observe(time.monotonic() - started)
            if outcome.result == "gone":
                self._locks.pop(k, None)
            return outcome

    async def finalize(self, namespace: str, name: str) -> list[str]:
        """deletionPolicy at deletion time. Raises kopf.TemporaryError to keep the finalizer while it must wait."""
        lock = self._locks.setdefault((namespace, name), asyncio.Lock())
        async with lock:
            body = await self.reader.get(API_VERSION, KIND, namespace, name)
            if body is None:
                return []
            try:
                lhb = LighthouseBridge.from_body(body)
            except ValueError:
                # An unparseable spec must not block deletion forever: keep the data (the safe default).
                lhb = LighthouseBridge.from_body({"metadata": body["metadata"], "status": body.get("status")})
            released = lhb
            if lhb.spec.deletion_policy == "Snapshot":
                final = await self._final_backup(body, lhb)  # raises kopf.TemporaryError until it succeeded
                # Then as Delete: the data is in the final backup.
                released = lhb.model_copy(update={"spec": lhb.spec.model_copy(update={"deletion_policy": "Delete"})})
                await self.applier.post(
                    body, [events.Event("Normal", "Snapshotted", f"final backup taken by Job {final}", "Delete")]
                )
            done = await self.applier.release(released)
            await self.applier.post(body, events.released(lhb.spec.deletion_policy, done))
            self._locks.pop((namespace, name), None)
            return done

    # ---------------------------------------------------------------------------------------------------- the loop

    async def _reconcile(self, namespace: str, name: str) -> Outcome:
        body = await self.reader.get(API_VERSION, KIND, namespace, name)
        if body is None:
            return Outcome("gone")
        if body["metadata"].get("deletionTimestamp"):
            return Outcome("deleting")
        if naming.FINALIZER not in (body["metadata"].get("finalizers") or []):
            # kopf adds the finalizer on first sight (its own patch, with a resourceVersion check). Creating
            # children before it exists could orphan them on a quick delete, and writing status now would only
            # make kopf's patch conflict and retry. Its patch brings a new event, which brings us back.
            return Outcome("waiting-for-finalizer")
        generation = body["metadata"].get("generation", 0)
        now = clock.now()
        when = clock.stamp(now)

        problems: list[str] = []
        lhb: LighthouseBridge | None = None
        try:
            lhb = parse(body)
        except InvalidSpec as e:
            problems = e.problems
        missing = await observe.missing_references(self.reader, lhb) if lhb is not None else []
        decision = decide(generation, body.get("status") or {}, problems, missing, bool(lhb and lhb.spec.paused))

        if decision.action == "stall":
            # Without parsing the spec (it may be unparseable): children and their figures are left as they were.
            writes = await self._status(body, [st.stalled(decision.reason, decision.message, generation)], when)
            return Outcome("stalled", writes)
        assert lhb is not None

        writes = 0
        if decision.mark_reconciling:
            writes += await self._status(body, [st.reconciling_first(generation)], when)
            lhb.status = body.get("status") or {}

        observed = await observe.children(self.reader, lhb)
        if decision.action == "pause":
            revision = (lhb.status.get("revisions") or {}).get("desired")  # the gate's, as of the last pass
            comps = st.assess_children(lhb, observed, revision)
            rollup = st.rollup(lhb, st.Assessment(paused=True, components=comps, revision=revision))
            writes += await self._status(body, [rollup], when)
            return Outcome("paused", writes)

        # spec.restore: a Job seeds the database while the bridge Deployment is held at 0 replicas (restore.py).
        restoring = restore.plan(lhb, await observe.restore_job(self.reader, lhb), observed, when)
        if restoring.persist_first:
            # Recorded before anything is created: a crash now must not make this bridge look as if it had run.
            writes += await self._status(body, [restore.fragment(restoring)], when)
            lhb.status = body.get("status") or {}
        old = lhb.status

        try:
            secrets = await self.applier.ensure_secrets(lhb)
            children = builders.desired_children(lhb)
            hold = None
            if restoring.hold:
                children = restore.hold_bridge(children, lhb)
                hold = {naming.BRIDGE: restoring.restoring or restoring.failed or "waiting for the restore"}
            # The health gate stamps revisions into the workloads and swaps in the last-good template after a
            # failed rollout (rollout.py decides, gate.py reads and records).
            gated = await self.gate.prepare(lhb, children, now, hold=hold)
            report = await self.applier.apply(lhb, gated.manifests, observed)
            await self.applier.prune(lhb, gated.manifests, report)
            restore_done = await self.applier.perform(restoring.writes)
            monitor = monitoring.service_monitor(lhb)
            await self.applier.apply_optional(
                lhb, "monitoring.coreos.com/v1", "ServiceMonitor", naming.Names(lhb.name).bridge, monitor, report
            )
            # A bigger storage size grows the stores' claims (their StatefulSets' templates cannot change).
            growing = storage.plan(lhb, *await observe.volumes(self.reader, lhb))
            grown = await self.applier.perform(growing.writes)
            # spec.expose: applied (or removed) like the ServiceMonitor, since the Gateway API may not be installed.
            for api_version, kind, name, manifest in (
                ("networking.k8s.io/v1", "Ingress", expose.ingress_name(lhb), expose.ingress(lhb)),
                (expose.HTTPROUTE_API, "HTTPRoute", expose.ingress_name(lhb), expose.http_route(lhb)),
                (
                    expose.REFERENCEGRANT_API,
                    "ReferenceGrant",
                    expose.reference_grant_name(lhb),
                    expose.reference_grant(lhb),
                ),
            ):
                await self.applier.apply_optional(lhb, api_version, kind, name, manifest, report)
        except Invalid as e:
            # The API server refused a child: the spec asks for something it will never accept.
            message = f"the API server rejected a child object: {e.message}"
            writes += await self._status(body, [st.stalled("ApplyRejected", message, generation)], when)
            return Outcome("stalled", writes)
        except ApiError as e:
            # Transient or environmental (quota, exhausted Service IPs, webhooks): say so, and retry on the timer.
            await self._status(body, [st.failed_pass(f"{e.status} {e.reason}: {e.message}", generation)], when)
            raise
        writes += len(secrets.created) + len(secrets.adopted) + report.writes + gated.writes + len(restore_done)
        writes += len(grown)
        created = report.created + [f"Secret/{s}" for s in secrets.created]
        adopted = [f"Secret/{s}" for s in secrets.adopted]
        await self.applier.post(
            body,
            events.changes(created, report.updated, adopted, report.pruned)
            + events.restore(restoring, old, restore_done)
            + events.storage(growing, grown),
        )
        writes += await self.gate.finish(body, gated)
        if gated.wake_in is not None:
            self._wake_at_deadline(namespace, name, gated.wake_in)

        # Backups: the Jobs say what status.lastBackup and BackupSucceeded are; backup-now asks for one Job. The
        # clock is read again: a new schedule counts from now, when its CronJob exists (it was applied above).
        backing = None
        if (backup_jobs := await observe.backup_jobs(self.reader, lhb)) is not None:
            cronjob = report.objects.get(("CronJob", naming.Names(lhb.name).backup))
            backing = backup.plan(lhb, backup_jobs, cronjob, clock.now())
            backup_done = await self.applier.perform(backing.writes)
            writes += len(backup_done)
            await self.applier.post(body, events.backup(backing, backup_done))
            self._count_backups(lhb, backing, len(backup_done))

        bridge_rev = gated.revision(naming.BRIDGE)
        components = st.assess_children(lhb, report.objects, bridge_rev)
        warnings = report.warnings + list(growing.warnings)
        warnings += [w for w in (restoring.warning, backup.client_mismatch(lhb.spec)) if w]
        for comp, waiting in growing.progress.items():  # a volume still growing: not at this spec yet
            if (h := components.get(comp)) is not None:
                components[comp] = replace(h, healthy=False, up_to_date=False, message=f"{h.message}; {waiting}")
        if restoring.hold:
            why = "the restore failed" if restoring.failed else "waiting for the restore"
            components[naming.BRIDGE] = st.Health(0, lhb.spec.replicas, False, False, f"held at 0 replicas: {why}")
        assessment = st.Assessment(
            components=components,
            warnings=warnings,
            revision=bridge_rev,
            restoring=restoring.restoring,
            stalled=("RestoreFailed", restoring.failed) if restoring.failed else None,
        )
        answers, nodes = await observe.fuse_answers(self.reader, self.prober, lhb)
        fragments = [
            st.rollup(lhb, assessment),
            rollout.fragment(gated.judged, generation),
            restore.fragment(restoring),
            backup.fragment(backing) if backing is not None else None,
            fuse.fragment(fuse.verdict(lhb, answers, nodes), generation),
        ]
        writes += await self._status(body, fragments, when)
        return Outcome("applied" if writes else "unchanged", writes)

    # -------------------------------------------------------------------------------------------------- its parts

    async def _status(self, body: Obj, fragments: list[st.Fragment | None], when: str) -> int:
        """Compose the status from the fragments onto the current one; patch it only when it differs, and post the
        Events its transitions call for. Returns the number of writes."""
        old = body.get("status") or {}
        new = st.compose(old, body["metadata"].get("generation", 0), fragments, when)
        md = body["metadata"]
        metrics.record_bridge(md["namespace"], md["name"], new)
        patch = st.merge_patch(old, new)
        if patch is None:
            return 0
        result = await self.applier.patch_status(body, patch)
        if result is not None:
            self._own_rv[(md["namespace"], md["name"])] = result["metadata"]["resourceVersion"]
        body["status"] = new
        await self.applier.post(body, events.transitions(old, new))
        return 1

    async def _final_backup(self, body: Obj, lhb: LighthouseBridge) -> str:
        """deletionPolicy Snapshot: the final backup must succeed before anything is deleted (backup.final decides).
        Returns the Job's name; raises kopf.TemporaryError while it runs, after it failed, and without spec.backup."""
        final = backup.final(lhb, await observe.final_backup_job(self.reader, lhb))
        if final.state == "done":
            return final.job
        done = await self.applier.perform(final.writes)
        for _ in done:
            metrics.BACKUP_JOBS.labels(trigger="final").inc()
        await self.applier.post(body, events.snapshot(done))
        await self._status(body, [st.rollup(lhb, final.assessment)], clock.stamp())
        delay = SNAPSHOT_POLL_SECONDS if final.state == "wait" else SNAPSHOT_RETRY_SECONDS
        raise kopf.TemporaryError(final.message, delay=delay)

    def _count_backups(self, lhb: LighthouseBridge, p: backup.Plan, created: int) -> None:
        was = st.find(lhb.status or {}, backup.CONDITION)
        metrics.record_backups(
            lhb.namespace,
            lhb.name,
            configured=lhb.spec.backup is not None,
            missed=p.missed,
            newly_missed=p.missed and not (was and was.get("reason") == "BackupMissed"),
            last_success=clock.parse(p.last_success),
            requested=created,
        )

    def _wake_at_deadline(self, namespace: str, name: str, delay: float) -> None:
        """A rollout's progress deadline must be judged on time even when no pod or Deployment event comes."""
        self._later((namespace, name), delay + 1.0, "deadline")


__all__ = ["Decision", "Outcome", "Reconciler", "decide"]
