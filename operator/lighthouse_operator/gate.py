"""The health gate's reads and writes around one reconcile (rollout.py and revision.py decide; this module acts).

    result = await gate.prepare(lhb, desired)        # before apply: revisions, judgement, shaped workloads, history
    report = await applier.apply(lhb, result.manifests, observed)
    await gate.finish(body, result)                  # after apply: stuck StatefulSet pods, Events, metrics
    rollout.fragment(result.judged, generation)      # its part of the status

Reads per pass (observe.py): each referenced Secret/ConfigMap (GET), and per workload its ReplicaSets or pods and
its ControllerRevisions (LIST by label). Writes (through the applier) happen only on a transition: a new revision is
recorded, a stuck pod is deleted, an Event is posted. An idle, healthy bridge costs no writes.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import clock, events, metrics, naming, observe, revision, rollout
from .api import Delete, Obj, Reader
from .applier import Applier
from .models import LighthouseBridge

Manifest = dict[str, Any]


def component_of(manifest: Mapping[str, Any]) -> str | None:
    comp = ((manifest.get("metadata") or {}).get("labels") or {}).get(naming.L_COMPONENT)
    if isinstance(comp, str) and comp in rollout.WORKLOADS and manifest.get("kind") == rollout.WORKLOADS[comp]:
        return comp
    return None


@dataclass
class GateResult:
    manifests: list[Manifest]  # desired children, workloads stamped (and shaped for rollback or freeze)
    judged: dict[str, rollout.Judged] = field(default_factory=dict)
    writes: int = 0
    wake_in: float | None = None  # seconds until the earliest progress deadline: look again then, not at resync

    def revision(self, component: str) -> str | None:
        j = self.judged.get(component)
        return j.revision if j else None


def referenced_objects(desired: list[Manifest]) -> dict[tuple[str, str], Obj | None]:
    """Secrets/ConfigMaps the operator itself is about to apply: their *new* content counts, so one spec change
    makes one revision, not one now and another after the ConfigMap is applied."""
    return {(m["kind"], m["metadata"]["name"]): m for m in desired if m.get("kind") in ("Secret", "ConfigMap")}


class Gate:
    def __init__(self, reader: Reader, applier: Applier):
        self.reader = reader
        self.applier = applier
        # (namespace, kind, name) -> LighthouseBridge names reading it: which Secret/ConfigMap events matter.
        self.watched: dict[tuple[str, str, str], set[str]] = {}

    def parents_of(self, namespace: str, kind: str, name: str) -> set[str]:
        return set(self.watched.get((namespace, kind, name), ()))

    def forget(self, namespace: str, name: str) -> None:
        for users in self.watched.values():
            users.discard(name)
        self.watched = {k: v for k, v in self.watched.items() if v or k[0] != namespace}

    async def _objects(
        self, lhb: LighthouseBridge, template: Manifest, known: dict[tuple[str, str], Obj | None]
    ) -> dict[tuple[str, str], Obj | None]:
        """The Secrets and ConfigMaps a pod template reads (what this pass applies, else as read), remembered."""
        keys = [(r.kind, r.name) for r in revision.references(template)]
        known.update(await observe.objects(self.reader, lhb.namespace, [k for k in keys if k not in known]))
        for kind, name in keys:
            self.watched.setdefault((lhb.namespace, kind, name), set()).add(lhb.name)
        return {k: known[k] for k in keys}

    async def prepare(
        self,
        lhb: LighthouseBridge,
        desired: list[Manifest],
        now: datetime.datetime | None = None,
        hold: Mapping[str, str] | None = None,
    ) -> GateResult:
        """`hold`: components deliberately not started yet (component -> why; the bridge while a restore runs).
        Their rollout is not judged and no progress deadline counts until the hold ends."""
        now = now or clock.now()
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
                observe.workload(self.reader, lhb, comp, name, policy), observe.history(self.reader, lhb, comp)
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
                result.writes += len(await self.applier.perform(plan.writes(lhb.namespace)))
            result.judged[comp] = rollout.Judged(comp, manifest["kind"], name, rev, decision, view)
            due = rollout.seconds_until_deadline(decision.record, policy, now)
            if due is not None and (result.wake_in is None or due < result.wake_in):
                result.wake_in = due
        return result

    async def finish(self, body: Obj, result: GateResult) -> int:
        """After the apply: delete StatefulSet pods stuck on a failed revision, post Events, count rollbacks."""
        ns = body["metadata"]["namespace"]
        stuck = [
            Delete("v1", "Pod", ns, pod, reason="StuckOnFailedRevision")
            for j in result.judged.values()
            for pod in j.decision.delete_pods
        ]
        done = await self.applier.perform(stuck)
        await self.applier.post(body, events.stuck_pods(result.judged, done) + events.rollout(result.judged))
        for j in result.judged.values():
            d = j.decision
            if d.fresh and d.action in ("rollback", "freeze"):  # once per failed rollout
                metrics.ROLLBACKS.labels(component=j.component, action=d.action, reason=d.reason).inc()
        return len(done)


__all__ = ["Gate", "GateResult", "component_of", "referenced_objects"]
