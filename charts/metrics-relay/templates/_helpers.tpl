{{- define "metrics-relay.name" -}}{{ .Chart.Name }}{{- end -}}

{{- define "metrics-relay.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "metrics-relay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "metrics-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "metrics-relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "metrics-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "metrics-relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "metrics-relay.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "metrics-relay.ingestName" -}}{{ include "metrics-relay.fullname" . }}-ingest{{- end -}}
{{- define "metrics-relay.tlsSecretName" -}}{{ include "metrics-relay.fullname" . }}-tls{{- end -}}
