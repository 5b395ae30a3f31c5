"""The scheduled backup: a CronJob running `lighthouse-bridge backup` from the bridge image."""

from __future__ import annotations

from .. import naming
from ..models import LighthouseBridge
from .bridge import database_url_env, service_account_name
from .common import Manifest, meta, restricted_container_security, secret_env


def backup_env(lhb: LighthouseBridge) -> list[Manifest]:
    b = lhb.spec.backup
    assert b is not None
    s3 = b.s3
    env: list[Manifest] = [
        # The names `lighthouse-bridge backup` reads (docs/backup-tool.md): <prefix>/<namespace>/<name>/<time>/.
        {"name": "LIGHTHOUSE_NAME", "value": lhb.name},
        {"name": "LIGHTHOUSE_NAMESPACE", "value": lhb.namespace},
        {"name": "LIGHTHOUSE_S3_BUCKET", "value": s3.bucket},
        {"name": "LIGHTHOUSE_S3_PREFIX", "value": s3.prefix},
        {"name": "LIGHTHOUSE_S3_PATH_STYLE", "value": "true" if s3.path_style else "false"},
    ]
    if s3.endpoint:
        env.append({"name": "LIGHTHOUSE_S3_ENDPOINT", "value": s3.endpoint})
    if s3.region:
        env.append({"name": "LIGHTHOUSE_S3_REGION", "value": s3.region})
    if s3.credentials_secret:
        env.append(secret_env("AWS_ACCESS_KEY_ID", s3.credentials_secret, "AWS_ACCESS_KEY_ID"))
        env.append(secret_env("AWS_SECRET_ACCESS_KEY", s3.credentials_secret, "AWS_SECRET_ACCESS_KEY"))
    if b.retention.keep_last is not None:
        env.append({"name": "LIGHTHOUSE_BACKUP_KEEP_LAST", "value": str(b.retention.keep_last)})
    if b.retention.max_age:
        env.append({"name": "LIGHTHOUSE_BACKUP_MAX_AGE", "value": b.retention.max_age})
    env.append(database_url_env(lhb))
    return env


def cronjob(lhb: LighthouseBridge) -> Manifest | None:
    b = lhb.spec.backup
    if b is None:
        return None
    labels = naming.labels(lhb.name, naming.BACKUP)
    container: Manifest = {
        "name": "backup",
        "image": lhb.spec.bridge_image,
        "args": ["backup"],
        "env": backup_env(lhb),
        "securityContext": restricted_container_security() | {"runAsNonRoot": True, "runAsUser": 10001},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    resources = b.resources.to_k8s()
    if resources:
        container["resources"] = resources
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
                    "template": {
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
                    },
                },
            },
        },
    }
