{{/*
Names. The release "mlops-operator" renders every object as "mlops-operator", which is what the
plain manifests in manifests/base use.
*/}}
{{- define "mlops-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mlops-operator.fullname" -}}
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

{{/*
Labels. helm.sh/chart and app.kubernetes.io/managed-by are the only Helm-specific ones; the
manifests test strips exactly these two before comparing with manifests/base.
*/}}
{{- define "mlops-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{ include "mlops-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: mlops-operator
{{- end }}

{{- define "mlops-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlops-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mlops-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mlops-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mlops-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The artifact store root every workload uses (MLOPS_STORE_URI).
*/}}
{{- define "mlops-operator.storeUri" -}}
{{- $s := .Values.store }}
{{- if eq $s.type "pvc" }}
{{- "file:///var/lib/mlops" }}
{{- else if eq $s.type "azure" }}
{{- printf "az://%s" (trimSuffix "/" (join "/" (compact (list $s.azure.container $s.azure.prefix)))) }}
{{- else }}
{{- printf "s3://%s" (trimSuffix "/" (join "/" (compact (list $s.s3.bucket $s.s3.prefix)))) }}
{{- end }}
{{- end }}

{{/*
Workload identity is on when the store is Azure Blob with a client id.
*/}}
{{- define "mlops-operator.workloadIdentity" -}}
{{- if and (eq .Values.store.type "azure") .Values.store.azure.clientId }}true{{ end }}
{{- end }}

{{/*
Annotations of a workload ServiceAccount: the user's plus the workload-identity client id (the
operator's own account gets none: it never reads the store).
*/}}
{{- define "mlops-operator.saAnnotations" -}}
{{- $annotations := deepCopy (.annotations | default dict) }}
{{- if include "mlops-operator.workloadIdentity" .root }}
{{- $_ := set $annotations "azure.workload.identity/client-id" .root.Values.store.azure.clientId }}
{{- end }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Fail early on values the schema cannot express (cross-field rules).
*/}}
{{- define "mlops-operator.validate" -}}
{{- $s := .Values.store }}
{{- if and (eq $s.type "azure") (or (not $s.azure.storageAccount) (not $s.azure.container)) }}
{{- fail "store.type=azure needs store.azure.storageAccount and store.azure.container" }}
{{- end }}
{{- if and (eq $s.type "s3") (not $s.s3.bucket) }}
{{- fail "store.type=s3 needs store.s3.bucket" }}
{{- end }}
{{- end }}

{{/*
Rights on the child objects the operator creates next to each custom resource.
*/}}
{{- define "mlops-operator.workloadRules" -}}
# Profile, training and drift-check Jobs.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
# The model server and its autoscaler.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, update, delete]
# The model server's PodDisruptionBudget (spec.serving.disruptionBudget): ensured and removed; listed
# and watched (ours only, by label selector) so the operator knows which exist without asking.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Pod status only: OOMKilled, termination messages. No exec, no logs.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The artifact claim and the workload ServiceAccounts, ensured in each namespace with workloads;
# listed and watched (ours only, by label selector) so they are not created again before every child.
- apiGroups: [""]
  resources: [persistentvolumeclaims, serviceaccounts]
  verbs: [get, list, watch, create]
# Events about the custom resources (kopf posts core events; the operator may use either API).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/*
A map of namespace → value as MLOPS_* settings read it: "team-a=<value>,team-b=<value>", sorted.
*/}}
{{- define "mlops-operator.namespacePairs" -}}
{{- $pairs := list }}
{{- range $namespace, $value := . }}{{ $pairs = append $pairs (printf "%s=%s" $namespace $value) }}{{ end }}
{{- join "," $pairs }}
{{- end }}
