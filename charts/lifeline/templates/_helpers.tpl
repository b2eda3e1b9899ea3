{{/*
Shared pieces of both components. Component templates call them with a dict:
  root: the chart context (.), component: "replication-controller" | "datamover-controller",
  values: that component's values.
*/}}

{{- define "lifeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lifeline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "lifeline.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "lifeline.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of a component's objects: <fullname>-<component>. */}}
{{- define "lifeline.componentName" -}}
{{- printf "%s-%s" (include "lifeline.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lifeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lifeline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "lifeline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "lifeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: lifeline
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Leader election is always on: even with one replica, a rolling upgrade runs the old and
the new pod side by side, and only the Lease holder may write or call a driver. */}}
{{- define "lifeline.leaderElect" -}}
true
{{- end }}

{{/* Flags every controller shares: logging, admin endpoint, leader election. */}}
{{- define "lifeline.commonArgs" -}}
- --log-format={{ .values.logFormat }}
- --log-level={{ .values.logLevel }}
- --admin-address=0.0.0.0:{{ .values.metrics.port }}
{{- if .values.metrics.secure }}
{{- if .values.metrics.tlsSecretName }}
- --admin-tls-dir=/var/run/lifeline/metrics-tls
{{- else }}
- --admin-self-signed
{{- end }}
- --metrics-auth
{{- end }}
{{- if include "lifeline.leaderElect" . }}
- --leader-elect
- --leader-election-namespace={{ .root.Release.Namespace }}
- --leader-election-lease-name={{ include "lifeline.componentName" . }}
- --lease-duration={{ .values.leaderElection.leaseDuration }}
- --lease-renew-period={{ .values.leaderElection.renewPeriod }}
{{- end }}
{{- end }}

{{/*
The controller container. Extra keys: args (the component's own flags, a YAML list string),
mounts (extra volumeMounts, a YAML list string).
*/}}
{{- define "lifeline.container" -}}
- name: controller
  {{- if .values.image.digest }}
  image: "{{ .values.image.repository }}@{{ .values.image.digest }}"
  {{- else }}
  image: "{{ .values.image.repository }}:{{ .values.image.tag | default .root.Chart.AppVersion }}"
  {{- end }}
  imagePullPolicy: {{ .values.image.pullPolicy }}
  args:
  {{- if .values.args }}
    {{- toYaml .values.args | nindent 4 }}
  {{- else }}
    {{- include "lifeline.commonArgs" . | nindent 4 }}
    {{- with .args }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .values.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  env:
    # Leader identity and the default Lease namespace.
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    {{- with .values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: admin
      containerPort: {{ .values.metrics.port }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
      scheme: {{ if .values.metrics.secure }}HTTPS{{ else }}HTTP{{ end }}
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
      scheme: {{ if .values.metrics.secure }}HTTPS{{ else }}HTTP{{ end }}
    periodSeconds: 5
    failureThreshold: 2
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    capabilities:
      drop: ["ALL"]
  {{- with .values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if or .mounts (and .values.metrics.secure .values.metrics.tlsSecretName) }}
  volumeMounts:
    {{- with .mounts }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if and .values.metrics.secure .values.metrics.tlsSecretName }}
    - name: metrics-tls
      mountPath: /var/run/lifeline/metrics-tls
      readOnly: true
    {{- end }}
  {{- end }}
{{- end }}

{{/* The pod volume of the admin endpoint's certificate, when one is given (secured metrics
without one use a self-signed certificate made at start). */}}
{{- define "lifeline.metricsVolume" -}}
{{- if and .values.metrics.secure .values.metrics.tlsSecretName }}
- name: metrics-tls
  secret:
    secretName: {{ .values.metrics.tlsSecretName }}
{{- end }}
{{- end }}

{{/* Pod settings both Deployments share (placement, security, service account). */}}
{{- define "lifeline.podSpecCommon" -}}
serviceAccountName: {{ include "lifeline.componentName" . }}
automountServiceAccountToken: true
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod template metadata. */}}
{{- define "lifeline.podMetadata" -}}
metadata:
  labels:
    {{- include "lifeline.selectorLabels" . | nindent 4 }}
    {{- with .values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* The ServiceAccount of a component. */}}
{{- define "lifeline.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "lifeline.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
  {{- with .values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* A RoleBinding or ClusterRoleBinding of the component's role to its ServiceAccount. */}}
{{- define "lifeline.binding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ .kind }}Binding
metadata:
  name: {{ .name }}
  {{- with .namespace }}
  namespace: {{ . }}
  {{- end }}
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ .kind }}
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "lifeline.componentName" . }}
    namespace: {{ .root.Release.Namespace }}
{{- end }}

{{/* The Lease Role of a component, only with leader election. */}}
{{- define "lifeline.leaseRole" -}}
{{- if include "lifeline.leaderElect" . }}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "lifeline.componentName" . }}-leader-election
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
rules:
  # leader election: read, create and renew the controller's Lease
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "create", "update"]
---
{{ include "lifeline.binding" (merge (dict "kind" "Role" "name" (printf "%s-leader-election" (include "lifeline.componentName" .)) "namespace" .root.Release.Namespace) .) }}
{{- end }}
{{- end }}

{{/* Metrics Service, optional ServiceMonitor and PodDisruptionBudget of a component; with
secured metrics, a ClusterRole to bind to whoever scrapes. */}}
{{- define "lifeline.serviceObjects" -}}
{{- if .values.metrics.secure }}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "lifeline.componentName" . }}-metrics-reader
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
rules:
  # bind to whoever scrapes (Prometheus's ServiceAccount): the token it sends must allow this
  - nonResourceURLs: ["/metrics"]
    verbs: ["get"]
---
{{- end }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "lifeline.componentName" . }}-metrics
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "lifeline.selectorLabels" . | nindent 4 }}
  ports:
    - name: metrics
      port: {{ .values.metrics.port }}
      targetPort: admin
      protocol: TCP
{{- if .values.metrics.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "lifeline.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
    {{- with .values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "lifeline.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ .values.metrics.serviceMonitor.interval }}
      {{- if .values.metrics.secure }}
      scheme: https
      # The certificate may be self-signed (made at start); the token is what is checked.
      tlsConfig:
        insecureSkipVerify: true
      bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
      {{- end }}
{{- end }}
{{- $pdb := .values.podDisruptionBudget.enabled }}
{{- if or $pdb (and (kindIs "invalid" $pdb) (gt (int .values.replicas) 1)) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "lifeline.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
spec:
  minAvailable: {{ .values.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- include "lifeline.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/* A component's NetworkPolicy: in, only the admin port; out, DNS, the API server and the
values' extra rules. */}}
{{- define "lifeline.networkPolicy" -}}
{{- if .values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "lifeline.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "lifeline.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "lifeline.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    # metrics and probes: the admin port only
    - ports:
        - port: {{ .values.metrics.port }}
          protocol: TCP
      {{- with .values.networkPolicy.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  egress:
    # DNS
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    # the Kubernetes API server
    - ports:
        - port: 443
          protocol: TCP
        - port: 6443
          protocol: TCP
      {{- with .values.networkPolicy.apiServerCIDRs }}
      to:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      {{- end }}
    {{- with .values.networkPolicy.egress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}

{{/* The data mover's protected namespace: the value, else the release namespace. */}}
{{- define "lifeline.protectedNamespace" -}}
{{- .Values.datamoverController.protectedNamespace | default .Release.Namespace }}
{{- end }}
