"""Kubernetes fixtures: a session-wide `cluster` and a fresh `namespace` per test.

Providers (``--cluster-provider`` or ``LIGHTHOUSE_CLUSTER_PROVIDER``):

* ``local`` (default): the Go-built control plane with kwok nodes, started by ``hack/cluster.sh up`` and reused
  across sessions. It keeps running after the session (other sessions may share it); ``make cluster-down`` stops
  it, or set ``LIGHTHOUSE_CLUSTER_TEARDOWN=1`` to stop a cluster this session started.
* ``existing``: whatever ``$KUBECONFIG`` points at, provided its current context is plainly a test cluster
  (see :func:`check_test_context`); ``LIGHTHOUSE_ALLOW_ANY_CONTEXT=1`` lifts that guard.
* ``kind``: a pytest-kind cluster; it needs a Docker engine and skips with the reason when none answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO_ROOT / "hack" / "cluster.sh"
PROVIDERS = ("local", "existing", "kind")

# A namespace with these annotations puts its pods on kwok's fake nodes (PodNodeSelector and PodTolerationRestriction
# admission, enabled by hack/cluster/kwokctl.yaml): without them, pods go to the real node when the cluster has one
# (the fake nodes are tainted then). Tests that rely on kwok's scripted pod fates use them.
FAKE_NODE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": "type=kwok",
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
        [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
    ),
}

# Name tokens that mark a context as a throwaway test cluster, and tokens that veto it whatever else it says.
TEST_CONTEXT_TOKENS = frozenset({"kind", "kwok", "k3d", "minikube", "test", "testing", "local", "lighthouse"})
FORBIDDEN_CONTEXT_TOKENS = frozenset({"prod", "production", "live", "prd"})

T = TypeVar("T")


class UnsafeContextError(RuntimeError):
    """The current kubeconfig context does not look like a test cluster."""


class KubectlError(subprocess.CalledProcessError):
    """A kubectl call failed; the message carries its stderr."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} exited with {self.returncode}: {(self.stderr or '').strip()}"


class WaitTimeout(AssertionError):
    """A bounded wait ran out; the message says what was awaited and what was seen last."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 60.0,
    interval: float = 0.5,
    message: str = "condition",
) -> T:
    """Polls ``predicate`` until it returns a truthy value and returns that value.

    Exceptions raised by the predicate count as "not yet" (the object may not exist yet); the last one is
    reported if the wait times out.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:  # reported below if the wait runs out
            last = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {message}; last result: {last!r}")
        time.sleep(interval)


def _name_tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.lower()) if t}


def check_test_context(context: str | None, cluster: str | None, allow_any: bool = False) -> None:
    """Raises UnsafeContextError unless the context or its cluster is plainly named as a test cluster.

    A name qualifies when one of its tokens (split on anything but letters and digits) is in
    TEST_CONTEXT_TOKENS, e.g. ``kind-lighthouse`` or ``kwok-dev``; ``minikind`` or ``latest`` do not. A token in
    FORBIDDEN_CONTEXT_TOKENS (``prod``...) refuses the context even then. ``allow_any`` skips the check.
    """
    if allow_any:
        return
    if not context:
        raise UnsafeContextError("the kubeconfig has no current context")
    names = [n for n in (context, cluster) if n]
    tokens = set().union(*(_name_tokens(n) for n in names))
    forbidden = sorted(tokens & FORBIDDEN_CONTEXT_TOKENS)
    if forbidden:
        raise UnsafeContextError(
            f"refusing context {context!r} (cluster {cluster!r}): its name contains {', '.join(forbidden)!s}; "
            "set LIGHTHOUSE_ALLOW_ANY_CONTEXT=1 if this really is a throwaway cluster"
        )
    if not tokens & TEST_CONTEXT_TOKENS:
        raise UnsafeContextError(
            f"refusing context {context!r} (cluster {cluster!r}): not plainly a test cluster (expected a name "
            f"containing one of {', '.join(sorted(TEST_CONTEXT_TOKENS))}); "
            "set LIGHTHOUSE_ALLOW_ANY_CONTEXT=1 to use it anyway"
        )


