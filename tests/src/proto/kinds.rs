//! Message tables for every built-in kind the emulator serves, by field number as in
//! Kubernetes' `generated.proto` (core/v1, apps/v1, autoscaling/v2, policy/v1, rbac/v1,
//! discovery/v1, admissionregistration/v1, batch/v1, authentication/v1, authorization/v1, meta/v1). Names are the JSON field names.

use super::Message;
use super::Ty::{self, *};

const fn m(name: &'static str, fields: &'static [(u64, &'static str, Ty)]) -> Message {
    Message { name, fields }
}

// --- meta/v1 ---------------------------------------------------------------------------------

static OWNER_REFERENCE: Message = m(
    "OwnerReference",
    &[
        (1, "kind", Str),
        (3, "name", Str),
        (4, "uid", Str),
        (5, "apiVersion", Str),
        (6, "controller", PBool),
        (7, "blockOwnerDeletion", PBool),
    ],
);
static MANAGED_FIELDS_ENTRY: Message = m(
    "ManagedFieldsEntry",
    &[
        (1, "manager", Str),
        (2, "operation", Str),
        (3, "apiVersion", Str),
        (4, "time", Time),
        (6, "fieldsType", Str),
        (7, "fieldsV1", Raw),
        (8, "subresource", Str),
    ],
);
pub(super) static OBJECT_META: Message = m(
    "ObjectMeta",
    &[
        (1, "name", Str),
        (2, "generateName", Str),
        (3, "namespace", Str),
        (4, "selfLink", Str),
        (5, "uid", Str),
        (6, "resourceVersion", Str),
        (7, "generation", Int),
        (8, "creationTimestamp", Time),
        (9, "deletionTimestamp", Time),
        (10, "deletionGracePeriodSeconds", PInt),
        (11, "labels", MapStr),
        (12, "annotations", MapStr),
        (13, "ownerReferences", RepMsg(&OWNER_REFERENCE)),
        (14, "finalizers", RepStr),
        (15, "clusterName", Str),
        (17, "managedFields", RepMsg(&MANAGED_FIELDS_ENTRY)),
    ],
);
static LABEL_SELECTOR_REQUIREMENT: Message = m(
    "LabelSelectorRequirement",
    &[(1, "key", Str), (2, "operator", Str), (3, "values", RepStr)],
);
static LABEL_SELECTOR: Message = m(
    "LabelSelector",
    &[
        (1, "matchLabels", MapStr),
        (2, "matchExpressions", RepMsg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
);

// --- core/v1: references and small helpers --------------------------------------------------

static LOCAL_OBJECT_REFERENCE: Message = m("LocalObjectReference", &[(1, "name", Str)]);
static OBJECT_REFERENCE: Message = m(
    "ObjectReference",
    &[
        (1, "kind", Str),
        (2, "namespace", Str),
        (3, "name", Str),
        (4, "uid", Str),
        (5, "apiVersion", Str),
        (6, "resourceVersion", Str),
        (7, "fieldPath", Str),
    ],
);
static TYPED_LOCAL_OBJECT_REFERENCE: Message = m(
    "TypedLocalObjectReference",
    &[(1, "apiGroup", PStr), (2, "kind", Str), (3, "name", Str)],
);
static TYPED_OBJECT_REFERENCE: Message = m(
    "TypedObjectReference",
    &[
        (1, "apiGroup", PStr),
        (2, "kind", Str),
        (3, "name", Str),
        (4, "namespace", PStr),
    ],
);
static KEY_TO_PATH: Message = m(
    "KeyToPath",
    &[(1, "key", Str), (2, "path", Str), (3, "mode", PInt)],
);
static OBJECT_FIELD_SELECTOR: Message = m(
    "ObjectFieldSelector",
    &[(1, "apiVersion", Str), (2, "fieldPath", Str)],
);
static RESOURCE_FIELD_SELECTOR: Message = m(
    "ResourceFieldSelector",
    &[
        (1, "containerName", Str),
        (2, "resource", Str),
        (3, "divisor", Qty),
    ],
);
static CONFIG_MAP_KEY_SELECTOR: Message = m(
    "ConfigMapKeySelector",
    &[
        (1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "key", Str),
        (3, "optional", PBool),
    ],
);
static SECRET_KEY_SELECTOR: Message = m(
    "SecretKeySelector",
    &[
        (1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "key", Str),
        (3, "optional", PBool),
    ],
);
static CONFIG_MAP_ENV_SOURCE: Message = m(
    "ConfigMapEnvSource",
    &[
        (1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "optional", PBool),
    ],
);
static SECRET_ENV_SOURCE: Message = m(
    "SecretEnvSource",
    &[
        (1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "optional", PBool),
    ],
);

// --- core/v1: containers --------------------------------------------------------------------

static ENV_VAR_SOURCE: Message = m(
    "EnvVarSource",
    &[
        (1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        (2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        (3, "configMapKeyRef", Msg(&CONFIG_MAP_KEY_SELECTOR)),
        (4, "secretKeyRef", Msg(&SECRET_KEY_SELECTOR)),
    ],
);
static ENV_VAR: Message = m(
    "EnvVar",
    &[
        (1, "name", Str),
        (2, "value", Str),
        (3, "valueFrom", Msg(&ENV_VAR_SOURCE)),
    ],
);
static ENV_FROM_SOURCE: Message = m(
    "EnvFromSource",
    &[
        (1, "prefix", Str),
        (2, "configMapRef", Msg(&CONFIG_MAP_ENV_SOURCE)),
        (3, "secretRef", Msg(&SECRET_ENV_SOURCE)),
    ],
);
static CONTAINER_PORT: Message = m(
    "ContainerPort",
    &[
        (1, "name", Str),
        (2, "hostPort", Int),
        (3, "containerPort", Int),
        (4, "protocol", Str),
        (5, "hostIP", Str),
    ],
);
static RESOURCE_CLAIM: Message = m("ResourceClaim", &[(1, "name", Str), (2, "request", Str)]);
static RESOURCE_REQUIREMENTS: Message = m(
    "ResourceRequirements",
    &[
        (1, "limits", MapQty),
        (2, "requests", MapQty),
        (3, "claims", RepMsg(&RESOURCE_CLAIM)),
    ],
);
static CONTAINER_RESIZE_POLICY: Message = m(
    "ContainerResizePolicy",
    &[(1, "resourceName", Str), (2, "restartPolicy", Str)],
);
static VOLUME_MOUNT: Message = m(
    "VolumeMount",
    &[
        (1, "name", Str),
        (2, "readOnly", Bool),
        (3, "mountPath", Str),
        (4, "subPath", Str),
        (5, "mountPropagation", PStr),
        (6, "subPathExpr", Str),
        (7, "recursiveReadOnly", PStr),
    ],
);
static VOLUME_DEVICE: Message = m("VolumeDevice", &[(1, "name", Str), (2, "devicePath", Str)]);
static EXEC_ACTION: Message = m("ExecAction", &[(1, "command", RepStr)]);
static HTTP_HEADER: Message = m("HTTPHeader", &[(1, "name", Str), (2, "value", Str)]);
static HTTP_GET_ACTION: Message = m(
    "HTTPGetAction",
    &[
        (1, "path", Str),
        (2, "port", IntStr),
        (3, "host", Str),
        (4, "scheme", Str),
        (5, "httpHeaders", RepMsg(&HTTP_HEADER)),
    ],
);
static TCP_SOCKET_ACTION: Message = m("TCPSocketAction", &[(1, "port", IntStr), (2, "host", Str)]);
static GRPC_ACTION: Message = m("GRPCAction", &[(1, "port", Int), (2, "service", PStr)]);
static SLEEP_ACTION: Message = m("SleepAction", &[(1, "seconds", Int)]);
static PROBE_HANDLER: Message = m(
    "ProbeHandler",
    &[
        (1, "exec", Msg(&EXEC_ACTION)),
        (2, "httpGet", Msg(&HTTP_GET_ACTION)),
        (3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        (4, "grpc", Msg(&GRPC_ACTION)),
    ],
);
static LIFECYCLE_HANDLER: Message = m(
    "LifecycleHandler",
    &[
        (1, "exec", Msg(&EXEC_ACTION)),
        (2, "httpGet", Msg(&HTTP_GET_ACTION)),
        (3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        (4, "sleep", Msg(&SLEEP_ACTION)),
    ],
);
static PROBE: Message = m(
    "Probe",
    &[
        (1, "handler", Inline(&PROBE_HANDLER)),
        (2, "initialDelaySeconds", Int),
        (3, "timeoutSeconds", Int),
        (4, "periodSeconds", Int),
        (5, "successThreshold", Int),
        (6, "failureThreshold", Int),
        (7, "terminationGracePeriodSeconds", PInt),
    ],
);
static LIFECYCLE: Message = m(
    "Lifecycle",
    &[
        (1, "postStart", Msg(&LIFECYCLE_HANDLER)),
        (2, "preStop", Msg(&LIFECYCLE_HANDLER)),
        (3, "stopSignal", PStr),
    ],
);
static CAPABILITIES: Message = m("Capabilities", &[(1, "add", RepStr), (2, "drop", RepStr)]);
static SE_LINUX_OPTIONS: Message = m(
    "SELinuxOptions",
    &[
        (1, "user", Str),
        (2, "role", Str),
        (3, "type", Str),
        (4, "level", Str),
    ],
);
static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = m(
    "WindowsSecurityContextOptions",
    &[
        (1, "gmsaCredentialSpecName", PStr),
        (2, "gmsaCredentialSpec", PStr),
        (3, "runAsUserName", PStr),
        (4, "hostProcess", PBool),
    ],
);
static SECCOMP_PROFILE: Message = m(
    "SeccompProfile",
    &[(1, "type", Str), (2, "localhostProfile", PStr)],
);
static APP_ARMOR_PROFILE: Message = m(
    "AppArmorProfile",
    &[(1, "type", Str), (2, "localhostProfile", PStr)],
);
static SECURITY_CONTEXT: Message = m(
    "SecurityContext",
    &[
        (1, "capabilities", Msg(&CAPABILITIES)),
        (2, "privileged", PBool),
        (3, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS)),
        (4, "runAsUser", PInt),
        (5, "runAsNonRoot", PBool),
        (6, "readOnlyRootFilesystem", PBool),
        (7, "allowPrivilegeEscalation", PBool),
        (8, "runAsGroup", PInt),
        (9, "procMount", PStr),
        (10, "windowsOptions", Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        (11, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        (12, "appArmorProfile", Msg(&APP_ARMOR_PROFILE)),
    ],
);
static CONTAINER: Message = m(
    "Container",
    &[
        (1, "name", Str),
        (2, "image", Str),
        (3, "command", RepStr),
        (4, "args", RepStr),
        (5, "workingDir", Str),
        (6, "ports", RepMsg(&CONTAINER_PORT)),
        (7, "env", RepMsg(&ENV_VAR)),
        (8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        (9, "volumeMounts", RepMsg(&VOLUME_MOUNT)),
        (10, "livenessProbe", Msg(&PROBE)),
        (11, "readinessProbe", Msg(&PROBE)),
        (12, "lifecycle", Msg(&LIFECYCLE)),
        (13, "terminationMessagePath", Str),
        (14, "imagePullPolicy", Str),
        (15, "securityContext", Msg(&SECURITY_CONTEXT)),
        (16, "stdin", Bool),
        (17, "stdinOnce", Bool),
        (18, "tty", Bool),
        (19, "envFrom", RepMsg(&ENV_FROM_SOURCE)),
        (20, "terminationMessagePolicy", Str),
        (21, "volumeDevices", RepMsg(&VOLUME_DEVICE)),
        (22, "startupProbe", Msg(&PROBE)),
        (23, "resizePolicy", RepMsg(&CONTAINER_RESIZE_POLICY)),
        (24, "restartPolicy", PStr),
    ],
);

// --- core/v1: volumes -----------------------------------------------------------------------

static HOST_PATH_VOLUME_SOURCE: Message = m(
    "HostPathVolumeSource",
    &[(1, "path", Str), (2, "type", PStr)],
);
static EMPTY_DIR_VOLUME_SOURCE: Message = m(
    "EmptyDirVolumeSource",
    &[(1, "medium", Str), (2, "sizeLimit", Qty)],
);
static SECRET_VOLUME_SOURCE: Message = m(
    "SecretVolumeSource",
    &[
        (1, "secretName", Str),
        (2, "items", RepMsg(&KEY_TO_PATH)),
        (3, "defaultMode", PInt),
        (4, "optional", PBool),
    ],
);
static NFS_VOLUME_SOURCE: Message = m(
    "NFSVolumeSource",
    &[(1, "server", Str), (2, "path", Str), (3, "readOnly", Bool)],
);
static PVC_VOLUME_SOURCE: Message = m(
    "PersistentVolumeClaimVolumeSource",
    &[(1, "claimName", Str), (2, "readOnly", Bool)],
);
static DOWNWARD_API_VOLUME_FILE: Message = m(
    "DownwardAPIVolumeFile",
    &[
        (1, "path", Str),
        (2, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        (3, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        (4, "mode", PInt),
    ],
);
static DOWNWARD_API_VOLUME_SOURCE: Message = m(
    "DownwardAPIVolumeSource",
    &[
        (1, "items", RepMsg(&DOWNWARD_API_VOLUME_FILE)),
        (2, "defaultMode", PInt),
    ],
);
static DOWNWARD_API_PROJECTION: Message = m(
    "DownwardAPIProjection",
    &[(1, "items", RepMsg(&DOWNWARD_API_VOLUME_FILE))],
);
static CONFIG_MAP_VOLUME_SOURCE: Message = m(
    "ConfigMapVolumeSource",
    &[
        (1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "items", RepMsg(&KEY_TO_PATH)),
        (3, "defaultMode", PInt),
        (4, "optional", PBool),
    ],
);
static CONFIG_MAP_PROJECTION: Message = m(
    "ConfigMapProjection",
    &[
        (1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "items", RepMsg(&KEY_TO_PATH)),
        (4, "optional", PBool),
    ],
);
static SECRET_PROJECTION: Message = m(
    "SecretProjection",
    &[
        (1, "localObjectReference", Inline(&LOCAL_OBJECT_REFERENCE)),
        (2, "items", RepMsg(&KEY_TO_PATH)),
        (4, "optional", PBool),
    ],
);
static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = m(
    "ServiceAccountTokenProjection",
    &[
        (1, "audience", Str),
        (2, "expirationSeconds", PInt),
        (3, "path", Str),
    ],
);
static CLUSTER_TRUST_BUNDLE_PROJECTION: Message = m(
    "ClusterTrustBundleProjection",
    &[
        (1, "name", PStr),
        (2, "signerName", PStr),
        (3, "labelSelector", Msg(&LABEL_SELECTOR)),
        (4, "optional", PBool),
        (5, "path", Str),
    ],
);
static VOLUME_PROJECTION: Message = m(
    "VolumeProjection",
    &[
        (1, "secret", Msg(&SECRET_PROJECTION)),
        (2, "downwardAPI", Msg(&DOWNWARD_API_PROJECTION)),
        (3, "configMap", Msg(&CONFIG_MAP_PROJECTION)),
        (
            4,
            "serviceAccountToken",
            Msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION),
        ),
        (
            5,
            "clusterTrustBundle",
            Msg(&CLUSTER_TRUST_BUNDLE_PROJECTION),
        ),
    ],
);
static PROJECTED_VOLUME_SOURCE: Message = m(
    "ProjectedVolumeSource",
    &[
        (1, "sources", RepMsg(&VOLUME_PROJECTION)),
        (2, "defaultMode", PInt),
    ],
);
static CSI_VOLUME_SOURCE: Message = m(
    "CSIVolumeSource",
    &[
        (1, "driver", Str),
        (2, "readOnly", PBool),
        (3, "fsType", PStr),
        (4, "volumeAttributes", MapStr),
        (5, "nodePublishSecretRef", Msg(&LOCAL_OBJECT_REFERENCE)),
    ],
);
static PVC_SPEC: Message = m(
    "PersistentVolumeClaimSpec",
    &[
        (1, "accessModes", RepStr),
        (2, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        (3, "volumeName", Str),
        (4, "selector", Msg(&LABEL_SELECTOR)),
        (5, "storageClassName", PStr),
        (6, "volumeMode", PStr),
        (7, "dataSource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
        (8, "dataSourceRef", Msg(&TYPED_OBJECT_REFERENCE)),
        (9, "volumeAttributesClassName", PStr),
    ],
);
static PVC_TEMPLATE: Message = m(
    "PersistentVolumeClaimTemplate",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&PVC_SPEC)),
    ],
);
static EPHEMERAL_VOLUME_SOURCE: Message = m(
    "EphemeralVolumeSource",
    &[(1, "volumeClaimTemplate", Msg(&PVC_TEMPLATE))],
);
static IMAGE_VOLUME_SOURCE: Message = m(
    "ImageVolumeSource",
    &[(1, "reference", Str), (2, "pullPolicy", Str)],
);
/// The volume types a mesh workload uses; the cloud-disk ones (GCE, AWS, Azure, Ceph, ...)
/// are left out and answered with the "cannot decode field N" error.
static VOLUME_SOURCE: Message = m(
    "VolumeSource",
    &[
        (1, "hostPath", Msg(&HOST_PATH_VOLUME_SOURCE)),
        (2, "emptyDir", Msg(&EMPTY_DIR_VOLUME_SOURCE)),
        (6, "secret", Msg(&SECRET_VOLUME_SOURCE)),
        (7, "nfs", Msg(&NFS_VOLUME_SOURCE)),
        (10, "persistentVolumeClaim", Msg(&PVC_VOLUME_SOURCE)),
        (16, "downwardAPI", Msg(&DOWNWARD_API_VOLUME_SOURCE)),
        (19, "configMap", Msg(&CONFIG_MAP_VOLUME_SOURCE)),
        (26, "projected", Msg(&PROJECTED_VOLUME_SOURCE)),
        (28, "csi", Msg(&CSI_VOLUME_SOURCE)),
        (29, "ephemeral", Msg(&EPHEMERAL_VOLUME_SOURCE)),
        (30, "image", Msg(&IMAGE_VOLUME_SOURCE)),
    ],
);
static VOLUME: Message = m(
    "Volume",
    &[
        (1, "name", Str),
        (2, "volumeSource", Inline(&VOLUME_SOURCE)),
    ],
);

// --- core/v1: scheduling and the pod spec ---------------------------------------------------

static NODE_SELECTOR_REQUIREMENT: Message = m(
    "NodeSelectorRequirement",
    &[(1, "key", Str), (2, "operator", Str), (3, "values", RepStr)],
);
static NODE_SELECTOR_TERM: Message = m(
    "NodeSelectorTerm",
    &[
        (1, "matchExpressions", RepMsg(&NODE_SELECTOR_REQUIREMENT)),
        (2, "matchFields", RepMsg(&NODE_SELECTOR_REQUIREMENT)),
    ],
);
static NODE_SELECTOR: Message = m(
    "NodeSelector",
    &[(1, "nodeSelectorTerms", RepMsg(&NODE_SELECTOR_TERM))],
);
static PREFERRED_SCHEDULING_TERM: Message = m(
    "PreferredSchedulingTerm",
    &[
        (1, "weight", Int),
        (2, "preference", Msg(&NODE_SELECTOR_TERM)),
    ],
);
static NODE_AFFINITY: Message = m(
    "NodeAffinity",
    &[
        (
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&NODE_SELECTOR),
        ),
        (
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            RepMsg(&PREFERRED_SCHEDULING_TERM),
        ),
    ],
);
static POD_AFFINITY_TERM: Message = m(
    "PodAffinityTerm",
    &[
        (1, "labelSelector", Msg(&LABEL_SELECTOR)),
        (2, "namespaces", RepStr),
        (3, "topologyKey", Str),
        (4, "namespaceSelector", Msg(&LABEL_SELECTOR)),
        (5, "matchLabelKeys", RepStr),
        (6, "mismatchLabelKeys", RepStr),
    ],
);
static WEIGHTED_POD_AFFINITY_TERM: Message = m(
    "WeightedPodAffinityTerm",
    &[
        (1, "weight", Int),
        (2, "podAffinityTerm", Msg(&POD_AFFINITY_TERM)),
    ],
);
static POD_AFFINITY: Message = m(
    "PodAffinity",
    &[
        (
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            RepMsg(&POD_AFFINITY_TERM),
        ),
        (
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            RepMsg(&WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
);
static AFFINITY: Message = m(
    "Affinity",
    &[
        (1, "nodeAffinity", Msg(&NODE_AFFINITY)),
        (2, "podAffinity", Msg(&POD_AFFINITY)),
        (3, "podAntiAffinity", Msg(&POD_AFFINITY)),
    ],
);
static TOLERATION: Message = m(
    "Toleration",
    &[
        (1, "key", Str),
        (2, "operator", Str),
        (3, "value", Str),
        (4, "effect", Str),
        (5, "tolerationSeconds", PInt),
    ],
);
static HOST_ALIAS: Message = m("HostAlias", &[(1, "ip", Str), (2, "hostnames", RepStr)]);
static POD_DNS_CONFIG_OPTION: Message = m(
    "PodDNSConfigOption",
    &[(1, "name", Str), (2, "value", PStr)],
);
static POD_DNS_CONFIG: Message = m(
    "PodDNSConfig",
    &[
        (1, "nameservers", RepStr),
        (2, "searches", RepStr),
        (3, "options", RepMsg(&POD_DNS_CONFIG_OPTION)),
    ],
);
static POD_READINESS_GATE: Message = m("PodReadinessGate", &[(1, "conditionType", Str)]);
static SYSCTL: Message = m("Sysctl", &[(1, "name", Str), (2, "value", Str)]);
static POD_SECURITY_CONTEXT: Message = m(
    "PodSecurityContext",
    &[
        (1, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS)),
        (2, "runAsUser", PInt),
        (3, "runAsNonRoot", PBool),
        (4, "supplementalGroups", RepInt),
        (5, "fsGroup", PInt),
        (6, "runAsGroup", PInt),
        (7, "sysctls", RepMsg(&SYSCTL)),
        (8, "windowsOptions", Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        (9, "fsGroupChangePolicy", PStr),
        (10, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        (11, "appArmorProfile", Msg(&APP_ARMOR_PROFILE)),
        (12, "supplementalGroupsPolicy", PStr),
        (13, "seLinuxChangePolicy", PStr),
    ],
);
static TOPOLOGY_SPREAD_CONSTRAINT: Message = m(
    "TopologySpreadConstraint",
    &[
        (1, "maxSkew", Int),
        (2, "topologyKey", Str),
        (3, "whenUnsatisfiable", Str),
        (4, "labelSelector", Msg(&LABEL_SELECTOR)),
        (5, "minDomains", PInt),
        (6, "nodeAffinityPolicy", PStr),
        (7, "nodeTaintsPolicy", PStr),
        (8, "matchLabelKeys", RepStr),
    ],
);
static POD_OS: Message = m("PodOS", &[(1, "name", Str)]);
static POD_SCHEDULING_GATE: Message = m("PodSchedulingGate", &[(1, "name", Str)]);
static POD_RESOURCE_CLAIM: Message = m(
    "PodResourceClaim",
    &[
        (1, "name", Str),
        (3, "resourceClaimName", PStr),
        (4, "resourceClaimTemplateName", PStr),
    ],
);
static POD_SPEC: Message = m(
    "PodSpec",
    &[
        (1, "volumes", RepMsg(&VOLUME)),
        (2, "containers", RepMsg(&CONTAINER)),
        (3, "restartPolicy", Str),
        (4, "terminationGracePeriodSeconds", PInt),
        (5, "activeDeadlineSeconds", PInt),
        (6, "dnsPolicy", Str),
        (7, "nodeSelector", MapStr),
        (8, "serviceAccountName", Str),
        (9, "serviceAccount", Str),
        (10, "nodeName", Str),
        (11, "hostNetwork", Bool),
        (12, "hostPID", Bool),
        (13, "hostIPC", Bool),
        (14, "securityContext", Msg(&POD_SECURITY_CONTEXT)),
        (15, "imagePullSecrets", RepMsg(&LOCAL_OBJECT_REFERENCE)),
        (16, "hostname", Str),
        (17, "subdomain", Str),
        (18, "affinity", Msg(&AFFINITY)),
        (19, "schedulerName", Str),
        (20, "initContainers", RepMsg(&CONTAINER)),
        (21, "automountServiceAccountToken", PBool),
        (22, "tolerations", RepMsg(&TOLERATION)),
        (23, "hostAliases", RepMsg(&HOST_ALIAS)),
        (24, "priorityClassName", Str),
        (25, "priority", PInt),
        (26, "dnsConfig", Msg(&POD_DNS_CONFIG)),
        (27, "shareProcessNamespace", PBool),
        (28, "readinessGates", RepMsg(&POD_READINESS_GATE)),
        (29, "runtimeClassName", PStr),
        (30, "enableServiceLinks", PBool),
        (31, "preemptionPolicy", PStr),
        (32, "overhead", MapQty),
        (
            33,
            "topologySpreadConstraints",
            RepMsg(&TOPOLOGY_SPREAD_CONSTRAINT),
        ),
        (35, "setHostnameAsFQDN", PBool),
        (36, "os", Msg(&POD_OS)),
        (37, "hostUsers", PBool),
        (38, "schedulingGates", RepMsg(&POD_SCHEDULING_GATE)),
        (39, "resourceClaims", RepMsg(&POD_RESOURCE_CLAIM)),
        (40, "resources", Msg(&RESOURCE_REQUIREMENTS)),
    ],
);
static POD_TEMPLATE_SPEC: Message = m(
    "PodTemplateSpec",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&POD_SPEC)),
    ],
);

// --- core/v1 kinds --------------------------------------------------------------------------

static NAMESPACE_SPEC: Message = m("NamespaceSpec", &[(1, "finalizers", RepStr)]);
static NAMESPACE: Message = m(
    "Namespace",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&NAMESPACE_SPEC)),
        (3, "status", Skip),
    ],
);
static SECRET: Message = m(
    "Secret",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "data", MapBytes),
        (3, "type", Str),
        (4, "stringData", MapStr),
        (5, "immutable", PBool),
    ],
);
static CONFIG_MAP: Message = m(
    "ConfigMap",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "data", MapStr),
        (3, "binaryData", MapBytes),
        (4, "immutable", PBool),
    ],
);
static SERVICE_ACCOUNT: Message = m(
    "ServiceAccount",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "secrets", RepMsg(&OBJECT_REFERENCE)),
        (3, "imagePullSecrets", RepMsg(&LOCAL_OBJECT_REFERENCE)),
        (4, "automountServiceAccountToken", PBool),
    ],
);
static SERVICE_PORT: Message = m(
    "ServicePort",
    &[
        (1, "name", Str),
        (2, "protocol", Str),
        (3, "port", Int),
        (4, "targetPort", IntStr),
        (5, "nodePort", Int),
        (6, "appProtocol", PStr),
    ],
);
static CLIENT_IP_CONFIG: Message = m("ClientIPConfig", &[(1, "timeoutSeconds", PInt)]);
static SESSION_AFFINITY_CONFIG: Message = m(
    "SessionAffinityConfig",
    &[(1, "clientIP", Msg(&CLIENT_IP_CONFIG))],
);
static SERVICE_SPEC: Message = m(
    "ServiceSpec",
    &[
        (1, "ports", RepMsg(&SERVICE_PORT)),
        (2, "selector", MapStr),
        (3, "clusterIP", Str),
        (4, "type", Str),
        (5, "externalIPs", RepStr),
        (7, "sessionAffinity", Str),
        (8, "loadBalancerIP", Str),
        (9, "loadBalancerSourceRanges", RepStr),
        (10, "externalName", Str),
        (11, "externalTrafficPolicy", Str),
        (12, "healthCheckNodePort", Int),
        (13, "publishNotReadyAddresses", Bool),
        (14, "sessionAffinityConfig", Msg(&SESSION_AFFINITY_CONFIG)),
        (16, "topologyKeys", RepStr),
        (17, "ipFamilyPolicy", PStr),
        (18, "clusterIPs", RepStr),
        (19, "ipFamilies", RepStr),
        (20, "allocateLoadBalancerNodePorts", PBool),
        (21, "loadBalancerClass", PStr),
        (22, "internalTrafficPolicy", PStr),
        (23, "trafficDistribution", PStr),
    ],
);
static SERVICE: Message = m(
    "Service",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&SERVICE_SPEC)),
        (3, "status", Skip),
    ],
);
static ENDPOINT_ADDRESS: Message = m(
    "EndpointAddress",
    &[
        (1, "ip", Str),
        (2, "targetRef", Msg(&OBJECT_REFERENCE)),
        (3, "hostname", Str),
        (4, "nodeName", PStr),
    ],
);
static ENDPOINT_PORT: Message = m(
    "EndpointPort",
    &[
        (1, "name", Str),
        (2, "port", Int),
        (3, "protocol", Str),
        (4, "appProtocol", PStr),
    ],
);
static ENDPOINT_SUBSET: Message = m(
    "EndpointSubset",
    &[
        (1, "addresses", RepMsg(&ENDPOINT_ADDRESS)),
        (2, "notReadyAddresses", RepMsg(&ENDPOINT_ADDRESS)),
        (3, "ports", RepMsg(&ENDPOINT_PORT)),
    ],
);
static ENDPOINTS: Message = m(
    "Endpoints",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "subsets", RepMsg(&ENDPOINT_SUBSET)),
    ],
);
static POD: Message = m(
    "Pod",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&POD_SPEC)),
        (3, "status", Skip),
    ],
);
static TAINT: Message = m(
    "Taint",
    &[
        (1, "key", Str),
        (2, "value", Str),
        (3, "effect", Str),
        (4, "timeAdded", Time),
    ],
);
static NODE_SPEC: Message = m(
    "NodeSpec",
    &[
        (1, "podCIDR", Str),
        (2, "externalID", Str),
        (3, "providerID", Str),
        (4, "unschedulable", Bool),
        (5, "taints", RepMsg(&TAINT)),
        (6, "configSource", Skip),
        (7, "podCIDRs", RepStr),
    ],
);
static NODE: Message = m(
    "Node",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&NODE_SPEC)),
        (3, "status", Skip),
    ],
);

