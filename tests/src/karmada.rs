//! An emulated cluster acting as a Karmada API server (`reference/karmada.md`).
//!
//! [`crate::EmulatedCluster::make_karmada_hub`] registers the `Cluster` kind
//! (`cluster.karmada.io/v1alpha1`, cluster-scoped) with a CRD written here — the real hub serves it
//! through Karmada's aggregated API server, with the same fields — and creates the namespace
//! `karmada-cluster` that holds the members' credentials.
//!
//! [`crate::EmulatedCluster::register_karmada_member`] registers another emulated cluster the way
//! `karmadactl join` (Push) or `karmadactl register` (Pull) leaves things:
//! - **Push**: in the member, namespace `karmada-cluster`, ServiceAccount `karmada-<name>` bound
//!   to a ClusterRole `karmada-controller-manager:karmada-<name>` allowing `*` on `*/*` (and every
//!   non-resource URL), and its token Secret; in the hub, Secret `karmada-cluster/<name>` with
//!   `data.token` (that token: it really authenticates to the member with full rights) and
//!   `data.caBundle` (the member's serving CA), referenced by `spec.secretRef`.
//! - **Pull**: no credentials in the hub and no `secretRef` (an agent in the member reaches the
//!   hub instead).
//! - The `Cluster` object: `spec.apiEndpoint` (the member's URL), `spec.id` (its `kube-system`
//!   UID), `spec.syncMode`, `spec.region`, `spec.zone`/`spec.zones`, `spec.provider`, and a status
//!   as karmada-controller-manager reports it: `kubernetesVersion` and a `Ready` condition
//!   (`ClusterReady` / `ClusterNotReachable`), changed with
//!   [`crate::EmulatedCluster::set_karmada_member_ready`].
//!
//! PropagationPolicy and OverridePolicy use Karmada's real CRDs from
//! `../shared/data/karmada/` ([`POLICY_CRDS`]), installed with
//! [`crate::EmulatedCluster::install_karmada_policy_crds`], so rendered policies meet the real
//! schema ([`crate::schema`]).

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::EmulatedCluster;

/// The namespace of the members' credential Secrets in the hub (and of the join identity in a
/// member).
pub const CREDENTIALS_NAMESPACE: &str = "karmada-cluster";

/// Karmada's policy CRDs, relative to the shared data directory.
pub const POLICY_CRDS: &[&str] = &[
    "karmada/policy.karmada.io_propagationpolicies.yaml",
    "karmada/policy.karmada.io_overridepolicies.yaml",
];

/// The `Cluster` kind as a CRD (fields of Karmada v1.19's `pkg/apis/cluster/v1alpha1/types.go`).
pub const CLUSTER_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clusters.cluster.karmada.io
spec:
  group: cluster.karmada.io
  scope: Cluster
  names: {plural: clusters, singular: cluster, kind: Cluster}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [syncMode]
            properties:
              id: {type: string}
              syncMode: {type: string, enum: [Push, Pull]}
              apiEndpoint: {type: string}
              secretRef:
                type: object
                required: [namespace, name]
                properties:
                  namespace: {type: string}
                  name: {type: string}
              impersonatorSecretRef:
                type: object
                required: [namespace, name]
                properties:
                  namespace: {type: string}
                  name: {type: string}
              insecureSkipTLSVerification: {type: boolean}
              proxyURL: {type: string}
              proxyHeader:
                type: object
                additionalProperties: {type: string}
              provider: {type: string}
              region: {type: string}
              zone: {type: string}
              zones:
                type: array
                items: {type: string}
              taints:
                type: array
                items:
                  type: object
                  required: [key, effect]
                  properties:
                    key: {type: string}
                    value: {type: string}
                    effect: {type: string}
                    timeAdded: {type: string, format: date-time}
              resourceModels:
                type: array
                items:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

/// How a member is joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// The hub reaches the member with credentials it holds.
    Push,
    /// An agent in the member reaches the hub; the hub holds no credentials.
    Pull,
}

