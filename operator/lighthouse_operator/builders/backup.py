"""The scheduled backup: a CronJob running `lighthouse-bridge backup` from the bridge image, and the one-off Jobs
(on-demand, final) made from the same jobTemplate."""

from __future__ import annotations

import copy

from .. import naming
from ..models import LighthouseBridge
from .bridge import database_url_env, service_account_name
from .common import Manifest, digest, meta, restricted_container_security, s3_env

RESULT_FILE = "/dev/termination-log"
# A new Job pod may be refused by PostgreSQL's NetworkPolicy for a moment (the policy controller admits it after it
# starts), and PostgreSQL may be restarting: the tool waits, bounded, instead of failing the attempt.
DATABASE_WAIT_SECONDS = 120


def backup_env(lhb: LighthouseBridge) -> list[Manifest]:
    b = lhb.spec.backup
    assert b is not None
    s3 = b.s3
    env: list[Manifest] = [
        # The names `lighthouse-bridge backup` reads (docs/backup-tool.md): <prefix>/<namespace>/<name>/<time>/.
        {"name": "LIGHTHOUSE_NAME", "value": lhb.name},
        {"name": "LIGHTHOUSE_NAMESPACE", "value": lhb.namespace},
        *s3_env(s3),  # shared with the restore Job (builders/restore.py)
    ]
    if b.retention.keep_last is not None:
        env.append({"name": "LIGHTHOUSE_BACKUP_KEEP_LAST", "value": str(b.retention.keep_last)})
    if b.retention.max_age:
        env.append({"name": "LIGHTHOUSE_BACKUP_MAX_AGE", "value": b.retention.max_age})
    env.append(database_url_env(lhb))
    env.append({"name": "LIGHTHOUSE_DATABASE_WAIT_SECONDS", "value": str(DATABASE_WAIT_SECONDS)})
    # The tool reports the backup's id, time and size here; the operator reads it from the pod's status.
    env.append({"name": "LIGHTHOUSE_BACKUP_RESULT_FILE", "value": RESULT_FILE})
    return env


def tool_container(
    lhb: LighthouseBridge, name: str, args: list[str], env: list[Manifest], resources: Manifest | None
) -> Manifest:
    """`lighthouse-bridge <args>` from the bridge image, as the backup and restore Jobs run it: restricted, a
    writable /tmp only, and its JSON result (or, on failure, the log tail) in the termination message."""
    container: Manifest = {
        "name": name,
        "image": lhb.spec.bridge_image,
        "args": args,
        "env": env,
        "securityContext": restricted_container_security() | {"runAsNonRoot": True, "runAsUser": 10001},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePath": RESULT_FILE,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if resources:
        container["resources"] = resources
    return container


def tool_pod_template(lhb: LighthouseBridge, labels: dict[str, str], container: Manifest) -> Manifest:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": service_account_name(lhb),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def cronjob(lhb: LighthouseBridge) -> Manifest | None:
    b = lhb.spec.backup
    if b is None:
        return None
    labels = naming.labels(lhb.name, naming.BACKUP)
    # A failed run leaves no result: the log tail then explains the failure in BackupSucceeded's message.
    container = tool_container(lhb, "backup", ["backup"], backup_env(lhb), b.resources.to_k8s())
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(lhb, naming.Names(lhb.name).backup, naming.BACKUP),
        "spec": {
            "schedule": b.schedule,
            "suspend": b.suspend,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 6 * 3600,
                    "ttlSecondsAfterFinished": 7 * 24 * 3600,
                    "template": tool_pod_template(lhb, labels, container),
                },
            },
        },
    }


def request_job_name(lhb: LighthouseBridge, value: str) -> str:
    """One Job per (bridge, lighthouse.dev/backup-now value): a repeated trigger finds it instead of a second one."""
    return f"{lhb.name}-backup-now-{digest([lhb.metadata.uid, value], length=10)}"


def final_job_name(lhb: LighthouseBridge) -> str:
    """The uid keeps a successor of the same name from mistaking this bridge's final backup for its own."""
    return f"{lhb.name}-backup-final-{digest(lhb.metadata.uid, length=8)}"


def job(lhb: LighthouseBridge, name: str, trigger: str, request: str | None = None) -> Manifest | None:
    """A Job from the CronJob's jobTemplate, as `kubectl create job --from=cronjob/...` makes one.

    trigger "request": owned by the LighthouseBridge (collected with it). trigger "final": no owner, so the
    final backup's Job and logs outlive the bridge until ttlSecondsAfterFinished."""
    cj = cronjob(lhb)
    if cj is None:
        return None
    template = copy.deepcopy(cj["spec"]["jobTemplate"])
    md = meta(lhb, name, naming.BACKUP, {naming.A_BACKUP_REQUEST: request} if request is not None else None)
    md["labels"][naming.L_BACKUP_TRIGGER] = trigger
    if trigger == "final":
        del md["ownerReferences"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": template["spec"]}