// --- apps/v1 --------------------------------------------------------------------------------

static ROLLING_UPDATE_DEPLOYMENT: Message = m(
    "RollingUpdateDeployment",
    &[(1, "maxUnavailable", IntStr), (2, "maxSurge", IntStr)],
);
static DEPLOYMENT_STRATEGY: Message = m(
    "DeploymentStrategy",
    &[
        (1, "type", Str),
        (2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
);
static DEPLOYMENT_SPEC: Message = m(
    "DeploymentSpec",
    &[
        (1, "replicas", PInt),
        (2, "selector", Msg(&LABEL_SELECTOR)),
        (3, "template", Msg(&POD_TEMPLATE_SPEC)),
        (4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        (5, "minReadySeconds", Int),
        (6, "revisionHistoryLimit", PInt),
        (7, "paused", Bool),
        (9, "progressDeadlineSeconds", PInt),
    ],
);
static DEPLOYMENT: Message = m(
    "Deployment",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&DEPLOYMENT_SPEC)),
        (3, "status", Skip),
    ],
);
static REPLICA_SET_SPEC: Message = m(
    "ReplicaSetSpec",
    &[
        (1, "replicas", PInt),
        (2, "selector", Msg(&LABEL_SELECTOR)),
        (3, "template", Msg(&POD_TEMPLATE_SPEC)),
        (4, "minReadySeconds", Int),
    ],
);
static REPLICA_SET: Message = m(
    "ReplicaSet",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&REPLICA_SET_SPEC)),
        (3, "status", Skip),
    ],
);

