"""`kubectl lighthouse rollback`: put the spec back to what the last good revision ran. Pure planning.

The operator records every bridge pod template it applied as a ControllerRevision (`<name>-bridge-<revision>`, label
`lighthouse.dev/revision`), and the newest one that rolled out healthily in `status.revisions.lastGood`. After a
failed rollout it serves that revision again but leaves `spec` alone (GitOps owns it), so the resource stays
Stalled until the spec changes. A template cannot be turned back into a whole spec, so the rollback restores the
fields a release changes, the bridge image and its resources, and names any other difference it leaves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from . import diff

Obj = dict[str, Any]
L_REVISION = "lighthouse.dev/revision"
L_REVISION_OF = "lighthouse.dev/revision-of"
BRIDGE_CONTAINER = "bridge"
# Added to the template by the operator or by `kubectl rollout restart`: never a spec difference.
IGNORED_PATHS = (
    "metadata.annotations.lighthouse.dev/revision",
    "metadata.annotations.kubectl.kubernetes.io/restartedAt",
)


class RollbackError(Exception):
    """Nothing to roll back to, or nothing to roll back: the message says which and what to do."""


@dataclass
class Plan:
    target: str  # the last good revision
    patch: Obj  # a merge patch of the LighthouseBridge
    spec_before: Obj
    spec_after: Obj
    template_diff: str  # desired template -> last good template
    unrestored: list[str] = field(default_factory=list)  # template paths that still differ after the patch

    @property
    def spec_diff(self) -> str:
        return diff.unified(self.spec_before, self.spec_after, "spec (now)", "spec (after rollback)")


def history_selector(name: str) -> str:
    return f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=lighthouse-operator,{L_REVISION_OF}=bridge"


def _by_revision(history: list[Obj], revision: str | None) -> Obj | None:
    if not revision:
        return None
    return next(
        (cr for cr in history if (cr.get("metadata", {}).get("labels") or {}).get(L_REVISION) == revision), None
    )


def _template(cr: Obj | None) -> Obj | None:
    t = (cr or {}).get("data", {}).get("template") if cr else None
    return t if isinstance(t, dict) else None


def _container(template: Obj) -> Obj:
    for c in (template.get("spec") or {}).get("containers") or []:
        if c.get("name") == BRIDGE_CONTAINER:
            return dict(c)
    raise RollbackError("the stored template has no bridge container")


def spec_resources(container: Obj, fuse_resource: str | None) -> Obj:
    """spec.resources as the operator turned it into the container's resources (it adds the FUSE device plugin's
    resource to both limits and requests)."""
    out: Obj = {}
    for section in ("limits", "requests"):
        values = {
            k: v for k, v in ((container.get("resources") or {}).get(section) or {}).items() if k != fuse_resource
        }
        if values:
            out[section] = values
    return out


def _differences(a: Obj, b: Obj) -> list[str]:
    return [p for p in diff.paths(a, b) if p not in IGNORED_PATHS]


def plan(lhb: Obj, history: list[Obj]) -> Plan:
    spec = lhb.get("spec") or {}
    revisions = (lhb.get("status") or {}).get("revisions") or {}
    last_good, desired = revisions.get("lastGood"), revisions.get("desired")
    if not last_good:
        raise RollbackError(
            "status.revisions.lastGood is not set: this bridge has never rolled out healthily, so "
            "there is nothing to go back to"
        )
    good = _template(_by_revision(history, last_good))
    if good is None:
        raise RollbackError(
            f"the ControllerRevision of the last good revision {last_good} is missing "
            f"(kubectl get controllerrevisions -l {L_REVISION}={last_good})"
        )
    now = _template(_by_revision(history, desired))
    good_c = _container(good)
    fuse_resource = (spec.get("fuse") or {}).get("devicePluginResource")

    after = copy.deepcopy(spec)
    patch: Obj = {}
    image_now = spec.get("image") or (_container(now).get("image") if now else None)  # no spec.image: the default
    if image_now != good_c.get("image"):
        after["image"] = patch["image"] = good_c.get("image")
    good_resources = spec_resources(good_c, fuse_resource)
    if (spec.get("resources") or {}) != good_resources:
        after["resources"] = good_resources
        patch["resources"] = {
            s: {**{k: None for k in (spec.get("resources") or {}).get(s) or {}}, **good_resources.get(s, {})}
            for s in ("limits", "requests")
            if (spec.get("resources") or {}).get(s) or good_resources.get(s)
        }
    if desired == last_good and not patch:
        raise RollbackError(f"nothing to roll back: the spec already asks for the last good revision {last_good}")
    if not patch:
        raise RollbackError(
            f"the desired revision {desired} differs from the last good {last_good}, but not in spec.image or "
            "spec.resources: see the template difference with --show-template and revert that change in the spec"
        )

    unrestored: list[str] = []
    template_diff = ""
    if now is not None:
        template_diff = diff.unified(now, good, f"template {desired} (desired)", f"template {last_good} (last good)")
        patched = copy.deepcopy(now)
        for c in patched.get("spec", {}).get("containers") or []:
            if c.get("name") == BRIDGE_CONTAINER:
                c["image"] = good_c.get("image")
                if "resources" in good_c:
                    c["resources"] = copy.deepcopy(good_c["resources"])
                else:
                    c.pop("resources", None)
        unrestored = _differences(patched, good)
    return Plan(last_good, {"spec": patch}, spec, after, template_diff, unrestored)
