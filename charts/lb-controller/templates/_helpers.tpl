{{/*
Names and labels shared by every template, and the webhook serving certificate.
*/}}

{{/*
The app name: the value of the pods' app.kubernetes.io/name label, which the pod and Service
webhooks' objectSelectors exclude (so the controller never waits on itself).
*/}}
{{- define "lb-controller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object's name. A release whose name already contains the app name is used as
is, so `helm install lb-controller` gives `lb-controller`, the names in config/.
*/}}
{{- define "lb-controller.fullname" -}}
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

{{- define "lb-controller.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* What the Deployment selects its pods by; also the Services' selector. */}}
{{- define "lb-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lb-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object: selector labels, chart and version, then `additionalLabels`. */}}
{{- define "lb-controller.labels" -}}
helm.sh/chart: {{ include "lb-controller.chart" . }}
{{ include "lb-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "lb-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lb-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lb-controller.webhookServiceName" -}}
{{- printf "%s-webhook-service" (include "lb-controller.fullname" .) -}}
{{- end -}}

{{/* The Secret the pods mount the serving certificate from (ours, or cert-manager's). */}}
{{- define "lb-controller.webhookSecretName" -}}
{{- printf "%s-tls" (include "lb-controller.fullname" .) -}}
{{- end -}}

{{- define "lb-controller.servingCertName" -}}
{{- printf "%s-serving-cert" (include "lb-controller.fullname" .) -}}
{{- end -}}

{{/* The port part of metricsBindAddr (":8080" -> 8080). */}}
{{- define "lb-controller.metricsPort" -}}
{{- $addr := .Values.metricsBindAddr | default ":8080" | toString -}}
{{- $parts := splitList ":" $addr -}}
{{- last $parts | default "8080" -}}
{{- end -}}

{{/* A map as `k=v,k=v` (sorted by key), the format of --default-tags. */}}
{{- define "lb-controller.mapToCsv" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- $pairs = append $pairs (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
The webhook serving certificate, as JSON {caCert, cert, key}, each base64-encoded (the form of a
Secret's data and of a caBundle). Precedence as upstream:
  1. webhookTLS.{caCert,cert,key} given by the user;
  2. with keepTLSSecret, the Secret already in the cluster (so an upgrade keeps the CA the
     webhook configurations trust and the pods need not restart);
  3. a new CA (genCA) and a certificate it signs for the webhook Service's DNS names.
Helm renders each template file on its own, and genCA gives a new CA at every call; the result is
therefore computed once per render and kept on .Release, so the Secret (webhook-tls.yaml) and both
caBundles (webhooks.yaml) always carry the same CA. Not used with enableCertManager.
*/}}
{{- define "lb-controller.webhookCerts" -}}
{{- $cacheKey := "lbControllerWebhookCerts" -}}
{{- if not (hasKey .Release $cacheKey) -}}
{{- $tls := .Values.webhookTLS | default dict -}}
{{- $certs := dict -}}
{{- if or $tls.caCert $tls.cert $tls.key -}}
{{- if not (and $tls.caCert $tls.cert $tls.key) -}}
{{- fail "webhookTLS: set all of caCert, cert and key (PEM), or none of them" -}}
{{- end -}}
{{- $certs = dict "caCert" ($tls.caCert | b64enc) "cert" ($tls.cert | b64enc) "key" ($tls.key | b64enc) -}}
{{- else -}}
{{- $secret := dict -}}
{{- if .Values.keepTLSSecret -}}
{{- $secret = lookup "v1" "Secret" .Release.Namespace (include "lb-controller.webhookSecretName" .) | default dict -}}
{{- end -}}
{{- $data := $secret.data | default dict -}}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") -}}
{{- $certs = dict "caCert" (index $data "ca.crt") "cert" (index $data "tls.crt") "key" (index $data "tls.key") -}}
{{- else -}}
{{- $svc := include "lb-controller.webhookServiceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $domain := (.Values.cluster | default dict).dnsDomain | default "cluster.local" -}}
{{- $altNames := list (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns $domain) -}}
{{- $ca := genCA "lb-controller-ca" 3650 -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $altNames 3650 $ca -}}
{{- $certs = dict "caCert" ($ca.Cert | b64enc) "cert" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Release $cacheKey $certs -}}
{{- end -}}
{{- get .Release $cacheKey | toJson -}}
{{- end -}}

{{/*
clientConfig of one webhook: the webhook Service on 443 at the given path, with the caBundle
unless cert-manager injects it. Call with (dict "root" $ "path" "/...").
*/}}
{{- define "lb-controller.webhookClientConfig" -}}
{{- $root := .root -}}
{{- if not $root.Values.enableCertManager -}}
caBundle: {{ (include "lb-controller.webhookCerts" $root | fromJson).caCert }}
{{ end -}}
service:
  name: {{ include "lb-controller.webhookServiceName" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- end -}}

{{/* cert-manager's CA injection into a webhook configuration (enableCertManager). */}}
{{- define "lb-controller.webhookAnnotations" -}}
{{- if .Values.enableCertManager -}}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "lb-controller.servingCertName" . }}
{{- end -}}
{{- end -}}

{{/*
A webhook objectSelector that leaves out the chart's own objects (label app.kubernetes.io/name
NotIn [<name>]), plus the user's matchExpressions and matchLabels, if any.
Call with (dict "name" <name> "extra" <selector or nil>).
*/}}
{{- define "lb-controller.objectSelectorExcludingSelf" -}}
{{- $extra := .extra | default dict -}}
matchExpressions:
  - key: app.kubernetes.io/name
    operator: NotIn
    values: [{{ .name }}]
{{- with $extra.matchExpressions }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with $extra.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A label selector with only its non-empty parts (upstream's values files leave matchExpressions and
matchLabels null), or nothing. Call with the selector (or nil) and (optionally) more
matchExpressions: (dict "selector" <selector> "expressions" <list>).
*/}}
{{- define "lb-controller.labelSelector" -}}
{{- $selector := .selector | default dict -}}
{{- $expressions := concat ($selector.matchExpressions | default list) (.expressions | default list) -}}
{{- with $expressions }}
matchExpressions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $selector.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