static ROLLING_UPDATE_DAEMON_SET: Message = m(
    "RollingUpdateDaemonSet",
    &[(1, "maxUnavailable", IntStr), (2, "maxSurge", IntStr)],
);
static DAEMON_SET_UPDATE_STRATEGY: Message = m(
    "DaemonSetUpdateStrategy",
    &[
        (1, "type", Str),
        (2, "rollingUpdate", Msg(&ROLLING_UPDATE_DAEMON_SET)),
    ],
);
static DAEMON_SET_SPEC: Message = m(
    "DaemonSetSpec",
    &[
        (1, "selector", Msg(&LABEL_SELECTOR)),
        (2, "template", Msg(&POD_TEMPLATE_SPEC)),
        (3, "updateStrategy", Msg(&DAEMON_SET_UPDATE_STRATEGY)),
        (4, "minReadySeconds", Int),
        (6, "revisionHistoryLimit", PInt),
    ],
);
static DAEMON_SET: Message = m(
    "DaemonSet",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&DAEMON_SET_SPEC)),
        (3, "status", Skip),
    ],
);
static PVC: Message = m(
    "PersistentVolumeClaim",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&PVC_SPEC)),
        (3, "status", Skip),
    ],
);
static ROLLING_UPDATE_STATEFUL_SET: Message = m(
    "RollingUpdateStatefulSetStrategy",
    &[(1, "partition", PInt), (2, "maxUnavailable", IntStr)],
);
static STATEFUL_SET_UPDATE_STRATEGY: Message = m(
    "StatefulSetUpdateStrategy",
    &[
        (1, "type", Str),
        (2, "rollingUpdate", Msg(&ROLLING_UPDATE_STATEFUL_SET)),
    ],
);
static STATEFUL_SET_PVC_RETENTION: Message = m(
    "StatefulSetPersistentVolumeClaimRetentionPolicy",
    &[(1, "whenDeleted", Str), (2, "whenScaled", Str)],
);
static STATEFUL_SET_ORDINALS: Message = m("StatefulSetOrdinals", &[(1, "start", Int)]);
static STATEFUL_SET_SPEC: Message = m(
    "StatefulSetSpec",
    &[
        (1, "replicas", PInt),
        (2, "selector", Msg(&LABEL_SELECTOR)),
        (3, "template", Msg(&POD_TEMPLATE_SPEC)),
        (4, "volumeClaimTemplates", RepMsg(&PVC)),
        (5, "serviceName", Str),
        (6, "podManagementPolicy", Str),
        (7, "updateStrategy", Msg(&STATEFUL_SET_UPDATE_STRATEGY)),
        (8, "revisionHistoryLimit", PInt),
        (9, "minReadySeconds", Int),
        (
            10,
            "persistentVolumeClaimRetentionPolicy",
            Msg(&STATEFUL_SET_PVC_RETENTION),
        ),
        (11, "ordinals", Msg(&STATEFUL_SET_ORDINALS)),
    ],
);
static STATEFUL_SET: Message = m(
    "StatefulSet",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&STATEFUL_SET_SPEC)),
        (3, "status", Skip),
    ],
);

