"""The operator image as a container against the local control plane: it reconciles a LighthouseBridge."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import yaml

from tests.e2e.containers import Images, running_container, wait_for
from tests.harness.cluster import Cluster

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readable_kubeconfig(cluster: Cluster, directory: Path) -> Path:
    """A self-contained copy (certificates inlined) that the image's non-root user can read through a bind mount."""
    flat = cluster.kubectl("config", "view", "--flatten", "--minify", "--raw").stdout
    directory.chmod(0o755)
    path = directory / "kubeconfig"
    path.write_text(flat)
    path.chmod(0o644)
    return path


def get_json(cluster: Cluster, *args: str) -> dict | None:
    proc = cluster.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def ready_condition(lhb: dict | None) -> dict | None:
    if not lhb:
        return None
    conditions = {c["type"]: c for c in lhb.get("status", {}).get("conditions", [])}
    return conditions.get("Ready")


def test_operator_container_reconciles_a_lighthousebridge(
    images: Images, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=lighthouse-e2e",
                    "-f", str(REPO_ROOT / "crds"))  # fmt: skip
    cluster.kubectl("wait", "--for=condition=Established", "crd/lighthousebridges.lighthouse.dev", "--timeout=60s")
    kubeconfig = readable_kubeconfig(cluster, tmp_path)
    metrics_port, liveness_port = free_port(), free_port()
    flags = [
        # Host network: the API server listens on the host's loopback only; so do the operator's endpoints.
        "--network", "host",
        "-v", f"{kubeconfig}:/etc/lighthouse/kubeconfig:ro",
        "-e", "KUBECONFIG=/etc/lighthouse/kubeconfig",
        # What the chart's restricted securityContext gives the pod: read-only root (podman mounts a tmpfs on
        # /tmp, like the chart's emptyDir), no capabilities, no privilege escalation.
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    ]  # fmt: skip
    args = ["--namespace", namespace, "--metrics-port", str(metrics_port), "--liveness-port", str(liveness_port)]
    with running_container(images.operator, *args, flags=flags) as operator:
        # Runs as the image's non-root user with a read-only view of the kubeconfig.
        assert operator.exec("id", "-u").stdout.strip() == "65532"
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{liveness_port}/healthz", timeout=5).status_code == 200,
            timeout=60,
            what="operator liveness endpoint",
        )
        lhb = {
            "apiVersion": "lighthouse.dev/v1alpha1",
            "kind": "LighthouseBridge",
            "metadata": {"name": "e2e", "namespace": namespace},
            "spec": {},
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(lhb))

        def bridge_deployment() -> dict | None:
            assert operator.running(), f"operator container exited:\n{operator.logs()}"
            return get_json(cluster, "-n", namespace, "deployment", "e2e-bridge")

        deployment = wait_for(bridge_deployment, timeout=120, what="the bridge Deployment")
        owners = deployment["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"]) for o in owners] == [("LighthouseBridge", "e2e")]

        def reconciled() -> dict | None:
            current = get_json(cluster, "-n", namespace, "lighthousebridge", "e2e")
            status = (current or {}).get("status", {})
            generation = current["metadata"]["generation"] if current else None
            return current if status.get("observedGeneration") == generation else None

        wait_for(reconciled, timeout=120, what="status.observedGeneration to match the generation")

        # kwok runs the children's pods, so every component gets ready and the operator reports Ready=True.
        def ready() -> dict | None:
            current = reconciled()
            condition = ready_condition(current)
            return current if condition and condition["status"] == "True" else None

        current = wait_for(ready, timeout=180, what="Ready=True on the LighthouseBridge")
        assert ready_condition(current)["observedGeneration"] == current["metadata"]["generation"]

        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert "lighthouse_operator_reconciles_total" in metrics
        assert "lighthouse_operator_managed_bridges 1.0" in metrics
