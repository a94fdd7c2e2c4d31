{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "kubetune.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: <release>-<chart> unless the release name already holds it. */}}
{{- define "kubetune.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kubetune.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment selector is immutable). */}}
{{- define "kubetune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Common labels. managed-by is Helm here: trial pods carry managed-by=kubetune, and the
PodMonitor selects on that, so the chart's own objects must not.
*/}}
{{- define "kubetune.labels" -}}
helm.sh/chart: {{ include "kubetune.chart" . }}
app.kubernetes.io/name: {{ include "kubetune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubetune
{{- end }}

{{- define "kubetune.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubetune.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubetune.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Prometheus job name of the operator: a ServiceMonitor names the job after the Service. */}}
{{- define "kubetune.operatorJob" -}}
{{- include "kubetune.fullname" . }}
{{- end }}

{{/* Rules on the sweeps and trial pods, shared by the cluster-wide and namespaced roles. */}}
{{- define "kubetune.workloadRules" -}}
# Sweeps: watched by kopf, which also patches them (finalizers, progress annotations).
- apiGroups: ["kubetune.dev"]
  resources: ["hyperparametersweeps"]
  verbs: ["get", "list", "watch", "patch"]
# Trial pods carry an owner reference with blockOwnerDeletion; where the
# OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift), setting it needs
# update on the owner's finalizers.
- apiGroups: ["kubetune.dev"]
  resources: ["hyperparametersweeps/finalizers"]
  verbs: ["update"]
# Status is a subresource: phase, trial counts, best trial, history.
- apiGroups: ["kubetune.dev"]
  resources: ["hyperparametersweeps/status"]
  verbs: ["get", "patch"]
# Trial pods: created per trial, deleted when pruned, watched (kopf index and event
# handlers, which never write to the pods) for their outcome.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Trial logs: sweeps with spec.metrics.logs read their metrics from them. Read-only.
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# Trial Jobs (spec.workload): created per trial, deleted (foreground, with their pods) when
# pruned or finished; their pods are watched as trial pods above, and the Jobs themselves
# (kopf index) for whether Kueue still holds them suspended (spec.queueName: Queued trials).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# trainer.nodes: one headless Service per sweep gives a trial's pods DNS names for their
# torchrun rendezvous; created with the first such trial, owned by (deleted with) the sweep.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create"]
# Trial JobSets, PyTorchJobs and TrainJobs (spec.workload), as trial Jobs: their primary pods are the
# trial pods above; the objects are watched (kopf index) for Kueue's suspension and their
# Failed condition, read before a delete (a JobSet's pods do not know its uid).
{{- range .Values.rbac.workloadKinds }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ .resource | quote }}]
  verbs: ["get", "list", "watch", "create", "delete"]
{{- end }}
# Events on sweeps: kopf posts them (kopf.info/warn/exception) with create only.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