// --- autoscaling/v2 -------------------------------------------------------------------------

static CROSS_VERSION_OBJECT_REFERENCE: Message = m(
    "CrossVersionObjectReference",
    &[(1, "kind", Str), (2, "name", Str), (3, "apiVersion", Str)],
);
static METRIC_TARGET: Message = m(
    "MetricTarget",
    &[
        (1, "type", Str),
        (2, "value", Qty),
        (3, "averageValue", Qty),
        (4, "averageUtilization", PInt),
    ],
);
static METRIC_IDENTIFIER: Message = m(
    "MetricIdentifier",
    &[(1, "name", Str), (2, "selector", Msg(&LABEL_SELECTOR))],
);
static OBJECT_METRIC_SOURCE: Message = m(
    "ObjectMetricSource",
    &[
        (1, "describedObject", Msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        (2, "target", Msg(&METRIC_TARGET)),
        (3, "metric", Msg(&METRIC_IDENTIFIER)),
    ],
);
static PODS_METRIC_SOURCE: Message = m(
    "PodsMetricSource",
    &[
        (1, "metric", Msg(&METRIC_IDENTIFIER)),
        (2, "target", Msg(&METRIC_TARGET)),
    ],
);
static RESOURCE_METRIC_SOURCE: Message = m(
    "ResourceMetricSource",
    &[(1, "name", Str), (2, "target", Msg(&METRIC_TARGET))],
);
static CONTAINER_RESOURCE_METRIC_SOURCE: Message = m(
    "ContainerResourceMetricSource",
    &[
        (1, "name", Str),
        (2, "target", Msg(&METRIC_TARGET)),
        (3, "container", Str),
    ],
);
static EXTERNAL_METRIC_SOURCE: Message = m(
    "ExternalMetricSource",
    &[
        (1, "metric", Msg(&METRIC_IDENTIFIER)),
        (2, "target", Msg(&METRIC_TARGET)),
    ],
);
static METRIC_SPEC: Message = m(
    "MetricSpec",
    &[
        (1, "type", Str),
        (2, "object", Msg(&OBJECT_METRIC_SOURCE)),
        (3, "pods", Msg(&PODS_METRIC_SOURCE)),
        (4, "resource", Msg(&RESOURCE_METRIC_SOURCE)),
        (5, "external", Msg(&EXTERNAL_METRIC_SOURCE)),
        (
            7,
            "containerResource",
            Msg(&CONTAINER_RESOURCE_METRIC_SOURCE),
        ),
    ],
);
static HPA_SCALING_POLICY: Message = m(
    "HPAScalingPolicy",
    &[
        (1, "type", Str),
        (2, "value", Int),
        (3, "periodSeconds", Int),
    ],
);
static HPA_SCALING_RULES: Message = m(
    "HPAScalingRules",
    &[
        (1, "selectPolicy", PStr),
        (2, "policies", RepMsg(&HPA_SCALING_POLICY)),
        (3, "stabilizationWindowSeconds", PInt),
        (4, "tolerance", Qty),
    ],
);
static HPA_BEHAVIOR: Message = m(
    "HorizontalPodAutoscalerBehavior",
    &[
        (1, "scaleUp", Msg(&HPA_SCALING_RULES)),
        (2, "scaleDown", Msg(&HPA_SCALING_RULES)),
    ],
);
static HPA_SPEC: Message = m(
    "HorizontalPodAutoscalerSpec",
    &[
        (1, "scaleTargetRef", Msg(&CROSS_VERSION_OBJECT_REFERENCE)),
        (2, "minReplicas", PInt),
        (3, "maxReplicas", Int),
        (4, "metrics", RepMsg(&METRIC_SPEC)),
        (5, "behavior", Msg(&HPA_BEHAVIOR)),
    ],
);
static HPA: Message = m(
    "HorizontalPodAutoscaler",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&HPA_SPEC)),
        (3, "status", Skip),
    ],
);

