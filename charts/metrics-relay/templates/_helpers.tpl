{{/* Chart name. */}}
{{- define "metrics-relay.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{/*
Base name of every object. At most 56 characters so that "<fullname>-ingest" is still a valid Service name.
*/}}
{{- define "metrics-relay.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 56 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 56 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Standard labels on every object. */}}
{{- define "metrics-relay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "metrics-relay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: aggregator
app.kubernetes.io/part-of: metrics-relay
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the aggregator's pods (never change them: Deployment selectors are immutable). */}}
{{- define "metrics-relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "metrics-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "metrics-relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "metrics-relay.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The API and webhook Service (the APIServices and the webhook point at it). */}}
{{- define "metrics-relay.serviceName" -}}
{{- include "metrics-relay.fullname" . -}}
{{- end -}}

{{/* The headless Service sidecars resolve to find every replica. */}}
{{- define "metrics-relay.ingestName" -}}
{{- include "metrics-relay.fullname" . -}}-ingest
{{- end -}}

{{/* What injected sidecars stream to (--inject-aggregator). */}}
{{- define "metrics-relay.ingestAddress" -}}
{{- printf "%s.%s.svc:%d" (include "metrics-relay.ingestName" .) .Release.Namespace (int .Values.ports.ingest) -}}
{{- end -}}

{{/*
Where TLS comes from, one of:
  given          out of cluster with outOfCluster.caBundle: the CA is a value, the certificate is yours
  certManager    certManager.enabled: cert-manager writes the Secret and injects every caBundle
  existingSecret tls.existingSecret: your Secret, your CA in tls.caBundle
  managed        otherwise: the aggregator runs its own CA in the Secret, rotates it and patches every caBundle
*/}}
{{- define "metrics-relay.tlsMode" -}}
{{- if and .Values.outOfCluster.enabled .Values.outOfCluster.caBundle -}}given
{{- else if .Values.certManager.enabled -}}certManager
{{- else if .Values.tls.existingSecret -}}existingSecret
{{- else -}}managed
{{- end -}}
{{- end -}}

{{/* Secret holding tls.crt, tls.key and ca.crt (managed by the aggregator, written by cert-manager, or yours). */}}
{{- define "metrics-relay.tlsSecretName" -}}
{{- if and .Values.tls.existingSecret (not .Values.certManager.enabled) -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- include "metrics-relay.fullname" . -}}-tls
{{- end -}}
{{- end -}}

{{/* Lease electing the replica that rotates managed TLS. */}}
{{- define "metrics-relay.tlsLeaseName" -}}
{{- include "metrics-relay.fullname" . -}}-tls-leader
{{- end -}}

{{/* Per-namespace ConfigMap (ca.crt) injected sidecars mount: yours, or with managed TLS the aggregator's. */}}
{{- define "metrics-relay.caConfigMapName" -}}
{{- if .Values.injection.caConfigMap -}}
{{- .Values.injection.caConfigMap -}}
{{- else if eq (include "metrics-relay.tlsMode" .) "managed" -}}
{{- include "metrics-relay.fullname" . -}}-ca
{{- end -}}
{{- end -}}

{{/*
Mode switches ("true" or empty), from `mode` (sidecar | node | both):
  webhook    the MutatingWebhookConfiguration is rendered and the aggregator injects sidecars (never in node mode)
  nodeAgent  the node-agent DaemonSet, its ServiceAccount and RBAC are rendered
*/}}
{{- define "metrics-relay.webhook" -}}
{{- if and .Values.injection.enabled (ne .Values.mode "node") }}true{{ end -}}
{{- end -}}

{{- define "metrics-relay.nodeAgent" -}}
{{- if has .Values.mode (list "node" "both") }}true{{ end -}}
{{- end -}}

{{/* The node agents' DaemonSet, ServiceAccount and ClusterRole(Binding). */}}
{{- define "metrics-relay.nodeAgentName" -}}
{{- include "metrics-relay.fullname" . -}}-node-agent
{{- end -}}

{{/*
Labels that select the node agents' pods. Their name differs from the aggregator's: the aggregator's Services and
PDB select on name and instance alone, and must never pick an agent.
*/}}
{{- define "metrics-relay.nodeAgentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "metrics-relay.name" . }}-node-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "metrics-relay.nodeAgentLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "metrics-relay.nodeAgentSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: node-agent
app.kubernetes.io/part-of: metrics-relay
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* What node agents stream to: the address injected sidecars get, or the out-of-cluster aggregator's ingest port. */}}
{{- define "metrics-relay.nodeAgentAggregator" -}}
{{- if .Values.outOfCluster.enabled -}}
{{- printf "%s:%d" .Values.outOfCluster.address (int .Values.ports.ingest) -}}
{{- else -}}
{{- include "metrics-relay.ingestAddress" . -}}
{{- end -}}
{{- end -}}

{{/*
Where the node agents read the aggregator's CA (the same CA sidecars get), as "<kind> <name>":
  configMap <caConfigMapName>  managed TLS (<fullname>-ca, rendered empty in the release namespace and filled by
                               the elected replica), or your injection.caConfigMap
  configMap <fullname>-ca      tls.existingSecret / outOfCluster.caBundle: rendered from that value
  secret <tlsSecretName>       cert-manager: the ca.crt key of the Secret it writes (only that key is mounted)
*/}}
{{- define "metrics-relay.nodeAgentCa" -}}
{{- $mode := include "metrics-relay.tlsMode" . -}}
{{- if include "metrics-relay.caConfigMapName" . -}}
configMap {{ include "metrics-relay.caConfigMapName" . }}
{{- else if eq $mode "certManager" -}}
secret {{ include "metrics-relay.tlsSecretName" . }}
{{- else -}}
configMap {{ include "metrics-relay.fullname" . }}-ca
{{- end -}}
{{- end -}}

{{/* Names of the APIServices, one per line (the registrations and managed TLS's RBAC list the same ones). */}}
{{- define "metrics-relay.apiServiceNames" -}}
v1beta2.custom.metrics.k8s.io
v1beta1.custom.metrics.k8s.io
{{- if .Values.externalMetrics.enabled }}
v1beta1.external.metrics.k8s.io
{{- end }}
{{- end -}}

{{- define "metrics-relay.webhookName" -}}
{{- include "metrics-relay.fullname" . -}}-injector
{{- end -}}

{{- define "metrics-relay.rulesConfigMapName" -}}
{{- include "metrics-relay.fullname" . -}}-rules
{{- end -}}

{{/* DNS names the serving certificate must carry: both Services, short and qualified forms. */}}
{{- define "metrics-relay.dnsNames" -}}
{{- $ns := .Release.Namespace -}}
{{- range $name := list (include "metrics-relay.serviceName" .) (include "metrics-relay.ingestName" .) }}
- {{ $name }}
- {{ $name }}.{{ $ns }}
- {{ $name }}.{{ $ns }}.svc
- {{ $name }}.{{ $ns }}.svc.cluster.local
{{- end }}
{{- end -}}

{{- define "metrics-relay.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "metrics-relay.sidecarImage" -}}
{{- printf "%s:%s" .Values.injection.image.repository (.Values.injection.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "metrics-relay.nodeAgentImage" -}}
{{- printf "%s:%s" .Values.nodeAgent.image.repository (.Values.nodeAgent.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Checks the schema cannot express; fails the render with a message naming the values. */}}
{{- define "metrics-relay.validate" -}}
{{- $p := .Values.ports -}}
{{- if or (eq (int $p.api) (int $p.ingest)) (eq (int $p.api) (int $p.metrics)) (eq (int $p.ingest) (int $p.metrics)) -}}
{{- fail (printf "ports.api (%v), ports.ingest (%v) and ports.metrics (%v) must all differ" $p.api $p.ingest $p.metrics) -}}
{{- end -}}
{{- if and .Values.outOfCluster.enabled .Values.certManager.enabled -}}
{{- fail "outOfCluster.enabled and certManager.enabled cannot both be set: out of cluster, the aggregator's CA is given in outOfCluster.caBundle" -}}
{{- end -}}
{{- if and (include "metrics-relay.webhook" .) .Values.injection.nativeSidecar (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "injection.nativeSidecar needs Kubernetes 1.29 or later (native sidecar containers: beta and on by default from 1.29, GA in 1.33); this cluster is %s" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- if and .Values.tls.existingSecret .Values.certManager.enabled -}}
{{- fail "tls.existingSecret and certManager.enabled cannot both be set: choose where the serving certificate comes from" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret (not .Values.tls.caBundle) (not .Values.outOfCluster.enabled) -}}
{{- fail "tls.caBundle is required with tls.existingSecret: the base64 PEM of the CA that signed the certificate in that Secret (the APIServices and the webhook must trust it, and a render cannot read the Secret)" -}}
{{- end -}}
{{- end -}}


{{/* The aggregator's --managed-tls-* flags (the Deployment's, and what NOTES prints out of cluster). */}}
{{- define "metrics-relay.managedTlsArgs" -}}
{{- $hosts := include "metrics-relay.dnsNames" . | fromYamlArray -}}
{{- if .Values.outOfCluster.enabled }}{{ $hosts = append $hosts .Values.outOfCluster.address }}{{ end -}}
- --managed-tls-secret={{ .Release.Namespace }}/{{ include "metrics-relay.tlsSecretName" . }}
- --managed-tls-lease={{ include "metrics-relay.tlsLeaseName" . }}
- --managed-tls-hosts={{ join "," $hosts }}
- --managed-tls-apiservices={{ include "metrics-relay.apiServiceNames" . | splitList "\n" | join "," }}
{{- if include "metrics-relay.webhook" . }}
- --managed-tls-webhooks={{ include "metrics-relay.webhookName" . }}
{{- end }}
- --managed-tls-ca-validity={{ .Values.tls.managed.caValidity }}
- --managed-tls-cert-validity={{ .Values.tls.managed.certValidity }}
- --managed-tls-overlap={{ .Values.tls.managed.overlap }}
{{- end -}}
