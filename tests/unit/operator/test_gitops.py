"""The GitOps artefacts under manifests/gitops/ stay in step with the health script and the kstatus contract."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import yaml
from lighthouse_operator.models import LighthouseBridgeSpec

GITOPS = Path(__file__).resolve().parents[3] / "manifests" / "gitops"
HEALTH_KEY = "resource.customizations.health.lighthouse.dev_LighthouseBridge"


def test_argocd_cm_embeds_the_tested_health_script_verbatim() -> None:
    cm = yaml.safe_load((GITOPS / "argocd" / "argocd-cm-health.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"] == {**cm["metadata"], "name": "argocd-cm"}
    assert cm["data"][HEALTH_KEY] == (GITOPS / "argocd-health.lua").read_text()


def test_argocd_application_applies_server_side() -> None:
    app = yaml.safe_load((GITOPS / "argocd" / "application.yaml").read_text())
    assert app["kind"] == "Application"
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_flux_bridges_wait_for_the_operator_and_check_lighthouse_health() -> None:
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all((GITOPS / "flux" / "kustomizations.yaml").read_text())}
    operator, bridges = docs["lighthouse-operator"], docs["lighthouse-bridges"]
    assert operator["spec"]["wait"] is True
    assert bridges["spec"]["dependsOn"] == [{"name": "lighthouse-operator"}]
    kinds = {(h["apiVersion"], h["kind"]) for h in bridges["spec"]["healthChecks"]}
    assert kinds == {("lighthouse.dev/v1alpha1", "LighthouseBridge")}
    # Every path a Kustomization names exists in this repository.
    root = GITOPS.parents[1]
    for d in docs.values():
        assert (root / d["spec"]["path"]).is_dir(), d["spec"]["path"]


def test_readme_deletion_policies_match_the_operator() -> None:
    # The README once said Snapshot was not available yet, long after the operator implemented it.
    readme = (GITOPS / "README.md").read_text()
    section = readme[readme.index("## Deleting through Git") :]
    policies = typing.get_args(LighthouseBridgeSpec.model_fields["deletion_policy"].annotation)
    assert set(policies) == {"Retain", "Delete", "Snapshot"}
    for policy in policies:
        assert f"- `{policy}`" in section, policy
    assert "final backup" in section and "not available" not in section and "Until the backup" not in section
    source = (Path(__file__).resolve().parents[3] / "operator" / "lighthouse_operator" / "backup.py").read_text()
    reasons = set(re.findall(r'stalled=\("(Snapshot\w+)"', source))
    assert reasons == {"SnapshotUnavailable", "SnapshotFailed"}
    for reason in reasons:
        assert reason in section, reason