// --- admissionregistration.k8s.io/v1 --------------------------------------------------------

static WEBHOOK_SERVICE_REFERENCE: Message = m(
    "ServiceReference",
    &[
        (1, "namespace", Str),
        (2, "name", Str),
        (3, "path", PStr),
        (4, "port", PInt),
    ],
);
static WEBHOOK_CLIENT_CONFIG: Message = m(
    "WebhookClientConfig",
    &[
        (1, "service", Msg(&WEBHOOK_SERVICE_REFERENCE)),
        (2, "caBundle", Bytes),
        (3, "url", PStr),
    ],
);
static RULE: Message = m(
    "Rule",
    &[
        (1, "apiGroups", RepStr),
        (2, "apiVersions", RepStr),
        (3, "resources", RepStr),
        (4, "scope", PStr),
    ],
);
static RULE_WITH_OPERATIONS: Message = m(
    "RuleWithOperations",
    &[(1, "operations", RepStr), (2, "rule", Inline(&RULE))],
);
static MATCH_CONDITION: Message = m(
    "MatchCondition",
    &[(1, "name", Str), (2, "expression", Str)],
);
static MUTATING_WEBHOOK: Message = m(
    "MutatingWebhook",
    &[
        (1, "name", Str),
        (2, "clientConfig", Msg(&WEBHOOK_CLIENT_CONFIG)),
        (3, "rules", RepMsg(&RULE_WITH_OPERATIONS)),
        (4, "failurePolicy", PStr),
        (5, "namespaceSelector", Msg(&LABEL_SELECTOR)),
        (6, "sideEffects", PStr),
        (7, "timeoutSeconds", PInt),
        (8, "admissionReviewVersions", RepStr),
        (9, "matchPolicy", PStr),
        (10, "reinvocationPolicy", PStr),
        (11, "objectSelector", Msg(&LABEL_SELECTOR)),
        (12, "matchConditions", RepMsg(&MATCH_CONDITION)),
    ],
);
static VALIDATING_WEBHOOK: Message = m(
    "ValidatingWebhook",
    &[
        (1, "name", Str),
        (2, "clientConfig", Msg(&WEBHOOK_CLIENT_CONFIG)),
        (3, "rules", RepMsg(&RULE_WITH_OPERATIONS)),
        (4, "failurePolicy", PStr),
        (5, "namespaceSelector", Msg(&LABEL_SELECTOR)),
        (6, "sideEffects", PStr),
        (7, "timeoutSeconds", PInt),
        (8, "admissionReviewVersions", RepStr),
        (9, "matchPolicy", PStr),
        (10, "objectSelector", Msg(&LABEL_SELECTOR)),
        (11, "matchConditions", RepMsg(&MATCH_CONDITION)),
    ],
);
static MUTATING_WEBHOOK_CONFIGURATION: Message = m(
    "MutatingWebhookConfiguration",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "webhooks", RepMsg(&MUTATING_WEBHOOK)),
    ],
);
static VALIDATING_WEBHOOK_CONFIGURATION: Message = m(
    "ValidatingWebhookConfiguration",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "webhooks", RepMsg(&VALIDATING_WEBHOOK)),
    ],
);

