{{/* Names, labels and the facts several templates share. */}}

{{- define "callcenter-monitor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "callcenter-monitor.fullname" -}}
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

{{- define "callcenter-monitor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "callcenter-monitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "callcenter-monitor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "callcenter-monitor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: callcenter-monitor
{{- end }}

{{/*
The Prometheus job of the workers. The alert rules and the Grafana boards select
job="callcenter-monitor" (as deploy/prometheus/prometheus.yml names it), so the ServiceMonitor
takes the job from this Service label (jobLabel) instead of the Service's name.
*/}}
{{- define "callcenter-monitor.jobLabelKey" -}}
callcenter-monitor/job
{{- end }}
{{- define "callcenter-monitor.job" -}}
callcenter-monitor
{{- end }}

{{- define "callcenter-monitor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "callcenter-monitor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* rocksdb:// keeps state on disk: a StatefulSet with a volume per pod. */}}
{{- define "callcenter-monitor.stateful" -}}
{{- if eq .Values.worker.store "rocksdb://" }}true{{ else if eq .Values.worker.store "memory://" }}{{ else }}
{{- fail (printf "worker.store must be memory:// or rocksdb://, not %q" .Values.worker.store) }}
{{- end }}
{{- end }}

{{- define "callcenter-monitor.configMapName" -}}
{{- default (include "callcenter-monitor.fullname" .) .Values.config.existingConfigMap }}
{{- end }}

{{/* Where the mounted files live in the container. */}}
{{- define "callcenter-monitor.configDir" -}}/etc/callcenter-monitor{{- end }}
{{- define "callcenter-monitor.kafkaSecretsDir" -}}/var/run/secrets/callcenter-monitor/kafka{{- end }}

{{- define "callcenter-monitor.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
