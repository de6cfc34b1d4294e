//! The identity another cluster's istiod uses to read this one (`reference/istio.md` §3.4): the
//! reader ServiceAccount, its ClusterRole/ClusterRoleBinding, and the long-lived token Secret
//! `istioctl create-remote-secret` would create (§3.2 step 4).
//!
//! The ServiceAccount and RBAC are the very objects the `istio/base` and `istio/istiod` charts
//! install, with the same names, labels and rules, so applying them after Helm changes nothing
//! and server-side apply meets no conflicting values.

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::{RenderError, string_map, to_value};
use crate::spec::{ClusterSpec, MeshSpec, Role};

/// The reader ServiceAccount's name.
pub const SERVICE_ACCOUNT: &str = "istio-reader-service-account";
/// The token Secret's name (`<sa>-istio-remote-secret-token`, as istioctl names it).
pub const TOKEN_SECRET: &str = "istio-reader-service-account-istio-remote-secret-token";

/// `istio-reader-clusterrole-<namespace>`: the ClusterRole and ClusterRoleBinding name.
///
/// ```
/// assert_eq!(mesh_core::render::reader::cluster_role_name("istio-system"), "istio-reader-clusterrole-istio-system");
/// ```
pub fn cluster_role_name(istio_namespace: &str) -> String {
    format!("istio-reader-clusterrole-{istio_namespace}")
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        verbs: owned(verbs),
        ..Default::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];

/// Istio's reader rules (§3.4). A remote of a primary-remote mesh also lets its primary's istiod
/// manage its webhooks and ConfigMaps (the chart's `istiodRemote.enabled` rules).
pub fn rules(remote: bool) -> Vec<PolicyRule> {
    let mut r = vec![
        rule(
            &[
                "config.istio.io",
                "security.istio.io",
                "networking.istio.io",
                "authentication.istio.io",
                "rbac.istio.io",
                "telemetry.istio.io",
                "extensions.istio.io",
            ],
            &["*"],
            READ,
        ),
        rule(
            &[""],
            &[
                "endpoints",
                "pods",
                "services",
                "nodes",
                "replicationcontrollers",
                "namespaces",
                "secrets",
                "configmaps",
            ],
            READ,
        ),
        rule(&["networking.istio.io"], &["workloadentries"], READ),
        rule(
            &["networking.x-k8s.io", "gateway.networking.k8s.io"],
            &["gateways"],
            READ,
        ),
        rule(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            READ,
        ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(
            &["multicluster.x-k8s.io"],
            &["serviceexports"],
            &["get", "list", "watch", "create", "delete"],
        ),
        rule(&["multicluster.x-k8s.io"], &["serviceimports"], READ),
        rule(&["apps"], &["replicasets"], READ),
        rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
        rule(
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
            &["create"],
        ),
    ];
    if remote {
        r.push(rule(
            &[""],
            &["configmaps"],
            &["create", "get", "list", "watch", "update"],
        ));
        r.push(rule(
            &["admissionregistration.k8s.io"],
            &["mutatingwebhookconfigurations"],
            &["get", "list", "watch", "update", "patch"],
        ));
        r.push(rule(
            &["admissionregistration.k8s.io"],
            &["validatingwebhookconfigurations"],
            &["get", "list", "watch", "update"],
        ));
    }
    r
}

/// ServiceAccount, ClusterRole, ClusterRoleBinding and token Secret, in that order (the token
/// controller fills the Secret only once the ServiceAccount exists).
///
/// ```
/// use mesh_core::{render::reader::reader, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let objs = reader(&spec, &spec.clusters[0])?;
/// assert_eq!(objs[3]["type"], "kubernetes.io/service-account-token");
/// assert_eq!(objs[3]["metadata"]["annotations"]["kubernetes.io/service-account.name"], "istio-reader-service-account");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn reader(spec: &MeshSpec, cluster: &ClusterSpec) -> Result<Vec<Value>, RenderError> {
    let ns = spec.istio_namespace.as_str();
    let role_name = cluster_role_name(ns);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(SERVICE_ACCOUNT.into()),
            namespace: Some(ns.into()),
            labels: Some(string_map([
                ("app", "istio-reader"),
                ("app.kubernetes.io/name", "istio-reader"),
                ("release", "istio-base"),
            ])),
            ..Default::default()
        },
        ..Default::default()
    };
    let rbac_labels = string_map([
        ("app", "istio-reader"),
        ("app.kubernetes.io/name", "istio-reader"),
        ("release", "istiod"),
    ]);
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            labels: Some(rbac_labels.clone()),
            ..Default::default()
        },
        rules: Some(rules(cluster.role == Role::Remote)),
        ..Default::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            labels: Some(rbac_labels),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role_name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: SERVICE_ACCOUNT.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    let token = Secret {
        metadata: ObjectMeta {
            name: Some(TOKEN_SECRET.into()),
            namespace: Some(ns.into()),
            annotations: Some(string_map([(
                "kubernetes.io/service-account.name",
                SERVICE_ACCOUNT,
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/service-account-token".into()),
        ..Default::default()
    };
    Ok(vec![
        to_value(cluster, "ServiceAccount/istio-reader-service-account", &sa)?,
        to_value(cluster, &format!("ClusterRole/{role_name}"), &role)?,
        to_value(
            cluster,
            &format!("ClusterRoleBinding/{role_name}"),
            &binding,
        )?,
        to_value(
            cluster,
            "Secret/istio-reader-service-account-istio-remote-secret-token",
            &token,
        )?,
    ])
}