// --- rbac.authorization.k8s.io/v1 -----------------------------------------------------------

static POLICY_RULE: Message = m(
    "PolicyRule",
    &[
        (1, "verbs", RepStr),
        (2, "apiGroups", RepStr),
        (3, "resources", RepStr),
        (4, "resourceNames", RepStr),
        (5, "nonResourceURLs", RepStr),
    ],
);
static AGGREGATION_RULE: Message = m(
    "AggregationRule",
    &[(1, "clusterRoleSelectors", RepMsg(&LABEL_SELECTOR))],
);
static ROLE: Message = m(
    "Role",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "rules", RepMsg(&POLICY_RULE)),
    ],
);
static CLUSTER_ROLE: Message = m(
    "ClusterRole",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "rules", RepMsg(&POLICY_RULE)),
        (3, "aggregationRule", Msg(&AGGREGATION_RULE)),
    ],
);
static SUBJECT: Message = m(
    "Subject",
    &[
        (1, "kind", Str),
        (2, "apiGroup", Str),
        (3, "name", Str),
        (4, "namespace", Str),
    ],
);
static ROLE_REF: Message = m(
    "RoleRef",
    &[(1, "apiGroup", Str), (2, "kind", Str), (3, "name", Str)],
);
static BINDING: Message = m(
    "RoleBinding",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "subjects", RepMsg(&SUBJECT)),
        (3, "roleRef", Msg(&ROLE_REF)),
    ],
);

