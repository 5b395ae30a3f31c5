"""The restore Job: `lighthouse-bridge restore --from <from>` from the bridge image, seeding this bridge's
(empty, new) database before the bridge starts. Created once by lighthouse_operator.restore, never updated (a Job's
template is immutable); the spec digest in its annotation tells a Job made for an older spec.restore."""

from __future__ import annotations

from .. import naming
from ..models import LighthouseBridge, S3Location
from .backup import RESULT_FILE, tool_container, tool_pod_template
from .bridge import database_url_env
from .common import Manifest, digest, meta, s3_env

# A new PostgreSQL StatefulSet takes a while to initialise; the tool waits for it (bounded) instead of failing.
DATABASE_WAIT_SECONDS = 600
BACKOFF_LIMIT = 2
ACTIVE_DEADLINE_SECONDS = 6 * 3600
# Exit codes retrying cannot fix (docs/backup-tool.md): configuration, integrity, non-empty database.
PERMANENT_EXIT_CODES = [2, 4, 5]


def source_location(lhb: LighthouseBridge) -> S3Location | None:
    r = lhb.spec.restore
    if r is None:
        return None
    if r.s3 is not None:
        return r.s3
    return lhb.spec.backup.s3 if lhb.spec.backup is not None else None


def source_identity(lhb: LighthouseBridge) -> tuple[str, str]:
    """(namespace, name) of the bridge whose backups are read: this one unless restore.sourceName/Namespace say."""
    r = lhb.spec.restore
    namespace = (r.source_namespace if r else None) or lhb.namespace
    name = (r.source_name if r else None) or lhb.name
    return namespace, name


def source_uri(lhb: LighthouseBridge) -> str | None:
    s3 = source_location(lhb)
    if s3 is None:
        return None
    namespace, name = source_identity(lhb)
    parts = [p for p in (s3.prefix.strip("/"), namespace, name) if p]
    return f"s3://{s3.bucket}/" + "/".join(parts)


def restore_env(lhb: LighthouseBridge) -> list[Manifest]:
    s3 = source_location(lhb)
    assert s3 is not None
    namespace, name = source_identity(lhb)
    return [
        # The source bridge's layout: <prefix>/<namespace>/<name>/<backup id>/ (docs/backup-tool.md).
        {"name": "LIGHTHOUSE_NAME", "value": name},
        {"name": "LIGHTHOUSE_NAMESPACE", "value": namespace},
        *s3_env(s3),
        database_url_env(lhb),  # this bridge's database, as the bridge and the backup Job see it
        {"name": "LIGHTHOUSE_DATABASE_WAIT_SECONDS", "value": str(DATABASE_WAIT_SECONDS)},
        {"name": "LIGHTHOUSE_RESTORE_RESULT_FILE", "value": RESULT_FILE},
        {"name": "LIGHTHOUSE_LOG_LEVEL", "value": lhb.spec.bridge.log_level},
    ]


def job(lhb: LighthouseBridge) -> Manifest | None:
    r = lhb.spec.restore
    if r is None or source_location(lhb) is None:
        return None
    labels = naming.labels(lhb.name, naming.RESTORE)
    # Never --replace: the tool refuses a database that is not empty, so a restore can never wipe data.
    container = tool_container(lhb, "restore", ["restore", "--from", r.from_], restore_env(lhb), r.resources.to_k8s())
    spec: Manifest = {
        "backoffLimit": BACKOFF_LIMIT,
        "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
        # No ttlSecondsAfterFinished: the Job and its logs stay until the LighthouseBridge goes (ownerReference).
        # The result is kept in status.restore, so deleting the Job by hand never re-runs a finished restore.
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "restore", "operator": "In", "values": PERMANENT_EXIT_CODES},
                }
            ]
        },
        "template": tool_pod_template(lhb, labels, container),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(lhb, naming.Names(lhb.name).restore, naming.RESTORE, {naming.A_RESTORE_SPEC: digest(spec)}),
        "spec": spec,
    }
