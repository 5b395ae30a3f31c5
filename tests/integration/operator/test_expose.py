"""spec.expose on the real control plane: an Ingress the API server accepts and prunes when no longer wanted; a
Gateway API HTTPRoute (and the ReferenceGrant for its TLS Secret) that is reported, not fatal, while the Gateway API
CRDs are missing, and applied once they are installed (the real CRDs, from the pinned sigs.k8s.io/gateway-api)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness.cluster import Cluster, wait_for

from .conftest import REPO, Kubectl, Operator, condition, is_ready, lhb

GOOD = "localhost/lighthouse-bridge:0.1.0"
TLS = {"secretName": "lighthouse-tls"}
GATEWAY_CRDS = ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants")


def gateway_crd_dir() -> Path:
    out = subprocess.run([str(REPO / "hack" / "gateway-api-crds.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def remove_gateway_crds(cluster: Cluster) -> None:
    for plural in GATEWAY_CRDS:
        cluster.kubectl("delete", "crd", f"{plural}.gateway.networking.k8s.io", "--ignore-not-found", check=False)


def ready(k: Kubectl) -> dict:
    return wait_for(lambda: (o := k.get("lhb", "demo")) and is_ready(o) and o, timeout=120, message="Ready")


def test_ingress_with_tls_and_its_removal(k: Kubectl, operator: Operator) -> None:
    ingress = {"host": "lighthouse.example.com", "className": "nginx", "tls": TLS,
               "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"}}  # fmt: skip
    k.apply(lhb("demo", {"image": GOOD, "expose": {"ingress": ingress}}))
    obj = ready(k)
    assert obj["status"]["endpoints"]["external"] == "https://lighthouse.example.com"
    ing = wait_for(lambda: k.get("ingress", "demo-bridge"), timeout=30, message="Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"hosts": ["lighthouse.example.com"], "secretName": "lighthouse-tls"}]
    (path,) = ing["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "demo-bridge", "port": {"name": "http"}}
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert ing["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    # The API server validates the host (a DNS name) before the operator ever sees it.
    bad = k.apply(lhb("demo", {"image": GOOD, "expose": {"ingress": {"host": "Not A Host"}}}), check=False)
    assert bad.returncode != 0 and "spec.expose.ingress.host" in bad.stderr
    # No longer wanted: deleted, and the status says so.
    k.apply(lhb("demo", {"image": GOOD}))
    wait_for(lambda: k.get("ingress", "demo-bridge") is None, timeout=30, message="Ingress pruned")
    assert "external" not in ready(k)["status"]["endpoints"]


def test_gateway_route_reported_without_the_crds_and_applied_with_them(
    k: Kubectl, operator: Operator, cluster: Cluster
) -> None:
    remove_gateway_crds(cluster)
    gateway = {"parentRefs": [{"name": "shared", "namespace": "infra", "sectionName": "https"}],
               "hostnames": ["lighthouse.example.com"], "tls": TLS}  # fmt: skip
    k.apply(lhb("demo", {"image": GOOD, "expose": {"gateway": gateway}}))
    try:
        # The rest of the bridge is applied and Ready; the missing API is a clear Degraded warning.
        obj = ready(k)
        degraded = condition(obj, "Degraded")
        assert degraded["status"] == "True" and degraded["reason"] == "SpecNotFullyApplied", degraded
        assert "HTTPRoute requested but its CRD (gateway.networking.k8s.io/v1) is not installed" in degraded["message"]
        cluster.kubectl("apply", "--server-side", "-f", str(gateway_crd_dir()))
        for plural in GATEWAY_CRDS:
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.gateway.networking.k8s.io")
        route = wait_for(lambda: k.get("httproute", "demo-bridge"), timeout=60, message="HTTPRoute")
        assert route["spec"]["parentRefs"][0]["name"] == "shared" and route["spec"]["hostnames"] == gateway["hostnames"]
        assert route["spec"]["rules"][0]["backendRefs"] == [{"group": "", "kind": "Service", "name": "demo-bridge",
                                                             "port": 8765, "weight": 1}]  # fmt: skip
        grant = wait_for(lambda: k.get("referencegrant", "demo-bridge-tls"), timeout=30, message="ReferenceGrant")
        assert grant["spec"]["from"] == [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra"}
        ]
        assert grant["spec"]["to"] == [{"group": "", "kind": "Secret", "name": "lighthouse-tls"}]
        wait_for(lambda: condition(k.get("lhb", "demo"), "Degraded")["status"] == "False", timeout=60,
                 message="Degraded cleared")  # fmt: skip
        # Without TLS the grant goes; without the gateway the route goes.
        no_tls = {key: value for key, value in gateway.items() if key != "tls"}
        k.apply(lhb("demo", {"image": GOOD, "expose": {"gateway": no_tls}}))
        wait_for(lambda: k.get("referencegrant", "demo-bridge-tls") is None, timeout=30, message="grant pruned")
        k.apply(lhb("demo", {"image": GOOD}))
        wait_for(lambda: k.get("httproute", "demo-bridge") is None, timeout=30, message="route pruned")
    finally:
        remove_gateway_crds(cluster)
