//! The identity another cluster's istiod uses to read this one (`reference/istio.md` §3.4), in
//! the shapes meshboot writes (decision 1 of the team brief: meshboot never creates an object a
//! chart owns, so a later `helm install` of Istio's charts never meets a conflict):
//!
//! - [`ReaderIdentity::Chart`]: the charts' ServiceAccount `istio-reader-service-account`
//!   (`istio/base`) and ClusterRole/Binding `istio-reader-clusterrole-<ns>` (`istio/istiod`) are
//!   used as they are; meshboot writes only the long-lived token Secret istioctl would create
//!   (§3.2 step 4), which no chart makes.
//! - [`ReaderIdentity::Meshboot`]: meshboot's own identity under names no chart uses:
//!   ServiceAccount `meshboot-reader`, ClusterRole + ClusterRoleBinding `meshboot-reader-<ns>`
//!   with Istio's reader rules (plus the remote extras on a primary-remote remote) and token
//!   Secret `meshboot-reader-token`. For clusters where Istio was installed by someone else and
//!   the chart's ServiceAccount is absent.
//!
//! [`istioctl_objects`] is the separate set `meshboot remote-secret --create-service-account`
//! creates, exactly what istioctl renders from the charts for that flag (§3.2 step 3).

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::{RenderError, string_map, to_value};
use crate::spec::{ClusterSpec, MeshSpec, Role};

/// The charts' reader ServiceAccount (`istio/base`).
pub const SERVICE_ACCOUNT: &str = "istio-reader-service-account";
/// The token Secret of the charts' reader (`<sa>-istio-remote-secret-token`, as istioctl names
/// it).
pub const TOKEN_SECRET: &str = "istio-reader-service-account-istio-remote-secret-token";
/// meshboot's own reader ServiceAccount, for clusters whose Istio has no reader account.
pub const MESHBOOT_SERVICE_ACCOUNT: &str = "meshboot-reader";
/// The token Secret of meshboot's own reader.
pub const MESHBOOT_TOKEN_SECRET: &str = "meshboot-reader-token";

/// Which reader identity a cluster gets (see the module docs).
///
/// ```
/// use mesh_core::render::reader::ReaderIdentity;
/// assert_eq!(ReaderIdentity::Chart.service_account(), "istio-reader-service-account");
/// assert_eq!(ReaderIdentity::Meshboot.token_secret(), "meshboot-reader-token");
/// assert_eq!(ReaderIdentity::Meshboot.cluster_role("istio-system"), "meshboot-reader-istio-system");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReaderIdentity {
    /// The charts' reader; meshboot writes only its token Secret.
    #[default]
    Chart,
    /// meshboot's own ServiceAccount, RBAC and token, under names no chart uses.
    Meshboot,
}

impl ReaderIdentity {
    /// The ServiceAccount the remote secrets' token belongs to.
    pub fn service_account(self) -> &'static str {
        match self {
            ReaderIdentity::Chart => SERVICE_ACCOUNT,
            ReaderIdentity::Meshboot => MESHBOOT_SERVICE_ACCOUNT,
        }
    }

    /// The long-lived token Secret meshboot writes for that ServiceAccount.
    pub fn token_secret(self) -> &'static str {
        match self {
            ReaderIdentity::Chart => TOKEN_SECRET,
            ReaderIdentity::Meshboot => MESHBOOT_TOKEN_SECRET,
        }
    }

    /// The ClusterRole and ClusterRoleBinding name of this identity in `istio_namespace`.
    pub fn cluster_role(self, istio_namespace: &str) -> String {
        match self {
            ReaderIdentity::Chart => cluster_role_name(istio_namespace),
            ReaderIdentity::Meshboot => format!("{MESHBOOT_SERVICE_ACCOUNT}-{istio_namespace}"),
        }
    }
}

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

