"""kubectl lighthouse: operate LighthouseBridges (status, tokens, a way in, backups, restores, rollbacks, support).

    kubectl lighthouse status demo -n team-a          the resource, its conditions and children as a tree
    kubectl lighthouse token demo --agent builder-1   mint an agent token with the admin Secret
    kubectl lighthouse connect demo --agent dev       port-forward and print the environment a hook needs
    kubectl lighthouse backup demo                    take a backup now and wait for it
    kubectl lighthouse restore demo --to demo-copy    a new bridge seeded from demo's latest backup
    kubectl lighthouse rollback demo                  put spec back to the last good revision (shows the diff)
    kubectl lighthouse logs|psql|health demo          logs of every pod, a psql shell, the runbook's health check
    kubectl lighthouse report demo                    a support bundle with Secrets redacted

kubectl's own flags (--context, --kubeconfig, -n/--namespace, --as, ...) work as with any kubectl command.
Exit codes: 0 success, 1 failure, 2 usage; `health` uses 0 healthy, 1 degraded, 2 unhealthy.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import __version__, bridge_api, gather, report, rollback, tree
from .kube import Kubectl, KubectlError, Obj, split_kubectl_flags

A_BACKUP_NOW = "lighthouse.dev/backup-now"


class Failure(Exception):
    """A command could not do what was asked; the message tells the user why and what to do."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _duration(text: str) -> float:
    """30s, 10m, 2h or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 30s, 10m, 2h)") from None


# ------------------------------------------------------------------------------------------------------ status


def cmd_status(k: Kubectl, a: argparse.Namespace) -> int:
    names = [a.name] if a.name else [o["metadata"]["name"] for o in k.items(gather.LHB)]
    if not names:
        print(f"No LighthouseBridges in namespace {k.namespace}.")
        return 0
    docs = []
    for name in names:
        snap = gather.snapshot(k, name)
        if a.output == "json":
            docs.append({"lighthouseBridge": snap.lhb, "children": snap.children, "pods": snap.pods})
        else:
            sys.stdout.write(tree.render(tree.build(snap.lhb, snap.children, snap.pods, _now())))
    if a.output == "json":
        print(json.dumps(docs[0] if a.name else docs, indent=2))
    return 0


# ------------------------------------------------------------------------------------------------------ tokens


def _mint(k: Kubectl, a: argparse.Namespace, url: str | None) -> bridge_api.MintRequest:
    secret = k.get("secret", bridge_api.admin_secret_name(a.name))
    token = bridge_api.admin_token(secret, a.name)
    return bridge_api.mint_request(url or "http://127.0.0.1:8765", token, a.agent, a.role, a.ttl)


def _print_token(result: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        print(result["session_token"])
        print(
            f"# agent {result.get('agent_id')} role {result.get('role')} expires {result.get('expires_at')}",
            file=sys.stderr,
        )


def cmd_token(k: Kubectl, a: argparse.Namespace) -> int:
    gather.lighthouse_bridge(k, a.name)
    if a.dry_run:
        req = _mint(k, a, a.url)
        print(json.dumps(req.describe(), indent=2))
        return 0
    if a.url:
        _print_token(bridge_api.send(_mint(k, a, a.url)), a.output)
        return 0
    with bridge_api.PortForward(k, a.name) as pf:
        _print_token(bridge_api.send(_mint(k, a, pf.url)), a.output)
    return 0


def cmd_connect(k: Kubectl, a: argparse.Namespace) -> int:
    gather.lighthouse_bridge(k, a.name)
    with bridge_api.PortForward(k, a.name, a.local_port) as pf:
        env = {"LIGHTHOUSE_BRIDGE_URL": pf.url}
        if a.agent:
            env["LIGHTHOUSE_TOKEN"] = bridge_api.send(_mint(k, a, pf.url))["session_token"]
        if a.trailing:
            return subprocess.call(a.trailing, env={**os.environ, **env})
        for key, value in env.items():
            print(f"export {key}={value}")
        print(f"# forwarding {pf.url} -> svc/{a.name}-bridge:8765 in {k.namespace}; Ctrl-C to stop", file=sys.stderr)
        sys.stdout.flush()
        try:
            assert pf.proc is not None
            return pf.proc.wait()
        except KeyboardInterrupt:
            return 0


# ------------------------------------------------------------------------------------------------------ backups


def _job_outcome(job: Obj | None) -> tuple[str, str]:
    """('Complete' | 'Failed' | 'Running', message) of a Job."""
    for c in (job or {}).get("status", {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"], c.get("message") or c.get("reason") or ""
    return "Running", ""


def cmd_backup(k: Kubectl, a: argparse.Namespace) -> int:
    lhb = gather.lighthouse_bridge(k, a.name)
    if not (lhb.get("spec") or {}).get("backup"):
        raise Failure(f"{a.name} has no spec.backup, so there is nowhere to back up to: set spec.backup first")
    request = _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    k.run("annotate", "--overwrite", gather.LHB, a.name, f"{A_BACKUP_NOW}={request}")
    print(f"Requested a backup of {k.namespace}/{a.name} ({A_BACKUP_NOW}={request})")
    if not a.wait:
        return 0
    deadline = time.monotonic() + a.timeout
    job_name = None
    while time.monotonic() < deadline:
        status = gather.lighthouse_bridge(k, a.name).get("status") or {}
        b = status.get("backup") or {}
        if b.get("lastRequest") == request and b.get("requestJob"):
            job_name = b["requestJob"]
            outcome, message = _job_outcome(k.get("jobs.batch", job_name))
            if outcome == "Complete":
                last = status.get("lastBackup") or {}
                print(f"Backup done: Job {job_name} completed; last backup {last.get('name')} at {last.get('time')}")
                return 0
            if outcome == "Failed":
                cond: Obj = next((c for c in status.get("conditions") or [] if c.get("type") == "BackupSucceeded"), {})
                raise Failure(
                    f"backup Job {job_name} failed: {message or cond.get('message', '')}; "
                    f"kubectl logs job/{job_name} -n {k.namespace}"
                )
        time.sleep(a.interval)
    where = f"Job {job_name}" if job_name else "the operator to start the Job"
    raise Failure(f"timed out after {a.timeout:g}s waiting for {where} (kubectl lighthouse status {a.name})")


def restore_manifest(source: Obj, target: str, target_ns: str, backup: str) -> Obj:
    """A new LighthouseBridge with the source's spec, seeded from the source's backups (spec.restore). Without the
    source's spec.expose: a second Ingress or HTTPRoute for the same host would take traffic from the live bridge."""
    spec = json.loads(json.dumps(source.get("spec") or {}))
    if not spec.get("backup"):
        raise Failure(f"{source['metadata']['name']} has no spec.backup: its backups' location is unknown")
    src_ns = source["metadata"]["namespace"]
    restore: dict[str, Any] = {"from": backup, "sourceName": source["metadata"]["name"]}
    if src_ns != target_ns:
        restore["sourceNamespace"] = src_ns
    spec["restore"] = restore
    spec.pop("paused", None)
    spec.pop("expose", None)
    return {
        "apiVersion": "lighthouse.dev/v1alpha1",
        "kind": "LighthouseBridge",
        "metadata": {"name": target, "namespace": target_ns},
        "spec": spec,
    }


