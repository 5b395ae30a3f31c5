"""The LighthouseBridge API (lighthouse.dev/v1alpha1) as typed pydantic models.

The CRD in crds/ is generated from these models (see crd.py). Defaults live here, in the operator, and never in the
CRD schema: the API server must not write into the stored object anything a Git manifest would not have.
CEL rules (`x-kubernetes-validations`) sit next to the fields they check so the model and the CRD cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from lighthouse_policy import PolicySpec
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic.alias_generators import to_camel

GROUP = "lighthouse.dev"
VERSION = "v1alpha1"
KIND = "LighthouseBridge"
PLURAL = "lighthousebridges"
SINGULAR = "lighthousebridge"
SHORT_NAMES = ["lhb"]
CATEGORIES = ["lighthouse"]
API_VERSION = f"{GROUP}/{VERSION}"

DEFAULT_BRIDGE_IMAGE = "localhost/lighthouse-bridge:0.1.0"
DEFAULT_REDIS_IMAGE = "docker.io/library/redis:7.4-alpine"
# The bridge image's pg_dump/pg_restore are PostgreSQL 15 (Debian bookworm), and pg_dump refuses newer servers:
# the default server matches it, so backups and restores of a default bridge work.
DEFAULT_POSTGRES_IMAGE = "docker.io/library/postgres:15-alpine"
BACKUP_CLIENT_MAJOR = 15

# The Kubernetes quantity grammar (resource.Quantity); the same pattern controller-gen puts into CRDs.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
# Children get suffixes such as "-postgres-credentials" and Service names must be DNS-1035 labels.
MAX_NAME_LENGTH = 40


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    out = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class Model(BaseModel):
    """Base: camelCase on the wire, unknown fields refused (the API server prunes them anyway)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not _QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (for example 512Mi, 1Gi, 250m, 2)")
    return value


# CEL's isQuantity() gives a message people understand (a pattern would print the regex); maxLength keeps the rule
# within the API server's cost budget.
QUANTITY_SCHEMA: dict[str, Any] = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "maxLength": 64,
    "x-kubernetes-validations": [
        {
            "rule": "type(self) == int || isQuantity(self)",
            "message": "must be a Kubernetes quantity such as 250m, 512Mi, 1Gi or 2",
        },
    ],
}
QUANTITY_MAP_SCHEMA: dict[str, Any] = {"additionalProperties": QUANTITY_SCHEMA, "maxProperties": 16}


# ---------------------------------------------------------------------------------------------------------------- spec


