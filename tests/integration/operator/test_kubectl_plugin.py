"""`kubectl lighthouse` against the real control plane and the operator: what works without running containers
(kwok plays the pods): status, the token request from the admin Secret, backup now and wait (the real Job
controller completes the Job), rollback after the health gate rolled a broken image back, and the support bundle.
The commands that need a container (connect, token minting, logs, psql, health) are in the node tier."""

from __future__ import annotations

import base64
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests.harness.cluster import wait_for

from .conftest import REPO, Kubectl, Operator, condition, is_ready, lhb
from .test_backup import S3

PLUGIN = REPO / ".venv" / "bin" / "kubectl-lighthouse"
GOOD = "localhost/lighthouse-bridge:0.1.0"
BROKEN = "localhost/lighthouse-bridge:0.2.0-broken"


def plugin(k: Kubectl, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The installed console script, as `kubectl lighthouse ...` would run it (kubectl's flags included)."""
    env = k.cluster.env()
    kubeconfig = env.pop("KUBECONFIG")
    proc = subprocess.run(
        [str(PLUGIN), *args, "-n", k.ns, "--kubeconfig", kubeconfig],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def ready(k: Kubectl, name: str = "demo", timeout: float = 120) -> dict[str, Any]:
    return wait_for(
        lambda: (o := k.get("lhb", name)) and is_ready(o) and o, timeout=timeout, message=f"lhb/{name} Ready"
    )


def test_status_is_a_tree_of_the_resource_and_its_children(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", {"image": GOOD}))
    obj = ready(k)
    out = plugin(k, "status", "demo").stdout
    lines = out.splitlines()
    assert lines[0] == f"LighthouseBridge {k.ns}/demo  phase Ready  generation {obj['metadata']['generation']}"
    assert any(line.startswith("│   ├── Ready=True  Ready: All components are ready") for line in lines), out
    rev = obj["status"]["revisions"]["lastGood"]
    assert f"│   └── lastGood: {rev}" in lines
    assert "│   └── not configured (spec.backup)" in lines
    dep = lines.index("    ├── Deployment demo-bridge  1/1 ready")
    assert lines[dep + 1].startswith("    │   └── Pod demo-bridge-") and lines[dep + 1].endswith("Running Ready")
    for child in (
        "StatefulSet demo-postgres  1/1 ready",
        "StatefulSet demo-redis  1/1 ready",
        "Secret demo-admin-token  1 keys",
        f"ControllerRevision demo-bridge-{rev}  bridge revision 1",
    ):
        assert f"    ├── {child}" in lines, (child, out)
    doc = json.loads(plugin(k, "status", "demo", "-o", "json").stdout)
    assert doc["lighthouseBridge"]["metadata"]["name"] == "demo"
    assert {c["kind"] for c in doc["children"]} >= {"Deployment", "StatefulSet", "Service", "Secret", "ConfigMap"}
    # Every bridge of the namespace when no name is given; a clear error for one that does not exist.
    assert plugin(k, "status").stdout.splitlines()[0] == lines[0]
    missing = plugin(k, "status", "nope", check=False)
    assert missing.returncode == 1 and f"LighthouseBridge nope not found in namespace {k.ns}" in missing.stderr


def test_token_request_is_built_from_the_admin_secret(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", {"image": GOOD}))
    wait_for(lambda: k.get("secret", "demo-admin-token"), timeout=60, message="admin Secret")
    admin = base64.b64decode(k.get("secret", "demo-admin-token")["data"]["token"]).decode()
    out = plugin(k, "token", "demo", "--agent", "builder-1", "--role", "expert", "--ttl", "3600", "--dry-run").stdout
    assert admin not in out
    req = json.loads(out)
    assert req["method"] == "POST" and req["url"] == "http://127.0.0.1:8765/session/create"
    assert req["body"] == {"agent_id": "builder-1", "role": "expert", "ttl_seconds": 3600}
    assert req["headers"]["Authorization"] == f"Bearer <admin token, {len(admin)} characters>"
    unknown = plugin(k, "token", "nope", "--agent", "b", "--dry-run", check=False)
    assert unknown.returncode == 1 and "LighthouseBridge nope not found" in unknown.stderr


def test_backup_now_waits_for_the_job(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", {"image": GOOD, "backup": {"schedule": "0 0 1 1 *", "s3": S3}}))
    ready(k)
    proc = plugin(k, "backup", "demo", "--timeout", "3m")
    obj = k.get("lhb", "demo")
    job = obj["status"]["backup"]["requestJob"]
    assert f"Backup done: Job {job} completed" in proc.stdout, proc.stdout
    assert condition(obj, "BackupSucceeded")["status"] == "True"
    assert k.get("job", job)["status"]["succeeded"] == 1
    # Without spec.backup there is nowhere to back up to: refused before anything is written.
    k.apply(lhb("plain", {"image": GOOD}))
    refused = plugin(k, "backup", "plain", check=False)
    assert refused.returncode == 1 and "has no spec.backup" in refused.stderr
    assert "lighthouse.dev/backup-now" not in (k.get("lhb", "plain")["metadata"].get("annotations") or {})


def test_backup_that_fails_says_which_job(k: Kubectl, operator: Operator) -> None:
    k.apply(
        lhb(
            "demo", {"image": "localhost/lighthouse-bridge:0.1.0-broken", "backup": {"schedule": "0 0 1 1 *", "s3": S3}}
        )
    )
    wait_for(lambda: k.get("cronjob", "demo-backup"), timeout=60, message="CronJob")
    proc = plugin(k, "backup", "demo", "--timeout", "4m", check=False)
    assert proc.returncode == 1 and "backup Job demo-backup-" in proc.stderr and "failed" in proc.stderr, proc.stderr


def test_rollback_to_the_last_good_revision(k: Kubectl, operator: Operator) -> None:
    rollout = {"crashLoopRestarts": 2}
    k.apply(lhb("demo", {"image": GOOD, "rollout": rollout}))
    good = ready(k)["status"]["revisions"]["lastGood"]
    nothing = plugin(k, "rollback", "demo", "--dry-run", check=False)
    assert nothing.returncode == 1 and "nothing to roll back" in nothing.stderr
    k.apply(lhb("demo", {"image": BROKEN, "rollout": rollout}))
    wait_for(
        lambda: (c := condition(k.get("lhb", "demo"), "RolledBack")) and c["status"] == "True",
        timeout=120,
        message="the health gate rolled back",
    )
    dry = plugin(k, "rollback", "demo", "--dry-run").stdout
    assert f"back to the last good revision {good}" in dry
    assert f'-  "image": "{BROKEN}",' in dry and f'+  "image": "{GOOD}",' in dry
    assert k.get("lhb", "demo")["spec"]["image"] == BROKEN  # a dry run changes nothing
    # Not a terminal and no --yes: refuse rather than guess.
    assert "pass --yes" in plugin(k, "rollback", "demo", check=False).stderr
    plugin(k, "rollback", "demo", "--yes")
    assert k.get("lhb", "demo")["spec"]["image"] == GOOD
    fixed = ready(k)
    assert fixed["status"]["revisions"]["desired"] == good
    assert condition(fixed, "RolledBack")["status"] == "False"


def test_report_bundle_redacts_secrets(k: Kubectl, operator: Operator, tmp_path: Path) -> None:
    k.apply(lhb("demo", {"image": GOOD}))
    ready(k)
    admin = base64.b64decode(k.get("secret", "demo-admin-token")["data"]["token"]).decode()
    pg_password = base64.b64decode(k.get("secret", "demo-postgres-credentials")["data"]["password"]).decode()
    path = tmp_path / "bundle.tar.gz"
    out = plugin(k, "report", "demo", "-o", str(path)).stdout
    assert f"Wrote {path}" in out
    with tarfile.open(path) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    for name in (
        "README.txt",
        "lighthousebridge.json",
        "children/Deployment-demo-bridge.json",
        "children/StatefulSet-demo-postgres.json",
        "children/Secret-demo-admin-token.json",
        "events.json",
        "versions.txt",
    ):
        assert name in files, (name, sorted(files))
    blob = b"".join(files.values())
    for value in (admin, pg_password):
        assert value.encode() not in blob and base64.b64encode(value.encode()) not in blob
    secret = json.loads(files["children/Secret-demo-admin-token.json"])
    assert secret["data"]["token"].startswith("REDACTED")
    events = json.loads(files["events.json"])
    assert events and all(e["involvedObject"]["kind"] for e in events)
    pods = [f for f in files if f.startswith("pods/demo-bridge-")]
    assert pods
    # kwok runs no containers, so kubectl cannot fetch logs: the bundle says so instead of leaving a gap.
    pod = pods[0].removeprefix("pods/").removesuffix(".json")
    assert f"logs/{pod}/bridge.log" in files or f"logs/{pod}/bridge.error.txt" in files
