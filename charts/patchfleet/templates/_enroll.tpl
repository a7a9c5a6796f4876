{{/*
The enrollment server (`patchfleet enroll`, docs/enrollment.md): names, labels, checks,
volumes and environment of its objects.
*/}}

{{/*
The name of the enrollment server's Deployment, Service, ServiceAccount, ClusterRole and
Certificate: `FULLNAME-enroll` (truncated to the 63 characters of a Service name).
*/}}
{{- define "patchfleet.enrollFullname" -}}
{{- printf "%s-enroll" (include "patchfleet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on the enrollment server's objects.
*/}}
{{- define "patchfleet.enrollLabels" -}}
helm.sh/chart: {{ include "patchfleet.chart" . }}
{{ include "patchfleet.enrollSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: enroll
app.kubernetes.io/part-of: patchfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels of the enrollment server's pods: `NAME-enroll`, so that neither the
controller's selectors nor the dashboard's select them, nor its selector theirs.
*/}}
{{- define "patchfleet.enrollSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-enroll" (include "patchfleet.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the enrollment server runs as.
*/}}
{{- define "patchfleet.enrollServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "patchfleet.enrollFullname" .) .Values.enroll.serviceAccount.name }}
{{- else }}
{{- required "enroll.serviceAccount.name is required when serviceAccount.create is false (or set enroll.enabled=false)" .Values.enroll.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret of the server's certificate: the one named, or the one cert-manager writes.
*/}}
{{- define "patchfleet.enrollTlsSecretName" -}}
{{- if .Values.enroll.tls.certManager.enabled }}
{{- printf "%s-tls" (include "patchfleet.enrollFullname" .) | trunc 253 }}
{{- else }}
{{- .Values.enroll.tls.secretName }}
{{- end }}
{{- end }}

{{/*
The Secret holding the nonce key (key `nonce-key`): the one named, or the chart's.
*/}}
{{- define "patchfleet.enrollNonceSecretName" -}}
{{- default (printf "%s-nonce" (include "patchfleet.enrollFullname" .) | trunc 253) .Values.enroll.nonceKeySecret }}
{{- end }}

{{/*
The host name of enroll.audience (no scheme, port or path), for the certificate.
*/}}
{{- define "patchfleet.enrollAudienceHost" -}}
{{- $host := (urlParse .Values.enroll.audience).host }}
{{- if hasPrefix "[" $host }}
{{- regexReplaceAll "^\\[([^]]*)\\].*$" $host "${1}" }}
{{- else }}
{{- regexReplaceAll ":[0-9]*$" $host "" }}
{{- end }}
{{- end }}

{{/*
Checks of the enrollment server's values that the schema cannot express.
*/}}
{{- define "patchfleet.enrollValidate" -}}
{{- $e := .Values.enroll }}
{{- if not $e.audience }}
{{- fail "enroll.audience is required when enroll.enabled is true: the server's URL as machines call it, e.g. https://enroll.example.com (Google Cloud and VMware tokens must be issued for it)" }}
{{- end }}
{{- $secret := ne $e.tls.secretName "" }}
{{- $certManager := $e.tls.certManager.enabled }}
{{- if and $secret $certManager }}
{{- fail "enroll.tls: set either tls.secretName (an existing kubernetes.io/tls Secret) or tls.certManager.enabled=true (a cert-manager Certificate), not both" }}
{{- end }}
{{- if not (or $secret $certManager) }}
{{- fail "enroll.tls: the enrollment server serves HTTPS only: set tls.secretName (an existing kubernetes.io/tls Secret) or tls.certManager.enabled=true with tls.certManager.issuerRef.name (a cert-manager Certificate)" }}
{{- end }}
{{- if and $certManager (not $e.tls.certManager.issuerRef.name) }}
{{- fail "enroll.tls.certManager.issuerRef.name is required with tls.certManager.enabled: the cert-manager Issuer or ClusterIssuer that signs the server's certificate" }}
{{- end }}
{{- if and $certManager (not $e.tls.certManager.dnsNames) (not (include "patchfleet.enrollAudienceHost" .)) }}
{{- fail "enroll.tls.certManager.dnsNames is empty and enroll.audience names no host to take it from" }}
{{- end }}
{{- if and $e.vmware.keysConfigMap (not $e.vmware.vcenters) }}
{{- fail "enroll.vmware.keysConfigMap needs enroll.vmware.vcenters: the vCenters whose keys it holds, each as the key NAME.pem" }}
{{- end }}
{{- if and $e.vmware.vcenters (not $e.vmware.keysConfigMap) }}
{{- fail "enroll.vmware.vcenters needs enroll.vmware.keysConfigMap: the ConfigMap holding each vCenter's signer public key as NAME.pem" }}
{{- end }}
{{- if and $e.azure.intermediatesConfigMap (not $e.azure.rootsConfigMap) }}
{{- fail "enroll.azure.intermediatesConfigMap needs enroll.azure.rootsConfigMap: without roots Azure machines are refused" }}
{{- end }}
{{- if and $e.aws.noBuiltinCertificates (not $e.aws.extraCertificatesConfigMap) }}
{{- fail "enroll.aws.noBuiltinCertificates needs enroll.aws.extraCertificatesConfigMap: the server would trust no AWS certificate" }}
{{- end }}
{{- end }}

{{/*
Where the mounted files are.
*/}}
{{- define "patchfleet.enrollTlsDir" -}}/etc/patchfleet/tls{{- end }}
{{- define "patchfleet.enrollNonceDir" -}}/etc/patchfleet/nonce{{- end }}
{{- define "patchfleet.enrollAwsDir" -}}/etc/patchfleet/aws{{- end }}
{{- define "patchfleet.enrollAzureRootsDir" -}}/etc/patchfleet/azure-roots{{- end }}
{{- define "patchfleet.enrollAzureIntermediatesDir" -}}/etc/patchfleet/azure-intermediates{{- end }}
{{- define "patchfleet.enrollVmwareDir" -}}/etc/patchfleet/vmware{{- end }}

{{/*
The server's ports (container ports `https` and `http`).
*/}}
{{- define "patchfleet.enrollHttpsPort" -}}
8443
{{- end }}
{{- define "patchfleet.enrollHttpPort" -}}
8080
{{- end }}

{{/*
The enrollment server's environment with a value: its own settings, the files the chart
mounts, and the controller's cluster id, SSM and STS endpoints and attempts per call (null
ones left out, so the binary's default applies), so that both agree.
*/}}
{{- define "patchfleet.enrollEnv" -}}
{{- $e := .Values.enroll }}
{{- $tls := include "patchfleet.enrollTlsDir" . }}
{{- $pairs := list
  (list "PATCHFLEET_CLUSTER_ID" (include "patchfleet.clusterId" .))
  (list "PATCHFLEET_LOG_FORMAT" .Values.logFormat)
  (list "PATCHFLEET_ENROLL_HTTPS_ADDRESS" (printf "0.0.0.0:%s" (include "patchfleet.enrollHttpsPort" .)))
  (list "PATCHFLEET_ENROLL_HTTP_ADDRESS" (printf "0.0.0.0:%s" (include "patchfleet.enrollHttpPort" .)))
  (list "PATCHFLEET_ENROLL_AUDIENCE" $e.audience)
  (list "PATCHFLEET_ENROLL_TLS_CERT" (printf "%s/tls.crt" $tls))
  (list "PATCHFLEET_ENROLL_TLS_KEY" (printf "%s/tls.key" $tls))
  (list "PATCHFLEET_ENROLL_NONCE_KEY_FILE" (printf "%s/nonce-key" (include "patchfleet.enrollNonceDir" .)))
  (list "AWS_REGION" .Values.aws.region)
  (list "PATCHFLEET_SSM_ENDPOINT" .Values.aws.ssmEndpoint)
  (list "PATCHFLEET_STS_ENDPOINT" .Values.aws.stsEndpoint)
  (list "PATCHFLEET_MAX_ATTEMPTS" .Values.controller.maxAttempts)
  (list "PATCHFLEET_ENROLL_RATE_LIMIT" $e.rateLimit)
  (list "PATCHFLEET_ENROLL_GCP_JWKS_URL" $e.gcp.jwksUrl)
  (list "PATCHFLEET_ENROLL_GCP_JWKS_REFRESH" $e.gcp.jwksRefresh) }}
{{- if $e.aws.extraCertificatesConfigMap }}
{{- $dir := include "patchfleet.enrollAwsDir" . }}
{{- $files := list }}
{{- range $e.aws.extraCertificatesKeys }}
{{- $files = append $files (printf "%s/%s" $dir .) }}
{{- end }}
{{- $pairs = append $pairs (list "PATCHFLEET_ENROLL_AWS_CERTIFICATES" (join "," $files)) }}
{{- end }}
{{- if $e.aws.noBuiltinCertificates }}
{{- $pairs = append $pairs (list "PATCHFLEET_ENROLL_NO_BUILTIN_AWS_CERTIFICATES" "true") }}
{{- end }}
{{- if $e.azure.rootsConfigMap }}
{{- $pairs = append $pairs (list "PATCHFLEET_ENROLL_AZURE_ROOTS" (printf "%s/roots.pem" (include "patchfleet.enrollAzureRootsDir" .))) }}
{{- end }}
{{- if $e.azure.intermediatesConfigMap }}
{{- $pairs = append $pairs (list "PATCHFLEET_ENROLL_AZURE_INTERMEDIATES" (printf "%s/intermediates.pem" (include "patchfleet.enrollAzureIntermediatesDir" .))) }}
{{- end }}
{{- $pairs = append $pairs (list "PATCHFLEET_ENROLL_AZURE_SIGNER_NAMES" (join "," $e.azure.signerNames)) }}
{{- if $e.vmware.keysConfigMap }}
{{- $dir := include "patchfleet.enrollVmwareDir" . }}
{{- $keys := list }}
{{- range $e.vmware.vcenters }}
{{- $keys = append $keys (printf "%s=%s/%s.pem" . $dir .) }}
{{- end }}
{{- $pairs = append $pairs (list "PATCHFLEET_ENROLL_VMWARE_KEYS" (join "," $keys)) }}
{{- end }}
{{- include "patchfleet.envList" $pairs }}
{{- end }}
