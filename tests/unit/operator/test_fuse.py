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
    assert fuse.verdict(csi, {}).reason == "NoRunningPods"
    v = fuse.verdict(csi, {"a": health("mounted"), "b": health("mounted")})
    assert (v.status, v.reason) == ("True", "Mounted") and "2 of 2" in v.message and "csi" in v.message
    v = fuse.verdict(csi, {"a": health("mounted"), "b": health("not_mounted", "waiting for the FUSE node plugin")})
    assert (v.status, v.reason) == ("False", "NotMounted")
    assert v.message == "1 of 2 pods have no mount: b: waiting for the FUSE node plugin"
    v = fuse.verdict(csi, {"a": "http://x/health: OSError: refused"})
    assert (v.status, v.reason) == ("Unknown", "Unreachable") and "refused" in v.message
    v = fuse.verdict(csi, {"a": health("mounted"), "b": "timeout"})
    assert v.status == "True" and "1 did not answer" in v.message
    v = fuse.verdict(make({"fuse": {"mode": "disabled"}}), {"a": health("disabled")})
    assert (v.status, v.reason) == ("False", "Disabled")


def node(name: str, runtime: str, userns: bool | None) -> dict[str, Any]:
    st: dict[str, Any] = {"nodeInfo": {"containerRuntimeVersion": runtime}}
    if userns is not None:
        st["runtimeHandlers"] = [{"name": "", "features": {"recursiveReadOnlyMounts": True, "userNamespaces": userns}}]
    return {"metadata": {"name": name}, "status": st}


def test_user_namespaces_unsupported_by_the_node_runtime() -> None:
    spec = make({"fuse": {"mode": "userNamespaces", "devicePluginResource": "lighthouse.dev/fuse"}})
    old = {"n1": node("n1", "containerd://1.6.20", None)}
    v = fuse.verdict(spec, {}, old)
    assert (v.status, v.reason) == ("False", "UserNamespacesUnsupported")
    assert "containerd 2.x" in v.message and "node n1 runs containerd://1.6.20" in v.message
    assert fuse.verdict(spec, {}, {"n1": node("n1", "containerd://2.1.0", False)}).reason == "UserNamespacesUnsupported"
    assert fuse.verdict(spec, {}, {"n1": node("n1", "containerd://2.1.0", True)}).reason == "NoRunningPods"
    # Nodes say nothing about other modes.
    assert fuse.verdict(make({"fuse": {"mode": "csi"}}), {}, old).reason == "NoRunningPods"
