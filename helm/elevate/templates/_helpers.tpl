{{/*
Names, labels and the pod template every role shares. A role's helpers take a dict:
(dict "root" $ "role" "ingest").
*/}}

{{- define "elevate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "elevate.fullname" -}}
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

{{/* A role's resource name: <fullname>-<role>, within the 63 characters of a DNS label. */}}
{{- define "elevate.roleName" -}}
{{- printf "%s-%s" (include "elevate.fullname" .root) .role | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "elevate.version" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "elevate.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "elevate.version" .) }}
{{- end }}

{{- define "elevate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "elevate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "elevate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "elevate.selectorLabels" . }}
app.kubernetes.io/version: {{ include "elevate.version" .root | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: elevate
{{- end }}

{{/* Where every role keeps its files (ELEVATE_HOME, and the working directory, where
Faust keeps table data): a volume, since the root filesystem is read-only. */}}
{{- define "elevate.home" -}}/var/lib/elevate{{- end }}

{{/* The metrics and health port every role serves: /metrics, /healthz, /readyz. */}}
{{- define "elevate.metricsPort" -}}{{ .Values.metrics.port | int }}{{- end }}

{{- define "elevate.secretName" -}}
{{- .Values.existingSecret | default (include "elevate.fullname" .) }}
{{- end }}

{{/* The Secret's keys: SECRET_KEY and the service URLs with their passwords. */}}
{{- define "elevate.secretData" -}}
{{- $pg := .Values.postgres -}}
{{- $ch := .Values.clickhouse -}}
{{- $pgAuth := $pg.user -}}
{{- if $pg.password }}{{ $pgAuth = printf "%s:%s" $pg.user (urlquery $pg.password) }}{{ end -}}
{{- $pgUrl := printf "postgresql://%s@%s:%v/%s" $pgAuth $pg.host $pg.port $pg.database -}}
{{- if $pg.sslmode }}{{ $pgUrl = printf "%s?sslmode=%s" $pgUrl $pg.sslmode }}{{ end -}}
{{- $chAuth := $ch.user -}}
{{- if $ch.password }}{{ $chAuth = printf "%s:%s" $ch.user (urlquery $ch.password) }}{{ end -}}
SECRET_KEY: {{ required "secretKey is required (32+ random characters), or set existingSecret" .Values.secretKey | b64enc | quote }}
DATABASE_URL: {{ $pgUrl | b64enc | quote }}
CLICKHOUSE_URL: {{ printf "%s://%s@%s:%v/%s" $ch.scheme $chAuth $ch.host $ch.port $ch.database | b64enc | quote }}
{{- with .Values.judge0AuthToken }}
JUDGE0_AUTH_TOKEN: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/* The ConfigMap's keys: the non-secret settings. Whole numbers print as integers
(YAML numbers arrive as float64, which would print 1048576 as 1.048576e+06). */}}
{{- define "elevate.configData" -}}
KAFKA_BOOTSTRAP_SERVERS: {{ .Values.kafka.bootstrapServers | quote }}
INGEST_HOST: "0.0.0.0"
INGEST_PORT: {{ .Values.roles.ingest.port | int64 | toString | quote }}
API_HOST: "0.0.0.0"
API_PORT: {{ .Values.roles.api.port | int64 | toString | quote }}
METRICS_HOST: "0.0.0.0"
METRICS_PORT: {{ include "elevate.metricsPort" . | quote }}
{{- range $name, $value := .Values.settings }}
{{- if kindIs "float64" $value }}
{{- if eq $value ($value | int64 | float64) }}{{ $value = $value | int64 }}{{ end }}
{{- end }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* The pod template of a role: (dict "root" $ "role" "streams"). */}}
{{- define "elevate.podTemplate" -}}
{{- $root := .root -}}
{{- $role := .role -}}
{{- $spec := index $root.Values.roles $role -}}
{{- $port := $spec.port | default 0 | int -}}
{{- $probePort := ternary "http" "metrics" (gt $port 0) -}}
metadata:
  labels:
    {{- include "elevate.labels" . | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "elevate.configData" $root | sha256sum }}
    {{- if not $root.Values.existingSecret }}
    checksum/secret: {{ include "elevate.secretData" $root | sha256sum }}
    {{- end }}
    {{- if $root.Values.metrics.annotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ include "elevate.metricsPort" $root | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $root.Values.serviceAccountName }}
  serviceAccountName: {{ . }}
  {{- end }}
  automountServiceAccountToken: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $spec.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "elevate.podSecurityContext" $root | nindent 4 }}
  containers:
    - name: {{ $role }}
      image: {{ include "elevate.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["run", {{ $role | quote }}]
      workingDir: {{ include "elevate.home" $root }}
      env:
        - name: ELEVATE_HOME
          value: {{ include "elevate.home" $root | quote }}
        {{- if eq $role "streams" }}
        # Static group membership: a restarted worker (same pod name) takes its
        # partitions back without a rebalance.
        - name: STREAMS_INSTANCE_ID
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "elevate.fullname" $root }}
        - secretRef:
            name: {{ include "elevate.secretName" $root }}
      ports:
        {{- if gt $port 0 }}
        - name: http
          containerPort: {{ $port }}
          protocol: TCP
        {{- end }}
        - name: metrics
          containerPort: {{ include "elevate.metricsPort" $root }}
          protocol: TCP
      startupProbe:
        httpGet: {path: /healthz, port: {{ $probePort }}}
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: {{ max 1 (div $spec.startupSeconds 5) }}
      livenessProbe:
        httpGet: {path: /healthz, port: {{ $probePort }}}
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 6
      readinessProbe:
        httpGet: {path: /readyz, port: {{ $probePort }}}
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 3
      resources:
        {{- toYaml $spec.resources | nindent 8 }}
      securityContext:
        {{- include "elevate.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: {{ ternary "data" "home" (eq $role "streams") }}
          mountPath: {{ include "elevate.home" $root }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- if ne $role "streams" }}
    - name: home
      emptyDir: {}
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "elevate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "elevate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}
