{{/* The chart's name. */}}
{{- define "scimbridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, used for every object. */}}
{{- define "scimbridge.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "scimbridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "scimbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pod. */}}
{{- define "scimbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scimbridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "scimbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scimbridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: a digest wins over a tag. */}}
{{- define "scimbridge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding scimbridge.yaml. */}}
{{- define "scimbridge.configMapName" -}}
{{- default (include "scimbridge.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/* The config file: .Values.config with service.listen set to the container port. */}}
{{- define "scimbridge.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $svc := deepCopy (default (dict) (get $cfg "service")) }}
{{- $_ := set $svc "listen" (printf "0.0.0.0:%v" .Values.containerPort) }}
{{- $_ := set $cfg "service" $svc }}
{{- /* Helm merges values into the defaults: the default file source must not stay beside another type. */}}
{{- $src := deepCopy (default (dict) (get $cfg "source")) }}
{{- if and (ne (toString (get $src "type")) "file") (eq (dig "file" "path" "" $src) "/etc/scimbridge/directory.yaml") }}
{{- $_ := unset $src "file" }}
{{- $_ := set $cfg "source" $src }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Whether the state lives in PostgreSQL (stateDatabase) rather than SQLite on the volume. */}}
{{- define "scimbridge.sharedState" -}}
{{- if .Values.stateDatabase.existingSecret }}true{{ end }}
{{- end }}

{{/* Whether the state volume is a PVC (persistence, SQLite state). */}}
{{- define "scimbridge.pvc" -}}
{{- if and .Values.persistence.enabled (not (include "scimbridge.sharedState" .)) }}true{{ end }}
{{- end }}

{{/*
Render-time checks: a mistake that would only show as a crash loop (or two writers on one
SQLite file) fails `helm install` with what to set instead.
*/}}
{{- define "scimbridge.validate" -}}
{{- $replicas := int .Values.replicas }}
{{- if and (gt $replicas 1) (not .Values.stateDatabase.existingSecret) }}
{{- fail (printf "replicas: %d needs stateDatabase.existingSecret (a Secret holding a PostgreSQL URL, passed as state.url): the SQLite state on a volume has one writer; keep replicas: 1 without a database" $replicas) }}
{{- end }}
{{- if and (gt $replicas 1) (not (dig "target" "scim_url" "" .Values.config)) (not .Values.existingConfigMap) }}
{{- fail (printf "replicas: %d needs config.target.scim_url: the embedded Identity Center (no target) lives inside one pod" $replicas) }}
{{- end }}
{{- if and (not .Values.secrets.existingSecret) (not .Values.existingConfigMap) (contains .Values.secrets.mountPath (include "scimbridge.config" .)) }}
{{- fail (printf "config names files under secrets.mountPath (%s) but secrets.existingSecret is empty: create the Secret and set secrets.existingSecret, or the pod fails at start" .Values.secrets.mountPath) }}
{{- end }}
{{- end }}
