"""One idempotent, level-based reconcile per LighthouseBridge.

Every trigger (the resource's own watch events, a timer, a child Deployment/StatefulSet changing) ends in the same
function, which reads the current object, decides what to do from observed state only (`decide`, a pure function
returning a small dataclass), then acts. Nothing depends on which event arrived, so a missed or repeated event, or an
operator restart in the middle, converges to the same result without duplicates (children have fixed names and are
server-side applied). Triggers for one resource are serialised and coalesced.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import kopf

from . import backup as backups
from . import builders, gate, metrics, naming, restore
from . import status as st
from .applier import Applier, ApplyReport
from .builders import backup as backup_builder
from .builders import monitoring
from .k8s import ApiError, Invalid, Kube, Obj
from .models import API_VERSION, KIND, LighthouseBridge
from .validation import InvalidSpec, parse

log = logging.getLogger(__name__)

SNAPSHOT_RETRY_SECONDS = 30
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


def stalled_status(
    old: dict[str, Any], generation: int, reason: str, message: str, when: str | None = None
) -> dict[str, Any]:
    """Stalled without parsing the spec (it may be unparseable): children and their figures are left as they were."""
    when = when or st.now()
    conds = [
        {"type": "Ready", "status": "False", "reason": reason, "message": message, "observedGeneration": generation},
        {
            "type": "Reconciling",
            "status": "False",
            "reason": reason,
            "message": "no changes are applied until the spec is fixed",
            "observedGeneration": generation,
        },
        {"type": "Stalled", "status": "True", "reason": reason, "message": message, "observedGeneration": generation},
    ]
    return {
        **old,
        "observedGeneration": generation,
        "phase": "Stalled",
        "conditions": st.merge_conditions(old.get("conditions") or [], conds, when),
    }


def error_status(old: dict[str, Any], generation: int, message: str, when: str | None = None) -> dict[str, Any]:
    """A failed pass: not Ready, still Reconciling (it is retried), with the API server's words."""
    conds = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ReconcileError",
            "message": message,
            "observedGeneration": generation,
        },
        {
            "type": "Reconciling",
            "status": "True",
            "reason": "ReconcileError",
            "message": message,
            "observedGeneration": generation,
        },
    ]
    return {
        **old,
        "observedGeneration": generation,
        "conditions": st.merge_conditions(old.get("conditions") or [], conds, when or st.now()),
    }


@dataclass
class Outcome:
    result: str
    writes: int = 0