IN_PLACE = """# In-place restore of {ns}/{name} (docs/restore.md, section 2, explains every step).
NS={ns}
NAME={name}
IMAGE={image}
REPLICAS={replicas}
S3_BUCKET={bucket}
S3_PREFIX={prefix}
S3_ENDPOINT={endpoint}
S3_SECRET={s3_secret}
DB_SECRET={db_secret}
DB_KEY={db_key}
BACKUP={backup}
# 1. Take a backup of the current state first:   kubectl lighthouse backup $NAME -n $NS
# 2. Write restore-job.yaml as in docs/restore.md and list the backups (ARGS ["backup", "list"]).
# 3. Stop the bridge:
kubectl scale "lhb/$NAME" -n "$NS" --replicas=0
kubectl wait --for=delete pod -n "$NS" --timeout=5m \\
  -l "app.kubernetes.io/instance=$NAME,app.kubernetes.io/component=bridge"
# 4. Restore with --replace (one transaction: a failure leaves the database as it was):
sed "s/ARGS/[\\"restore\\", \\"--from\\", \\"$BACKUP\\", \\"--replace\\"]/" restore-job.yaml \\
  | kubectl apply -n "$NS" -f -
kubectl wait --for=condition=Complete "job/$NAME-restore-manual" -n "$NS" --timeout=6h
kubectl logs "job/$NAME-restore-manual" -n "$NS"
# 5./6. Start the bridge again and wait for it:
kubectl scale "lhb/$NAME" -n "$NS" --replicas="$REPLICAS"
kubectl wait --for=condition=Ready "lhb/$NAME" -n "$NS" --timeout=15m
"""


