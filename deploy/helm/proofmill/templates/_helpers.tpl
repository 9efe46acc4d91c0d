{{/* Chart name. */}}
{{- define "proofmill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name (63 characters at most: a DNS label). */}}
{{- define "proofmill.fullname" -}}
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

{{- define "proofmill.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "proofmill.labels" -}}
helm.sh/chart: {{ include "proofmill.chart" . }}
{{ include "proofmill.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "proofmill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "proofmill.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "proofmill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "proofmill.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding PROOFMILL_DATABASE_URL, or "" when there is none (SQLite). */}}
{{- define "proofmill.databaseSecret" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.database.url }}
{{- printf "%s-database" (include "proofmill.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret holding S3 credentials, or "" (the pod's own identity). */}}
{{- define "proofmill.s3Secret" -}}
{{- if .Values.s3.existingSecret }}
{{- .Values.s3.existingSecret }}
{{- else if or .Values.s3.accessKeyId .Values.s3.secretAccessKey }}
{{- printf "%s-s3" (include "proofmill.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret holding tenants.toml, or "" when API keys come only from the database. */}}
{{- define "proofmill.tenantsSecret" -}}
{{- if .Values.existingTenantsSecret }}
{{- .Values.existingTenantsSecret }}
{{- else if .Values.tenants }}
{{- printf "%s-tenants" (include "proofmill.fullname" .) }}
{{- end }}
{{- end }}

{{/* Refuses values that render but cannot work. */}}
{{- define "proofmill.validate" -}}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if not (include "proofmill.databaseSecret" .) }}
{{- fail "replicaCount > 1 needs a shared PostgreSQL job store: set database.url or database.existingSecret" }}
{{- end }}
{{- if not .Values.config.artifactsUrl }}
{{- fail "replicaCount > 1 needs a shared proof bucket: set config.artifactsUrl (s3://bucket/prefix)" }}
{{- end }}
{{- end }}
{{- if and .Values.persistence.enabled (not .Values.persistence.existingClaim) (gt (int .Values.replicaCount) 1) (not (has "ReadWriteMany" .Values.persistence.accessModes)) }}
{{- fail "persistence: every replica mounts the same claim, so replicaCount > 1 needs persistence.accessModes [ReadWriteMany] (or persistence.enabled=false for an emptyDir per pod)" }}
{{- end }}
{{- if and (not .Values.gpu.enabled) (lt (int .Values.config.cpuWorkers) 1) }}
{{- fail "gpu.enabled=false needs config.cpuWorkers >= 1" }}
{{- end }}
{{- if and .Values.s3.existingSecret (or .Values.s3.accessKeyId .Values.s3.secretAccessKey) }}
{{- fail "set either s3.existingSecret or s3.accessKeyId/s3.secretAccessKey, not both" }}
{{- end }}
{{- if and (not .Values.s3.existingSecret) (ne (empty .Values.s3.accessKeyId) (empty .Values.s3.secretAccessKey)) }}
{{- fail "s3.accessKeyId and s3.secretAccessKey must be set together" }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.config.shutdownGraceSecs) }}
{{- fail "terminationGracePeriodSeconds must exceed config.shutdownGraceSecs" }}
{{- end }}
{{- range .Values.tenants }}
{{- if not (regexMatch "^[0-9a-fA-F]{64}$" (toString .keySha256)) }}
{{- fail (printf "tenants: %q needs keySha256, 64 hex digits (printf %%s \"$KEY\" | sha256sum)" (toString .name)) }}
{{- end }}
{{- end }}
{{- end }}
