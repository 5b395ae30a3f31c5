"""The per-bridge gauges the bridge-down alerts read, from a real operator on the real control plane."""

from __future__ import annotations

from tests.harness.cluster import wait_for

from .conftest import Kubectl, Operator, is_ready, lhb

GOOD = "localhost/lighthouse-bridge:0.1.0"
PULLFAIL = "localhost/lighthouse-bridge:0.1.0-pullfail"


def gauge(operator: Operator, metric: str, ns: str, name: str, **labels: str) -> float | None:
    want = {"namespace": ns, "name": name, **labels}
    for key, value in operator.metrics().items():
        metric_name, _, rest = key.partition("{")
        if metric_name != metric:
            continue
        got = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if part)
        if {k: v.strip('"') for k, v in got.items()} == want:
            return value
    return None


def test_ready_replicas_desired_and_phase_per_bridge(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("up", {"image": GOOD, "replicas": 2}))
    k.apply(lhb("down", {"image": PULLFAIL}))
    wait_for(lambda: is_ready(k.get("lhb", "up")), timeout=120, message="lhb/up Ready")

    def up_seen() -> bool:
        return (
            gauge(operator, "lighthouse_operator_bridge_ready", k.ns, "up") == 1
            and gauge(operator, "lighthouse_operator_bridge_ready_replicas", k.ns, "up") == 2
        )

    wait_for(up_seen, timeout=30, message="gauges of lhb/up")
    assert gauge(operator, "lighthouse_operator_bridge_desired_replicas", k.ns, "up") == 2
    assert gauge(operator, "lighthouse_operator_bridge_phase", k.ns, "up", phase="Ready") == 1
    assert gauge(operator, "lighthouse_operator_bridge_phase", k.ns, "up", phase="Progressing") == 0
    # A bridge whose image never pulls has no ready pod: what LighthouseBridgeDown fires on.
    wait_for(
        lambda: gauge(operator, "lighthouse_operator_bridge_desired_replicas", k.ns, "down") == 1,
        timeout=30,
        message="gauges of lhb/down",
    )
    assert gauge(operator, "lighthouse_operator_bridge_ready_replicas", k.ns, "down") == 0
    assert gauge(operator, "lighthouse_operator_bridge_ready", k.ns, "down") == 0
    # A deleted bridge leaves no series behind (an alert on it would never resolve).
    k("delete", "lhb", "down", "-n", k.ns, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: gauge(operator, "lighthouse_operator_bridge_ready", k.ns, "down") is None,
        timeout=30,
        message="series of lhb/down removed",
    )
    assert gauge(operator, "lighthouse_operator_bridge_phase", k.ns, "down", phase="Progressing") is None