def in_place_runbook(lhb: Obj, deployment: Obj | None, backup: str) -> str:
    md, spec = lhb["metadata"], lhb.get("spec") or {}
    s3 = ((spec.get("backup") or {}).get("s3")) or {}
    pg = spec.get("postgres") or {}
    ext = ((pg.get("external") or {}).get("secretRef") or {}) if pg.get("mode") == "external" else {}
    containers = ((deployment or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers")) or [{}]
    return IN_PLACE.format(
        ns=md["namespace"],
        name=md["name"],
        image=containers[0].get("image") or spec.get("image") or "SET-ME",
        replicas=spec.get("replicas", 1),
        bucket=s3.get("bucket", "SET-ME"),
        prefix=s3.get("prefix", ""),
        endpoint=s3.get("endpoint", ""),
        s3_secret=s3.get("credentialsSecret", "SET-ME"),
        db_secret=ext.get("name") or f"{md['name']}-postgres-credentials",
        db_key=ext.get("key") or "url",
        backup=backup,
    )


def cmd_restore(k: Kubectl, a: argparse.Namespace) -> int:
    lhb = gather.lighthouse_bridge(k, a.name)
    if a.in_place:
        print(in_place_runbook(lhb, k.get("deployments.apps", f"{a.name}-bridge"), a.backup), end="")
        return 0
    if not a.to:
        raise Failure("say where: --to NEW-NAME (a new bridge), or --in-place for the in-place runbook")
    target_ns = a.to_namespace or k.namespace or "default"
    manifest = restore_manifest(lhb, a.to, target_ns, a.backup)
    if a.dry_run:
        print(json.dumps(manifest, indent=2))
        return 0
    target = Kubectl(k.flags, target_ns, k.binary)
    if target.get(gather.LHB, a.to) is not None:
        raise Failure(f"LighthouseBridge {target_ns}/{a.to} already exists: spec.restore only seeds a new bridge")
    target.run("create", "-f", "-", input=json.dumps(manifest))
    print(
        f"Created LighthouseBridge {target_ns}/{a.to} from {k.namespace}/{a.name}'s backup {a.backup}; "
        f"follow it with: kubectl lighthouse status {a.to} -n {target_ns}"
    )
    return 0


# ------------------------------------------------------------------------------------------------------ rollback


def cmd_rollback(k: Kubectl, a: argparse.Namespace) -> int:
    lhb = gather.lighthouse_bridge(k, a.name)
    history = k.items("controllerrevisions.apps", rollback.history_selector(a.name))
    try:
        plan = rollback.plan(lhb, history)
    except rollback.RollbackError as e:
        raise Failure(str(e)) from None
    print(f"Rolling {k.namespace}/{a.name} back to the last good revision {plan.target}:")
    print(plan.spec_diff, end="")
    if a.show_template and plan.template_diff:
        print(plan.template_diff, end="")
    if plan.unrestored:
        print(
            "Not restored by this rollback (they come from other spec fields; revert those by hand): "
            + ", ".join(plan.unrestored)
        )
    if a.dry_run:
        print(f"(dry run) would patch: {json.dumps(plan.patch)}")
        return 0
    if not a.yes:
        if not sys.stdin.isatty():
            raise Failure("not a terminal: pass --yes to patch the spec, or --dry-run")
        if input("Patch the spec? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing changed.")
            return 1
    k.run(
        "patch",
        gather.LHB,
        a.name,
        "--type",
        "merge",
        "--field-manager=kubectl-lighthouse",
        "-p",
        json.dumps(plan.patch),
    )
    print(f"Patched spec of {a.name}. With GitOps, commit the same change, or the next sync reverts it.")
    return 0


# ------------------------------------------------------------------------------------------------------ pods


COMPONENTS = ("bridge", "postgres", "redis", "backup", "restore")
TRAILING = ("connect", "psql")  # the commands that take arguments after --


def cmd_logs(k: Kubectl, a: argparse.Namespace) -> int:
    gather.lighthouse_bridge(k, a.name)
    args = [
        "logs",
        "-l",
        gather.component_selector(a.name, a.component),
        "--all-containers",
        "--prefix",
        "--timestamps",
        f"--tail={a.tail}",
        "--max-log-requests=20",
        "--ignore-errors",
    ]
    if a.follow:
        args.append("--follow")
    if a.previous:
        args.append("--previous")
    if a.since:
        args.append(f"--since={a.since}")
    return subprocess.call(k.command(*args))


def cmd_psql(k: Kubectl, a: argparse.Namespace) -> int:
    lhb = gather.lighthouse_bridge(k, a.name)
    pg = (lhb.get("spec") or {}).get("postgres") or {}
    tty = ["-it"] if sys.stdin.isatty() else ["-i"]
    extra = list(a.trailing)
    if pg.get("mode") != "external":
        # The credentials are in the container's environment (POSTGRES_USER/POSTGRES_DB from the Secret).
        script = 'exec psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"'
        cmd = k.command(
            "exec", *tty, f"{a.name}-postgres-0", "-c", "postgres", "--", "sh", "-c", script, "psql", *extra
        )
        return subprocess.call(cmd)
    ref = (pg.get("external") or {}).get("secretRef") or {}
    dep = k.get("deployments.apps", f"{a.name}-bridge")
    image = ((dep or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0].get("image")
    if not image or not ref.get("name"):
        raise Failure("external PostgreSQL: need the bridge Deployment's image and spec.postgres.external.secretRef")
    pod = f"{a.name}-psql-{int(time.time())}"
    overrides = {
        "spec": {
            "containers": [
                {
                    "name": "psql",
                    "image": image,
                    "stdin": True,
                    "tty": sys.stdin.isatty(),
                    "command": ["psql", "$(DATABASE_URL)", *extra],
                    "env": [
                        {
                            "name": "DATABASE_URL",
                            "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref.get("key", "url")}},
                        }
                    ],
                }
            ]
        }
    }
    cmd = k.command(
        "run", pod, *tty, "--rm", "--restart=Never", f"--image={image}", f"--overrides={json.dumps(overrides)}"
    )
    return subprocess.call(cmd)


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def cmd_health(k: Kubectl, a: argparse.Namespace) -> int:
    """The runbook's health check (`lighthouse-bridge health`) run inside every bridge pod against itself."""
    gather.lighthouse_bridge(k, a.name)
    pods = [
        p
        for p in k.items("pods", gather.component_selector(a.name, "bridge"))
        if (p.get("status") or {}).get("phase") == "Running"
    ]
    if not pods:
        print(f"unhealthy: no running bridge pod for {a.name} (kubectl lighthouse status {a.name})")
        return 2
    worst = 0
    results = []
    for p in sorted(pods, key=lambda p: p["metadata"]["name"]):
        pname = p["metadata"]["name"]
        proc = subprocess.run(
            k.command("exec", pname, "-c", "bridge", "--", "lighthouse-bridge", "health", "--json"),
            capture_output=True,
            text=True,
        )
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            doc = {
                "status": "unhealthy",
                "checks": [{"name": "exec", "status": "unhealthy", "detail": (proc.stderr or proc.stdout).strip()}],
            }
        code = {"healthy": 0, "degraded": 1}.get(doc.get("status"), 2)
        worst = max(worst, code)
        results.append({"pod": pname, "ready": _ready(p), **doc})
    if a.output == "json":
        print(json.dumps({"status": ["healthy", "degraded", "unhealthy"][worst], "pods": results}, indent=2))
        return worst
    for r in results:
        print(f"{r['pod']}: {r.get('status')}{'' if r['ready'] else ' (not Ready)'}")
        for c in r.get("checks") or []:
            if a.verbose or c.get("status") != "healthy":
                print(f"  {c.get('status'):<9} {c.get('name')}: {c.get('detail')}")
    return worst


def cmd_report(k: Kubectl, a: argparse.Namespace) -> int:
    path = a.output or f"lighthouse-report-{k.namespace}-{a.name}-{_now().strftime('%Y%m%dT%H%M%SZ')}.tar.gz"
    files = report.make(k, a.name, path, a.tail)
    logs = sum(1 for f in files if f.startswith("logs/") and f.endswith(".log"))
    errors = sum(1 for f in files if f.endswith(".error.txt"))
    print(
        f"Wrote {path}: {len(files)} files ({logs} logs"
        + (f", {errors} unavailable" if errors else "")
        + "); Secret values and credentials are redacted, read it before you send it."
    )
    return 0


def cmd_version(k: Kubectl | None, a: argparse.Namespace) -> int:
    print(f"kubectl-lighthouse {__version__}")
    return 0


# ------------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubectl lighthouse", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, func: Any, help: str, named: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        if named:
            c.add_argument("name", help="the LighthouseBridge")
        c.set_defaults(func=func)
        return c

    c = command(
        "status", cmd_status, "the resource, its conditions, revisions, last backup and children as a tree", named=False
    )
    c.add_argument("name", nargs="?", help="the LighthouseBridge (default: every one in the namespace)")
    c.add_argument("-o", "--output", choices=("tree", "json"), default="tree")

    def token_args(c: argparse.ArgumentParser, required: bool) -> None:
        c.add_argument("--agent", required=required, help="the agent id the token is for")
        c.add_argument("--role", default="builder", help="builder (default), expert, viewer, admin or enrolment")
        c.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default: the bridge's)")

    c = command("token", cmd_token, "mint an agent token with the admin token from <name>-admin-token")
    token_args(c, required=True)
    c.add_argument("--url", help="the bridge's URL (default: a port-forward to its Service for this call)")
    c.add_argument("--dry-run", action="store_true", help="print the request (credential left out), send nothing")
    c.add_argument("-o", "--output", choices=("token", "json"), default="token")

    c = command(
        "connect",
        cmd_connect,
        "port-forward to the bridge and print the environment a hook needs; with "
        "-- COMMAND, run COMMAND with LIGHTHOUSE_BRIDGE_URL (and LIGHTHOUSE_TOKEN) set, then stop",
    )
    token_args(c, required=False)
    c.add_argument("--local-port", type=int, default=0, help="local port (default: any free one)")

    c = command("backup", cmd_backup, "take a backup now (lighthouse.dev/backup-now) and wait for its Job")
    c.add_argument("--no-wait", dest="wait", action="store_false", help="request it and return")
    c.add_argument("--timeout", type=_duration, default=1800.0, help="how long to wait (default 30m)")
    c.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)

    c = command("restore", cmd_restore, "a new bridge seeded from this one's backup, or the in-place runbook")
    c.add_argument("--to", help="name of the new LighthouseBridge")
    c.add_argument("--to-namespace", help="its namespace (default: this one)")
    c.add_argument("--from", dest="backup", default="latest", help="backup id (default: latest)")
    c.add_argument("--in-place", action="store_true", help="print the in-place restore runbook for this bridge")
    c.add_argument("--dry-run", action="store_true", help="print the new resource, create nothing")

    c = command("rollback", cmd_rollback, "patch spec back to status.revisions.lastGood (image and resources)")
    c.add_argument("--yes", "-y", action="store_true", help="do not ask")
    c.add_argument("--dry-run", action="store_true", help="show the diff and the patch, change nothing")
    c.add_argument("--show-template", action="store_true", help="also diff the desired and last good pod templates")

    c = command("logs", cmd_logs, "logs of every pod of a component (default: bridge)")
    c.add_argument("-c", "--component", choices=COMPONENTS, default="bridge")
    c.add_argument("-f", "--follow", action="store_true")
    c.add_argument("-p", "--previous", action="store_true")
    c.add_argument("--tail", type=int, default=200)
    c.add_argument("--since", help="e.g. 10m")

    command("psql", cmd_psql, "a psql shell on the bridge's PostgreSQL (arguments after -- go to psql)")

    c = command("health", cmd_health, "the runbook's health check inside every bridge pod (exit 0/1/2)")
    c.add_argument("-v", "--verbose", action="store_true", help="every check, not only the failing ones")
    c.add_argument("-o", "--output", choices=("text", "json"), default="text")

    c = command("report", cmd_report, "a support bundle (tar.gz): resource, children, Events, logs; Secrets redacted")
    c.add_argument("-o", "--output", help="file (default: lighthouse-report-NS-NAME-TIME.tar.gz)")
    c.add_argument("--tail", type=int, default=2000, help="log lines per container (default 2000)")

    command("version", cmd_version, "print the plugin's version", named=False)
    return p


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str], str | None]:
    """(the command's arguments, kubectl connection flags, namespace). Arguments after `--` are `trailing`."""
    own, flags, namespace = split_kubectl_flags(list(argv))
    trailing: list[str] = []
    if "--" in own:  # what follows belongs to the command `connect` runs, or to psql
        i = own.index("--")
        own, trailing = own[:i], own[i + 1 :]
    parser = build_parser()
    args = parser.parse_args(own)
    if trailing and args.cmd not in TRAILING:
        parser.error(f"{args.cmd} takes no arguments after --")
    args.trailing = trailing
    return args, flags, namespace


def main(argv: Sequence[str] | None = None) -> int:
    args, flags, namespace = parse(sys.argv[1:] if argv is None else argv)
    if args.cmd == "version":
        return cmd_version(None, args)
    try:
        k = Kubectl(flags, namespace)
        return int(args.func(k, args) or 0)
    except (Failure, gather.NotFound, bridge_api.BridgeAPIError, KubectlError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except FileNotFoundError as e:
        print(f"error: {e.filename or 'kubectl'} not found: kubectl must be on PATH (or set KUBECTL)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
