{{/*
The `defaults` value: the default PatchPolicies and PatchGroups of files/defaults/*.yaml,
rendered as they are written (examples/defaults/ holds the same files, byte for byte; the
`chart` test compares them), with only these changes:
- metadata.namespace (and the Namespace's name) is `defaults.namespace`;
- the Namespace is left out unless `defaults.createNamespace`;
- `defaults.accountSelector`, when set, replaces every PatchGroup's accountSelector;
- the chart's labels are added (component `defaults`).
*/}}

{{/*
Labels on the default objects: the chart's, with component `defaults`.
*/}}
{{- define "patchfleet.defaultsLabels" -}}
helm.sh/chart: {{ include "patchfleet.chart" . }}
app.kubernetes.io/name: {{ include "patchfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: defaults
app.kubernetes.io/part-of: patchfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Every document of files/defaults/*.yaml (files in name order), adjusted as above, as a
YAML stream.
*/}}
{{- define "patchfleet.defaultsObjects" -}}
{{- $d := .Values.defaults }}
{{- if and $d.createNamespace (eq $d.namespace .Release.Namespace) }}
{{- fail (printf "defaults.namespace %q is the release namespace, which exists already: set defaults.createNamespace=false, or choose another namespace" $d.namespace) }}
{{- end }}
{{- $labels := include "patchfleet.defaultsLabels" . | fromYaml }}
{{- range $path, $_ := .Files.Glob "files/defaults/*.yaml" }}
{{- range $document := regexSplit "(?m)^---[ \\t]*$" ($.Files.Get $path) -1 }}
{{- $object := fromYaml $document }}
{{- if hasKey $object "Error" }}
{{- fail (printf "%s: %s" $path (get $object "Error")) }}
{{- end }}
{{- if $object }}
{{- $metadata := $object.metadata }}
{{- $_ := set $metadata "labels" (merge (default dict $metadata.labels) $labels) }}
{{- $keep := true }}
{{- if eq $object.kind "Namespace" }}
{{- $keep = $d.createNamespace }}
{{- $_ := set $metadata "name" $d.namespace }}
{{- else }}
{{- $_ := set $metadata "namespace" $d.namespace }}
{{- end }}
{{- if and (eq $object.kind "PatchGroup") (not (kindIs "invalid" $d.accountSelector)) }}
{{- $_ := set $object.spec "accountSelector" $d.accountSelector }}
{{- end }}
{{- if $keep }}
---
# From {{ $.Chart.Name }}/{{ $path }}
{{ toYaml $object }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
