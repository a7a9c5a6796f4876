{{/*
The dashboard (`patchfleet dashboard`): names, labels and environment of its objects.
*/}}

{{/*
The name of the dashboard's Deployment, Service, ServiceAccount and ClusterRole:
`FULLNAME-dashboard` (truncated to the 63 characters of a Service name).
*/}}
{{- define "patchfleet.dashboardFullname" -}}
{{- printf "%s-dashboard" (include "patchfleet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on the dashboard's objects.
*/}}
{{- define "patchfleet.dashboardLabels" -}}
helm.sh/chart: {{ include "patchfleet.chart" . }}
{{ include "patchfleet.dashboardSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: dashboard
app.kubernetes.io/part-of: patchfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels of the dashboard's pods. The name is `NAME-dashboard`, not the chart's
name: the controller's selector (name and instance, immutable on its Deployment) would
otherwise also select the dashboard's pods, for its Deployment, Service,
PodDisruptionBudget and ServiceMonitor.
*/}}
{{- define "patchfleet.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-dashboard" (include "patchfleet.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the dashboard runs as.
*/}}
{{- define "patchfleet.dashboardServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "patchfleet.dashboardFullname" .) .Values.dashboard.serviceAccount.name }}
{{- else }}
{{- required "dashboard.serviceAccount.name is required when serviceAccount.create is false (or set dashboard.enabled=false)" .Values.dashboard.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The dashboard's port (container port `http`).
*/}}
{{- define "patchfleet.dashboardPort" -}}
8080
{{- end }}

{{/*
The dashboard's environment with a value: its own settings, and the controller's SSM and
STS endpoints, attempts per call and compliance interval (null ones left out, so the
binary's default applies to both), so that both agree.
*/}}
{{- define "patchfleet.dashboardEnv" -}}
{{- $d := .Values.dashboard }}
{{- include "patchfleet.envList" (list
  (list "PATCHFLEET_LOG_FORMAT" .Values.logFormat)
  (list "PATCHFLEET_DASHBOARD_HTTP_ADDRESS" (printf "0.0.0.0:%s" (include "patchfleet.dashboardPort" .)))
  (list "AWS_REGION" .Values.aws.region)
  (list "PATCHFLEET_SSM_ENDPOINT" .Values.aws.ssmEndpoint)
  (list "PATCHFLEET_STS_ENDPOINT" .Values.aws.stsEndpoint)
  (list "PATCHFLEET_MAX_ATTEMPTS" .Values.controller.maxAttempts)
  (list "PATCHFLEET_COMPLIANCE_INTERVAL" .Values.controller.complianceInterval)
  (list "PATCHFLEET_DASHBOARD_RATE_LIMIT" $d.rateLimit)
  (list "PATCHFLEET_DASHBOARD_REFRESH_INTERVAL" $d.refreshInterval)
  (list "PATCHFLEET_DASHBOARD_CACHE_TTL" $d.cacheTtl)
  (list "PATCHFLEET_DASHBOARD_AUTH_CACHE_TTL" $d.authCacheTtl)) }}
{{- end }}