impl SyncMode {
    fn as_str(self) -> &'static str {
        match self {
            SyncMode::Push => "Push",
            SyncMode::Pull => "Pull",
        }
    }
}

/// What a member's `Cluster` object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `Push` or `Pull`.
    pub sync_mode: SyncMode,
    /// `spec.region` (the reference setup: `eu-west`, `ap-south`, `us-west`).
    pub region: Option<String>,
    /// `spec.zone` (also `spec.zones: [zone]`).
    pub zone: Option<String>,
    /// `spec.provider`.
    pub provider: Option<String>,
    /// `status.conditions[type=Ready]`.
    pub ready: bool,
    /// Labels on the `Cluster` (what a `clusterSelector` matches).
    pub labels: Vec<(String, String)>,
}

impl Member {
    /// A Ready member joined in `mode`, without region or zone.
    pub fn new(sync_mode: SyncMode) -> Member {
        Member {
            sync_mode,
            region: None,
            zone: None,
            provider: None,
            ready: true,
            labels: Vec::new(),
        }
    }

    /// With `spec.region`.
    pub fn region(mut self, region: &str) -> Member {
        self.region = Some(region.into());
        self
    }

    /// With `spec.zone` / `spec.zones`.
    pub fn zone(mut self, zone: &str) -> Member {
        self.zone = Some(zone.into());
        self
    }

