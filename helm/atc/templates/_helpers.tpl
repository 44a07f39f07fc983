{{/* The release's name for its objects, at most 63 characters. */}}
{{- define "atc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "atc.selectorLabels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride | trunc 63 }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "atc.labels" -}}
{{ include "atc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "atc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "atc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The namespace step pods run in. */}}
{{- define "atc.stepsNamespace" -}}
{{- default .Release.Namespace .Values.kubernetes.namespace -}}
{{- end -}}

{{- define "atc.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "atc.externalUrl" -}}
{{- if .Values.web.externalUrl -}}
{{- .Values.web.externalUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) (first .Values.ingress.hosts) -}}
{{- end -}}
{{- end -}}

{{/* The kubernetes credential manager's namespace prefix. */}}
{{- define "atc.credsNamespacePrefix" -}}
{{- default "concourse-" .Values.creds.kubernetes.namespacePrefix -}}
{{- end -}}

{{/*
"atc.flag" (list NAME VALUE): an item of the atc container's args, the
flag NAME given VALUE, on a line of its own; nothing for an empty value.
*/}}
{{- define "atc.flag" -}}
{{- $value := index . 1 -}}
{{- if or (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) (and (kindIs "string" $value) $value) }}
{{ printf "- %s" (printf "--%s=%v" (index . 0) $value | quote) | indent 12 }}
{{- end -}}
{{- end -}}

{{/*
"atc.secretEnv" (list ENV SECRET KEY OPTIONAL): ENV from key KEY of Secret SECRET.
*/}}
{{- define "atc.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 | quote }}
      key: {{ index . 2 | quote }}
      optional: {{ index . 3 }}
{{- end -}}

{{/* Pairs of a map as KEY:VALUE,... (OTLP headers). */}}
{{- define "atc.colonPairs" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s:%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Whether the chart's own Secret has anything to hold. */}}
{{- define "atc.ownSecret" -}}
{{- $v := .Values -}}
{{- if or (and $v.postgres.password (not $v.postgres.existingSecret)) (and $v.auth.localUsers (not $v.auth.existingSecret)) (and $v.encryption.key (not $v.encryption.existingSecret)) (and $v.tracing.otlp.headers (not $v.tracing.otlp.existingSecret)) (and $v.metrics.otlp.headers (not $v.metrics.otlp.existingSecret)) -}}
true
{{- end -}}
{{- end -}}
