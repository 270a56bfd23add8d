{{/*
Helpers of the PodMonitor and the PrometheusRule (podmonitor.yaml,
prometheusrule.yaml).
*/}}

{{/*
A duration in seconds, as a float: a Go duration of the sidecar's config
(90s, 1h30m, 1.5h, 500ms) or a Prometheus one (30s, 1m, 1d, 1w).
*/}}
{{- define "credsync.durationSeconds" -}}
{{- $units := dict "y" 31536000.0 "w" 604800.0 "d" 86400.0 "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001 "us" 0.000001 "µs" 0.000001 "ns" 0.000000001 }}
{{- $total := 0.0 }}
{{- range regexFindAll `[0-9]+(\.[0-9]+)?(ms|us|µs|ns|[ywdhms])` (toString .) -1 }}
{{- $number := regexFind `^[0-9.]+` . }}
{{- $total = addf $total (mulf (float64 $number) (get $units (trimPrefix $number .))) }}
{{- end }}
{{- printf "%f" $total }}
{{- end }}

{{/*
The PromQL label matchers that limit an alert to the release's namespace,
where the PodMonitor (or the user's own scrape) labels credsync's series
with namespace.
*/}}
{{- define "credsync.alertScope" -}}
namespace={{ .Release.Namespace | quote }}
{{- end }}

{{/*
The alerts' threshold for credsync_profile_seconds_since_last_success, in
whole seconds: metrics.prometheusRule.profileStaleAfter, or three
config.refresh.interval.
*/}}
{{- define "credsync.profileStaleSeconds" -}}
{{- $after := .Values.metrics.prometheusRule.profileStaleAfter }}
{{- $seconds := 0.0 }}
{{- if $after }}
{{- $seconds = include "credsync.durationSeconds" $after | float64 }}
{{- else }}
{{- $seconds = mulf 3 (include "credsync.durationSeconds" .Values.config.refresh.interval | float64) }}
{{- end }}
{{- printf "%.0f" (ceil $seconds) }}
{{- end }}
