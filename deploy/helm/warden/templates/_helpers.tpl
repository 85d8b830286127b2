{{/* Names: <release> when it already contains the chart's name, else <release>-warden. */}}
{{- define "warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warden.fullname" -}}
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

{{- define "warden.redisName" -}}
{{- printf "%s-redis" (include "warden.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "warden.keysSecretName" -}}
{{- default (printf "%s-keys" (include "warden.fullname" . | trunc 58 | trimSuffix "-")) .Values.keys.encryptionKey.existingSecret }}
{{- end }}

{{/* The Secret with the Redis password: the given one, or the chart's for its own Redis; empty for an external Redis without one. */}}
{{- define "warden.redisSecretName" -}}
{{- if .Values.redis.auth.existingSecret }}
{{- .Values.redis.auth.existingSecret }}
{{- else if .Values.redis.enabled }}
{{- include "warden.redisName" . }}
{{- end }}
{{- end }}

{{- define "warden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warden.labels" -}}
helm.sh/chart: {{ include "warden.chart" . }}
app.kubernetes.io/part-of: warden
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "server"). */}}
{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "warden.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Grace period: the value given, which must exceed preStop + drain + shutdown, or their sum plus 15 s. */}}
{{- define "warden.terminationGracePeriod" -}}
{{- $s := .Values.shutdown }}
{{- $sum := add $s.preStopSleepSeconds $s.drainDelaySeconds $s.timeoutSeconds }}
{{- if $s.terminationGracePeriodSeconds }}
{{- if le (int $s.terminationGracePeriodSeconds) (int $sum) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%d) must be more than preStopSleepSeconds + drainDelaySeconds + timeoutSeconds (%d), or the kubelet kills wardend mid-request" (int $s.terminationGracePeriodSeconds) (int $sum)) }}
{{- end }}
{{- int $s.terminationGracePeriodSeconds }}
{{- else }}
{{- add $sum 15 }}
{{- end }}
{{- end }}

{{/* wardend.yaml: what the values say, with .Values.config merged over it. */}}
{{- define "warden.config" -}}
{{- $v := .Values }}
{{- $server := dict
  "listen" ":8080"
  "public_url" (required "server.publicURL is required: the https URL users reach Warden at (https://sso.example.com)" $v.server.publicURL)
  "drain_delay" (printf "%ds" (int $v.shutdown.drainDelaySeconds))
  "shutdown_timeout" (printf "%ds" (int $v.shutdown.timeoutSeconds)) }}
{{- with $v.server.trustedProxies }}
{{- $_ := set $server "trusted_proxies" . }}
{{- end }}
{{- $metrics := dict }}
{{- if $v.metrics.enabled }}
{{- with $v.metrics.allow }}
{{- $_ := set $metrics "allow" . }}
{{- end }}
{{- if $v.metrics.bearerToken.existingSecret }}
{{- $_ := set $metrics "bearer_token_file" "/run/secrets/warden-metrics/token" }}
{{- end }}
{{- else }}
{{- $_ := set $metrics "allow" (list "none") }}
{{- end }}
{{- if $metrics }}
{{- $_ := set $server "metrics" $metrics }}
{{- end }}
{{- $_ := set $server "debug" (dict "pprof" $v.pprof.enabled) }}
{{- if not $v.directory.urls }}
{{- fail "directory.urls is required: the LDAP or AD servers (ldaps://ldap.example.com)" }}
{{- end }}
{{- $directory := dict
  "type" $v.directory.type
  "urls" $v.directory.urls
  "base_dn" (required "directory.baseDN is required (dc=example,dc=org)" $v.directory.baseDN)
  "bind_dn" (required "directory.bindDN is required: the service account that searches users and groups" $v.directory.bindDN)
  "bind_password_file" "/run/secrets/warden/bind_password" }}
{{- $_ := required "directory.bindPassword.existingSecret is required: kubectl create secret generic warden-ldap --from-literal=bind_password='...'" $v.directory.bindPassword.existingSecret }}
{{- $redis := dict }}
{{- if $v.redis.enabled }}
{{- $_ := set $redis "addrs" (list (printf "%s:6379" (include "warden.redisName" .))) }}
{{- else if $v.redis.external.addrs }}
{{- $_ := set $redis "addrs" $v.redis.external.addrs }}
{{- else }}
{{- fail "redis.external.addrs is required when redis.enabled is false" }}
{{- end }}
{{- if include "warden.redisSecretName" . }}
{{- $_ := set $redis "password_file" "/run/secrets/warden-redis/password" }}
{{- end }}
{{- $keys := dict "store" $v.keys.store }}
{{- if eq $v.keys.store "redis" }}
{{- $_ := set $keys "encryption_key_file" "/run/secrets/warden-keys/encryption_key" }}
{{- else }}
{{- $_ := required "keys.fileSecret is required with keys.store file: the Secret holding the ring made by wardend keys" $v.keys.fileSecret }}
{{- $_ := set $keys "dir" "/etc/warden/keys" }}
{{- end }}
{{- $cfg := dict
  "server" $server
  "directory" $directory
  "redis" $redis
  "keys" $keys
  "admin" (dict "groups" $v.admin.groups)
  "data_dir" "/var/lib/warden" }}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy $v.config) }}
{{- toYaml $cfg }}
{{- end }}
