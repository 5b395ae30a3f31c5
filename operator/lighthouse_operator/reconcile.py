"""One idempotent, level-based reconcile per LighthouseBridge.

Every trigger (the resource's own watch events, a timer, a child Deployment/StatefulSet changing) ends in the same
function, which reads the current object, decides what to do from observed state only (`decide`, a pure function
returning a small dataclass), then acts. Nothing depends on which event arrived, so a missed or repeated event, or an
operator restart in the middle, converges to the same result without duplicates (children have fixed names and are
server-side applied). Triggers for one resource are serialised and coalesced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import kopf

from . import builders, gate, metrics, naming
from . import status as st
from .applier import Applier, ApplyReport
from .builders import monitoring
from .k8s import ApiError, Invalid, Kube, Obj
from .models import API_VERSION, KIND, LighthouseBridge
from .validation import InvalidSpec, parse

log = logging.getLogger(__name__)

SNAPSHOT_RETRY_SECONDS = 30


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
            if lhb.spec.deletion_policy == "Snapshot":
                message = (
                    "deletionPolicy is Snapshot: a final backup must exist before deletion, and this operator "
                    "cannot take one yet. Set spec.deletionPolicy to Retain (keep data) or Delete to proceed."
                )
                new = st.build(lhb, st.Assessment(stalled=("SnapshotUnavailable", message), deleting=message))
                await self._write_status(body, new)
                raise kopf.TemporaryError(message, delay=SNAPSHOT_RETRY_SECONDS)
            done = await self.applier.release(lhb)
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
            new = st.build(lhb, st.Assessment(paused=True, components=st.assess_children(lhb, observed, revision),
                                              revision=revision))
            writes += await self._write_status(body, new)
            return Outcome("paused", writes)

        try:
            secrets = await self.applier.ensure_secrets(lhb)
            # The health gate stamps revisions into the workloads and swaps in the last-good template after a
            # failed rollout (rollout.py decides, gate.py reads and records).
            gated = await self.gate.prepare(lhb, builders.desired_children(lhb))
            desired = gated.manifests
            report = await self.applier.apply(lhb, desired, observed)
            await self.applier.prune(lhb, desired, report)
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
        writes += len(secrets.created) + len(secrets.adopted) + report.writes + gated.writes
        await self._announce(body, report, secrets.created, secrets.adopted)
        writes += await self.gate.finish(body, gated)
        if gated.wake_in is not None:
            self._wake_at_deadline(namespace, name, gated.wake_in)

        bridge_rev = gated.revision(naming.BRIDGE)
        new = st.build(lhb, st.Assessment(components=st.assess_children(lhb, report.objects, bridge_rev),
                                          warnings=report.warnings, revision=bridge_rev))
        new = gate.overlay(new, gated, generation, lhb.status)
        writes += await self._write_status(body, new)
        return Outcome("applied" if writes else "unchanged", writes)

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
