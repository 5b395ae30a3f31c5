"""The generated NetworkPolicies, enforced on the real node (kube-router's network-policy controller, hack/node.sh):
they let the bridge's own traffic through (it is Ready: it talks to PostgreSQL and Redis; its backup reaches
PostgreSQL) and nothing else reach PostgreSQL and Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cluster import wait_for

from .conftest import Bridge, Kubectl, RealNode, node_namespace, node_operator, run_pod

# Connects to each target, trying again for `patience` seconds while it is closed: the controller adds a new pod to
# the policy's source set a moment after the pod starts (a refusal, in contrast, holds from the first packet).
CONNECT = """
import socket, time
for host, port in {targets!r}:
    deadline = time.monotonic() + {patience}
    while True:
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect((host, port))
            print("open", host, port)
            break
        except OSError as e:
            if time.monotonic() >= deadline:
                print("closed", host, port, type(e).__name__)
                break
            time.sleep(1)
        finally:
            s.close()
"""


@pytest.fixture(scope="module")
def bridge(real_node: RealNode, crd: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with node_namespace(real_node.cluster, "netpol") as ns:
        with node_operator(real_node, [ns], tmp_path_factory.mktemp("netpol") / "operator.log"):
            b = Bridge(Kubectl(real_node.cluster, ns), "guarded")
            b.apply({})
            b.wait_ready()
            yield b


def targets(b: Bridge) -> list[tuple[str, int]]:
    return [(b.pod("postgres")["status"]["podIP"], 5432), (b.pod("redis")["status"]["podIP"], 6379)]


def test_the_policies_exist_and_the_bridge_works_through_them(bridge: Bridge) -> None:
    policies = {p["metadata"]["name"] for p in bridge.k.items("networkpolicies", "app.kubernetes.io/instance=guarded")}
    assert policies == {"guarded-postgres", "guarded-redis"}
    # /readyz finds PostgreSQL and Redis connected, from the bridge pod, through the policies. (A pod's address joins
    # a policy's allowed sources a moment after the pod starts: the bridge's first Redis attempt may be refused, and
    # it connects again.)
    name = bridge.pod()["metadata"]["name"]
    readyz = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8765/readyz').read().decode())"

    def connected() -> dict | None:
        checks = json.loads(bridge.exec(name, "python3", "-c", readyz).stdout)["checks"]
        return checks if {checks["postgres"]["status"], checks["redis"]["status"]} == {"connected"} else None

    wait_for(connected, timeout=90, message="the bridge connected to PostgreSQL and Redis")
    # A connection the bridge opens now (not one opened before a policy existed).
    out = bridge.exec(name, "python3", "-c", CONNECT.format(targets=targets(bridge), patience=0)).stdout
    assert out.count("open") == 2, out


def test_other_pods_cannot_reach_postgres_or_redis(bridge: Bridge, real_node: RealNode) -> None:
    phase, out = run_pod(bridge.k, real_node.refs["bridge"], CONNECT.format(targets=targets(bridge), patience=0))
    assert phase == "Succeeded", out
    assert out.count("closed") == 2 and "open" not in out, out


def test_a_pod_with_the_bridges_labels_can(bridge: Bridge, real_node: RealNode) -> None:
    """The policy's selector, not the pod's name or image, is what lets the backup and restore Jobs in."""
    labels = {
        "app.kubernetes.io/name": "lighthouse",
        "app.kubernetes.io/instance": "guarded",
        "app.kubernetes.io/component": "backup",
    }
    name = "backup-like"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "py",
                    "image": real_node.refs["bridge"],
                    "command": [
                        "/opt/lighthouse/bin/python",
                        "-c",
                        CONNECT.format(targets=targets(bridge), patience=30),
                    ],
                }
            ],
        },
    }
    bridge.k("apply", "-n", bridge.ns, "-f", "-", input=json.dumps(pod))
    wait_for(lambda: bridge.k.get("pod", name)["status"]["phase"] == "Succeeded", timeout=90, message=name)
    out = bridge.k("logs", "-n", bridge.ns, name).stdout
    assert out.count("open") == 2, out
