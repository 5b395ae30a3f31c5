"""The health gate's reads and writes around one reconcile (rollout.py and revision.py decide; this module acts).

    result = await gate.prepare(lhb, desired)        # before apply: revisions, judgement, shaped workloads, history
    report = await applier.apply(lhb, result.manifests, observed)
    await gate.finish(body, result)                  # after apply: stuck StatefulSet pods, Events, metrics
    status = gate.overlay(st.build(...), result, generation)

Reads per pass: each referenced Secret/ConfigMap (GET), and per workload its ReplicaSets or pods and its
ControllerRevisions (LIST by label). Writes happen only on a transition: a new revision is recorded, a stuck pod is
deleted, an Event is posted. An idle, healthy bridge costs no writes.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import naming, revision, rollout
from . import status as st
from .k8s import Kube, Obj
from .models import LighthouseBridge

log = logging.getLogger(__name__)

Manifest = dict[str, Any]
# Workloads judged by the gate: component -> kind. The bridge is a Deployment, the stores are StatefulSets.
WORKLOADS = {naming.BRIDGE: "Deployment", naming.POSTGRES: "StatefulSet", naming.REDIS: "StatefulSet"}


def component_of(manifest: Mapping[str, Any]) -> str | None:
    comp = ((manifest.get("metadata") or {}).get("labels") or {}).get(naming.L_COMPONENT)
    if comp in WORKLOADS and manifest.get("kind") == WORKLOADS[comp]:
        return comp
    return None


@dataclass
class Judged:
    component: str
    kind: str
    name: str
    revision: str
    decision: rollout.RolloutDecision
    view: rollout.View | None


@dataclass
class GateResult:
    manifests: list[Manifest]  # desired children, workloads stamped (and shaped for rollback or freeze)
    judged: dict[str, Judged] = field(default_factory=dict)
    writes: int = 0
    wake_in: float | None = None  # seconds until the earliest progress deadline: look again then, not at resync

    def revision(self, component: str) -> str | None:
        j = self.judged.get(component)
        return j.revision if j else None

    @property
    def failed(self) -> list[Judged]:
        return [j for j in self.judged.values() if j.decision.action in ("rollback", "freeze")]


def referenced_objects(desired: list[Manifest]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Secrets/ConfigMaps the operator itself is about to apply: their *new* content counts, so one spec change
    makes one revision, not one now and another after the ConfigMap is applied."""
    return {(m["kind"], m["metadata"]["name"]): m for m in desired if m.get("kind") in ("Secret", "ConfigMap")}