/// The reader objects meshboot writes for `cluster` with `identity`, in apply order (the token
/// controller fills the token Secret only once its ServiceAccount exists): the token Secret
/// alone for [`ReaderIdentity::Chart`]; ServiceAccount, ClusterRole, ClusterRoleBinding and
/// token for [`ReaderIdentity::Meshboot`]. With `readerToken.ttl` there is no token Secret: one
/// bound object per destination ([`crate::tokens::bound_object`]) takes its place.
///
/// ```
/// use mesh_core::{render::reader::{ReaderIdentity, reader_objects}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let chart = reader_objects(&spec, &spec.clusters[0], ReaderIdentity::Chart)?;
/// assert_eq!(chart.len(), 1, "only the token: the charts own the account and its RBAC");
/// assert_eq!(chart[0]["metadata"]["annotations"]["kubernetes.io/service-account.name"], "istio-reader-service-account");
/// let own = reader_objects(&spec, &spec.clusters[0], ReaderIdentity::Meshboot)?;
/// let names: Vec<_> = own.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
/// assert_eq!(names, ["meshboot-reader", "meshboot-reader-istio-system", "meshboot-reader-istio-system", "meshboot-reader-token"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn reader_objects(
    spec: &MeshSpec,
    cluster: &ClusterSpec,
    identity: ReaderIdentity,
) -> Result<Vec<Value>, RenderError> {
    let ns = spec.istio_namespace.as_str();
    let sa_name = identity.service_account();
    let token_name = identity.token_secret();
    let token = Secret {
        metadata: ObjectMeta {
            name: Some(token_name.into()),
            namespace: Some(ns.into()),
            annotations: Some(string_map([(
                "kubernetes.io/service-account.name",
                sa_name,
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/service-account-token".into()),
        ..Default::default()
    };
    let token = to_value(cluster, &format!("Secret/{token_name}"), &token)?;
    let remote = cluster.role == Role::Remote;
    let mut out = match identity {
        ReaderIdentity::Chart => Vec::new(),
        ReaderIdentity::Meshboot => {
            let role_name = identity.cluster_role(ns);
            let labels = string_map([
                ("app.kubernetes.io/name", MESHBOOT_SERVICE_ACCOUNT),
                ("app.kubernetes.io/managed-by", "meshboot"),
            ]);
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(sa_name.into()),
                    namespace: Some(ns.into()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let (role, binding) = rbac(&role_name, labels, sa_name, ns, rules(remote));
            vec![
                to_value(cluster, &format!("ServiceAccount/{sa_name}"), &sa)?,
                to_value(cluster, &format!("ClusterRole/{role_name}"), &role)?,
                to_value(
                    cluster,
                    &format!("ClusterRoleBinding/{role_name}"),
                    &binding,
                )?,
            ]
        }
    };
    match spec.reader_token {
        None => out.push(token),
        // Bound tokens: no long-lived token Secret, one object per destination instead, each
        // what that destination's tokens are bound to (crate::tokens).
        Some(_) => out.extend(
            spec.remote_secret_pairs()
                .iter()
                .filter(|(src, _)| *src == cluster.name)
                .map(|(_, dst)| crate::tokens::bound_object(ns, sa_name, dst)),
        ),
    }
    Ok(out)
}

/// What `meshboot remote-secret --create-service-account` creates when the reader account is
/// missing, as istioctl does: the namespace, then the charts' reader ServiceAccount, ClusterRole
/// and ClusterRoleBinding rendered with the charts' default values (so without the remote
/// extras), with the charts' names and labels.
///
/// ```
/// let objs = mesh_core::render::reader::istioctl_objects("istio-system");
/// let kinds: Vec<_> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
/// assert_eq!(kinds, ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"]);
/// assert_eq!(objs[2]["metadata"]["name"], "istio-reader-clusterrole-istio-system");
/// ```
pub fn istioctl_objects(namespace: &str) -> Vec<Value> {
    let mut out = vec![serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace},
    })];
    // Typed objects of fixed, valid content: serializing them cannot fail, and a failure would
    // only drop an object, which the caller's existence check then reports.
    out.extend(
        chart_identity(namespace, rules(false))
            .into_iter()
            .filter_map(|(_, v)| v.ok()),
    );
    out
}

/// The charts' ServiceAccount, ClusterRole and ClusterRoleBinding with the charts' labels.
fn chart_identity(
    ns: &str,
    rules: Vec<PolicyRule>,
) -> Vec<(String, Result<Value, serde_json::Error>)> {
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
    let (role, binding) = rbac(&role_name, rbac_labels, SERVICE_ACCOUNT, ns, rules);
    vec![
        (
            format!("ServiceAccount/{SERVICE_ACCOUNT}"),
            serde_json::to_value(&sa),
        ),
        (
            format!("ClusterRole/{role_name}"),
            serde_json::to_value(&role),
        ),
        (
            format!("ClusterRoleBinding/{role_name}"),
            serde_json::to_value(&binding),
        ),
    ]
}

fn rbac(
    name: &str,
    labels: std::collections::BTreeMap<String, String>,
    service_account: &str,
    ns: &str,
    rules: Vec<PolicyRule>,
) -> (ClusterRole, ClusterRoleBinding) {
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        rules: Some(rules),
        ..Default::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: service_account.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    (role, binding)
}
