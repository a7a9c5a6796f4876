{{/*
The chart's name, truncated to the 63 characters of a label value.
*/}}
{{- define "patchfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release name (with the
chart name appended unless the release name already contains it).
*/}}
{{- define "patchfleet.fullname" -}}
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

{{- define "patchfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "patchfleet.labels" -}}
helm.sh/chart: {{ include "patchfleet.chart" . }}
{{ include "patchfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: patchfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: stable for the life of the release (a Deployment's selector is immutable).
*/}}
{{- define "patchfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "patchfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the controller runs as.
*/}}
{{- define "patchfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "patchfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
This cluster's identity (PATCHFLEET_CLUSTER_ID), the same for the controller and the
enrollment server: the server tags each activation with it, and the controller manages
only the nodes that carry its own.
*/}}
{{- define "patchfleet.clusterId" -}}
{{- required "clusterId is required: this cluster's identity, tagged on every SSM object patchfleet creates" .Values.clusterId }}
{{- end }}

{{/*
The Lease the replicas elect a leader on: one per release, in the release namespace.
*/}}
{{- define "patchfleet.leaseName" -}}
{{- include "patchfleet.fullname" . }}
{{- end }}

{{/*
The image reference: repository@digest when a digest is given, else repository:tag (the
tag defaulting to the chart's appVersion).
*/}}
{{- define "patchfleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The controller's optional environment variables: each rendered only when its value is set
(not null), so the binary's own default stays the single source of truth.
*/}}
{{- define "patchfleet.optionalEnv" -}}
{{- $c := .Values.controller }}
{{- $q := .Values.quotas }}
{{- $pairs := list
  (list "PATCHFLEET_SSM_ENDPOINT" .Values.aws.ssmEndpoint)
  (list "PATCHFLEET_STS_ENDPOINT" .Values.aws.stsEndpoint)
  (list "PATCHFLEET_CONCURRENCY" $c.concurrency)
  (list "PATCHFLEET_RATE_LIMIT" $c.rateLimit)
  (list "PATCHFLEET_MAX_ATTEMPTS" $c.maxAttempts)
  (list "PATCHFLEET_RESYNC" $c.resync)
  (list "PATCHFLEET_DEEP_INTERVAL" $c.deepInterval)
  (list "PATCHFLEET_RETRY" $c.retry)
  (list "PATCHFLEET_RETRY_ATTENTION" $c.retryAttention)
  (list "PATCHFLEET_RUN_POLL_INTERVAL" $c.runPollInterval)
  (list "PATCHFLEET_STATUS_INTERVAL" $c.statusInterval)
  (list "PATCHFLEET_COMPLIANCE_INTERVAL" $c.complianceInterval)
  (list "PATCHFLEET_COMPLIANCE_CONCURRENCY" $c.complianceConcurrency)
  (list "PATCHFLEET_QUOTA_BASELINES" $q.baselines)
  (list "PATCHFLEET_QUOTA_WINDOWS" $q.windows)
  (list "PATCHFLEET_QUOTA_TARGETS_PER_WINDOW" $q.targetsPerWindow)
  (list "PATCHFLEET_QUOTA_TASKS_PER_WINDOW" $q.tasksPerWindow)
  (list "PATCHFLEET_QUOTA_PATCH_GROUPS_PER_BASELINE" $q.patchGroupsPerBaseline)
  (list "PATCHFLEET_QUOTA_MANAGED_NODES" $q.managedNodes)
  (list "PATCHFLEET_QUOTA_HYBRID_NODES" $q.hybridNodes) }}
{{- if .Values.leaderElection.enabled }}
{{- $l := .Values.leaderElection }}
{{- $pairs = concat $pairs (list
  (list "PATCHFLEET_LEASE_DURATION" $l.leaseDuration)
  (list "PATCHFLEET_LEASE_RENEW_DEADLINE" $l.renewDeadline)
  (list "PATCHFLEET_LEASE_RETRY_PERIOD" $l.retryPeriod)) }}
{{- end }}
{{- include "patchfleet.envList" $pairs }}
{{- end }}

{{/*
A list of (name, value) pairs as EnvVars; pairs whose value is null are left out.
*/}}
{{- define "patchfleet.envList" -}}
{{- range . }}
{{- $value := index . 1 }}
{{- if not (kindIs "invalid" $value) }}
{{- /* YAML numbers arrive as float64: print whole ones as integers, not as 1e+06. */}}
{{- if and (kindIs "float64" $value) (eq $value (floor $value)) }}
{{- $value = int64 $value }}
{{- end }}
- name: {{ index . 0 }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Checks of combinations the schema cannot express.
*/}}
{{- define "patchfleet.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail "leaderElection.enabled=false needs replicaCount: 1 (two controllers without a leader would both write to SSM)" }}
{{- end }}
{{- end }}