class Gate:
    def __init__(self, kube: Kube):
        self.kube = kube
        # (namespace, kind, name) -> LighthouseBridge names reading it: which Secret/ConfigMap events matter.
        self.watched: dict[tuple[str, str, str], set[str]] = {}

    def parents_of(self, namespace: str, kind: str, name: str) -> set[str]:
        return set(self.watched.get((namespace, kind, name), ()))

    def forget(self, namespace: str, name: str) -> None:
        for users in self.watched.values():
            users.discard(name)
        self.watched = {k: v for k, v in self.watched.items() if v or k[0] != namespace}

    async def _objects(
        self, lhb: LighthouseBridge, template: Manifest, known: dict[tuple[str, str], Mapping[str, Any]]
    ) -> dict[tuple[str, str], Any]:
        refs = revision.references(template)
        missing = [r for r in refs if (r.kind, r.name) not in known]
        got = await asyncio.gather(*(self.kube.get("v1", r.kind, lhb.namespace, r.name) for r in missing))
        out: dict[tuple[str, str], Any] = {
            (r.kind, r.name): known[(r.kind, r.name)] for r in refs if (r.kind, r.name) in known
        }
        for r, obj in zip(missing, got, strict=True):
            out[(r.kind, r.name)] = obj
            known[(r.kind, r.name)] = obj  # type: ignore[assignment]
        for r in refs:
            self.watched.setdefault((lhb.namespace, r.kind, r.name), set()).add(lhb.name)
        return out

    async def _view(
        self, lhb: LighthouseBridge, component: str, name: str, policy: rollout.Policy
    ) -> rollout.View | None:
        ns, sel = lhb.namespace, naming.selector_string(lhb.name, component)
        if WORKLOADS[component] == "Deployment":
            dep, rss, pods = await asyncio.gather(
                self.kube.get("apps/v1", "Deployment", ns, name),
                self.kube.list("apps/v1", "ReplicaSet", ns, sel),
                self.kube.list("v1", "Pod", ns, sel),
            )
            return rollout.view_deployment(dep, rss, pods, policy)
        sts, pods = await asyncio.gather(
            self.kube.get("apps/v1", "StatefulSet", ns, name), self.kube.list("v1", "Pod", ns, sel)
        )
        return rollout.view_statefulset(sts, pods, policy)

    async def prepare(
        self,
        lhb: LighthouseBridge,
        desired: list[Manifest],
        now: datetime.datetime | None = None,
        hold: Mapping[str, str] | None = None,
    ) -> GateResult:
        """`hold`: components deliberately not started yet (component -> why; the bridge while a restore runs).
        Their rollout is not judged and no progress deadline counts until the hold ends."""
        now = now or datetime.datetime.now(datetime.UTC)
        hold = hold or {}
        policy = rollout.Policy.from_spec(lhb.spec.rollout)
        records = (lhb.status or {}).get("rollout") or {}
        known = referenced_objects(desired)
        result = GateResult(manifests=[])
        for manifest in desired:
            comp = component_of(manifest)
            if comp is None:
                result.manifests.append(manifest)
                continue
            template = manifest["spec"]["template"]
            objects = await self._objects(lhb, template, known)
            if comp == naming.BRIDGE:
                rev = revision.for_bridge(lhb, manifest, objects)
            else:  # spec.restartNonce and lighthouse.dev/restartedAt roll the bridge, not the databases
                rev = revision.compute(template, objects)
            stamped = revision.stamp(manifest, rev)
            name = manifest["metadata"]["name"]
            view, history = await asyncio.gather(
                self._view(lhb, comp, name, policy),
                self.kube.list(
                    "apps/v1", "ControllerRevision", lhb.namespace, revision.history_selector(lhb.name, comp)
                ),
            )
            record = rollout.Record.from_status(records.get(comp))
            if comp in hold:
                # Scaled to 0 on purpose: "complete" would make an untried revision lastGood, and a deadline
                # counted from now could expire before the bridge is even allowed to start.
                decision = rollout.RolloutDecision("wait", "Held", hold[comp], rev, record)
            else:
                decision = rollout.judge(rev, view, record, policy, now)
            restore = None
            if decision.action == "rollback":
                restore = revision.stored_template(revision.find(history, decision.restore))
                if restore is None:
                    # The stored last-good template is gone (deleted by hand): stop where we are instead.
                    decision = replace(
                        decision,
                        action="freeze",
                        restore=None,
                        delete_pods=(),
                        message=f"{decision.message} (but the ControllerRevision of revision "
                        f"{decision.restore} is missing, so the rollout is frozen instead)",
                    )
            result.manifests.append(rollout.shape_workload(stamped, decision, restore))
            if decision.applies_desired:
                serving = view.serving if view else None
                plan = revision.plan_history(
                    lhb, comp, rev, stamped["spec"]["template"], history, protect=[decision.record.last_good, serving]
                )
                result.writes += await self._record(lhb, plan)
            result.judged[comp] = Judged(comp, manifest["kind"], name, rev, decision, view)
            due = rollout.seconds_until_deadline(decision.record, policy, now)
            if due is not None and (result.wake_in is None or due < result.wake_in):
                result.wake_in = due
        return result

    async def _record(self, lhb: LighthouseBridge, plan: revision.HistoryPlan) -> int:
        writes = 0
        if plan.create is not None:
            if await self.kube.create(plan.create) is not None:
                writes += 1
                log.info(
                    "Created ControllerRevision name=%s namespace=%s revision=%s",
                    plan.create["metadata"]["name"],
                    lhb.namespace,
                    plan.create["revision"],
                )
        if plan.renumber is not None:
            name, number = plan.renumber
            await self.kube.patch("apps/v1", "ControllerRevision", lhb.namespace, name, {"revision": number})
            writes += 1
        for name in plan.prune:
            if await self.kube.delete("apps/v1", "ControllerRevision", lhb.namespace, name):
                writes += 1
                log.info("Deleted ControllerRevision name=%s namespace=%s reason=HistoryLimit", name, lhb.namespace)
        return writes

    async def finish(self, body: Obj, result: GateResult) -> int:
        """After the apply: delete StatefulSet pods stuck on a failed revision, post Events, count rollbacks."""
        md = body["metadata"]
        writes = 0
        for j in result.judged.values():
            d = j.decision
            for pod in d.delete_pods:
                if await self.kube.delete("v1", "Pod", md["namespace"], pod):
                    writes += 1
                    log.info(
                        "Deleted Pod name=%s namespace=%s reason=StuckOnFailedRevision revision=%s",
                        pod,
                        md["namespace"],
                        d.failed_revision,
                    )
                    await self.kube.event(
                        body,
                        "Normal",
                        "DeletedStuckPod",
                        f"{j.component}: deleted pod {pod}, stuck on failed revision {d.failed_revision}",
                        action="Rollback",
                    )
            for type_, reason, message in rollout.event(d, j.component):
                await self.kube.event(body, type_, reason, message, action="Rollout")
            if d.fresh and d.action in ("rollback", "freeze"):
                log.warning(
                    "RolloutFailed name=%s namespace=%s component=%s revision=%s reason=%s action=%s",
                    md["name"],
                    md["namespace"],
                    j.component,
                    d.desired,
                    d.reason,
                    d.action,
                )
            rollout.count(d, j.component)
        return writes


