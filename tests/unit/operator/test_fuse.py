"""FuseAvailable: which pods are asked, and what their answers (and the pods' own status) make of the condition."""

from __future__ import annotations

from typing import Any

from lighthouse_operator import fuse

from tests.unit.operator.test_builders import make


def pod(
    name: str, ready: bool = True, cid: str | None = "containerd://abc", ip: str | None = "10.244.0.7", **status: Any
) -> dict[str, Any]:
    cs = {"name": "bridge", **({"containerID": cid} if cid else {})}
    st = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [cs],
        **status,
    }
    if ip:
        st["podIP"] = ip
    return {"metadata": {"name": name}, "status": st}


def health(status: str, error: str | None = None) -> dict[str, Any]:
    return {"status": "degraded", "fuse": {"status": status, "error": error}}


def test_only_ready_pods_a_runtime_started_are_asked() -> None:
    pods = [pod("a"), pod("b", ready=False), pod("c", cid=None), pod("d", ip=None), pod("e", ip="fd00::5")]
    assert fuse.probe_targets(pods) == {"a": "http://10.244.0.7:8765/health", "e": "http://[fd00::5]:8765/health"}


def test_verdicts() -> None:
    csi = make({"fuse": {"mode": "csi"}})
    assert fuse.verdict(csi, [], {}).reason == "NoRunningPods"
    v = fuse.verdict(csi, [], {"a": health("mounted"), "b": health("mounted")})
    assert (v.status, v.reason) == ("True", "Mounted") and "2 of 2" in v.message and "csi" in v.message
    v = fuse.verdict(csi, [], {"a": health("mounted"), "b": health("not_mounted", "waiting for the FUSE node plugin")})
    assert (v.status, v.reason) == ("False", "NotMounted")
    assert v.message == "1 of 2 pods have no mount: b: waiting for the FUSE node plugin"
    v = fuse.verdict(csi, [], {"a": "http://x/health: OSError: refused"})
    assert (v.status, v.reason) == ("Unknown", "Unreachable") and "refused" in v.message
    v = fuse.verdict(csi, [], {"a": health("mounted"), "b": "timeout"})
    assert v.status == "True" and "1 did not answer" in v.message
    v = fuse.verdict(make({"fuse": {"mode": "disabled"}}), [], {"a": health("disabled")})
    assert (v.status, v.reason) == ("False", "Disabled")


def test_user_namespaces_refused_by_the_runtime() -> None:
    spec = make({"fuse": {"mode": "userNamespaces", "devicePluginResource": "lighthouse.dev/fuse"}})
    stuck = pod(
        "a",
        ready=False,
        conditions=[
            {
                "type": "PodReadyToStartContainers",
                "status": "False",
                "message": "runtime does not support user namespaces",
            }
        ],
    )
    v = fuse.verdict(spec, [stuck], {})
    assert (v.status, v.reason) == ("False", "UserNamespacesUnsupported")
    assert "containerd 2.x" in v.message and "pod a: runtime does not support user namespaces" in v.message
    # The same words in another mode's pod mean nothing here.
    assert fuse.verdict(make({"fuse": {"mode": "csi"}}), [stuck], {}).reason == "NoRunningPods"
