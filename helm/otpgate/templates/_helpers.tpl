{{/* Names ---------------------------------------------------------------------------------- */}}

{{- define "otpgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otpgate.fullname" -}}
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

{{- define "otpgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otpgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otpgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "otpgate.labels" -}}
helm.sh/chart: {{ include "otpgate.chart" . }}
{{ include "otpgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: otpgate
{{- end }}

{{- define "otpgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "otpgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "otpgate.image" -}}
{{- $repo := required "image.repository is required: the registry you pushed the image built from the repository's Dockerfile to" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret names: existingSecret, or "<fullname>-<kind>". ------------------------------------ */}}

{{- define "otpgate.keysSecretName" -}}
{{- default (printf "%s-keys" (include "otpgate.fullname" .)) .Values.keys.existingSecret }}
{{- end }}

{{- define "otpgate.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "otpgate.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{- define "otpgate.storeSecretName" -}}
{{- default (printf "%s-store" (include "otpgate.fullname" .)) .Values.store.existingSecret }}
{{- end }}

{{- define "otpgate.partnerCASecretName" -}}
{{- default (printf "%s-partner-ca" (include "otpgate.fullname" .)) .Values.partners.caSecret.existingSecret }}
{{- end }}

{{/* "true" when the partner CA Secret holds a CRL. */}}
{{- define "otpgate.partnerCRL" -}}
{{- $ca := .Values.partners.caSecret }}
{{- if or (and $ca.create $ca.crlPem) (and (not $ca.create) $ca.crl) }}true{{ end }}
{{- end }}

{{- define "otpgate.auditClaimName" -}}
{{- default (printf "%s-audit" (include "otpgate.fullname" .)) .Values.audit.persistence.existingClaim }}
{{- end }}

{{/* The port of a URL: explicit, or 443 for https, 80 otherwise. */}}
{{- define "otpgate.urlPort" -}}
{{- $u := urlParse . }}
{{- $port := regexFind ":[0-9]+$" $u.host | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if eq $u.scheme "https" }}443{{ else }}80{{ end }}
{{- end }}

{{/* Policy files ----------------------------------------------------------------------------
     name -> content, as YAML. The shipped files are rendered with tpl (webhook URL, drain). */}}
{{- define "otpgate.policyFiles" -}}
{{- $files := dict }}
{{- $shipped := list "citizens.yaml" "gateway.yaml" "profiles.yaml" "routes.yaml" }}
{{- if .Values.policies.shipped }}
{{- range $name := $shipped }}
{{- $_ := set $files $name (tpl ($.Files.Get (printf "files/policies/%s" $name)) $) }}
{{- end }}
{{- end }}
{{- range $name, $content := .Values.policies.extraFiles }}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._-]*\\.ya?ml$" $name) }}
{{- fail (printf "policies.extraFiles: %q is not a policy file name (letters, digits, '.', '_', '-'; ending in .yaml or .yml)" $name) }}
{{- end }}
{{- if hasKey $files $name }}
{{- fail (printf "policies.extraFiles: %q would replace a shipped policy file; set policies.shipped: false to provide all files yourself" $name) }}
{{- end }}
{{- if eq $name "partners.yaml" }}
{{- fail "policies.extraFiles: partners.yaml is rendered by the chart from partners.*; use partners.clients" }}
{{- end }}
{{- $_ := set $files $name (tpl $content $) }}
{{- end }}
{{- if .Values.partners.enabled }}
{{- $_ := set $files "partners.yaml" (include "otpgate.partnersFile" .) }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{- define "otpgate.partnersFile" -}}
# Rendered by the otpgate chart from values partners.*. The CA (and CRL) are the partner CA
# Secret, mounted at {{ .Values.partners.caMountPath }}.
{{- with .Values.partners.caSecret.revision }}
# partner CA revision: {{ . }}
{{- end }}
partners:
  ca: [{{ printf "%s/ca.pem" (trimSuffix "/" .Values.partners.caMountPath) | toJson }}]
  {{- if include "otpgate.partnerCRL" . }}
  crl: [{{ printf "%s/crl.pem" (trimSuffix "/" .Values.partners.caMountPath) | toJson }}]
  {{- end }}
  {{- if .Values.partners.clients }}
  clients:
    {{- toYaml .Values.partners.clients | nindent 4 }}
  {{- else }}
  clients: {}
  {{- end }}
{{ end }}

{{/* Checks that refuse unsafe or inconsistent values. Included by the Deployment. --------------- */}}
{{- define "otpgate.validate" -}}
{{- $v := .Values }}
{{- $_ := include "otpgate.image" . }}
{{- if and (lt (int $v.replicaCount) 2) (not $v.allowSingleReplica) }}
{{- fail (printf "replicaCount is %d: at least 2 replicas are required (one node drain or crash must not take sign-in down); set allowSingleReplica: true only for development" (int $v.replicaCount)) }}
{{- end }}
{{- if $v.autoscaling.enabled }}
{{- if and (lt (int $v.autoscaling.minReplicas) 2) (not $v.allowSingleReplica) }}
{{- fail (printf "autoscaling.minReplicas is %d: at least 2 replicas are required; set allowSingleReplica: true only for development" (int $v.autoscaling.minReplicas)) }}
{{- end }}
{{- if lt (int $v.autoscaling.maxReplicas) (int $v.autoscaling.minReplicas) }}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" }}
{{- end }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (not (kindIs "string" $v.podDisruptionBudget.minAvailable)) }}
{{- $floor := ternary (int $v.autoscaling.minReplicas) (int $v.replicaCount) $v.autoscaling.enabled }}
{{- if ge (int $v.podDisruptionBudget.minAvailable) $floor }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the replica count (%d), or no node could ever be drained" (int $v.podDisruptionBudget.minAvailable) $floor) }}
{{- end }}
{{- end }}
{{- $drain := int $v.gateway.drainSeconds }}
{{- $preStop := int $v.lifecycle.preStopSleepSeconds }}
{{- if lt $drain 1 }}
{{- fail "gateway.drainSeconds must be at least 1" }}
{{- end }}
{{- if le (int $v.terminationGracePeriodSeconds) (add $drain $preStop) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than gateway.drainSeconds (%d) + lifecycle.preStopSleepSeconds (%d): Kubernetes would kill the gateway while it is still draining requests and writing their audit records" (int $v.terminationGracePeriodSeconds) $drain $preStop) }}
{{- end }}
{{- $_ := required "upstream.registryUrl is required (the registry the gateway forwards to, e.g. http://registry.cowin.svc:8000)" $v.upstream.registryUrl }}
{{- if not (regexMatch "^https?://[^\\s]+$" $v.upstream.registryUrl) }}
{{- fail "upstream.registryUrl must be an http:// or https:// URL" }}
{{- end }}
{{- $_ := required "otp.webhookUrl is required: production OTPs are delivered by webhook, never written to a plain-text outbox file" $v.otp.webhookUrl }}
{{- if not (regexMatch "^https?://[^\\s]+$" $v.otp.webhookUrl) }}
{{- fail "otp.webhookUrl must be an http:// or https:// URL" }}
{{- end }}
{{- if $v.otel.endpoint }}
{{- if not (regexMatch "^https?://[^\\s]+$" $v.otel.endpoint) }}
{{- fail "otel.endpoint must be an http:// or https:// URL" }}
{{- end }}
{{- end }}
{{- range $kind := list "keys" "tls" "store" }}
{{- $s := index $v $kind }}
{{- if and $s.create $s.existingSecret }}
{{- fail (printf "%s: set either create: true or existingSecret, not both" $kind) }}
{{- end }}
{{- end }}
{{- if and $v.partners.caSecret.create $v.partners.caSecret.existingSecret }}
{{- fail "partners.caSecret: set either create: true or existingSecret, not both" }}
{{- end }}
{{- if $v.keys.create }}
{{- range $f := list "otp.key" "identity.key" "audit.key" "redact.key" "tickets.key" }}
{{- if not (hasKey $v.keys.files $f) }}
{{- fail (printf "keys.files must hold %s (files of `otpgate keys generate --dir DIR`)" $f) }}
{{- end }}
{{- end }}
{{- $session := false }}
{{- range $name, $_ := $v.keys.files }}
{{- if regexMatch "^session-[A-Za-z0-9_-]{1,64}\\.pem$" $name }}{{ $session = true }}{{ end }}
{{- end }}
{{- if not $session }}
{{- fail "keys.files must hold at least one session-<kid>.pem (files of `otpgate keys generate --dir DIR`)" }}
{{- end }}
{{- end }}
{{- if $v.tls.create }}
{{- $_ := required "tls.cert is required with tls.create" $v.tls.cert }}
{{- $_ := required "tls.key is required with tls.create" $v.tls.key }}
{{- end }}
{{- if $v.store.create }}
{{- $_ := required "store.url is required with store.create" $v.store.url }}
{{- if not (regexMatch "^(redis|rediss|redis\\+cluster)://[^\\s]+$" $v.store.url) }}
{{- fail "store.url must be a redis://, rediss:// or redis+cluster:// URL" }}
{{- end }}
{{- end }}
{{- if and $v.partners.enabled $v.partners.caSecret.create }}
{{- $_ := required "partners.caSecret.caPem is required with partners.caSecret.create" $v.partners.caSecret.caPem }}
{{- end }}
{{- if not (hasPrefix "/" $v.partners.caMountPath) }}
{{- fail "partners.caMountPath must be an absolute path" }}
{{- end }}
{{- if and $v.audit.persistence.enabled $v.audit.persistence.existingClaim }}
{{- else if $v.audit.persistence.enabled }}
{{- if not (has "ReadWriteMany" $v.audit.persistence.accessModes) }}
{{- fail "audit.persistence.accessModes must include ReadWriteMany: every replica writes its audit files to the same volume" }}
{{- end }}
{{- end }}
{{- /* The policy's drain timeout must be the one the grace period was checked against. */}}
{{- $files := include "otpgate.policyFiles" . | fromYaml }}
{{- $drains := list }}
{{- range $name, $content := $files }}
{{- range $m := regexFindAll "(?m)^[ \\t]*drain:[ \\t]*[^ \\t#\\n]+" $content -1 }}
{{- $drains = append $drains (regexReplaceAll "^[ \\t]*drain:[ \\t]*" $m "") }}
{{- end }}
{{- end }}
{{- if ne (len $drains) 1 }}
{{- fail (printf "the policy must state gateway.timeouts.drain exactly once (found %d); render it from gateway.drainSeconds" (len $drains)) }}
{{- end }}
{{- if ne (first $drains) (printf "%ds" $drain) }}
{{- fail (printf "the policy's gateway.timeouts.drain is %s but gateway.drainSeconds is %d: render it from the value" (first $drains) $drain) }}
{{- end }}
{{- end }}