// --- discovery.k8s.io/v1 --------------------------------------------------------------------

static ENDPOINT_CONDITIONS: Message = m(
    "EndpointConditions",
    &[
        (1, "ready", PBool),
        (2, "serving", PBool),
        (3, "terminating", PBool),
    ],
);
static FOR_ZONE: Message = m("ForZone", &[(1, "name", Str)]);
static FOR_NODE: Message = m("ForNode", &[(1, "name", Str)]);
static ENDPOINT_HINTS: Message = m(
    "EndpointHints",
    &[
        (1, "forZones", RepMsg(&FOR_ZONE)),
        (2, "forNodes", RepMsg(&FOR_NODE)),
    ],
);
static ENDPOINT: Message = m(
    "Endpoint",
    &[
        (1, "addresses", RepStr),
        (2, "conditions", Msg(&ENDPOINT_CONDITIONS)),
        (3, "hostname", PStr),
        (4, "targetRef", Msg(&OBJECT_REFERENCE)),
        (5, "deprecatedTopology", MapStr),
        (6, "nodeName", PStr),
        (7, "zone", PStr),
        (8, "hints", Msg(&ENDPOINT_HINTS)),
    ],
);
static SLICE_PORT: Message = m(
    "EndpointPort",
    &[
        (1, "name", PStr),
        (2, "protocol", PStr),
        (3, "port", PInt),
        (4, "appProtocol", PStr),
    ],
);
static ENDPOINT_SLICE: Message = m(
    "EndpointSlice",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "endpoints", RepMsg(&ENDPOINT)),
        (3, "ports", RepMsg(&SLICE_PORT)),
        (4, "addressType", Str),
    ],
);

// --- policy/v1 ------------------------------------------------------------------------------

static PDB_SPEC: Message = m(
    "PodDisruptionBudgetSpec",
    &[
        (1, "minAvailable", IntStr),
        (2, "selector", Msg(&LABEL_SELECTOR)),
        (3, "maxUnavailable", IntStr),
        (4, "unhealthyPodEvictionPolicy", PStr),
    ],
);
static PDB: Message = m(
    "PodDisruptionBudget",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&PDB_SPEC)),
        (3, "status", Skip),
    ],
);

// --- batch/v1 (the rotation job) -------------------------------------------------------------