class ResourceRequirements(Model):
    """Compute resources of a container, as in a Pod spec."""

    limits: dict[str, int | str] = Field(default_factory=dict, json_schema_extra=QUANTITY_MAP_SCHEMA)
    requests: dict[str, int | str] = Field(default_factory=dict, json_schema_extra=QUANTITY_MAP_SCHEMA)

    @field_validator("limits", "requests")
    @classmethod
    def _quantities(cls, v: dict[str, int | str]) -> dict[str, int | str]:
        for q in v.values():
            _check_quantity(q)
        return v

    def to_k8s(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.limits:
            out["limits"] = dict(self.limits)
        if self.requests:
            out["requests"] = dict(self.requests)
        return out


class Toleration(Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class PodTemplate(Model):
    """Extra settings for the bridge pods."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    affinity: dict[str, Any] | None = Field(
        None,
        description="A core/v1 Affinity, passed through to the pods unchanged.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    priority_class_name: str | None = None
    service_account_name: str | None = Field(
        None, description="Use this ServiceAccount instead of the one the operator creates."
    )


class EnvVar(Model):
    name: str = Field(min_length=1)
    value: str | None = None
    value_from: dict[str, Any] | None = Field(
        None,
        description="A core/v1 EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef ...).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


def _embeddable(node: Any, defs: dict[str, Any]) -> Any:
    """A schema to embed in ours: its own `$defs` inlined, and every closed object (additionalProperties: false)
    kept open instead. The API server would prune an unknown key silently and the bridge would run without it;
    kept, the operator refuses it (validation.py: Stalled, reason InvalidSpec) with the model the bridge uses."""
    if isinstance(node, list):
        return [_embeddable(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    out = {k: _embeddable(v, defs) for k, v in node.items() if k != "$defs"}
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


# The bridge's policy file format, from the model both components share (lighthouse_policy): keys are the file's own
# (snake_case), and the ConfigMap gets the object exactly as written.
_POLICY_RAW = PolicySpec.model_json_schema(mode="validation")
POLICY_SCHEMA: dict[str, Any] = _embeddable(_POLICY_RAW, _POLICY_RAW.get("$defs", {}))
PolicyObject = Annotated[dict[str, Any], WithJsonSchema(POLICY_SCHEMA)]


class BridgeConfig(Model):
    """Configuration passed to the bridge process."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    policy: PolicyObject | None = Field(
        None,
        description="Validation policy handed to the bridge as policy.yaml: the bridge's own keys (rules, "
        "default_action, escalation_timeout_seconds, read_only_tools, include_defaults); see lighthouse_policy.",
    )
    experts: bool = Field(True, description="Run the built-in expert reviewers.")
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment variables for the bridge container.")


class PVCSource(Model):
    claim_name: str = Field(min_length=1)
    sub_path: str | None = None


class ProjectSource(Model):
    """Where the initial shadow comes from: a PVC (optionally a sub path of it), or nothing (an empty project)."""

    pvc: PVCSource | None = None


FuseMode = Literal["csi", "devicePlugin", "userNamespaces", "privileged", "capabilities", "disabled"]
# The CSI driver of the chart's FUSE node plugin (nodeplugin/lighthouse_csi); docs/fuse-modes.md.
FUSE_CSI_DRIVER = "fuse.lighthouse.dev"
FUSE_MODES_WITH_DEVICE = ("devicePlugin", "userNamespaces")
FUSE_MODES: tuple[FuseMode, ...] = get_args(FuseMode)


@dataclass
class OperatorDefaults:
    """What a LighthouseBridge gets for the fields below when it leaves them out. Set once at start-up from
    `lighthouse-operator --default-*` (the chart's `defaults` values), so that one installation can use images from
    its own registry, or the FUSE device plugin its nodes run, without every resource saying so."""

    bridge_image: str = DEFAULT_BRIDGE_IMAGE
    redis_image: str = DEFAULT_REDIS_IMAGE
    postgres_image: str = DEFAULT_POSTGRES_IMAGE
    fuse_mode: FuseMode = "capabilities"
    fuse_device_plugin_resource: str | None = None


DEFAULTS = OperatorDefaults()


class FuseSpec(Model):
    """How the bridge pods get their FUSE mount (docs/fuse-modes.md): csi (the node plugin mounts and hands the pod
    the descriptor: Pod Security restricted), devicePlugin (/dev/fuse from a device plugin, SYS_ADMIN),
    userNamespaces (the same in a user namespace; containerd 2 and runc 1.2+), privileged, capabilities (SYS_ADMIN and
    a hostPath device), disabled."""

    # No CEL rule for devicePluginResource: the operator may have a default for it (--default-fuse-device-plugin-
    # resource, the chart's defaults.fuse), which the API server cannot see; validation.py checks the effective spec.

    enabled: bool = True
    mode: FuseMode = Field(default_factory=lambda: DEFAULTS.fuse_mode)
    device_plugin_resource: str | None = Field(default_factory=lambda: DEFAULTS.fuse_device_plugin_resource)

    @property
    def active(self) -> bool:
        return self.enabled and self.mode != "disabled"


class StorageSpec(Model):
    size: int | str = Field("1Gi", json_schema_extra=QUANTITY_SCHEMA)
    storage_class_name: str | None = None

    @field_validator("size")
    @classmethod
    def _size(cls, v: int | str) -> int | str:
        return _check_quantity(v)


class ManagedStore(Model):
    """A database the operator runs as a StatefulSet next to the bridge."""

    image: str | None = Field(None, min_length=1)
    resources: ResourceRequirements = ResourceRequirements()
    storage: StorageSpec = StorageSpec()


class SecretKeyRef(Model):
    name: str = Field(min_length=1)
    key: str = Field("url", description="Key in the Secret holding the connection URL (default: url).")


class ExternalStore(Model):
    """A database run elsewhere; the Secret holds its URL."""

    secret_ref: SecretKeyRef | None = None


def _store_rules(what: str) -> dict[str, Any]:
    return validations(
        cel(
            "!has(self.mode) || self.mode != 'external' || (has(self.external) && has(self.external.secretRef))",
            f"{what}.external.secretRef (a Secret holding the {what} URL) is required when {what}.mode is external",
        ),
        cel(
            "!has(self.mode) || self.mode != 'external' || !has(self.managed)",
            f"{what}.managed must not be set when {what}.mode is external",
        ),
        cel(
            "(has(self.mode) && self.mode == 'external') || !has(self.external)",
            f"{what}.external is only allowed when {what}.mode is external",
        ),
    )


class RedisSpec(Model):
    model_config = ConfigDict(json_schema_extra=_store_rules("redis"))

    mode: Literal["managed", "external"] = "managed"
    managed: ManagedStore | None = None
    external: ExternalStore | None = None


class PostgresSpec(Model):
    model_config = ConfigDict(json_schema_extra=_store_rules("postgres"))

    mode: Literal["managed", "external"] = "managed"
    managed: ManagedStore | None = None
    external: ExternalStore | None = None


class S3Location(Model):
    """An S3-compatible bucket. credentialsSecret names a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""

    bucket: str = Field(min_length=3)
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    credentials_secret: str | None = None
    path_style: bool = False


class Retention(Model):
    keep_last: int | None = Field(None, ge=1)
    max_age: str | None = Field(None, description="A duration such as 720h or 30d.")


class BackupSpec(Model):
    """Scheduled backups to S3 (a CronJob running `lighthouse-bridge backup`)."""

    schedule: str = Field(min_length=1, description="Cron schedule, for example '0 3 * * *'.")
    suspend: bool = False
    s3: S3Location
    retention: Retention = Retention()
    resources: ResourceRequirements = ResourceRequirements()


class RolloutSpec(Model):
    # The Deployment API refuses minReadySeconds >= progressDeadlineSeconds; say so at admission, not at apply.
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.minReadySeconds) || self.minReadySeconds < "
                "(has(self.progressDeadlineSeconds) ? self.progressDeadlineSeconds : 600)",
                "rollout.minReadySeconds must be less than rollout.progressDeadlineSeconds (default 600)",
            )
        )
    )

    on_failure: Literal["Rollback", "Freeze"] = "Rollback"
    crash_loop_restarts: int = Field(3, ge=1)
    progress_deadline_seconds: int = Field(600, ge=1)
    min_ready_seconds: int = Field(
        0,
        ge=0,
        description="Seconds a new bridge pod must stay Ready before it counts as available, so before an "
        "old pod is removed (the Deployment's minReadySeconds). A revision whose readiness flaps faster than this "
        "never replaces the pods already serving. 0 (the Kubernetes default): Ready is enough.",
    )


class RestoreSpec(Model):
    """Seed a new bridge from a backup before it starts (only at creation: see docs/restore.md)."""

    from_: str = Field("latest", alias="from", min_length=1, description="A backup name, or latest.")
    s3: S3Location | None = Field(None, description="Where the backup lives (default: this bridge's backup.s3).")
    source_name: str | None = Field(
        None, min_length=1, description="Name of the bridge that made the backup (default: this bridge's name)."
    )
    source_namespace: str | None = Field(
        None, min_length=1, description="Namespace of the bridge that made the backup (default: this namespace)."
    )
    resources: ResourceRequirements = ResourceRequirements()


class MonitoringSpec(Model):
    service_monitor: bool = Field(False, description="Create a ServiceMonitor (when the CRD exists).")


class NetworkPolicySpec(Model):
    enabled: bool = True


# A DNS name (RFC 1123 subdomain) or a wildcard one, as Ingress and HTTPRoute hostnames take it.
HOSTNAME_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HTTP_PATH = Field("/", pattern=r"^/", max_length=1024, description="Path prefix routed to the bridge (default /).")


class ExposeTLS(Model):
    secret_name: str = Field(min_length=1, max_length=253, description="A kubernetes.io/tls Secret in this namespace.")


class IngressExpose(Model):
    """An Ingress for the bridge's API."""

    host: str = Field(min_length=1, max_length=253, pattern=HOSTNAME_PATTERN)
    class_name: str | None = Field(None, min_length=1, description="The IngressClass (default: the cluster's).")
    path: str = HTTP_PATH
    annotations: dict[str, str] = Field(
        default_factory=dict, description="For the controller, e.g. a longer read timeout for event streams."
    )
    tls: ExposeTLS | None = Field(None, description="Terminate TLS at the Ingress with this Secret.")


class GatewayParentRef(Model):
    name: str = Field(min_length=1)
    namespace: str | None = Field(None, min_length=1, description="The Gateway's namespace (default: this one).")
    section_name: str | None = Field(None, min_length=1, description="A listener of the Gateway, e.g. https.")


class GatewayExpose(Model):
    """A Gateway API HTTPRoute for the bridge's API, attached to an existing Gateway."""

    parent_refs: list[GatewayParentRef] = Field(min_length=1, max_length=16)
    hostnames: list[Annotated[str, Field(max_length=253, pattern=HOSTNAME_PATTERN)]] = Field(
        default_factory=list, max_length=16
    )
    path: str = HTTP_PATH
    tls: ExposeTLS | None = Field(
        None,
        description="TLS terminates at the Gateway's listener; when that listener uses this Secret of this "
        "namespace from another namespace, the operator creates the ReferenceGrant that allows it.",
    )


class ExposeSpec(Model):
    """A way in from outside the cluster. Without it the API is a ClusterIP Service (kubectl lighthouse connect)."""

    ingress: IngressExpose | None = None
    gateway: GatewayExpose | None = None


class LighthouseBridgeSpec(Model):
    """The desired state of a Lighthouse bridge and its storage."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("!has(self.replicas) || self.replicas >= 0", "spec.replicas must be 0 or more"),
            cel("!has(self.image) || self.image.trim() != ''", "spec.image must not be empty"),
        )
    )

    image: str | None = Field(None, description="Bridge image (default: the one matching the operator).")
    replicas: int = 1  # >= 0: checked by the CEL rule above (one readable message) and _replicas below
    resources: ResourceRequirements = ResourceRequirements()
    pod_template: PodTemplate = PodTemplate()
    bridge: BridgeConfig = BridgeConfig()
    project: ProjectSource = ProjectSource()
    fuse: FuseSpec = Field(default_factory=FuseSpec)
    redis: RedisSpec = RedisSpec()
    postgres: PostgresSpec = PostgresSpec()
    backup: BackupSpec | None = None
    rollout: RolloutSpec = RolloutSpec()
    restart_nonce: str | None = Field(None, description="Change to roll the bridge pods (committable to Git).")
    restore: RestoreSpec | None = None
    deletion_policy: Literal["Retain", "Delete", "Snapshot"] = Field(
        "Retain", description="What happens to PVCs and generated Secrets when this resource is deleted."
    )
    paused: bool = Field(False, description="Stop all writes to children.")
    monitoring: MonitoringSpec = MonitoringSpec()
    network_policy: NetworkPolicySpec = NetworkPolicySpec()
    expose: ExposeSpec = ExposeSpec()

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, v: int) -> int:
        if v < 0:
            raise ValueError("spec.replicas must be 0 or more")
        return v

    @property
    def bridge_image(self) -> str:
        return self.image or DEFAULTS.bridge_image

    @property
    def redis_image(self) -> str:
        return (self.redis.managed and self.redis.managed.image) or DEFAULTS.redis_image

    @property
    def postgres_image(self) -> str:
        return (self.postgres.managed and self.postgres.managed.image) or DEFAULTS.postgres_image


# -------------------------------------------------------------------------------------------------------------- status

DATE_TIME: dict[str, Any] = {"format": "date-time"}


class Condition(Model):
    """A metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = Field(None, json_schema_extra=DATE_TIME)
    observed_generation: int | None = None


class Revisions(Model):
    desired: str | None = None
    serving: str | None = None
    last_good: str | None = None


class RolloutRecord(Model):
    """The health gate's record of one workload's rollout, so that a restarted operator judges it the same way."""

    revision: str | None = Field(None, description="The revision the current (or last) rollout targets.")
    started_at: str | None = Field(
        None,
        description="When that rollout started; the progress deadline counts from "
        "here and is not reset when the ready count flaps.",
        json_schema_extra=DATE_TIME,
    )
    phase: Literal["Progressing", "Complete", "Failed"] | None = None
    last_good: str | None = Field(None, description="The newest revision that completed a rollout healthily.")
    failed_revision: str | None = Field(None, description="Not retried until the desired revision changes.")
    reason: str | None = None
    message: str | None = None
    detected_at: str | None = Field(None, json_schema_extra=DATE_TIME)


class ComponentStatus(Model):
    ready: int = 0
    desired: int = 0
    message: str = ""


class Components(Model):
    bridge: ComponentStatus | None = None
    redis: ComponentStatus | None = None
    postgres: ComponentStatus | None = None
    backup: ComponentStatus | None = None


class Endpoints(Model):
    api: str | None = None
    metrics: str | None = None
    external: str | None = Field(None, description="The API from outside the cluster (spec.expose).")


class LastBackup(Model):
    """The newest successful backup: its id in the bucket (what `restore --from` takes), time and size in bytes."""

    name: str | None = None
    time: str | None = Field(None, json_schema_extra=DATE_TIME)
    size: int | None = None


class BackupRecord(Model):
    """The operator's memory for backups, so that a restarted operator decides the same way."""

    last_request: str | None = Field(None, description="The lighthouse.dev/backup-now value already handled.")
    request_job: str | None = Field(None, description="The Job that value started.")
    schedule: str | None = Field(None, description="The schedule judged for missed backups.")
    schedule_since: str | None = Field(
        None,
        description="When that schedule started counting (created, changed or un-suspended).",
        json_schema_extra=DATE_TIME,
    )


class RestoreStatus(Model):
    """The restore of spec.restore, recorded once: a Succeeded (or Skipped) restore is never run again."""

    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Skipped"]
    from_: str | None = Field(None, alias="from", description="spec.restore.from at the time.")
    source: str | None = Field(None, description="Where the backup was read: s3://bucket/prefix/namespace/name.")
    backup: str | None = Field(None, description="The backup restored (what latest resolved to).")
    job: str | None = None
    attempts: int | None = None
    started_at: str | None = Field(None, json_schema_extra=DATE_TIME)
    completed_at: str | None = Field(None, json_schema_extra=DATE_TIME)
    message: str | None = None


class LighthouseBridgeStatus(Model):
    """The observed state, written only by the operator."""

    observed_generation: int | None = None
    phase: str | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    replicas: int | None = None
    ready_replicas: int | None = None
    selector: str | None = None
    replica_summary: str | None = Field(None, description="ready/desired bridge replicas, for kubectl get.")
    revisions: Revisions | None = None
    rollout: dict[str, RolloutRecord] | None = Field(
        None, description="Rollout records by workload (bridge, postgres, redis)."
    )
    components: Components | None = None
    endpoints: Endpoints | None = None
    last_backup: LastBackup | None = None
    last_successful_backup_time: str | None = Field(None, json_schema_extra=DATE_TIME)
    backup: BackupRecord | None = None
    restore: RestoreStatus | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class ObjectMeta(BaseModel):
    """Only what the operator reads from metadata."""

    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deletionTimestamp: str | None = None  # Kubernetes spelling


class LighthouseBridge(BaseModel):
    """A whole object as read from the API server."""

    model_config = ConfigDict(extra="ignore")

    metadata: ObjectMeta
    spec: LighthouseBridgeSpec = LighthouseBridgeSpec()
    status: dict[str, Any] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.metadata.name,
            "uid": self.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    @classmethod
    def from_body(cls, body: Any) -> LighthouseBridge:
        """Parse a raw object; pydantic.ValidationError means the spec is invalid beyond what CEL checks."""
        raw = dict(body)
        return cls.model_validate(
            {
                "metadata": dict(raw.get("metadata") or {}),
                "spec": dict(raw.get("spec") or {}),
                "status": dict(raw.get("status") or {}),
            }
        )
