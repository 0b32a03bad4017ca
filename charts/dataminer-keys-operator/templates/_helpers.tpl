{{- define "dmk.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dmk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dmk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dmk.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dmk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dmk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dmk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "dmk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The rules the operator needs wherever it manages key sets (a Role or the ClusterRole). */}}
{{- define "dmk.keysetRules" -}}
# Read key sets: the watch, the start-up check, and the fresh read before each reconcile.
- apiGroups: ["keys.dataminer.services"]
  resources: ["dataminerkeysets"]
  verbs: ["get", "list", "watch"]
# Write status (server-side apply). The operator never writes spec.
- apiGroups: ["keys.dataminer.services"]
  resources: ["dataminerkeysets/status"]
  verbs: ["patch"]
# Add and remove its finalizer, so that deleting a key set destroys its keys whatever the
# propagation policy (the only metadata the operator writes).
- apiGroups: ["keys.dataminer.services"]
  resources: ["dataminerkeysets"]
  verbs: ["patch"]
# Read the key set's Secret before acting (get) and watch the Secrets it labels (list, watch).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Create a key set's Secret (by POST, so an existing Secret is never taken over).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
# Rotate a key and keep labels and annotations in line (server-side apply).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["patch"]
# Destroy both keys on revocation.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["delete"]
# Audit Events: each one a new object (src/controller/events.rs).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/*
Where the chart's admission policies act: the watched namespaces, or every namespace when the
operator watches all. A policy acting where no operator of this release works would add a
finalizer nobody removes (the key set's delete, and its namespace's, would hang), or judge key
sets another release manages.
*/}}
{{- define "dmk.policyScope" -}}
{{- with .Values.watchNamespaces -}}
matchResources:
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: In
        values:
          {{- toYaml . | nindent 10 }}
{{- end }}
{{- end -}}

{{- /* The MutatingAdmissionPolicy version the cluster serves: "v1" (Kubernetes >= 1.36),
     "v1beta1" (1.34 and 1.35 with the beta turned on), or "" (the requester webhook stands in).
     The one place the chart decides by Kubernetes version (README, "Supported versions"). */ -}}
{{- define "dmk.mapVersion" -}}
{{- if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" -}}
v1
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy" -}}
v1beta1
{{- end -}}
{{- end -}}

{{- /* "true" when the operator's own webhook records the requester: asked for, and no
     MutatingAdmissionPolicy is served to do it. */ -}}
{{- define "dmk.requesterWebhook" -}}
{{- if and .Values.admissionPolicy.recordRequester .Values.admissionPolicy.requesterWebhook.enabled (eq (include "dmk.mapVersion" .) "") -}}
true
{{- end -}}
{{- end -}}
