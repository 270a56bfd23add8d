{{/*
Named templates of the credsync chart.

The ones marked PUBLIC are a contract: other charts include them to add the
sidecar to their own pods (docs/install.md, "Adding credsync to your own
chart"). Each takes the credsync chart's root context: `.` inside this chart,
`.Subcharts.credsync` in a parent chart that depends on it.
*/}}

{{/* The chart name. */}}
{{- define "credsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: <release>-<chart name>, or the release name when it already
contains the chart name; at most 63 characters (a DNS label).
*/}}
{{- define "credsync.fullname" -}}
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

{{/* chart-name-version for the helm.sh/chart label. */}}
{{- define "credsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "credsync.labels" -}}
helm.sh/chart: {{ include "credsync.chart" . }}
{{ include "credsync.selectorLabels" . }}
app.kubernetes.io/version: {{ include "credsync.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: credsync
{{- end }}

{{/*
The app.kubernetes.io/version label: the image tag (default the appVersion),
never image.digest, made a valid label value whatever the tag: anything from
an "@" on is dropped (a digest that slipped into the tag), a character a label
value cannot hold becomes "_", and the value is cut to 63 characters and
trimmed to begin and end with a letter or digit.
*/}}
{{- define "credsync.versionLabel" -}}
{{- $v := .Values.image.tag | default .Chart.AppVersion | toString }}
{{- $v = regexReplaceAll "@.*$" $v "" }}
{{- $v = regexReplaceAll "[^A-Za-z0-9._-]" $v "_" }}
{{- $v | trunc 63 | trimAll "-._" }}
{{- end }}

{{/* Labels that select the Deployment's pods; never change them on upgrade. */}}
{{- define "credsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* PUBLIC: the ServiceAccount the pod runs as (its RAM role trusts it). */}}
{{- define "credsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "credsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
"true" when the release carries the sidecar's own objects (its config
ConfigMap, ServiceAccount and test pod). Always, unless the release is only
the injector: injector.enabled with deployment.enabled false and no
config.profiles. Then nothing uses them (injected pods take their config from
their annotations) and config.profiles need not be set. A parent chart that
includes the named templates gives config.profiles, which brings them back.
*/}}
{{- define "credsync.sidecarRendered" -}}
{{- if or (not .Values.injector.enabled) .Values.deployment.enabled .Values.config.profiles }}true{{ end }}
{{- end }}

{{/*
localApi.port checked against the other ports of the pod's network
namespace, and localApi.refetchWithin (whole seconds, 10s to 600s, as the
sidecar and the injector take it) as "<seconds>s". Shared by the sidecar's
config and the injector's flags, so a bad value fails the render rather
than a pod or the injector.
*/}}
{{- define "credsync.localApiRefetchWithin" -}}
{{- $text := toString .Values.localApi.refetchWithin }}
{{- $seconds := 0 }}
{{- range regexFindAll "[0-9]+[sm]" $text -1 }}
{{- $seconds = add $seconds (mul (trimSuffix "s" (trimSuffix "m" .) | int) (ternary 60 1 (hasSuffix "m" .))) }}
{{- end }}
{{- if or (not (regexMatch "^([0-9]+[sm])+$" $text)) (lt (int $seconds) 10) (gt (int $seconds) 600) }}
{{- fail (printf "localApi.refetchWithin: must be whole seconds from 10s to 600s, such as 60s or 2m, not %q" $text) }}
{{- end }}
{{- $port := int .Values.localApi.port }}
{{- if eq $port (int .Values.config.control.httpPort) }}
{{- fail "localApi.port: must differ from config.control.httpPort (the probe port listens on 0.0.0.0, which takes 127.0.0.1 too)" }}
{{- end }}
{{- if and .Values.config.control.tcp.enabled (eq $port (int .Values.config.control.tcp.port)) }}
{{- fail "localApi.port: must differ from config.control.tcp.port" }}
{{- end }}
{{- printf "%ds" (int $seconds) }}
{{- end }}

{{/* The Secret holding the local API's path secret, and its key. */}}
{{- define "credsync.localApiSecretName" -}}
{{- .Values.localApi.pathSecret.existingSecret | default (printf "%s-local-api" (include "credsync.fullname" .)) }}
{{- end }}

{{/* The ConfigMap holding config.yaml (and ca.pem, kms-instance-<i>-ca.pem). */}}
{{- define "credsync.configMapName" -}}
{{- include "credsync.fullname" . }}
{{- end }}

{{/*
The credsync image reference: repository:tag, and with image.digest
repository:tag@digest (the runtime pulls by the digest; the tag stays for
people reading the pod spec).
*/}}
{{- define "credsync.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Fixed paths inside the pod. They are not values: the config file, the probes
and the app's environment all follow from them, and docs/integration.md
promises them to applications.
*/}}
{{- define "credsync.configDir" -}}/etc/credsync{{- end }}
{{- define "credsync.outputDir" -}}/var/run/credsync{{- end }}
{{- define "credsync.tokenDir" -}}/var/run/secrets/credsync/rrsa{{- end }}
{{/*
The client keys of config.kms.instances: instance i's Secret keys appear as
<kmsInstancesDir>/<i>/clientKey.json, password.txt and ca.pem. Beside the
RRSA token rather than under configDir, so no mount is nested in the
read-only ConfigMap volume.
*/}}
{{- define "credsync.kmsInstancesDir" -}}/var/run/secrets/credsync/kms-instances{{- end }}

{{/* "true" when config.kms names only instances: the sidecar then uses no RAM identity. */}}
{{- define "credsync.kmsInstancesOnly" -}}
{{- $k := .Values.config.kms }}
{{- if and $k.instances (not $k.region) (not $k.endpoints) }}true{{ end }}
{{- end }}

{{/*
The Secret of config.kms.instances[i], with its defaults, for (list i
INSTANCE), as JSON: name, clientKeyKey, passwordKey, caKey (maybe empty).
Fails with one line when the name is missing.
*/}}
{{- define "credsync.kmsInstanceSecret" -}}
{{- $i := index . 0 }}
{{- $s := (index . 1).clientKeySecret | default dict }}
{{- $name := required (printf "config.kms.instances[%d].clientKeySecret.name is required (the Secret with the client key and its password)" $i) $s.name }}
{{- dict "name" $name "clientKeyKey" ($s.clientKeyKey | default "clientKey.json") "passwordKey" ($s.passwordKey | default "password.txt") "caKey" ($s.caKey | default "") | toJson }}
{{- end }}

{{/*
credsync.put: sets (list DICT KEY VALUE) when VALUE is neither null nor "".
Zero and false are values and are kept.
*/}}
{{- define "credsync.put" -}}
{{- $dict := index . 0 }}
{{- $value := index . 2 }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
{{- $_ := set $dict (index . 1) $value }}
{{- end }}
{{- end }}

{{/*
The sidecar's config.yaml, in its own snake_case keys (docs/configuration.md).
Values left empty are not written, so the sidecar's defaults and the
environment (e.g. what ACK's webhook injects) still apply.
*/}}
{{- define "credsync.configYaml" -}}
{{- $c := .Values.config }}
{{- if not $c.profiles }}
{{- fail "config.profiles: list at least one profile, e.g. [{name: default, secretName: acs/ram/user/my-app}]" }}
{{- end }}
{{- if not (or $c.kms.region $c.kms.endpoints $c.kms.instances) }}
{{- fail "config.kms: set config.kms.region, config.kms.endpoints or config.kms.instances" }}
{{- end }}
{{- $identity := dict }}
{{- if eq (default "oidc" $c.identity.type) "ecs_ram_role" }}
{{- if .Values.rrsa.projectToken }}
{{- fail "config.identity.type ecs_ram_role uses the node's RAM role: set rrsa.projectToken=false" }}
{{- end }}
{{- $_ := set $identity "type" "ecs_ram_role" }}
{{- $_ := include "credsync.put" (list $identity "role_name" $c.identity.roleName) }}
{{- $_ := include "credsync.put" (list $identity "metadata_endpoint" $c.identity.metadataEndpoint) }}
{{- $_ := include "credsync.put" (list $identity "imdsv1_fallback" $c.identity.imdsv1Fallback) }}
{{- $_ := include "credsync.put" (list $identity "metadata_token_ttl" $c.identity.metadataTokenTtl) }}
{{- end }}
{{- $_ := include "credsync.put" (list $identity "session_duration" $c.identity.sessionDuration) }}
{{- $_ := include "credsync.put" (list $identity "policy" $c.identity.policy) }}
{{- $_ := include "credsync.put" (list $identity "sts_endpoint" $c.sts.endpoint) }}
{{- $_ := include "credsync.put" (list $identity "sts_region" $c.sts.region) }}
{{- $_ := include "credsync.put" (list $identity "vpc_endpoint" $c.sts.vpcEndpoint) }}
{{- $kms := dict }}
{{- $_ := include "credsync.put" (list $kms "region" $c.kms.region) }}
{{- if $c.kms.endpoints }}
{{- $_ := set $kms "endpoints" $c.kms.endpoints }}
{{- end }}
{{- $_ := include "credsync.put" (list $kms "vpc_endpoint" $c.kms.vpcEndpoint) }}
{{- $_ := include "credsync.put" (list $kms "signature" $c.kms.signature) }}
{{- if not (kindIs "invalid" $c.kms.circuitFailureThreshold) }}
{{- $_ := set $kms "circuit_failure_threshold" (int $c.kms.circuitFailureThreshold) }}
{{- end }}
{{- $_ := include "credsync.put" (list $kms "circuit_open_for" $c.kms.circuitOpenFor) }}
{{- $_ := include "credsync.put" (list $kms "circuit_max_open_for" $c.kms.circuitMaxOpenFor) }}
{{- $instances := list }}
{{- $seen := dict }}
{{- range $i, $in := $c.kms.instances }}
{{- $where := printf "config.kms.instances[%d]" $i }}
{{- $endpoint := required (printf "%s.endpoint is required (<instance id>.cryptoservice.kms.aliyuncs.com)" $where) $in.endpoint }}
{{- $key := $endpoint | lower | trimPrefix "https://" | trimSuffix "/" }}
{{- if hasKey $seen $key }}
{{- fail (printf "%s.endpoint: same endpoint as config.kms.instances[%d]" $where (index $seen $key)) }}
{{- end }}
{{- $_ := set $seen $key $i }}
{{- $secret := include "credsync.kmsInstanceSecret" (list $i $in) | fromJson }}
{{- if and $secret.caKey $in.caBundle }}
{{- fail (printf "%s: set clientKeySecret.caKey or caBundle, not both" $where) }}
{{- end }}
{{- $dir := printf "%s/%d" (include "credsync.kmsInstancesDir" $) $i }}
{{- $entry := dict "endpoint" $endpoint "region_id" (required (printf "%s.regionId is required (e.g. cn-hangzhou)" $where) $in.regionId) "client_key_file" (printf "%s/clientKey.json" $dir) "password_file" (printf "%s/password.txt" $dir) }}
{{- if $secret.caKey }}
{{- $_ := set $entry "ca_file" (printf "%s/ca.pem" $dir) }}
{{- else if $in.caBundle }}
{{- $_ := set $entry "ca_file" (printf "%s/kms-instance-%d-ca.pem" (include "credsync.configDir" $) $i) }}
{{- end }}
{{- $_ := include "credsync.put" (list $entry "insecure_skip_verify" $in.insecureSkipVerify) }}
{{- $instances = append $instances $entry }}
{{- end }}
{{- if $instances }}
{{- $_ := set $kms "instances" $instances }}
{{- end }}
{{- $http := dict }}
{{- $_ := include "credsync.put" (list $http "connect_timeout" $c.http.connectTimeout) }}
{{- $_ := include "credsync.put" (list $http "request_timeout" $c.http.requestTimeout) }}
{{- $profiles := list }}
{{- range $i, $p := $c.profiles }}
{{- $entry := dict "name" (required (printf "config.profiles[%d].name is required" $i) $p.name) "secret_name" (required (printf "config.profiles[%d].secretName is required" $i) $p.secretName) }}
{{- $_ := include "credsync.put" (list $entry "version_stage" $p.versionStage) }}
{{- $_ := include "credsync.put" (list $entry "default" $p.default) }}
{{- $_ := include "credsync.put" (list $entry "required" $p.required) }}
{{- $_ := include "credsync.put" (list $entry "kind" $p.kind) }}
{{- $_ := include "credsync.put" (list $entry "format" $p.format) }}
{{- $_ := include "credsync.put" (list $entry "file" $p.file) }}
{{- $_ := include "credsync.put" (list $entry "file_prefix" $p.filePrefix) }}
{{- $profiles = append $profiles $entry }}
{{- end }}
{{- $hooks := list }}
{{- range $i, $h := $c.hooks }}
{{- $entry := dict }}
{{- $_ := include "credsync.put" (list $entry "name" $h.name) }}
{{- with $h.signal }}
{{- $signal := dict }}
{{- $_ := include "credsync.put" (list $signal "signal" .signal) }}
{{- $_ := include "credsync.put" (list $signal "process" .process) }}
{{- $_ := include "credsync.put" (list $signal "pid_file" .pidFile) }}
{{- $_ := set $entry "signal" $signal }}
{{- end }}
{{- with $h.command }}
{{- $_ := set $entry "command" . }}
{{- end }}
{{- $_ := include "credsync.put" (list $entry "timeout" $h.timeout) }}
{{- with $h.profiles }}
{{- $_ := set $entry "profiles" . }}
{{- end }}
{{- $hooks = append $hooks $entry }}
{{- end }}
{{- $output := dict "directory" (include "credsync.outputDir" .) "file_mode" (toString $c.output.fileMode) "group" (int .Values.podSecurityContext.fsGroup) }}
{{- $refresh := dict }}
{{- $r := $c.refresh }}
{{- $_ := include "credsync.put" (list $refresh "interval" $r.interval) }}
{{- $_ := include "credsync.put" (list $refresh "jitter" $r.jitter) }}
{{- $_ := include "credsync.put" (list $refresh "rotation_delay" $r.rotationDelay) }}
{{- $_ := include "credsync.put" (list $refresh "rotation_jitter" $r.rotationJitter) }}
{{- $_ := include "credsync.put" (list $refresh "startup_jitter" $r.startupJitter) }}
{{- $_ := include "credsync.put" (list $refresh "retry_initial_backoff" $r.retryInitialBackoff) }}
{{- $_ := include "credsync.put" (list $refresh "retry_max_backoff" $r.retryMaxBackoff) }}
{{- $_ := include "credsync.put" (list $refresh "throttled_max_backoff" $r.throttledMaxBackoff) }}
{{- if not (kindIs "invalid" $r.onDemandBurst) }}
{{- $_ := set $refresh "on_demand_burst" (int $r.onDemandBurst) }}
{{- end }}
{{- $_ := include "credsync.put" (list $refresh "on_demand_refill" $r.onDemandRefill) }}
{{- $control := dict "socket" (printf "%s/credsync.sock" (include "credsync.outputDir" .)) "http_address" (printf "0.0.0.0:%d" (int $c.control.httpPort)) }}
{{- $_ := include "credsync.put" (list $control "refresh_timeout" $c.control.refreshTimeout) }}
{{- if $c.control.tcp.enabled }}
{{- $host := $c.control.tcp.bindAddress }}
{{- if contains ":" $host }}
{{- $host = printf "[%s]" $host }}
{{- end }}
{{- $_ := set $control "tcp_address" (printf "%s:%d" $host (int $c.control.tcp.port)) }}
{{- end }}
{{- $config := dict "kms" $kms "profiles" $profiles "output" $output "refresh" $refresh "control" $control "log" (dict "level" $c.logLevel) }}
{{- if .Values.localApi.enabled }}
{{- $_ := set $config "local_api" (dict "listen" (printf "127.0.0.1:%d" (int .Values.localApi.port)) "path_secret_env" "CREDSYNC_LOCAL_API_PATH_SECRET" "refetch_within" (include "credsync.localApiRefetchWithin" .)) }}
{{- end }}
{{- if $identity }}
{{- $_ := set $config "identity" $identity }}
{{- end }}
{{- if $http }}
{{- $_ := set $config "http" $http }}
{{- end }}
{{- if $hooks }}
{{- $_ := set $config "hooks" $hooks }}
{{- end }}
{{- if $c.tls.caBundle }}
{{- $_ := set $config "tls" (dict "ca_file" (printf "%s/ca.pem" (include "credsync.configDir" .))) }}
{{- end -}}
# credsync config, rendered by the credsync Helm chart from values config.*.
# Keys: docs/configuration.md. Check a copy with: credsync validate --config FILE
{{ toYaml $config }}
{{- end }}

{{/* The locked-down securityContext of every credsync container. */}}
{{- define "credsync.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int (.Values.sidecar.runAsUser | default 65532) }}
runAsGroup: {{ int (.Values.sidecar.runAsGroup | default 65532) }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
PUBLIC: the pod securityContext. Given the credsync chart's root context: what
credsync needs of the pod, the fsGroup that owns credentials.ini
(output.group) and, when set, podSecurityContext.fsGroupChangePolicy. Given
(dict "root" $credsync "pod" $yours): your pod securityContext with those
added and everything of yours kept, runAsUser 0 included: non-root, seccomp
and the rest are set on credsync's own containers, so an app that runs as
root keeps doing so. An fsGroup of yours other than credsync's fails the
render (credentials.ini would not be readable by your pod's group).
*/}}
{{- define "credsync.podSecurityContext" -}}
{{- $root := . }}
{{- $pod := dict }}
{{- if hasKey . "root" }}
{{- $root = .root }}
{{- $pod = deepCopy (.pod | default dict) }}
{{- end }}
{{- $fsGroup := int $root.Values.podSecurityContext.fsGroup }}
{{- if and (hasKey $pod "fsGroup") (ne (int $pod.fsGroup) $fsGroup) }}
{{- fail (printf "the pod's fsGroup %d is not credsync's podSecurityContext.fsGroup %d: set credsync's podSecurityContext.fsGroup to %d (credentials.ini is readable by that group)" (int $pod.fsGroup) $fsGroup (int $pod.fsGroup)) }}
{{- end }}
{{- $_ := set $pod "fsGroup" $fsGroup }}
{{- with $root.Values.podSecurityContext.fsGroupChangePolicy }}
{{- if not (hasKey $pod "fsGroupChangePolicy") }}
{{- $_ := set $pod "fsGroupChangePolicy" . }}
{{- end }}
{{- end }}
{{- toYaml $pod }}
{{- end }}

{{/*
PUBLIC: the pod-spec keys credsync needs, in one include: serviceAccountName
(the ServiceAccount the RAM role trusts: the chart's, or your app's own with
serviceAccount.create=false and serviceAccount.name) and securityContext
(credsync.podSecurityContext; pass (dict "root" $credsync "pod" $yours) to
keep your pod securityContext).
*/}}
{{- define "credsync.podSettings" -}}
{{- $root := . }}
{{- if hasKey . "root" }}{{ $root = .root }}{{ end }}
serviceAccountName: {{ include "credsync.serviceAccountName" $root }}
securityContext:
  {{- include "credsync.podSecurityContext" . | nindent 2 }}
{{- end }}

{{/*
The environment of the credsync containers. With rrsa.projectToken the RRSA
variables are set here, in the credsync containers only; otherwise ACK's
webhook injects them.
*/}}
{{- define "credsync.containerEnv" -}}
env:
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  {{- if .Values.rrsa.projectToken }}
  {{- $hint := "" }}
  {{- if include "credsync.kmsInstancesOnly" . }}
  {{- $hint = "; with only config.kms.instances credsync uses no RAM identity: set rrsa.projectToken=false" }}
  {{- end }}
  - name: ALIBABA_CLOUD_ROLE_ARN
    value: {{ required (printf "rrsa.roleArn is required when rrsa.projectToken is true (acs:ram::<account id>:role/<name>)%s" $hint) .Values.rrsa.roleArn | quote }}
  - name: ALIBABA_CLOUD_OIDC_PROVIDER_ARN
    value: {{ required "rrsa.oidcProviderArn is required when rrsa.projectToken is true (acs:ram::<account id>:oidc-provider/ack-rrsa-<cluster id>)" .Values.rrsa.oidcProviderArn | quote }}
  - name: ALIBABA_CLOUD_OIDC_TOKEN_FILE
    value: {{ printf "%s/token" (include "credsync.tokenDir" .) | quote }}
  {{- end }}
  {{- if .Values.localApi.enabled }}
  # local_api.path_secret_env: the path secret of ALIBABA_CLOUD_CREDENTIALS_URI.
  - name: CREDSYNC_LOCAL_API_PATH_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ include "credsync.localApiSecretName" . }}
        key: {{ .Values.localApi.pathSecret.key }}
  {{- end }}
  {{- with .Values.sidecar.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
The mounts of the credsync containers; the RRSA token and the KMS instances'
client keys are mounted here only, never in an app container.
*/}}
{{- define "credsync.containerVolumeMounts" -}}
volumeMounts:
  - name: credsync-config
    mountPath: {{ include "credsync.configDir" . }}
    readOnly: true
  - name: credsync
    mountPath: {{ include "credsync.outputDir" . }}
  {{- if .Values.rrsa.projectToken }}
  - name: credsync-rrsa-token
    mountPath: {{ include "credsync.tokenDir" . }}
    readOnly: true
  {{- end }}
  {{- if .Values.config.kms.instances }}
  - name: credsync-kms-instances
    mountPath: {{ include "credsync.kmsInstancesDir" . }}
    readOnly: true
  {{- end }}
{{- end }}

{{/*
"true" when the cluster runs native sidecars (init containers with
restartPolicy: Always), on by default from Kubernetes 1.29. The version is
.Capabilities.KubeVersion: the cluster's with helm install/upgrade, helm's
built-in default with helm template unless --kube-version is given.
"-0" admits the pre-release forms providers use (v1.30.1-aliyun.1).
*/}}
{{- define "credsync.nativeSidecarsAvailable" -}}
{{- if semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}

{{/*
PUBLIC: the sidecar mode in effect, native or classic. sidecar.mode auto is
native on Kubernetes 1.29 or later and classic below; native on an older
cluster fails the render with one line, since there the kubelet would treat
credsync as an ordinary init container that never exits and the pod would
never start.
*/}}
{{- define "credsync.sidecarMode" -}}
{{- $mode := .Values.sidecar.mode | default "auto" }}
{{- $native := include "credsync.nativeSidecarsAvailable" . }}
{{- if eq $mode "auto" }}
{{- ternary "native" "classic" (eq $native "true") }}
{{- else if eq $mode "native" }}
{{- if not $native }}
{{- fail (printf "sidecar.mode=native needs native sidecars, on by default from Kubernetes 1.29, and the cluster is %s: set sidecar.mode=auto or classic" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- print "native" }}
{{- else if eq $mode "classic" }}
{{- print "classic" }}
{{- else }}
{{- fail (printf "sidecar.mode=%s: use auto, native or classic" $mode) }}
{{- end }}
{{- end }}

{{/*
The names of the credsync containers. They are not values: the webhook
annotation (credsync.podAnnotations), the docs and the tests name them.
*/}}
{{- define "credsync.sidecarContainerName" -}}credsync{{- end }}
{{- define "credsync.syncOnceContainerName" -}}credsync-init{{- end }}

{{/*
The credsync containers of a pod in MODE (native|classic), comma-separated:
native, the sidecar; classic, credsync-init and the sidecar.
*/}}
{{- define "credsync.containerNames" -}}
{{- if eq . "classic" }}
{{- printf "%s,%s" (include "credsync.syncOnceContainerName" .) (include "credsync.sidecarContainerName" .) }}
{{- else }}
{{- include "credsync.sidecarContainerName" . }}
{{- end }}
{{- end }}

{{/*
ACK's ack-pod-identity-webhook, used when rrsa.projectToken is false, injects
the RRSA token and variables into every container of the pod unless the pod
annotation pod-identity.alibabacloud.com/only-containers names some. Every
official SDK's default credential chain tries OIDC before the credentials
file, so an app container given them would act as credsync's KMS-reader role
instead of the managed AccessKey. Rendered for (dict "root" ROOT "mode" MODE)
as "KEY: VALUE" lines, or nothing with rrsa.projectToken.
*/}}
{{- define "credsync.webhookAnnotations" -}}
{{- if not .root.Values.rrsa.projectToken }}
{{- printf "pod-identity.alibabacloud.com/only-containers: %s" (include "credsync.containerNames" .mode | quote) }}
{{- end }}
{{- end }}

{{/*
The credsync container, as a list item. Takes (dict "root" ROOT "mode"
native|classic): native adds restartPolicy: Always (an init container that
keeps running, Kubernetes 1.29+).
*/}}
{{- define "credsync.container" -}}
{{- $root := .root }}
{{- $v := $root.Values -}}
- name: {{ include "credsync.sidecarContainerName" $root }}
  image: {{ include "credsync.image" $root | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if eq .mode "native" }}
  restartPolicy: Always
  {{- end }}
  command: ["/usr/local/bin/credsync"]
  args: ["run", "--config", "{{ include "credsync.configDir" $root }}/config.yaml"]
  {{- include "credsync.containerEnv" $root | nindent 2 }}
  ports:
    - name: probes
      containerPort: {{ int $v.config.control.httpPort }}
      protocol: TCP
    {{- if $v.config.control.tcp.enabled }}
    - name: grpc
      containerPort: {{ int $v.config.control.tcp.port }}
      protocol: TCP
    {{- end }}
  # With a native sidecar the kubelet starts the app containers only after
  # this probe succeeds, that is once every required profile is written.
  startupProbe:
    httpGet:
      path: /readyz
      port: probes
    periodSeconds: {{ int $v.sidecar.startupProbe.periodSeconds }}
    timeoutSeconds: {{ int $v.sidecar.startupProbe.timeoutSeconds }}
    failureThreshold: {{ int $v.sidecar.startupProbe.failureThreshold }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: probes
    periodSeconds: {{ int $v.sidecar.livenessProbe.periodSeconds }}
    timeoutSeconds: {{ int $v.sidecar.livenessProbe.timeoutSeconds }}
    failureThreshold: {{ int $v.sidecar.livenessProbe.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: probes
    periodSeconds: {{ int $v.sidecar.readinessProbe.periodSeconds }}
    timeoutSeconds: {{ int $v.sidecar.readinessProbe.timeoutSeconds }}
    failureThreshold: {{ int $v.sidecar.readinessProbe.failureThreshold }}
  {{- with $v.sidecar.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "credsync.containerSecurityContext" $root | nindent 4 }}
  {{- include "credsync.containerVolumeMounts" $root | nindent 2 }}
{{- end }}

{{/*
PUBLIC: the credsync container as a list item, placed as the mode in effect
(credsync.sidecarMode) says: native, under initContainers (it carries
restartPolicy: Always); classic, under containers (and
credsync.syncOnceContainer under initContainers). Prefer
credsync.initContainers and credsync.containers, which place it for you.
*/}}
{{- define "credsync.sidecarContainer" -}}
{{- include "credsync.container" (dict "root" . "mode" (include "credsync.sidecarMode" .)) }}
{{- end }}

{{/*
PUBLIC: classic mode's init container `credsync-init`: `credsync sync --once`
fetches every profile, writes credentials.ini and exits, so the file exists
before the app containers start.
*/}}
{{- define "credsync.syncOnceContainer" -}}
- name: {{ include "credsync.syncOnceContainerName" . }}
  image: {{ include "credsync.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/usr/local/bin/credsync"]
  args: ["sync", "--once", "--config", "{{ include "credsync.configDir" . }}/config.yaml", "--timeout", {{ .Values.sidecar.syncOnceTimeout | quote }}]
  {{- include "credsync.containerEnv" . | nindent 2 }}
  {{- with .Values.sidecar.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "credsync.containerSecurityContext" . | nindent 4 }}
  {{- include "credsync.containerVolumeMounts" . | nindent 2 }}
{{- end }}

{{/*
PUBLIC: the init containers credsync needs in the mode in effect
(credsync.sidecarMode): native, the sidecar itself; classic, credsync-init.
Put them before your own init containers, so those can use the credentials
too (native mode).
*/}}
{{- define "credsync.initContainers" -}}
{{- if eq (include "credsync.sidecarMode" .) "native" }}
{{- include "credsync.sidecarContainer" . }}
{{- else }}
{{- include "credsync.syncOnceContainer" . }}
{{- end }}
{{- end }}

{{/*
PUBLIC: the regular containers credsync needs in the mode in effect: none
(native) or the sidecar (classic).
*/}}
{{- define "credsync.containers" -}}
{{- if eq (include "credsync.sidecarMode" .) "classic" }}
{{- include "credsync.sidecarContainer" . }}
{{- end }}
{{- end }}

{{/*
PUBLIC: the pod volumes credsync needs, as list items: the shared in-memory
volume `credsync`, the ConfigMap `credsync-config`, with rrsa.projectToken
the projected RRSA token `credsync-rrsa-token` and, with config.kms.instances,
`credsync-kms-instances`: each instance's Secret projected into <i>/.
*/}}
{{- define "credsync.volumes" -}}
- name: credsync
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.sharedVolume.sizeLimit | quote }}
- name: credsync-config
  configMap:
    name: {{ include "credsync.configMapName" . }}
{{- if .Values.rrsa.projectToken }}
- name: credsync-rrsa-token
  projected:
    sources:
      - serviceAccountToken:
          audience: sts.aliyuncs.com
          expirationSeconds: {{ int .Values.rrsa.tokenExpirationSeconds }}
          path: token
{{- end }}
{{- with .Values.config.kms.instances }}
- name: credsync-kms-instances
  projected:
    # 0440: owner root, group the pod's fsGroup, which the non-root credsync
    # user has as a supplementary group.
    defaultMode: 288
    sources:
      {{- range $i, $in := . }}
      {{- $secret := include "credsync.kmsInstanceSecret" (list $i $in) | fromJson }}
      - secret:
          name: {{ $secret.name | quote }}
          items:
            - key: {{ $secret.clientKeyKey | quote }}
              path: {{ printf "%d/clientKey.json" $i }}
            - key: {{ $secret.passwordKey | quote }}
              path: {{ printf "%d/password.txt" $i }}
            {{- with $secret.caKey }}
            - key: {{ . | quote }}
              path: {{ printf "%d/ca.pem" $i }}
            {{- end }}
      {{- end }}
{{- end }}
{{- end }}

{{/*
PUBLIC: what an app container adds to its env to read the file through its
SDK. Nothing when every profile is kind generic: no credentials.ini is
written then, and an SDK pointed at a missing file fails its chain.
*/}}
{{- define "credsync.appEnv" -}}
{{- $ram := false }}
{{- range .Values.config.profiles }}
{{- if ne (.kind | default "ram_credentials") "generic" }}{{ $ram = true }}{{ end }}
{{- end }}
{{- if $ram -}}
- name: ALIBABA_CLOUD_CREDENTIALS_FILE
  value: {{ printf "%s/credentials.ini" (include "credsync.outputDir" .) }}
{{- end }}
{{- end }}

{{/*
PUBLIC: what an app container adds to its env to read the credentials through
credsync's local API instead of the file (localApi.enabled): the URI, by
Kubernetes' $(VAR) expansion of the path secret taken from its Secret, and
ALIBABA_CLOUD_ECS_METADATA_DISABLED=true, as on ECS nodes the node's RAM
role comes before the URI in every SDK's default chain. Use it instead of
credsync.appEnv (not beside it: the file variable comes before the URI too),
in a container without the RRSA variables. Takes the root context, or
(dict "root" $ "profile" "billing") for a profile other than the default.
*/}}
{{- define "credsync.appCredentialsUriEnv" -}}
{{- $root := . }}
{{- $profile := "default" }}
{{- if hasKey . "root" }}{{ $root = .root }}{{ $profile = .profile | default "default" }}{{ end }}
{{- if not $root.Values.localApi.enabled }}
{{- fail "credsync.appCredentialsUriEnv (app.credentialsUri): needs localApi.enabled=true" }}
{{- end -}}
- name: CREDSYNC_LOCAL_API_PATH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "credsync.localApiSecretName" $root }}
      key: {{ $root.Values.localApi.pathSecret.key }}
- name: ALIBABA_CLOUD_CREDENTIALS_URI
  value: {{ printf "http://127.0.0.1:%d/$(CREDSYNC_LOCAL_API_PATH_SECRET)/v1/credentials/%s" (int $root.Values.localApi.port) $profile | quote }}
- name: ALIBABA_CLOUD_ECS_METADATA_DISABLED
  value: "true"
{{- end }}

{{/*
PUBLIC: what an app container adds to its volumeMounts: the shared volume,
read-only (connecting to the socket still works).
*/}}
{{- define "credsync.appVolumeMounts" -}}
- name: credsync
  mountPath: {{ include "credsync.outputDir" . }}
  readOnly: true
{{- end }}

{{/*
The pod annotations of credsync.podAnnotations, as a JSON object (so the
chart's own Deployment can merge deployment.podAnnotations over them).
*/}}
{{- define "credsync.podAnnotationsJson" -}}
{{- $text := printf "%s\n%s" (include "credsync.configYaml" .) .Values.config.tls.caBundle }}
{{- range .Values.config.kms.instances }}
{{- $text = printf "%s\n%s" $text (.caBundle | default "") }}
{{- end }}
{{- $annotations := dict "checksum/credsync-config" ($text | sha256sum) }}
{{- $webhook := include "credsync.webhookAnnotations" (dict "root" . "mode" (include "credsync.sidecarMode" .)) | fromYaml }}
{{- toJson (merge $annotations $webhook) }}
{{- end }}

{{/*
PUBLIC: the pod annotations credsync needs: checksum/credsync-config, which
rolls the pods when the credsync config changes, and, with
rrsa.projectToken=false, pod-identity.alibabacloud.com/only-containers naming
the credsync containers of the mode in effect (credsync.webhookAnnotations),
so that ACK's webhook injects credsync's RAM identity into them alone.
*/}}
{{- define "credsync.podAnnotations" -}}
{{- include "credsync.podAnnotationsJson" . | fromJson | toYaml | trimSuffix "\n" }}
{{- end }}