def components(
    lhb: LighthouseBridge, result: GateResult, objects: Mapping[tuple[str, str], Obj]
) -> dict[str, st.Health]:
    """st.assess_children, with the bridge judged against the gate's revision (content of Secrets included)."""
    comps = st.assess_children(lhb, dict(objects))
    rev = result.revision(naming.BRIDGE)
    if rev is not None:
        comps[naming.BRIDGE] = st.deployment_health(
            objects.get(("Deployment", naming.Names(lhb.name).bridge)), rev, lhb.spec.replicas
        )
    return comps


def overlay(
    status: dict[str, Any],
    result: GateResult,
    generation: int,
    old: Mapping[str, Any] | None = None,
    when: str | None = None,
) -> dict[str, Any]:
    """The rollout's part of the status on top of st.build's roll-up: status.rollout records, status.revisions,
    and after a failure Ready=False, Stalled=True, RolledBack (True after a rollback), Degraded=True.
    `old` is the status before this pass: lastTransitionTime moves only when a condition really flips, not
    because st.build said otherwise a moment ago."""
    out = dict(status)
    out["rollout"] = {c: j.decision.record.to_status() for c, j in result.judged.items()}
    bridge = result.judged.get(naming.BRIDGE)
    if bridge is not None:
        out["revisions"] = rollout.revisions(bridge.decision, bridge.view)
    failed = result.failed
    if failed:
        first = sorted(failed, key=lambda j: list(WORKLOADS).index(j.component))[0]
        conds = rollout.conditions(first.decision, generation)
        if len(failed) > 1:
            more = "; ".join(f"{j.component}: {j.decision.message}" for j in failed if j is not first)
            conds = [
                {**c, "message": f"{c['message']}; {more}"} if c["status"] == "True" or c["type"] == "Ready" else c
                for c in conds
            ]
        conds = [{**c, "message": f"{first.component}: {c['message']}"} if c["message"] else c for c in conds]
        out["phase"] = rollout.phase(first.decision) or out.get("phase")
    else:
        main = result.judged.get(naming.BRIDGE) or next(iter(result.judged.values()), None)
        conds = rollout.conditions(main.decision, generation) if main else []
    merged = st.merge_conditions(status.get("conditions") or [], conds, when or st.now())
    before = {c.get("type"): c for c in (old or {}).get("conditions") or []}
    for c in merged:
        prev = before.get(c["type"])
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c["lastTransitionTime"] = prev["lastTransitionTime"]
    out["conditions"] = merged
    return out


__all__ = ["WORKLOADS", "Gate", "GateResult", "Judged", "component_of", "components", "overlay", "referenced_objects"]
