{{/* Names and labels. */}}
{{- define "nines.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nines.fullname" -}}
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

{{- define "nines.redisName" -}}
{{- printf "%s-redis" (include "nines.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nines.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- end -}}

{{/* The gateway's pods. `component` keeps them apart from the chart's Redis (its PDB, spread, ServiceMonitor). */}}
{{- define "nines.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nines.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "nines.labels" -}}
{{ include "nines.commonLabels" . }}
{{ include "nines.selectorLabels" . }}
{{- end -}}

{{- define "nines.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "nines.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- define "nines.redisLabels" -}}
{{ include "nines.commonLabels" . }}
{{ include "nines.redisSelectorLabels" . }}
{{- end -}}

{{- define "nines.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "nines.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "nines.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret the container's environment comes from: an existing one, the chart's, or none (empty). */}}
{{- define "nines.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else if .Values.secrets.values -}}
{{- include "nines.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Replicas as far as the chart can tell: the autoscaler's floor when it is on. */}}
{{- define "nines.minReplicas" -}}
{{- if .Values.autoscaling.enabled -}}
{{- int .Values.autoscaling.minReplicas -}}
{{- else -}}
{{- int .Values.replicaCount -}}
{{- end -}}
{{- end -}}

{{- define "nines.terminationGracePeriodSeconds" -}}
{{- add (int .Values.preStop.sleepSeconds) (int .Values.drainSeconds) (int .Values.terminationMarginSeconds) -}}
{{- end -}}

{{/* `[state] redis_url`: the chart's Redis, an existing one, or none (empty). */}}
{{- define "nines.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s.%s.svc:%d" (include "nines.redisName" .) .Release.Namespace (int .Values.redis.port) -}}
{{- else if .Values.redis.url -}}
{{- .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{/*
A TOML `key = value` line for each entry of a map of scalars. JSON's strings, numbers and booleans are TOML's too
(a string through toJson is a TOML basic string, escapes included).
*/}}
{{- define "nines.tomlPairs" -}}
{{- $table := .table -}}
{{- range $k, $v := .values }}
{{- if or (kindIs "map" $v) (kindIs "slice" $v) (kindIs "invalid" $v) }}
{{- fail (printf "%s.%s: only a string, a number or a boolean can be written into [%s]" $table $k $table) }}
{{- end }}
{{- if not (regexMatch "^[A-Za-z0-9_-]+$" $k) }}
{{- fail (printf "%s: %q is not a key nines knows" $table $k) }}
{{- end }}
{{ $k }} = {{ $v | toJson }}
{{- end }}
{{- end -}}

{{/* Refuse values that would render an invalid or surprising configuration, with a message saying what to do. */}}
{{- define "nines.check" -}}
{{- $config := .Values.config | default "" -}}
{{- if regexMatch "(?m)^[ \\t]*listen[ \\t]*=" $config -}}
{{- fail "config: do not set `listen`: the chart writes listen = \"0.0.0.0:<port>\" (set `port` instead)" -}}
{{- end -}}
{{- if regexMatch "(?m)^[ \\t]*\\[[ \\t]*\"?server\"?[ \\t]*\\]" $config -}}
{{- fail "config: do not write a [server] table: the chart writes it (drainSeconds, and `server` for its other keys)" -}}
{{- end -}}
{{- if regexMatch "(?m)^[ \\t]*\\[[ \\t]*\"?state\"?[ \\t]*\\]" $config -}}
{{- fail "config: do not write a [state] table: the chart writes it (`redis` for redis_url, and `state` for its other keys)" -}}
{{- end -}}
{{- if regexMatch "(?m)^[ \\t]*\"?(server|state)\"?[ \\t]*[.=]" $config -}}
{{- fail "config: do not set server.* or state.* keys: use the values `server`, `state`, `drainSeconds` and `redis`" -}}
{{- end -}}
{{- if hasKey .Values.server "drain" -}}
{{- fail "server.drain: set drainSeconds instead (it also sizes terminationGracePeriodSeconds)" -}}
{{- end -}}
{{- if hasKey .Values.state "redis_url" -}}
{{- fail "state.redis_url: set redis.url (an existing Redis) or redis.enabled (the chart's) instead" -}}
{{- end -}}
{{- if and .Values.redis.enabled .Values.redis.url -}}
{{- fail "redis: set either redis.enabled (the chart runs one) or redis.url (an existing one), not both" -}}
{{- end -}}
{{- if and .Values.secrets.existingSecret .Values.secrets.values -}}
{{- fail "secrets: set either secrets.existingSecret or secrets.values, not both" -}}
{{- end -}}
{{- if lt (int .Values.drainSeconds) 1 -}}
{{- fail "drainSeconds must be at least 1" -}}
{{- end -}}
{{- if lt (int .Values.preStop.sleepSeconds) 0 -}}
{{- fail "preStop.sleepSeconds must be 0 or more" -}}
{{- end -}}
{{- end -}}

{{/* The whole nines.toml: the chart's `listen`, the user's config, then the chart's [server] and [state]. */}}
{{- define "nines.config" -}}
{{- include "nines.check" . -}}
# Rendered by the nines Helm chart: `listen`, [server] and [state] are the chart's; the rest is the value `config`.
listen = {{ printf "0.0.0.0:%d" (int .Values.port) | toJson }}

{{ .Values.config | default "" | trim }}

# ── Written by the chart ──
[server]
drain = {{ printf "%ds" (int .Values.drainSeconds) | toJson }}
{{- include "nines.tomlPairs" (dict "table" "server" "values" .Values.server) }}
{{- $url := include "nines.redisUrl" . }}
{{- if or $url .Values.state }}

[state]
{{- if $url }}
redis_url = {{ $url | toJson }}
{{- end }}
{{- include "nines.tomlPairs" (dict "table" "state" "values" .Values.state) }}
{{- end }}
{{ end -}}