def docker_unavailable_reason(docker: str = "docker") -> str | None:
    """Why no Docker engine can be used, or None when `docker info` answers."""
    path = shutil.which(docker)
    if path is None:
        return f"no Docker engine: the {docker!r} CLI is not installed"
    try:
        proc = subprocess.run([path, "info"], capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "no Docker engine: `docker info` did not answer within 20s"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return f"no Docker engine answers (`docker info` failed: {detail[-1] if detail else proc.returncode})"
    return None


def tools_bin_dir() -> Path:
    """The directory of the Go-built binaries (hack/build-tools.sh), whether or not they are built yet."""
    out = subprocess.run(
        ["bash", "-c", 'source hack/lib/common.sh && echo "$(tools_dir)/bin"'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def default_kubectl() -> str:
    """Our built kubectl (same version as the control plane), else whatever kubectl is on PATH."""
    ours = tools_bin_dir() / "kubectl"
    if ours.is_file():
        return str(ours)
    return shutil.which("kubectl") or "kubectl"


@dataclass
class Cluster:
    """A reachable Kubernetes cluster: its kubeconfig, a kubectl bound to it, and an API client."""

    provider: str
    kubeconfig: Path
    kubectl_path: str
    context: str | None = None
    _api: Any = field(default=None, repr=False)

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.kubectl_path, "--kubeconfig", str(self.kubeconfig)]
        if self.context:
            cmd += ["--context", self.context]
        cmd += list(args)
        proc = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    @property
    def api(self) -> Any:
        """An official `kubernetes` client ApiClient for this cluster (created once)."""
        if self._api is None:
            from kubernetes import config

            self._api = config.new_client_from_config(config_file=str(self.kubeconfig), context=self.context)
        return self._api

    def env(self) -> dict[str, str]:
        """Environment for subprocesses (an operator under test, say) that should talk to this cluster."""
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        env["PATH"] = f"{Path(self.kubectl_path).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster-provider",
        choices=PROVIDERS,
        default=os.environ.get("LIGHTHOUSE_CLUSTER_PROVIDER", "local"),
        help="Kubernetes for the `cluster` fixture: local (hack/cluster.sh, default), existing ($KUBECONFIG, "
        "test contexts only) or kind (needs Docker). Env: LIGHTHOUSE_CLUSTER_PROVIDER.",
    )


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _local_cluster(real_node: bool) -> Iterator[Cluster]:
    was_running = subprocess.run([CLUSTER_SH, "status"], capture_output=True, check=False).returncode == 0
    env = dict(os.environ)
    if real_node:
        # Asked for at the start, so that the cluster is not recreated under the other tiers' tests later on.
        env.setdefault("LIGHTHOUSE_CLUSTER_REAL_NODE", "1")
    proc = subprocess.run([CLUSTER_SH, "up"], capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        pytest.fail(f"hack/cluster.sh up failed ({proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    kubeconfig = Path(proc.stdout.strip().splitlines()[-1])
    cluster = Cluster("local", kubeconfig, str(tools_bin_dir() / "kubectl"))
    try:
        yield cluster
    finally:
        cluster.close()
        if not was_running and _truthy("LIGHTHOUSE_CLUSTER_TEARDOWN"):
            subprocess.run([CLUSTER_SH, "down"], capture_output=True, check=False)


def _existing_cluster() -> Iterator[Cluster]:
    from kubernetes import config

    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
    if not Path(path).is_file():
        pytest.fail(f"--cluster-provider=existing: no kubeconfig at {path} (set KUBECONFIG)", pytrace=False)
    _, active = config.list_kube_config_contexts(config_file=path)
    name = (active or {}).get("name")
    cluster_name = ((active or {}).get("context") or {}).get("cluster")
    try:
        check_test_context(name, cluster_name, allow_any=_truthy("LIGHTHOUSE_ALLOW_ANY_CONTEXT"))
    except UnsafeContextError as exc:
        pytest.fail(f"--cluster-provider=existing: {exc}", pytrace=False)
    cluster = Cluster("existing", Path(path), default_kubectl(), context=name)
    try:
        yield cluster
    finally:
        cluster.close()


def _kind_cluster() -> Iterator[Cluster]:
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(f"--cluster-provider=kind: {reason}")
    from pytest_kind import KindCluster

    kubeconfig = Path(os.environ.get("LIGHTHOUSE_STATE", REPO_ROOT / ".state")) / "kind" / "kubeconfig"
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubectl = default_kubectl()
    kind = KindCluster("lighthouse", kubeconfig=kubeconfig, kubectl_path=Path(kubectl))
    kind.create()
    cluster = Cluster("kind", kubeconfig, kubectl)
    try:
        yield cluster
    finally:
        cluster.close()
        if not _truthy("LIGHTHOUSE_KEEP_CLUSTER"):
            kind.delete()


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    provider = request.config.getoption("--cluster-provider")
    if provider not in PROVIDERS:  # a default from the environment skips argparse's choices check
        pytest.fail(f"unknown cluster provider {provider!r}; expected one of {', '.join(PROVIDERS)}", pytrace=False)
    if provider == "local":
        # The node tier needs the machine's real node (hack/node.sh); the other tiers run on whatever cluster runs.
        yield from _local_cluster(any(item.get_closest_marker("node") for item in request.session.items))
        return
    factories = {"existing": _existing_cluster, "kind": _kind_cluster}
    yield from factories[provider]()


def fake_node_namespace(name: str) -> dict[str, Any]:
    """A Namespace whose pods run on kwok's fake nodes (see FAKE_NODE_ANNOTATIONS), for `kubectl create -f -`."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"lighthouse.dev/test": "true"}, "annotations": FAKE_NODE_ANNOTATIONS},
    }


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-") or "test"
    return f"lh-{base}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards. Its pods run on kwok's fake nodes."""
    from kubernetes import client

    core = client.CoreV1Api(cluster.api)
    name = _namespace_name(request.node.name)
    core.create_namespace(fake_node_namespace(name))
    # Pods need the namespace's default ServiceAccount, which the controller-manager creates a moment later.
    wait_for(lambda: core.read_namespaced_service_account("default", name), timeout=30, message=f"{name}/default SA")
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