static JOB_SPEC: Message = m(
    "JobSpec",
    &[
        (1, "parallelism", PInt),
        (2, "completions", PInt),
        (3, "activeDeadlineSeconds", PInt),
        (4, "selector", Msg(&LABEL_SELECTOR)),
        (5, "manualSelector", PBool),
        (6, "template", Msg(&POD_TEMPLATE_SPEC)),
        (7, "backoffLimit", PInt),
        (8, "ttlSecondsAfterFinished", PInt),
        (9, "completionMode", PStr),
        (10, "suspend", PBool),
        (11, "podFailurePolicy", Skip),
        (12, "backoffLimitPerIndex", PInt),
        (13, "maxFailedIndexes", PInt),
        (14, "podReplacementPolicy", PStr),
    ],
);
static JOB: Message = m(
    "Job",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&JOB_SPEC)),
        (3, "status", Skip),
    ],
);
static JOB_TEMPLATE_SPEC: Message = m(
    "JobTemplateSpec",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&JOB_SPEC)),
    ],
);
static CRON_JOB_SPEC: Message = m(
    "CronJobSpec",
    &[
        (1, "schedule", Str),
        (2, "startingDeadlineSeconds", PInt),
        (3, "concurrencyPolicy", Str),
        (4, "suspend", PBool),
        (5, "jobTemplate", Msg(&JOB_TEMPLATE_SPEC)),
        (6, "successfulJobsHistoryLimit", PInt),
        (7, "failedJobsHistoryLimit", PInt),
        (8, "timeZone", PStr),
    ],
);
static CRON_JOB: Message = m(
    "CronJob",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&CRON_JOB_SPEC)),
        (3, "status", Skip),
    ],
);

// --- authentication.k8s.io/v1 and authorization.k8s.io/v1 (answered, never stored) ---------

static BOUND_OBJECT_REFERENCE: Message = m(
    "BoundObjectReference",
    &[
        (1, "kind", Str),
        (2, "apiVersion", Str),
        (3, "name", Str),
        (4, "uid", Str),
    ],
);
static TOKEN_REQUEST_SPEC: Message = m(
    "TokenRequestSpec",
    &[
        (1, "audiences", RepStr),
        (3, "boundObjectRef", Msg(&BOUND_OBJECT_REFERENCE)),
        (4, "expirationSeconds", PInt),
    ],
);
static TOKEN_REQUEST: Message = m(
    "TokenRequest",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&TOKEN_REQUEST_SPEC)),
        (3, "status", Skip),
    ],
);
static TOKEN_REVIEW_SPEC: Message = m(
    "TokenReviewSpec",
    &[(1, "token", Str), (2, "audiences", RepStr)],
);
static TOKEN_REVIEW: Message = m(
    "TokenReview",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&TOKEN_REVIEW_SPEC)),
        (3, "status", Skip),
    ],
);
static FIELD_SELECTOR_ATTRIBUTES: Message = m(
    "FieldSelectorAttributes",
    &[(1, "rawSelector", Str), (2, "requirements", Skip)],
);
static LABEL_SELECTOR_ATTRIBUTES: Message = m(
    "LabelSelectorAttributes",
    &[(1, "rawSelector", Str), (2, "requirements", Skip)],
);
static RESOURCE_ATTRIBUTES: Message = m(
    "ResourceAttributes",
    &[
        (1, "namespace", Str),
        (2, "verb", Str),
        (3, "group", Str),
        (4, "version", Str),
        (5, "resource", Str),
        (6, "subresource", Str),
        (7, "name", Str),
        (8, "fieldSelector", Msg(&FIELD_SELECTOR_ATTRIBUTES)),
        (9, "labelSelector", Msg(&LABEL_SELECTOR_ATTRIBUTES)),
    ],
);
static NON_RESOURCE_ATTRIBUTES: Message = m(
    "NonResourceAttributes",
    &[(1, "path", Str), (2, "verb", Str)],
);
static SUBJECT_ACCESS_REVIEW_SPEC: Message = m(
    "SubjectAccessReviewSpec",
    &[
        (1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        (2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
        (3, "user", Str),
        (4, "groups", RepStr),
        (5, "extra", MapStrList),
        (6, "uid", Str),
    ],
);
static SUBJECT_ACCESS_REVIEW: Message = m(
    "SubjectAccessReview",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&SUBJECT_ACCESS_REVIEW_SPEC)),
        (3, "status", Skip),
    ],
);
static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = m(
    "SelfSubjectAccessReviewSpec",
    &[
        (1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        (2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
);
static SELF_SUBJECT_ACCESS_REVIEW: Message = m(
    "SelfSubjectAccessReview",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
        (3, "status", Skip),
    ],
);
static SELF_SUBJECT_RULES_REVIEW_SPEC: Message =
    m("SelfSubjectRulesReviewSpec", &[(1, "namespace", Str)]);
static SELF_SUBJECT_RULES_REVIEW: Message = m(
    "SelfSubjectRulesReview",
    &[
        (1, "metadata", Msg(&OBJECT_META)),
        (2, "spec", Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC)),
        (3, "status", Skip),
    ],
);

/// The table of a top-level kind, by the envelope's `apiVersion` and `kind`.
pub(super) fn table(api_version: &str, kind: &str) -> Option<&'static Message> {
    let t: &'static Message = match (api_version, kind) {
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "Secret") => &SECRET,
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("v1", "Service") => &SERVICE,
        ("v1", "Endpoints") => &ENDPOINTS,
        ("v1", "Pod") => &POD,
        ("v1", "Node") => &NODE,
        ("apps/v1", "Deployment") => &DEPLOYMENT,
        ("apps/v1", "ReplicaSet") => &REPLICA_SET,
        ("apps/v1", "DaemonSet") => &DAEMON_SET,
        ("apps/v1", "StatefulSet") => &STATEFUL_SET,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => &HPA,
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            &MUTATING_WEBHOOK_CONFIGURATION
        }
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            &VALIDATING_WEBHOOK_CONFIGURATION
        }
        ("rbac.authorization.k8s.io/v1", "Role") => &ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => &CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => &BINDING,
        ("discovery.k8s.io/v1", "EndpointSlice") => &ENDPOINT_SLICE,
        ("policy/v1", "PodDisruptionBudget") => &PDB,
        ("batch/v1", "Job") => &JOB,
        ("batch/v1", "CronJob") => &CRON_JOB,
        ("authentication.k8s.io/v1", "TokenRequest") => &TOKEN_REQUEST,
        ("authentication.k8s.io/v1", "TokenReview") => &TOKEN_REVIEW,
        ("authorization.k8s.io/v1", "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            &SUBJECT_ACCESS_REVIEW
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => &SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => &SELF_SUBJECT_RULES_REVIEW,
        _ => return None,
    };
    Some(t)
}
