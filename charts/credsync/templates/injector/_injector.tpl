{{/*
Named templates of the injector (injector.*): `credsync injector serve`, a
mutating admission webhook in the credsync image, and what it needs. Not
PUBLIC: no other chart includes these.
*/}}

{{/*
The injector's objects' name: <fullname>-injector, the fullname cut so the
whole stays a DNS label (63 characters).
*/}}
{{- define "credsync.injector.fullname" -}}
{{- printf "%s-injector" (include "credsync.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/*
Labels that select the injector's pods. app.kubernetes.io/name differs from
the sidecar Deployment's (its selector is {name, instance} and cannot change
on upgrade), so no selector of the one ever matches pods of the other.
*/}}
{{- define "credsync.injector.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-injector" (include "credsync.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every injector object. */}}
{{- define "credsync.injector.labels" -}}
helm.sh/chart: {{ include "credsync.chart" . }}
{{ include "credsync.injector.selectorLabels" . }}
app.kubernetes.io/component: injector
app.kubernetes.io/version: {{ include "credsync.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: credsync
{{- end }}

{{/*
The injector's own image: injector.image.*, each empty one the chart's
image.* (the same binary serves both). The chart's digest is kept only
while repository and tag are the chart's too: a digest pins one image.
*/}}
{{- define "credsync.injector.image" -}}
{{- $i := .Values.injector.image }}
{{- $repository := $i.repository | default .Values.image.repository }}
{{- $tag := $i.tag | default (.Values.image.tag | default .Chart.AppVersion) }}
{{- printf "%s:%s" $repository $tag }}
{{- if $i.digest }}@{{ $i.digest }}
{{- else if and (not $i.repository) (not $i.tag) .Values.image.digest }}@{{ .Values.image.digest }}
{{- end }}
{{- end }}

{{/* The Service the API server calls, and the DNS names its certificate carries. */}}
{{- define "credsync.injector.serviceName" -}}
{{- include "credsync.injector.fullname" . }}
{{- end }}
{{- define "credsync.injector.dnsNames" -}}
{{- $svc := include "credsync.injector.serviceName" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
Where the serving certificate comes from: certManager, existingSecret or
generated (by Helm, kept across upgrades). Fails with one line on a
contradiction the schema cannot express.
*/}}
{{- define "credsync.injector.certSource" -}}
{{- $c := .Values.injector.certificate }}
{{- if and $c.certManager.enabled $c.existingSecret }}
{{- fail "injector.certificate: set certManager.enabled or existingSecret, not both" }}
{{- end }}
{{- if and $c.existingSecret (not $c.caBundle) }}
{{- fail (printf "injector.certificate.caBundle is required with existingSecret %s (the PEM CA that signed its certificate: the webhook's caBundle)" $c.existingSecret) }}
{{- end }}
{{- if and $c.caBundle (not $c.existingSecret) }}
{{- fail "injector.certificate.caBundle is used only with existingSecret: set existingSecret too, or leave caBundle empty" }}
{{- end }}
{{- if and $c.certManager.issuerRef (not $c.certManager.enabled) }}
{{- fail "injector.certificate.certManager.issuerRef is set but certManager.enabled is false" }}
{{- end }}
{{- if $c.certManager.enabled }}certManager
{{- else if $c.existingSecret }}existingSecret
{{- else }}generated
{{- end }}
{{- end }}

{{/* The kubernetes.io/tls Secret the injector's pods mount. */}}
{{- define "credsync.injector.tlsSecretName" -}}
{{- .Values.injector.certificate.existingSecret | default (printf "%s-tls" (include "credsync.injector.fullname" .)) }}
{{- end }}

{{/* The serving Certificate cert-manager issues (certManager only). */}}
{{- define "credsync.injector.certificateName" -}}
{{- include "credsync.injector.fullname" . }}
{{- end }}

{{/* Fixed paths and ports of the injector's pod; the tests and docs name them. */}}
{{- define "credsync.injector.tlsDir" -}}/etc/credsync-injector/tls{{- end }}
{{- define "credsync.injector.httpsPort" -}}8443{{- end }}
{{- define "credsync.injector.probesPort" -}}9808{{- end }}

{{/*
The injection flags of `credsync injector serve`, one JSON list: what the
injector adds to a pod unless its annotations say otherwise, from the
chart's own values, so an injected pod gets what the chart's Deployment
would. A resource the chart leaves out of sidecar.resources is left to the
injector's default.
*/}}
{{- define "credsync.injector.injectionArgs" -}}
{{- $v := .Values }}
{{- if gt (int64 $v.rrsa.tokenExpirationSeconds) 86400 }}
{{- fail (printf "rrsa.tokenExpirationSeconds %d: the injector takes 600 to 86400 (--token-expiration-seconds)" (int64 $v.rrsa.tokenExpirationSeconds)) }}
{{- end }}
{{- $args := list "--image" (include "credsync.image" .) "--image-pull-policy" $v.image.pullPolicy }}
{{- $args = concat $args (list "--default-mode" (include "credsync.sidecarMode" .) "--native-sidecars" (ternary "true" "false" (eq (include "credsync.nativeSidecarsAvailable" .) "true"))) }}
{{- with $v.config.kms.region }}
{{- $args = concat $args (list "--kms-region" .) }}
{{- end }}
{{- with $v.rrsa.oidcProviderArn }}
{{- $args = concat $args (list "--oidc-provider-arn" .) }}
{{- end }}
{{- $args = concat $args (list "--token-expiration-seconds" (toString (int64 $v.rrsa.tokenExpirationSeconds))) }}
{{- $args = concat $args (list "--run-as-user" (toString (int64 ($v.sidecar.runAsUser | default 65532))) "--run-as-group" (toString (int64 ($v.sidecar.runAsGroup | default 65532)))) }}
{{- $args = concat $args (list "--fs-group" (toString (int64 $v.podSecurityContext.fsGroup))) }}
{{- $r := $v.sidecar.resources | default dict }}
{{- $requests := $r.requests | default dict }}
{{- $limits := $r.limits | default dict }}
{{- range $flag, $value := dict "--cpu-request" $requests.cpu "--memory-request" $requests.memory "--cpu-limit" $limits.cpu "--memory-limit" $limits.memory }}
{{- if not (kindIs "invalid" $value) }}
{{- $args = concat $args (list $flag (toString $value)) }}
{{- end }}
{{- end }}
{{- $args = concat $args (list "--sync-once-timeout" $v.sidecar.syncOnceTimeout "--sidecar-http-port" (toString (int $v.config.control.httpPort)) "--volume-size-limit" (toString $v.sharedVolume.sizeLimit)) }}
{{- $args = concat $args (list "--local-api-port" (toString (int $v.localApi.port)) "--local-api-refetch-within" (include "credsync.localApiRefetchWithin" .)) }}
{{- toJson $args }}
{{- end }}
