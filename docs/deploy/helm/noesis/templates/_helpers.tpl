{{/* The release's base name, at most 50 characters so a tier suffix fits in 63. */}}
{{- define "noesis.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "noesis.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "noesis.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "noesis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "noesis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "noesis.natsSecret" -}}
{{- default (printf "%s-nats" (include "noesis.fullname" .)) .Values.nats.existingSecret -}}
{{- end -}}

{{- define "noesis.providerSecret" -}}
{{- default (printf "%s-provider" (include "noesis.fullname" .)) .Values.provider.existingSecret -}}
{{- end -}}