class Reconciler:
    def __init__(self, kube: Kube, applier: Applier | None = None):
        self.kube = kube
        self.applier = applier or Applier(kube)
        self.gate = gate.Gate(kube)
        self._wakeups: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiting: set[tuple[str, str]] = set()
        self._own_rv: dict[tuple[str, str], str] = {}
        self.known: set[tuple[str, str]] = set()

    def is_own_write(self, namespace: str, name: str, resource_version: str | None) -> bool:
        """The watch event echoes our own status patch: nothing new to look at."""
        return resource_version is not None and self._own_rv.get((namespace, name)) == resource_version

    def forget(self, namespace: str, name: str) -> None:
        self.known.discard((namespace, name))
        self._own_rv.pop((namespace, name), None)
        self._locks.pop((namespace, name), None)
        self.gate.forget(namespace, name)
        for gauge in (metrics.BACKUP_MISSED, metrics.BACKUP_LAST_SUCCESS, metrics.BACKUP_MISSES):
            try:
                gauge.remove(namespace, name)
            except KeyError:
                pass
        if (handle := self._wakeups.pop((namespace, name), None)) is not None:
            handle.cancel()

    # ------------------------------------------------------------------------------------------------ entry points

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
            body = await self.kube.get(API_VERSION, KIND, namespace, name)
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
                await self.kube.event(
                    body, "Normal", "Snapshotted", f"final backup taken by Job {final}", action="Delete"
                )
            done = await self.applier.release(released)
            verb = "Retained" if lhb.spec.deletion_policy == "Retain" else "Deleted"
            if done:
                await self.kube.event(
                    body,
                    "Normal",
                    verb,
                    f"deletionPolicy {lhb.spec.deletion_policy}: " + ", ".join(done),
                    action="Delete",
                )
            self._locks.pop((namespace, name), None)
            return done

    # ---------------------------------------------------------------------------------------------------- the loop

    async def _reconcile(self, namespace: str, name: str) -> Outcome:
        body = await self.kube.get(API_VERSION, KIND, namespace, name)
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
        old_status = body.get("status") or {}

        problems: list[str] = []
        lhb: LighthouseBridge | None = None
        try:
            lhb = parse(body)
        except InvalidSpec as e:
            problems = e.problems
        missing = await self.missing_references(lhb) if lhb is not None else []
        decision = decide(generation, old_status, problems, missing, bool(lhb and lhb.spec.paused))

        if decision.action == "stall":
            new = stalled_status(old_status, generation, decision.reason, decision.message)
            writes = await self._write_status(body, new)
            return Outcome("stalled", writes)
        assert lhb is not None

        writes = 0
        if decision.mark_reconciling:
            first = st.reconciling_first(lhb)
            writes += await self._write_status(body, first)
            lhb.status = first
            body = {**body, "status": first}

        observed = await self.applier.observe(lhb)
        if decision.action == "pause":
            revision = (lhb.status.get("revisions") or {}).get("desired")  # the gate's, as of the last pass
            new = st.build(
                lhb,
                st.Assessment(paused=True, components=st.assess_children(lhb, observed, revision), revision=revision),
            )
            writes += await self._write_status(body, new)
            return Outcome("paused", writes)

        # spec.restore: a Job seeds the database while the bridge Deployment is held at 0 replicas (restore.py).
        restoring = await restore.plan(self.kube, lhb, observed, st.now())
        if restoring.persist_first:
            # Recorded before anything is created: a crash now must not make this bridge look as if it had run.
            first = {**(lhb.status or {}), "restore": restoring.record}
            writes += await self._write_status(body, first)
            lhb.status = first

        try:
            secrets = await self.applier.ensure_secrets(lhb)
            children = builders.desired_children(lhb)
            hold = None
            if restoring.hold:
                children = restore.hold_bridge(children, lhb)
                hold = {naming.BRIDGE: restoring.restoring or restoring.failed or "waiting for the restore"}
            # The health gate stamps revisions into the workloads and swaps in the last-good template after a
            # failed rollout (rollout.py decides, gate.py reads and records).
            gated = await self.gate.prepare(lhb, children, hold=hold)
            desired = gated.manifests
            report = await self.applier.apply(lhb, desired, observed)
            await self.applier.prune(lhb, desired, report)
            restore_done = await restore.act(self.kube, lhb, restoring)
            await self.applier.apply_optional(
                lhb,
                "monitoring.coreos.com/v1",
                "ServiceMonitor",
                naming.Names(lhb.name).bridge,
                monitoring.service_monitor(lhb),
                report,
            )
        except Invalid as e:
            # The API server refused a child: the spec asks for something it will never accept.
            message = f"the API server rejected a child object: {e.message}"
            writes += await self._write_status(body, stalled_status(lhb.status, generation, "ApplyRejected", message))
            return Outcome("stalled", writes)
        except ApiError as e:
            # Transient or environmental (quota, exhausted Service IPs, webhooks): say so, and retry on the timer.
            await self._write_status(body, error_status(lhb.status, generation, f"{e.status} {e.reason}: {e.message}"))
            raise
        writes += len(secrets.created) + len(secrets.adopted) + report.writes + gated.writes + len(restore_done)
        await self._announce(body, report, secrets.created, secrets.adopted)
        await self._restore_events(body, restoring, restore_done)
        writes += await self.gate.finish(body, gated)
        if gated.wake_in is not None:
            self._wake_at_deadline(namespace, name, gated.wake_in)

        bridge_rev = gated.revision(naming.BRIDGE)
        components = st.assess_children(lhb, report.objects, bridge_rev)
        extra_warnings = [w for w in (restoring.warning, backups.client_mismatch(lhb.spec)) if w]
        if restoring.hold:
            why = "the restore failed" if restoring.failed else "waiting for the restore"
            components[naming.BRIDGE] = st.Health(0, lhb.spec.replicas, False, False, f"held at 0 replicas: {why}")
        new = st.build(
            lhb,
            st.Assessment(
                components=components,
                warnings=report.warnings + extra_warnings,
                revision=bridge_rev,
                restoring=restoring.restoring,
                stalled=("RestoreFailed", restoring.failed) if restoring.failed else None,
            ),
        )
        new = gate.overlay(new, gated, generation, lhb.status)
        if restoring.record is not None:
            new["restore"] = restoring.record
        new, backup_writes = await self._backups(body, lhb, report.objects, new)
        writes += backup_writes
        writes += await self._write_status(body, new)
        return Outcome("applied" if writes else "unchanged", writes)

    # ------------------------------------------------------------------------------------------------------ backups

    async def _backups(
        self, body: Obj, lhb: LighthouseBridge, children: dict[tuple[str, str], Obj], status: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        """Backup Jobs -> status.lastBackup and BackupSucceeded (backup.py decides); a new lighthouse.dev/backup-now
        value -> one Job. Reads the Jobs, and their pods only while a finished Job is newer than the last success."""
        ns, old = lhb.namespace, lhb.status or {}
        request = (lhb.metadata.annotations.get(backups.A_BACKUP_NOW) or "").strip() or None
        b = lhb.spec.backup
        if b is None and request is None and not old.get("backup") and not st.condition(old, backups.CONDITION):
            return status, 0
        sel = backups.job_selector(lhb.name)
        jobs = await self.kube.list("batch/v1", "Job", ns, sel)
        last = backups.parse_time(old.get("lastSuccessfulBackupTime"))
        views = [backups.view_job(j, []) for j in jobs]
        if any(v.finished and (last is None or v.finished > last) for v in views):
            pods = await self.kube.list("v1", "Pod", ns, sel)
            views = [backups.view_job(j, pods) for j in jobs]
        cronjob = children.get(("CronJob", naming.Names(lhb.name).backup))
        d = backups.decide(
            backups.Inputs(
                configured=b is not None,
                schedule=b.schedule if b else None,
                suspended=bool(b and b.suspend),
                jobs=views,
                old=old,
                now=datetime.datetime.now(datetime.UTC),
                request=request,
                request_job=backup_builder.request_job_name(lhb, request) if request and b else None,
                cronjob_created=backups.parse_time(((cronjob or {}).get("metadata") or {}).get("creationTimestamp")),
            ),
            lhb.metadata.generation,
        )
        writes = 0
        if d.create_request_job:
            manifest = backup_builder.job(lhb, d.create_request_job, "request", request)
            if manifest is not None and await self.kube.create(manifest) is not None:
                writes += 1
                metrics.BACKUP_JOBS.labels(trigger="request").inc()
                log.info("Created Job name=%s namespace=%s reason=BackupRequested", d.create_request_job, ns)
                await self.kube.event(
                    body,
                    "Normal",
                    "BackupRequested",
                    f"Created Job {d.create_request_job} for {backups.A_BACKUP_NOW}={request}",
                )
        if d.request_refused:
            await self.kube.event(
                body,
                "Warning",
                "BackupNotConfigured",
                f"{backups.A_BACKUP_NOW}={d.request_refused} was not run: spec.backup is not set",
            )
        if b is not None:
            metrics.BACKUP_MISSED.labels(namespace=ns, name=lhb.name).set(1 if d.missed else 0)
        if d.last_success and (t := backups.parse_time(d.last_success)):
            metrics.BACKUP_LAST_SUCCESS.labels(namespace=ns, name=lhb.name).set(t.timestamp())
        was = st.condition(old, backups.CONDITION)
        if d.missed and not (was and was.get("reason") == "BackupMissed"):
            metrics.BACKUP_MISSES.labels(namespace=ns, name=lhb.name).inc()
        return backups.overlay(status, d, old), writes

    async def _final_backup(self, body: Obj, lhb: LighthouseBridge) -> str:
        """deletionPolicy Snapshot: a Job from the CronJob's template must succeed before anything is deleted (the
        CronJob, Secrets and database stay: garbage collection waits for this finalizer). Returns the Job's name;
        raises kopf.TemporaryError while it runs, after it failed, and without spec.backup."""
        ns = lhb.namespace
        if lhb.spec.backup is None:
            message = (
                "deletionPolicy is Snapshot but spec.backup is not set, so no final backup can be taken. "
                "Set spec.deletionPolicy to Retain (keep data) or Delete to proceed, or set spec.backup."
            )
            await self._write_status(
                body, st.build(lhb, st.Assessment(stalled=("SnapshotUnavailable", message), deleting=message))
            )
            raise kopf.TemporaryError(message, delay=SNAPSHOT_RETRY_SECONDS)
        name = backup_builder.final_job_name(lhb)
        job = await self.kube.get("batch/v1", "Job", ns, name)
        view = None
        if job is None:
            manifest = backup_builder.job(lhb, name, "final")
            assert manifest is not None
            if await self.kube.create(manifest) is not None:
                metrics.BACKUP_JOBS.labels(trigger="final").inc()
                log.info("Created Job name=%s namespace=%s reason=FinalBackup", name, ns)
                await self.kube.event(
                    body,
                    "Normal",
                    "Snapshotting",
                    f"Created Job {name}: the final backup before deletion",
                    action="Delete",
                )
        else:
            view = backups.view_job(job, await self.kube.list("v1", "Pod", ns, backups.job_selector(lhb.name)))
        state = backups.final_state(view) if job is not None else "wait"
        if state == "done":
            return name
        if state == "failed":
            assert view is not None
            message = (
                f"the final backup Job {name} failed: {view.reason}. Fix the cause and delete Job {name} to try "
                "again, or set spec.deletionPolicy to Retain (keep data) or Delete (no final backup) to proceed."
            )
            await self._write_status(
                body, st.build(lhb, st.Assessment(stalled=("SnapshotFailed", message), deleting=message))
            )
            raise kopf.TemporaryError(message, delay=SNAPSHOT_RETRY_SECONDS)
        message = f"deletionPolicy Snapshot: waiting for the final backup (Job {name}) before deleting"
        await self._write_status(body, st.build(lhb, st.Assessment(deleting=message, deleting_reason="Snapshotting")))
        raise kopf.TemporaryError(message, delay=SNAPSHOT_POLL_SECONDS)

    async def _restore_events(self, body: Obj, p: restore.Plan, done: list[str]) -> None:
        """Normal Restoring when the Job was created, Normal Restored once; RestoreFailed is the Stalled Event."""
        if p.event is None:
            return
        before = ((body.get("status") or {}).get("restore") or {}).get("phase")
        after = (p.record or {}).get("phase")
        if (p.create_job and any(d.startswith("Created") for d in done)) or (not p.create_job and before != after):
            type_, reason, message = p.event
            await self.kube.event(body, type_, reason, message, action="Restore")

    def _wake_at_deadline(self, namespace: str, name: str, delay: float) -> None:
        """A rollout's progress deadline must be judged on time even when no pod or Deployment event comes."""
        k = (namespace, name)
        if (old := self._wakeups.pop(k, None)) is not None:
            old.cancel()

        def fire() -> None:
            self._wakeups.pop(k, None)
            task = asyncio.ensure_future(self._deadline_pass(namespace, name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._wakeups[k] = asyncio.get_running_loop().call_later(delay + 1.0, fire)

    async def _deadline_pass(self, namespace: str, name: str) -> None:
        try:
            await self.trigger(namespace, name, "deadline")
        except Exception as e:  # the resync timer tries again
            log.warning("Reconcile failed name=%s namespace=%s trigger=deadline error=%s", name, namespace, e)

    async def missing_references(self, lhb: LighthouseBridge) -> list[str]:
        """Objects the spec names but the operator does not create. Reads only."""
        s, ns = lhb.spec, lhb.namespace
        checks: list[tuple[str, str, str, str | None]] = []  # (kind, name, what, secret key)
        for what, store in (("redis", s.redis), ("postgres", s.postgres)):
            if store.mode == "external" and store.external and store.external.secret_ref:
                ref = store.external.secret_ref
                checks.append(("Secret", ref.name, f"{what}.external.secretRef", ref.key))
        if s.backup and s.backup.s3.credentials_secret:
            checks.append(
                ("Secret", s.backup.s3.credentials_secret, "backup.s3.credentialsSecret", "AWS_ACCESS_KEY_ID")
            )
        if s.restore and s.restore.s3 and s.restore.s3.credentials_secret:
            checks.append(
                ("Secret", s.restore.s3.credentials_secret, "restore.s3.credentialsSecret", "AWS_ACCESS_KEY_ID")
            )
        if s.project.pvc:
            checks.append(("PersistentVolumeClaim", s.project.pvc.claim_name, "project.pvc.claimName", None))
        if s.pod_template.service_account_name:
            checks.append(
                ("ServiceAccount", s.pod_template.service_account_name, "podTemplate.serviceAccountName", None)
            )
        found = await asyncio.gather(*(self.kube.get("v1", kind, ns, name) for kind, name, _, _ in checks))
        out = []
        for (kind, name, what, key), obj in zip(checks, found, strict=True):
            if obj is None:
                out.append(f"{what}: {kind} {ns}/{name} not found")
            elif key and key not in (obj.get("data") or {}):
                out.append(f"{what}: Secret {ns}/{name} has no key {key!r}")
        return out

    # ------------------------------------------------------------------------------------------------- side effects

    async def _write_status(self, body: Obj, new: dict[str, Any]) -> int:
        """Patch status only when it differs; post Events for transitions. Returns the number of writes."""
        old = body.get("status") or {}
        patch = st.merge_patch(old, new)
        if patch is None:
            return 0
        md = body["metadata"]
        result = await self.kube.patch_status(API_VERSION, KIND, md["namespace"], md["name"], patch)
        metrics.STATUS_WRITES.inc()
        if result is not None:
            self._own_rv[(md["namespace"], md["name"])] = result["metadata"]["resourceVersion"]
        body["status"] = new
        await self._transition_events(body, old, new)
        return 1

    async def _transition_events(self, body: Obj, old: dict[str, Any], new: dict[str, Any]) -> None:
        def flipped(type_: str, to: str) -> dict[str, Any] | None:
            before, after = st.condition(old, type_), st.condition(new, type_)
            if (
                after
                and after["status"] == to
                and (before is None or before["status"] != to or before.get("reason") != after.get("reason"))
            ):
                return after
            return None

        md = body["metadata"]
        # The health gate announces its own outcomes (Warning RolloutFailed, Normal RolledBack, Warning RolloutFrozen).
        gate_reasons = {"RolledBack", "RolloutFrozen"}
        if (c := flipped("Stalled", "True")) and c["reason"] not in gate_reasons:
            log.warning(
                "Stalled name=%s namespace=%s reason=%s message=%s",
                md["name"],
                md["namespace"],
                c["reason"],
                c["message"],
            )
            await self.kube.event(body, "Warning", c["reason"], c["message"])
        if c := flipped("Ready", "True"):
            log.info(
                "Ready name=%s namespace=%s generation=%s", md["name"], md["namespace"], new.get("observedGeneration")
            )
            gen = new.get("observedGeneration")
            await self.kube.event(body, "Normal", "Ready", f"generation {gen}: {c['message']}")
        if (c := flipped("Reconciling", "True")) and c["reason"] == "ReconcileError":
            await self.kube.event(body, "Warning", "ReconcileError", c["message"])
        if (c := flipped("Degraded", "True")) and c["reason"] not in gate_reasons:
            await self.kube.event(body, "Warning", "Degraded", c["message"])
        for type_, reason, message in backups.events(old, new):  # BackupFailed, BackupMissed, recovery
            await self.kube.event(body, type_, reason, message)

    async def _announce(self, body: Obj, report: ApplyReport, created_secrets: list[str], adopted: list[str]) -> None:
        for reason, items in (
            ("Created", report.created + [f"Secret/{s}" for s in created_secrets]),
            ("Updated", report.updated),
            ("Adopted", [f"Secret/{s}" for s in adopted]),
            ("Pruned", report.pruned),
        ):
            if items:
                await self.kube.event(body, "Normal", reason, f"{reason} {', '.join(items)}")


def parent_of(child: Obj) -> tuple[str, str] | None:
    """(namespace, name) of the LighthouseBridge controlling a child, from its ownerReference."""
    for ref in child.get("metadata", {}).get("ownerReferences") or []:
        if (
            ref.get("kind") == KIND
            and ref.get("apiVersion", "").startswith("lighthouse.dev/")
            and ref.get("controller")
        ):
            return child["metadata"]["namespace"], ref["name"]
    labels = child.get("metadata", {}).get("labels") or {}
    if labels.get(naming.L_MANAGED_BY) == naming.MANAGED_BY and naming.L_INSTANCE in labels:
        return child["metadata"]["namespace"], labels[naming.L_INSTANCE]
    return None


__all__ = ["ApiError", "Decision", "Outcome", "Reconciler", "decide", "parent_of", "stalled_status"]
