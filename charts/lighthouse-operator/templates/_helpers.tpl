{{/* Names, labels and the operator's RBAC rules (one list, used by the ClusterRole and every Role). */}}

{{- define "lighthouse-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lighthouse-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lighthouse-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lighthouse-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The operator's pods only (selectorLabels alone also match the FUSE node plugin's pods): the disruption budget
and the anti-affinity count replicas of the operator. */}}
{{- define "lighthouse-operator.operatorPodLabels" -}}
{{ include "lighthouse-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "lighthouse-operator.labels" -}}
{{ include "lighthouse-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: lighthouse
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "lighthouse-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lighthouse-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lighthouse-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Namespaces watched in namespaced mode: the listed ones, or the release namespace. */}}
{{- define "lighthouse-operator.watchNamespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- .Values.watch.namespaces | uniq | join "," -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
What the operator does with each kind, and nothing more:
- LighthouseBridges: watch them, patch status and finalizers; it never creates or deletes them.
- Children it applies (server-side apply) and prunes: full verbs on exactly those kinds.
- Secrets: create the generated ones (fixed names), read the ones a LighthouseBridge references by name, and patch
  or delete them on deletion (deletionPolicy). Never list or watch them cluster-wide: in namespaced mode the Role of
  each watched namespace lets the operator watch the Secrets it generated (it selects them by label), in cluster
  mode it reads them by name, at most once per resync interval (rbac.secretsListWatch grants the cluster-wide
  watch instead, for large installations).
- PersistentVolumeClaims: created by StatefulSets; the operator only reads them and patches or deletes them on
  deletion (deletionPolicy Retain or Delete).
- Pods and ReplicaSets: read for rollout judgement; Pods also deleted when the health gate replaces a stuck one.
- ControllerRevisions: the operator records each bridge revision in one (rollback history).
- Events: written for what it did.
*/}}
{{- define "lighthouse-operator.rules" -}}
- apiGroups: [lighthouse.dev]
  resources: [lighthousebridges]
  verbs: [get, list, watch, patch, update]
- apiGroups: [lighthouse.dev]
  resources: [lighthousebridges/status]
  verbs: [get, patch, update]
- apiGroups: [lighthouse.dev]
  resources: [lighthousebridges/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [serviceaccounts, configmaps, services]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  {{- if or (eq .Values.watch.mode "namespaced") .Values.rbac.secretsListWatch }}
  verbs: [get, list, watch, create, patch, delete]
  {{- else }}
  verbs: [get, create, patch, delete]
  {{- end }}
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [controllerrevisions]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, update, patch, delete]
# spec.expose: an Ingress, or an HTTPRoute and ReferenceGrant where the Gateway API is installed.
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, referencegrants]
  verbs: [get, list, watch, create, update, patch, delete]
{{- if .Values.rbac.serviceMonitors }}
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, list, watch, create, update, patch, delete]
{{- end }}
{{- end -}}

{{/* The FUSE node plugin's DaemonSet (templates/fuse-plugin.yaml). */}}
{{- define "lighthouse-operator.fusePluginSelectorLabels" -}}
app.kubernetes.io/name: {{ include "lighthouse-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: fuse-node
{{- end -}}

{{- define "lighthouse-operator.fusePluginLabels" -}}
{{ include "lighthouse-operator.fusePluginSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: lighthouse
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "lighthouse-operator.fusePluginImage" -}}
{{- printf "%s:%s" .Values.fusePlugin.image.repository (default .Chart.AppVersion .Values.fusePlugin.image.tag) -}}
{{- end -}}

{{/* The operator's default fuse.mode: defaults.fuse.mode, else csi when the chart installs the CSI node plugin. */}}
{{- define "lighthouse-operator.defaultFuseMode" -}}
{{- $d := (.Values.defaults | default dict) -}}
{{- $mode := ((($d.fuse | default dict)).mode | default "") -}}
{{- if $mode -}}
{{- $mode -}}
{{- else if and .Values.fusePlugin.enabled .Values.fusePlugin.csi.enabled -}}
csi
{{- end -}}
{{- end -}}