    /// With a label on the `Cluster` object.
    pub fn label(mut self, key: &str, value: &str) -> Member {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Registered NotReady.
    pub fn not_ready(mut self) -> Member {
        self.ready = false;
        self
    }
}

/// The `Ready` condition karmada-controller-manager's cluster status controller sets.
pub fn ready_condition(ready: bool) -> Value {
    let (status, reason, message) = if ready {
        (
            "True",
            "ClusterReady",
            "cluster is healthy and ready to accept workloads",
        )
    } else {
        ("False", "ClusterNotReachable", "cluster is not reachable")
    };
    json!({"type": "Ready", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": crate::store::now_rfc3339()})
}

fn ensure_namespace(c: &EmulatedCluster, name: &str) -> anyhow::Result<()> {
    if c.object("v1", "Namespace", None, name).is_none() {
        c.insert_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )?;
    }
    Ok(())
}

/// ClusterPropagationPolicy and ClusterOverridePolicy as CRDs, made from Karmada's real
/// namespaced ones in `../shared/data/karmada/`: Karmada's types give the cluster-scoped kinds
/// the very same spec (`ClusterPropagationPolicy.Spec` is a `PropagationSpec`,
/// `ClusterOverridePolicy.Spec` an `OverrideSpec`, `pkg/apis/policy/v1alpha1`), so only the
/// names and the scope change. `None` when the shared files are absent.
pub fn cluster_policy_crds() -> anyhow::Result<Option<Vec<Value>>> {
    let mut out = Vec::new();
    for (rel, kind, plural, short) in [
        (
            POLICY_CRDS[0],
            "ClusterPropagationPolicy",
            "clusterpropagationpolicies",
            "cpp",
        ),
        (
            POLICY_CRDS[1],
            "ClusterOverridePolicy",
            "clusteroverridepolicies",
            "cop",
        ),
    ] {
        let Some(path) = crate::tools::shared_data(rel) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for mut crd in crate::crds::parse(&text)? {
            crd["metadata"] = json!({"name": format!("{plural}.policy.karmada.io")});
            crd["spec"]["scope"] = json!("Cluster");
            crd["spec"]["names"] = json!({
                "kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                "singular": kind.to_ascii_lowercase(), "shortNames": [short],
                "categories": ["karmada-io"],
            });
            out.push(crd);
        }
    }
    Ok(Some(out))
}

pub(crate) fn make_hub(hub: &EmulatedCluster) -> anyhow::Result<()> {
    hub.install_crds_yaml(CLUSTER_CRD)
        .context("registering the Karmada Cluster kind")?;
    ensure_namespace(hub, CREDENTIALS_NAMESPACE)
}

/// The join identity `karmadactl join` creates in a Push member; returns its token.
fn join_identity(member: &EmulatedCluster, name: &str) -> anyhow::Result<String> {
    ensure_namespace(member, CREDENTIALS_NAMESPACE)?;
    let sa = format!("karmada-{name}");
    let role = format!("karmada-controller-manager:{sa}");
    member.insert_object(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": sa, "namespace": CREDENTIALS_NAMESPACE}}))?;
    member.insert_object(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": role},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["get"]},
        ]}),
    )?;
    member.insert_object(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": CREDENTIALS_NAMESPACE}]}),
    )?;
    member.insert_object(json!({"apiVersion": "v1", "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {"name": sa, "namespace": CREDENTIALS_NAMESPACE,
            "annotations": {"kubernetes.io/service-account.name": sa}}}))?;
    // The token controller fills the Secret asynchronously, as on a real member.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let token = member
            .object("v1", "Secret", Some(CREDENTIALS_NAMESPACE), &sa)
            .and_then(|s| s["data"]["token"].as_str().map(str::to_string));
        if let Some(b64) = token {
            return Ok(String::from_utf8(STANDARD.decode(b64)?)?);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "cluster {}: the token controller did not fill {CREDENTIALS_NAMESPACE}/{sa}",
            member.name()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn register(
    hub: &EmulatedCluster,
    member: &EmulatedCluster,
    how: &Member,
) -> anyhow::Result<Value> {
    let name = member.name().to_string();
    let mut spec = json!({
        "id": member.kube_system_uid().unwrap_or_default(),
        "syncMode": how.sync_mode.as_str(),
        "apiEndpoint": member.url(),
    });
    if how.sync_mode == SyncMode::Push {
        let token = join_identity(member, &name)?;
        hub.insert_object(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": CREDENTIALS_NAMESPACE},
            "data": {"token": STANDARD.encode(token), "caBundle": STANDARD.encode(member.ca_pem())}}))?;
        spec["secretRef"] = json!({"namespace": CREDENTIALS_NAMESPACE, "name": name});
    }
    if let Some(r) = &how.region {
        spec["region"] = json!(r);
    }
    if let Some(z) = &how.zone {
        spec["zone"] = json!(z);
        spec["zones"] = json!([z]);
    }
    if let Some(p) = &how.provider {
        spec["provider"] = json!(p);
    }
    let labels: serde_json::Map<String, Value> = how
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    hub.insert_object(json!({
        "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "kubernetesVersion": crate::server::GIT_VERSION,
            "conditions": [ready_condition(how.ready)],
        },
    }))
}

pub(crate) fn set_ready(hub: &EmulatedCluster, member: &str, ready: bool) -> anyhow::Result<()> {
    let mut c = hub
        .object("cluster.karmada.io/v1alpha1", "Cluster", None, member)
        .with_context(|| format!("hub {}: no Cluster {member}", hub.name()))?;
    c["status"]["conditions"] = json!([ready_condition(ready)]);
    hub.insert_object(c)?;
    Ok(())
}

/// Writes a kubeconfig at `path` with contexts for `names` only, as a user of a Karmada fleet
/// has one: the hub's context and those of the members they reach themselves. A test that
/// leaves a Push member out proves it is reached with the hub's credentials alone.
pub fn write_kubeconfig_for(
    clusters: &crate::TestClusters,
    names: &[&str],
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let entries: Vec<crate::kubeconfig::Entry<'_>> = names
        .iter()
        .map(|n| {
            let c = clusters.cluster(n);
            crate::kubeconfig::Entry {
                name: c.name(),
                server: c.url(),
                ca_pem: c.ca_pem(),
                token: c.admin_token(),
            }
        })
        .collect();
    crate::kubeconfig::write(path, &entries)
}
