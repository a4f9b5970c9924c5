{{- define "mig-labeler.fullname" -}}
{{- if contains "mig-labeler" .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{ else }}{{ printf "%s-mig-labeler" .Release.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "mig-labeler.serviceAccountName" -}}
{{ include "mig-labeler.fullname" . }}
{{- end }}

{{- define "mig-labeler.configMapName" -}}
{{- if .Values.config.name }}{{ .Values.config.name }}{{ else }}{{ include "mig-labeler.fullname" . }}-config{{ end }}
{{- end }}

{{/* Per-node configs (config-manager's way) when there is more than one to choose from: an
external ConfigMap (config.name), or more than one key in config.map. */}}
{{- define "mig-labeler.perNodeConfigs" -}}
{{- if or .Values.config.name (gt (len .Values.config.map) 1) }}true{{ end }}
{{- end }}

{{- define "mig-labeler.configKey" -}}
{{- if .Values.config.default }}{{ .Values.config.default }}{{ else if .Values.config.map }}{{ keys .Values.config.map | sortAlpha | first }}{{ else }}config.yaml{{ end }}
{{- end }}

{{/* Helm's own labels plus the one the kustomize manifests carry. */}}
{{- define "mig-labeler.labels" -}}
app.kubernetes.io/part-of: nvidia-gpu
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "mig-labeler.selectorLabels" -}}
app.kubernetes.io/name: mig-labeler
{{- end }}

{{/* sink=file writes a root-owned host directory: root in the container (as manifests/overlays/file),
everything else in the configured contexts kept, capabilities included. (set, not merge: merge
treats false and 0 as unset and would keep runAsNonRoot: true.) */}}
{{- define "mig-labeler.podSecurityContext" -}}
{{- if eq .Values.sink "file" }}
{{- $context := deepCopy .Values.podSecurityContext }}
{{- $_ := set $context "runAsNonRoot" false }}
{{- $_ = set $context "runAsUser" 0 }}
{{- toYaml $context }}
{{- else }}
{{- toYaml .Values.podSecurityContext }}
{{- end }}
{{- end }}

{{- define "mig-labeler.securityContext" -}}
{{- if eq .Values.sink "file" }}
{{- $context := deepCopy .Values.securityContext }}
{{- $_ := set $context "runAsNonRoot" false }}
{{- toYaml $context }}
{{- else }}
{{- toYaml .Values.securityContext }}
{{- end }}
{{- end }}
