//! Phases and steps across clusters, as data (DESIGN §4). The executor runs a plan; nothing here
//! talks to a cluster.
//!
//! A [`Plan`] is built from the validated [`MeshSpec`] and the objects [`render`](crate::render)
//! produced for every cluster. It is an ordered list of [`Step`]s, each naming its phase, the
//! cluster it touches, the object and the [`Action`], plus the steps it needs (a DAG as data):
//!
//! - per-cluster steps of one phase form a chain, in render order; the first step of a phase needs
//!   the last step of the phase it builds on ([`Phase::builds_on`]): cacerts and the gateways
//!   build on the namespace (and cacerts), the readers on the namespace only, so the readers of a
//!   cluster never wait for its gateway's external address;
//! - a remote-secret step `(src, dst)` needs the reader token of `src` and the namespace of `dst`,
//!   and nothing else, so the executor can start it as soon as both are there; with bound
//!   tokens (`readerToken.ttl`) it needs the pair's bound object in `src` instead of a token.
//!
//! With `controlPlane.install: helm` the control plane is steps of the plan too ([`Action::Helm`]):
//! per cluster `istio/base`, `istio/istiod` (waiting until it is ready), then ambient's
//! `istio/cni` and `istio/ztunnel`, in the control-plane phase; the `istio/gateway` release
//! (waiting for the gateway's external address) first in the gateways phase, before the
//! exposure. The reader token of the charts' reader needs `istio/base` (which makes its
//! ServiceAccount), not istiod or the gateway.
//!
//! A need may name a step on another cluster (the pairs do); the executor waits for it. A
//! primary-remote remote's `istio/istiod` needs its primary's `istio/gateway` step, whose address
//! becomes the remote's `global.remotePilotAddress`: so the primaries come first. The executor
//! runs namespace, then cacerts, then everything else side by side, so a need must be in the
//! same group as its step or an earlier one (a cacerts step cannot need a gateway).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::cluster::ObjectRef;
use crate::helm::{HelmError, Release};
pub use crate::phase::Phase;
use crate::render::{ClusterRender, eastwest};
use crate::spec::{Install, MeshSpec, Model, Role};

/// Errors building a plan. Each names the cluster (and object) it is about.
///
/// ```
/// use mesh_core::{plan::Plan, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n, context: eu}]\n",
///     std::path::Path::new("."), "mesh.yaml")?;
/// let err = Plan::build(&spec, &[]).unwrap_err();
/// assert_eq!(err.to_string(), "cluster \"eu\" is in the mesh file but was not rendered");
/// # Ok::<(), mesh_core::spec::SpecError>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The spec lists a cluster that has no rendered objects.
    #[error("cluster {cluster:?} is in the mesh file but was not rendered")]
    MissingRender {
        /// The cluster name.
        cluster: String,
    },
    /// Rendered objects for a cluster the spec does not list.
    #[error("rendered objects for cluster {cluster:?}, which is not in the mesh file")]
    UnknownCluster {
        /// The cluster name.
        cluster: String,
    },
    /// A rendered object lacks `apiVersion`, `kind` or `metadata.name`.
    #[error("cluster {cluster:?}: rendered object {file_stem:?}: {reason}")]
    IncompleteObject {
        /// The cluster name.
        cluster: String,
        /// The render file stem of the object, e.g. `02-cacerts`.
        file_stem: String,
        /// Which field is missing.
        reason: String,
    },
    /// A cluster that is the source of remote secrets has no reader token Secret to read from.
    #[error(
        "cluster {cluster:?} is the source of remote secrets but its readers phase renders no \
         kubernetes.io/service-account-token Secret"
    )]
    MissingReaderToken {
        /// The source cluster.
        cluster: String,
    },
    /// A chart's release could not be named (`controlPlane.version` missing).
    #[error(transparent)]
    Helm(#[from] HelmError),
    /// A primary-remote remote's primary installs no east-west gateway, so the remote's istiod
    /// has no address to reach it at.
    #[error(
        "cluster {cluster:?}: its primary {primary:?} has no east-west gateway, whose address \
         the remote's istiod needs as global.remotePilotAddress"
    )]
    NoPrimaryGateway {
        /// The remote.
        cluster: String,
        /// Its primary.
        primary: String,
    },
    /// With bound tokens (`readerToken.ttl`), a pair whose source renders no bound object for
    /// its destination.
    #[error(
        "cluster {source_cluster:?} is the source of a remote secret in {destination:?} but its \
         readers phase renders no bound object for it (Secret meshboot-reader-for-{destination})"
    )]
    MissingBoundObject {
        /// The source cluster.
        source_cluster: String,
        /// The destination cluster.
        destination: String,
    },
}

/// The API group of an `apiVersion`: `""` for the core group, else the part before the `/`.
///
/// ```
/// use mesh_core::plan::api_group;
/// assert_eq!(api_group("v1"), "");
/// assert_eq!(api_group("rbac.authorization.k8s.io/v1"), "rbac.authorization.k8s.io");
/// ```
pub fn api_group(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// The resource (lower-case plural) of an object's kind, as RBAC rules and access reviews name
/// it, e.g. `services`.
///
/// Kubernetes pluralises kinds by convention rather than by rule; this follows the convention
/// for every kind meshboot writes (`-s`, `-es` after `s`/`x`, `-ies` after a consonant + `y`).
///
/// ```
/// use mesh_core::{cluster::ObjectRef, plan::resource_of};
/// assert_eq!(resource_of(&ObjectRef::namespaced("v1", "Secret", "istio-system", "cacerts")), "secrets");
/// assert_eq!(resource_of(&ObjectRef::namespaced("networking.istio.io/v1", "Gateway", "istio-system", "g")), "gateways");
/// assert_eq!(resource_of(&ObjectRef::cluster_scoped("v1", "Policy", "p")), "policies");
/// ```
pub fn resource_of(object: &ObjectRef) -> String {
    let kind = object.kind.to_ascii_lowercase();
    if kind.ends_with('s') || kind.ends_with('x') {
        format!("{kind}es")
    } else if let Some(stem) = kind.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{kind}s")
    }
}

// `cluster::ObjectRef` has no serde of its own; plans and reports show it as its parts.
pub(crate) fn serialize_object_ref<S: Serializer>(r: &ObjectRef, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("ObjectRef", 4)?;
    st.serialize_field("apiVersion", &r.api_version)?;
    st.serialize_field("kind", &r.kind)?;
    match &r.namespace {
        Some(ns) => st.serialize_field("namespace", ns)?,
        None => st.skip_field("namespace")?,
    }
    st.serialize_field("name", &r.name)?;
    st.end()
}

/// What a step does to its object.
///
/// `Debug` and `Serialize` never show the object body: a `cacerts` Secret carries a CA key.
///
/// ```
/// use mesh_core::plan::Action;
/// let a = Action::Apply { object: Box::new(serde_json::json!({"data": {"ca-key.pem": "secret"}})), wait: None };
/// assert!(!format!("{a:?}").contains("secret"));
/// assert_eq!(serde_json::to_value(&a).unwrap(), "apply");
/// ```
#[derive(Clone, PartialEq)]
pub enum Action {
    /// Server-side apply of a rendered object (create it, update it, or leave it unchanged),
    /// then, when `wait` is set, wait (bounded) for a controller to finish it.
    Apply {
        /// The complete object.
        object: Box<Value>,
        /// What to wait for once it is applied.
        wait: Option<Wait>,
    },
    /// Build the remote secret of `source` from its reader token and apply it in this step's
    /// cluster.
    RemoteSecret {
        /// The cluster the remote secret gives access to.
        source: String,
    },
    /// Install or upgrade one of Istio's charts with the real `helm` (`helm upgrade
    /// --install`), unless the release is deployed with this chart version and these values
    /// already ([`crate::helm::decide`]): a converged re-run runs no `helm upgrade`.
    Helm(Box<HelmStep>),
}

/// One chart release of [`Action::Helm`].
///
/// ```
/// use std::collections::BTreeMap;
/// use mesh_core::{pki::ClusterBundle, plan::{Action, Phase, Plan, Wait}, render, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nmodel: primary-remote\ncontrolPlane: {install: helm, version: 1.28.2}\nclusters:\n  - {name: p, network: n1, context: p, role: primary}\n  - {name: r, network: n1, context: r, role: remote}\n",
///     std::path::Path::new("."), "mesh.yaml")?;
/// let bundles: BTreeMap<_, _> = ["p", "r"].map(|c| (c.to_string(), ClusterBundle { cluster: c.into(),
///     ca_cert_pem: "c".into(), ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() })).into();
/// let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?;
/// let plan = Plan::build(&spec, &renders)?;
/// let istiod = plan.steps.iter().find(|s| s.cluster == "r" && s.object.name == "istiod").unwrap();
/// let Action::Helm(h) = &istiod.action else { unreachable!() };
/// assert_eq!(h.remote_pilot_address_from.as_deref(), Some("p"));
/// // The remote's istiod waits for its primary's east-west gateway (and its address).
/// let gateway = plan.step(*istiod.needs.last().unwrap());
/// assert_eq!((gateway.cluster.as_str(), gateway.phase, gateway.object.name.as_str()), ("p", Phase::Gateways, "istio-eastwestgateway"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HelmStep {
    /// The release: its name, chart, chart version, values and cluster.
    pub release: Release,
    /// What to wait for once it is installed: [`Wait::Ready`] (istiod, cni, ztunnel) or the
    /// gateway's [`Wait::ExternalAddress`].
    pub wait: Option<Wait>,
    /// A primary-remote remote's istiod: the primary whose east-west gateway address is its
    /// `global.remotePilotAddress`, filled in when the step runs (the step needs that primary's
    /// gateway step).
    pub remote_pilot_address_from: Option<String>,
}

impl HelmStep {
    /// The Service whose external address [`Wait::ExternalAddress`] waits for: the gateway the
    /// `istio/gateway` chart makes, named after the release.
    pub fn service(&self) -> ObjectRef {
        ObjectRef::namespaced(
            "v1",
            "Service",
            &self.release.target.namespace,
            eastwest::NAME,
        )
    }
}

impl Serialize for HelmStep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("HelmStep", 7)?;
        st.serialize_field("name", &self.release.name)?;
        st.serialize_field("chart", &self.release.chart)?;
        st.serialize_field("from", &self.release.chart_ref.args().join(" "))?;
        st.serialize_field("version", &self.release.version)?;
        // Identity and topology only (and the mesh file's overrides): no secret goes in values.
        st.serialize_field("values", &self.release.values)?;
        match &self.wait {
            Some(w) => st.serialize_field("wait", w)?,
            None => st.skip_field("wait")?,
        }
        match &self.remote_pilot_address_from {
            Some(p) => st.serialize_field("remotePilotAddressFrom", p)?,
            None => st.skip_field("remotePilotAddressFrom")?,
        }
        st.end()
    }
}

/// The `apiVersion` and `kind` a Helm release is shown with in plans and reports (Helm keeps a
/// release as Secrets of type `helm.sh/release.v1`), e.g. `HelmRelease istio-system/istiod`.
pub const HELM_RELEASE: (&str, &str) = ("helm.sh/release.v1", "HelmRelease");

/// What a Helm release of Istio's charts writes, as `(group, resource, cluster-scoped)`, for the
/// access reviews of preflight: what `istioctl x precheck` asks for (`reference/istio.md` §7),
/// and Helm's own release Secrets.
const HELM_WRITES: [(&str, &str, bool); 11] = [
    ("apiextensions.k8s.io", "customresourcedefinitions", true),
    ("rbac.authorization.k8s.io", "clusterroles", true),
    ("rbac.authorization.k8s.io", "clusterrolebindings", true),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        true,
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        true,
    ),
    ("rbac.authorization.k8s.io", "roles", false),
    ("rbac.authorization.k8s.io", "rolebindings", false),
    ("", "serviceaccounts", false),
    ("", "services", false),
    ("", "configmaps", false),
    ("apps", "deployments", false),
];

/// What an [`Action::Apply`] waits for after writing.
///
/// ```
/// assert_eq!(serde_json::to_value(mesh_core::plan::Wait::ExternalAddress).unwrap(), "external-address");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wait {
    /// A `LoadBalancer` Service's external address (`status.loadBalancer.ingress`): the
    /// address the other networks reach this cluster's east-west gateway at.
    ExternalAddress,
    /// The token controller filling a `kubernetes.io/service-account-token` Secret (`token`
    /// and `ca.crt`): the credentials of the remote secrets of this cluster.
    Token,
    /// A Helm release's workloads being ready (`helm --wait`, bounded by the timeout): istiod
    /// available before the gateway and anything else that needs its webhooks.
    Ready,
}

impl Action {
    /// A short name for output: `apply`, `remote-secret` or `helm`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Apply { .. } => "apply",
            Action::RemoteSecret { .. } => "remote-secret",
            Action::Helm(_) => "helm",
        }
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Apply { wait, .. } => {
                write!(f, "Apply {{ object: <redacted>, wait: {wait:?} }}")
            }
            Action::RemoteSecret { source } => write!(f, "RemoteSecret {{ source: {source:?} }}"),
            Action::Helm(h) => write!(
                f,
                "Helm {{ release: {:?}, chart: {:?}, version: {:?}, wait: {:?} }}",
                h.release.name, h.release.chart, h.release.version, h.wait
            ),
        }
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Index of a step in [`Plan::steps`].
///
/// ```
/// assert_eq!(serde_json::to_value(mesh_core::plan::StepId(7)).unwrap(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StepId(pub usize);

/// One thing to do on one cluster.
///
/// ```
/// use std::collections::BTreeMap;
/// use mesh_core::{pki::ClusterBundle, plan::{Action, Phase, Plan}, render, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n1, context: eu}, {name: us, network: n2, context: us}]\n",
///     std::path::Path::new("."), "mesh.yaml")?;
/// let bundle = |c: &str| ClusterBundle { cluster: c.into(), ca_cert_pem: "c".into(),
///     ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() };
/// let bundles: BTreeMap<_, _> = ["eu", "us"].map(|c| (c.to_string(), bundle(c))).into();
/// let plan = Plan::build(&spec, &render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?)?;
/// // us's remote secret goes to eu, once its token and eu's namespace are there.
/// let pair = plan.pair_steps().find(|s| s.cluster == "eu").unwrap();
/// assert_eq!(pair.phase, Phase::RemoteSecrets);
/// assert_eq!(pair.object.to_string(), "Secret istio-system/istio-remote-secret-us");
/// assert!(matches!(&pair.action, Action::RemoteSecret { source } if source == "us"));
/// assert_eq!(pair.needs.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its position in [`Plan::steps`].
    pub id: StepId,
    /// The phase it belongs to.
    pub phase: Phase,
    /// The cluster it reads or writes.
    pub cluster: String,
    /// The object it is about (a Helm release is shown as [`HELM_RELEASE`]).
    pub object: ObjectRef,
    /// What it does.
    pub action: Action,
    /// The source cluster, for remote-secret steps.
    pub source: Option<String>,
    /// Steps that must have succeeded before this one may run.
    pub needs: Vec<StepId>,
}

// By hand for the `release` of Helm steps: the chart, version and values are part of the plan
// (`--dry-run -o json`), the bodies of applied objects are not (a cacerts holds a key).
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Object<'a>(&'a ObjectRef);
        impl Serialize for Object<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_object_ref(self.0, s)
            }
        }
        let mut st = s.serialize_struct("Step", 8)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("phase", &self.phase)?;
        st.serialize_field("cluster", &self.cluster)?;
        st.serialize_field("object", &Object(&self.object))?;
        st.serialize_field("action", &self.action)?;
        match &self.action {
            Action::Helm(h) => st.serialize_field("release", h)?,
            _ => st.skip_field("release")?,
        }
        match &self.source {
            Some(src) => st.serialize_field("source", src)?,
            None => st.skip_field("source")?,
        }
        st.serialize_field("needs", &self.needs)?;
        st.end()
    }
}

/// Where a source cluster's reader token lives: the Secret the executor waits on before it can
/// build that cluster's remote secrets.
///
/// ```
/// let t = mesh_core::plan::ReaderToken {
///     namespace: "istio-system".into(),
///     secret: "istio-reader-service-account-istio-remote-secret-token".into(),
///     service_account: "istio-reader-service-account".into(),
/// };
/// assert!(t.secret.starts_with(&t.service_account));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderToken {
    /// Namespace of the token Secret.
    pub namespace: String,
    /// Name of the `kubernetes.io/service-account-token` Secret.
    pub secret: String,
    /// The ServiceAccount the token belongs to.
    pub service_account: String,
}

/// A source cluster whose remote secrets carry bound tokens (`readerToken.ttl`): the
/// ServiceAccount the executor requests them for. Each pair's token is bound to that pair's
/// object, [`crate::tokens::bound_object_name`]`(destination)`.
///
/// ```
/// let r = mesh_core::plan::BoundReader { namespace: "istio-system".into(), service_account: "meshboot-reader".into() };
/// assert_eq!(r.service_account, "meshboot-reader");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoundReader {
    /// Namespace of the ServiceAccount and of the bound objects.
    pub namespace: String,
    /// The reader ServiceAccount.
    pub service_account: String,
}

/// Every step of a bootstrap, in order, with its dependencies.
///
/// ```no_run
/// use std::collections::BTreeMap;
/// use mesh_core::{pki::CaDir, plan::Plan, render, spec::MeshSpec};
///
/// let spec = MeshSpec::from_file("mesh.yaml")?;
/// let names: Vec<&str> = spec.clusters.iter().map(|c| c.name.as_str()).collect();
/// let bundles = CaDir::open(spec.ca.dir.clone()).ensure(&spec.ca_options(), &names)?;
/// let bundles: BTreeMap<_, _> = bundles.into_iter().map(|b| (b.cluster.clone(), b)).collect();
/// let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?;
/// let plan = Plan::build(&spec, &renders)?;
/// for step in &plan.steps {
///     println!("{} {} {}", step.phase, step.cluster, step.object);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Cluster names in mesh-file order.
    pub clusters: Vec<String>,
    /// The steps: per-cluster steps in phase order, then the remote-secret pairs.
    pub steps: Vec<Step>,
    /// The reader token of every cluster that is the source of a remote secret (legacy,
    /// long-lived tokens).
    pub reader_tokens: BTreeMap<String, ReaderToken>,
    /// With `readerToken.ttl`: every source whose remote secrets carry bound tokens, instead of
    /// an entry in `reader_tokens`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bound_readers: BTreeMap<String, BoundReader>,
    /// The namespace istiod watches for remote secrets.
    pub istio_namespace: String,
}

/// A part of the plan `meshboot apply --only` runs ([`Plan::only`]).
///
/// ```
/// use mesh_core::plan::Only;
/// assert_eq!(serde_json::to_value(Only::Secrets).unwrap(), "secrets");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Only {
    /// Every Secret meshboot writes (`cacerts`, reader tokens and bound objects, remote
    /// secrets) and what they need: what a Karmada hub must never hold.
    Secrets,
}

impl Only {
    /// True for a step this part selects itself (before its needs are added).
    pub fn selects(self, step: &Step) -> bool {
        match self {
            Only::Secrets => match &step.action {
                Action::RemoteSecret { .. } => true,
                Action::Apply { .. } => {
                    step.object.api_version == "v1" && step.object.kind == "Secret"
                }
                Action::Helm(_) => false,
            },
        }
    }
}

/// The phases whose objects are applied per cluster, in order.
const CLUSTER_PHASES: [Phase; 5] = [
    Phase::Namespace,
    Phase::CaCerts,
    Phase::ControlPlane,
    Phase::Gateways,
    Phase::Readers,
];

impl Plan {
    /// Builds the plan from the spec and every cluster's rendered objects (and, with
    /// `controlPlane.install: helm`, their Helm values).
    pub fn build(spec: &MeshSpec, renders: &[ClusterRender]) -> Result<Plan, PlanError> {
        let by_cluster: BTreeMap<&str, &ClusterRender> =
            renders.iter().map(|r| (r.cluster.as_str(), r)).collect();
        if let Some(extra) = renders.iter().find(|r| spec.cluster(&r.cluster).is_none()) {
            return Err(PlanError::UnknownCluster {
                cluster: extra.cluster.clone(),
            });
        }
        let clusters: Vec<String> = spec.clusters.iter().map(|c| c.name.clone()).collect();
        let pairs = spec.remote_secret_pairs();
        let sources: BTreeSet<&str> = pairs.iter().map(|(src, _)| src.as_str()).collect();
        let install_charts = spec.control_plane.install == Install::Helm;

        let mut steps: Vec<Step> = Vec::new();
        // The last step of each (cluster, phase), and the step that makes a cluster's reader
        // token.
        let mut last_of: BTreeMap<(&str, Phase), StepId> = BTreeMap::new();
        let mut token_ready: BTreeMap<&str, StepId> = BTreeMap::new();
        let mut reader_tokens = BTreeMap::new();
        // The istio/base step (the charts' reader account) and the istio/gateway step (the
        // east-west address) of each cluster, and the remotes' istiod steps needing the latter.
        let mut base_release: BTreeMap<&str, StepId> = BTreeMap::new();
        let mut gateway_release: BTreeMap<&str, StepId> = BTreeMap::new();
        let mut needs_pilot_address: Vec<(StepId, String)> = Vec::new();
        // With bound tokens: the step that makes each pair's bound object.
        let mut bound_ready: BTreeMap<(String, String), StepId> = BTreeMap::new();
        let mut bound_readers = BTreeMap::new();

        for phase in CLUSTER_PHASES {
            for cluster in &clusters {
                let render =
                    by_cluster
                        .get(cluster.as_str())
                        .ok_or_else(|| PlanError::MissingRender {
                            cluster: cluster.clone(),
                        })?;
                let mut entries: Vec<(ObjectRef, Action)> = Vec::new();
                if install_charts && let Some(cluster_spec) = spec.cluster(cluster) {
                    for values in render
                        .helm_values
                        .iter()
                        .filter(|v| chart_phase(&v.chart) == phase)
                    {
                        let release = Release::for_chart(spec, cluster_spec, values)?;
                        let helm = helm_step(spec, cluster_spec, release);
                        let object = ObjectRef::namespaced(
                            HELM_RELEASE.0,
                            HELM_RELEASE.1,
                            &helm.release.target.namespace,
                            &helm.release.name,
                        );
                        entries.push((object, Action::Helm(Box::new(helm))));
                    }
                }
                let mut tokens = BTreeMap::new();
                let mut bounds = BTreeMap::new();
                for rendered in render.objects.iter().filter(|o| o.phase == phase) {
                    let object = ObjectRef::from_object(&rendered.object).map_err(|reason| {
                        PlanError::IncompleteObject {
                            cluster: cluster.clone(),
                            file_stem: rendered.file_stem.clone(),
                            reason,
                        }
                    })?;
                    let token = if phase == Phase::Readers && sources.contains(cluster.as_str()) {
                        reader_token(&rendered.object)
                    } else {
                        None
                    };
                    let wait = token.is_some().then_some(Wait::Token);
                    if let Some(token) = token {
                        tokens.insert(entries.len(), token);
                    }
                    if phase == Phase::Readers
                        && let Some((dst, sa)) = crate::tokens::bound_object_of(&rendered.object)
                    {
                        let reader = BoundReader {
                            namespace: object
                                .namespace
                                .clone()
                                .unwrap_or_else(|| spec.istio_namespace.clone()),
                            service_account: sa.to_string(),
                        };
                        bounds.insert(entries.len(), (dst.to_string(), reader));
                    }
                    entries.push((
                        object,
                        Action::Apply {
                            object: Box::new(rendered.object.clone()),
                            wait,
                        },
                    ));
                }
                for (index, (object, action)) in entries.into_iter().enumerate() {
                    // The previous step of this phase, else the last step of the phase it
                    // builds on (those form a chain of their own).
                    let first = !last_of.contains_key(&(cluster.as_str(), phase));
                    let need = last_of
                        .get(&(cluster.as_str(), phase))
                        .copied()
                        .or_else(|| {
                            phase
                                .builds_on()
                                .iter()
                                .rev()
                                .find_map(|p| last_of.get(&(cluster.as_str(), *p)).copied())
                        });
                    let mut needs: Vec<StepId> = need.into_iter().collect();
                    // The charts' reader account is istio/base's: its token waits for that
                    // release, never for istiod or the gateway.
                    if phase == Phase::Readers
                        && first
                        && let Some(base) = base_release.get(cluster.as_str())
                    {
                        needs.push(*base);
                    }
                    let id = StepId(steps.len());
                    if let Action::Helm(h) = &action {
                        match h.release.chart.as_str() {
                            "base" => {
                                base_release.insert(cluster, id);
                            }
                            "gateway" => {
                                gateway_release.insert(cluster, id);
                            }
                            _ => {}
                        }
                        if let Some(primary) = &h.remote_pilot_address_from {
                            needs_pilot_address.push((id, primary.clone()));
                        }
                    }
                    steps.push(Step {
                        id,
                        phase,
                        cluster: cluster.clone(),
                        object,
                        action,
                        source: None,
                        needs,
                    });
                    last_of.insert((cluster, phase), id);
                    if let Some(token) = tokens.remove(&index) {
                        token_ready.insert(cluster, id);
                        reader_tokens.insert(cluster.clone(), token);
                    }
                    if let Some((dst, reader)) = bounds.remove(&index) {
                        bound_ready.insert((cluster.clone(), dst), id);
                        bound_readers.insert(cluster.clone(), reader);
                    }
                }
            }
        }

        // A cross-cluster need, known once every cluster's gateway step has its id.
        for (id, primary) in needs_pilot_address {
            let gateway = gateway_release
                .get(primary.as_str())
                .copied()
                .ok_or_else(|| PlanError::NoPrimaryGateway {
                    cluster: steps[id.0].cluster.clone(),
                    primary: primary.clone(),
                })?;
            steps[id.0].needs.push(gateway);
        }

        for (src, dst) in &pairs {
            let token = if bound_readers.contains_key(src) {
                bound_ready
                    .get(&(src.clone(), dst.clone()))
                    .copied()
                    .ok_or_else(|| PlanError::MissingBoundObject {
                        source_cluster: src.clone(),
                        destination: dst.clone(),
                    })?
            } else {
                token_ready.get(src.as_str()).copied().ok_or_else(|| {
                    PlanError::MissingReaderToken {
                        cluster: src.clone(),
                    }
                })?
            };
            let id = StepId(steps.len());
            steps.push(Step {
                id,
                phase: Phase::RemoteSecrets,
                cluster: dst.clone(),
                object: ObjectRef::namespaced(
                    "v1",
                    "Secret",
                    &spec.istio_namespace,
                    &crate::remote_secret::secret_name(src),
                ),
                action: Action::RemoteSecret {
                    source: src.clone(),
                },
                source: Some(src.clone()),
                needs: std::iter::once(token)
                    .chain(last_of.get(&(dst.as_str(), Phase::Namespace)).copied())
                    .collect(),
            });
        }

        Ok(Plan {
            clusters,
            steps,
            reader_tokens,
            bound_readers,
            istio_namespace: spec.istio_namespace.clone(),
        })
    }

    /// The part of the plan `meshboot apply --only` runs: the steps `only` selects and,
    /// transitively, every step they need (per the dependency rules above), in plan order.
    /// [`Only::Secrets`] selects what must never travel through a fleet manager's hub
    /// (`render --format karmada` leaves it out): `cacerts`, the readers' token Secrets (or
    /// bound objects) and the remote secrets; their needs bring the namespaces, the reader
    /// identity where meshboot makes its own, and with `install: helm` the `istio/base`
    /// release that makes the charts' reader account.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use mesh_core::{pki::ClusterBundle, plan::{Only, Phase, Plan}, render, spec::MeshSpec};
    /// let spec = MeshSpec::from_yaml(
    ///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n1, context: eu}, {name: us, network: n2, context: us}]\n",
    ///     std::path::Path::new("."), "mesh.yaml")?;
    /// let bundles: BTreeMap<_, _> = ["eu", "us"].map(|c| (c.to_string(), ClusterBundle { cluster: c.into(),
    ///     ca_cert_pem: "c".into(), ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() })).into();
    /// let plan = Plan::build(&spec, &render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?)?;
    /// let secrets = plan.only(Only::Secrets);
    /// assert!(secrets.steps.iter().all(|s| s.phase != Phase::Gateways), "the exposure Gateway is Karmada's");
    /// assert_eq!(secrets.pair_steps().count(), 2);
    /// assert_eq!(secrets.steps.iter().filter(|s| s.phase == Phase::Namespace).count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn only(&self, only: Only) -> Plan {
        let mut keep = vec![false; self.steps.len()];
        let mut todo: Vec<StepId> = self
            .steps
            .iter()
            .filter(|s| only.selects(s))
            .map(|s| s.id)
            .collect();
        while let Some(id) = todo.pop() {
            if keep[id.0] {
                continue;
            }
            keep[id.0] = true;
            todo.extend(self.steps[id.0].needs.iter().copied());
        }
        let mut new_id = BTreeMap::new();
        for step in self.steps.iter().filter(|s| keep[s.id.0]) {
            new_id.insert(step.id, StepId(new_id.len()));
        }
        let steps = self
            .steps
            .iter()
            .filter(|s| keep[s.id.0])
            .map(|s| Step {
                id: new_id[&s.id],
                needs: s.needs.iter().map(|n| new_id[n]).collect(),
                ..s.clone()
            })
            .collect();
        Plan {
            clusters: self.clusters.clone(),
            steps,
            // Every token Secret and bound object is a secret step, so all of them stay.
            reader_tokens: self.reader_tokens.clone(),
            bound_readers: self.bound_readers.clone(),
            istio_namespace: self.istio_namespace.clone(),
        }
    }

    /// The step with this id.
    ///
    /// # Panics
    /// When `id` does not come from this plan.
    pub fn step(&self, id: StepId) -> &Step {
        &self.steps[id.0]
    }

    /// The steps of one phase on one cluster, in order.
    pub fn steps_of<'a>(
        &'a self,
        phase: Phase,
        cluster: &'a str,
    ) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps
            .iter()
            .filter(move |s| s.phase == phase && s.cluster == cluster)
    }

    /// The remote-secret steps, in (source, destination) order.
    pub fn pair_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| s.phase == Phase::RemoteSecrets)
    }

    /// The phases that have at least one step, in order.
    pub fn phases(&self) -> Vec<Phase> {
        let set: BTreeSet<Phase> = self.steps.iter().map(|s| s.phase).collect();
        set.into_iter().collect()
    }

    /// What meshboot will write on `cluster`, as `(group, resource, namespace)` for access
    /// reviews; remote secrets count for the cluster they are written to, and a Helm release
    /// for what Istio's charts create.
    pub fn writes_on(&self, cluster: &str) -> BTreeSet<(String, String, Option<String>)> {
        let mut writes = BTreeSet::new();
        for s in self.steps.iter().filter(|s| s.cluster == cluster) {
            if let Action::Helm(h) = &s.action {
                let ns = &h.release.target.namespace;
                writes.insert((String::new(), "secrets".into(), Some(ns.clone())));
                for (group, resource, cluster_scoped) in HELM_WRITES {
                    let namespace = (!cluster_scoped).then(|| ns.clone());
                    writes.insert((group.to_string(), resource.to_string(), namespace));
                }
                continue;
            }
            writes.insert((
                api_group(&s.object.api_version).to_string(),
                resource_of(&s.object),
                s.object.namespace.clone(),
            ));
        }
        writes
    }
}

/// The phase a chart's release runs in: the east-west gateway with the exposure it serves,
/// the others as the control plane.
fn chart_phase(chart: &str) -> Phase {
    match chart {
        "gateway" => Phase::Gateways,
        _ => Phase::ControlPlane,
    }
}

/// How a release is run: istiod (and ambient's node agents) until ready, the gateway until it
/// has an address, a remote's istiod with its primary's address.
fn helm_step(spec: &MeshSpec, cluster: &crate::spec::ClusterSpec, release: Release) -> HelmStep {
    let wait = match release.chart.as_str() {
        "istiod" | "cni" | "ztunnel" => Some(Wait::Ready),
        "gateway" => Some(Wait::ExternalAddress),
        _ => None,
    };
    let remote_pilot_address_from = (release.chart == "istiod"
        && spec.model == Model::PrimaryRemote
        && cluster.role == Role::Remote)
        .then(|| spec.control_plane_of(cluster).map(|p| p.name.clone()))
        .flatten();
    HelmStep {
        release,
        wait,
        remote_pilot_address_from,
    }
}

fn reader_token(object: &Value) -> Option<ReaderToken> {
    if object.get("kind").and_then(Value::as_str) != Some("Secret")
        || object.get("type").and_then(Value::as_str) != Some("kubernetes.io/service-account-token")
    {
        return None;
    }
    Some(ReaderToken {
        namespace: object.pointer("/metadata/namespace")?.as_str()?.to_string(),
        secret: object.pointer("/metadata/name")?.as_str()?.to_string(),
        service_account: object
            .pointer("/metadata/annotations/kubernetes.io~1service-account.name")?
            .as_str()?
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::pki::ClusterBundle;

    fn spec(yaml_clusters: &str, model: &str) -> MeshSpec {
        let yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nmodel: {model}\nclusters:\n{yaml_clusters}"
        );
        MeshSpec::from_yaml(&yaml, std::path::Path::new("/tmp"), "mesh.yaml").unwrap()
    }

    /// The same mesh with `controlPlane.install: helm`.
    fn helm_spec(yaml_clusters: &str, model: &str) -> MeshSpec {
        let yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nmodel: {model}\ncontrolPlane: {{install: helm, version: 1.28.2}}\nclusters:\n{yaml_clusters}"
        );
        MeshSpec::from_yaml(&yaml, std::path::Path::new("/tmp"), "mesh.yaml").unwrap()
    }

    fn helm_of(step: &Step) -> &HelmStep {
        match &step.action {
            Action::Helm(h) => h,
            other => panic!("{step:?} is {other:?}, not a Helm release"),
        }
    }

    fn plan_of(spec: &MeshSpec) -> Plan {
        plan_with(spec, &crate::render::RenderOptions::default())
    }

    fn plan_with(spec: &MeshSpec, options: &crate::render::RenderOptions) -> Plan {
        // Render only looks at the bundle's text, so placeholders stand in for a real CA.
        let bundles: BTreeMap<String, ClusterBundle> = spec
            .clusters
            .iter()
            .map(|c| {
                let b = ClusterBundle {
                    cluster: c.name.clone(),
                    ca_cert_pem: "ca".into(),
                    ca_key_pem: "key".into(),
                    root_cert_pem: "root".into(),
                    cert_chain_pem: "chain".into(),
                };
                (c.name.clone(), b)
            })
            .collect();
        let renders = crate::render::render_mesh_with(spec, &bundles, options).unwrap();
        Plan::build(spec, &renders).unwrap()
    }

    fn pairs(plan: &Plan) -> Vec<(String, String)> {
        plan.pair_steps()
            .map(|s| (s.source.clone().unwrap(), s.cluster.clone()))
            .collect()
    }

    const THREE: &str = "  - {name: eu, network: network3, context: eu}\n  - {name: ap, network: network1, context: ap}\n  - {name: us, network: network2, context: us}\n";

    #[test]
    fn three_primaries_give_six_pairs_and_no_self_pair() {
        let plan = plan_of(&spec(THREE, "multi-primary"));
        let pairs = pairs(&plan);
        assert_eq!(pairs.len(), 6);
        assert!(pairs.iter().all(|(src, dst)| src != dst));
        let distinct: BTreeSet<_> = pairs.iter().collect();
        assert_eq!(distinct.len(), 6);
        for step in plan.pair_steps() {
            let src = step.source.as_deref().unwrap();
            assert_eq!(step.object.name, format!("istio-remote-secret-{src}"));
            assert_eq!(step.object.namespace.as_deref(), Some("istio-system"));
        }
    }

    #[test]
    fn with_bound_tokens_a_pair_needs_its_own_bound_object_and_no_token_secret() {
        let yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nreaderToken: {{ttl: 24h}}\nclusters:\n{THREE}"
        );
        let spec = MeshSpec::from_yaml(&yaml, std::path::Path::new("/tmp"), "mesh.yaml").unwrap();
        let plan = plan_of(&spec);
        assert!(
            plan.reader_tokens.is_empty(),
            "no long-lived token anywhere"
        );
        assert_eq!(plan.bound_readers.len(), 3);
        // apply lists before the plan exists and must keep the same sources' secrets whole.
        assert_eq!(
            plan.bound_readers
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
            spec.bound_token_sources()
        );
        assert_eq!(
            plan.bound_readers["ap"].service_account,
            "istio-reader-service-account"
        );
        assert!(!plan.steps.iter().any(|s| matches!(
            &s.action,
            Action::Apply {
                wait: Some(Wait::Token),
                ..
            }
        )));
        for step in plan.pair_steps() {
            let (src, dst) = (step.source.as_deref().unwrap(), step.cluster.as_str());
            let needs: Vec<&Step> = step.needs.iter().map(|id| plan.step(*id)).collect();
            assert_eq!(needs.len(), 2);
            assert_eq!(
                (needs[0].cluster.as_str(), needs[0].object.name.clone()),
                (src, format!("meshboot-reader-for-{dst}"))
            );
            assert_eq!(
                (needs[1].cluster.as_str(), needs[1].phase),
                (dst, Phase::Namespace)
            );
        }
    }

    #[test]
    fn primary_remote_pairs_go_from_remote_to_primary_only() {
        let plan = plan_of(&spec(
            "  - {name: hub, network: n1, context: hub, role: primary}\n  - {name: edge, network: n1, context: edge, role: remote}\n",
            "primary-remote",
        ));
        assert_eq!(pairs(&plan), [("edge".to_string(), "hub".to_string())]);
        // Only the source needs a reader identity.
        assert_eq!(plan.reader_tokens.keys().collect::<Vec<_>>(), ["edge"]);
    }

    #[test]
    fn a_pair_needs_the_source_token_and_the_destination_namespace_only() {
        let plan = plan_of(&spec(THREE, "multi-primary"));
        let step = plan
            .pair_steps()
            .find(|s| s.source.as_deref() == Some("ap") && s.cluster == "us")
            .unwrap();
        let needs: Vec<&Step> = step.needs.iter().map(|id| plan.step(*id)).collect();
        assert_eq!(needs.len(), 2);
        let token = needs[0];
        assert_eq!(
            (token.cluster.as_str(), token.phase),
            ("ap", Phase::Readers)
        );
        assert!(matches!(
            token.action,
            Action::Apply {
                wait: Some(Wait::Token),
                ..
            }
        ));
        assert_eq!(plan.reader_tokens["ap"].secret, token.object.name);
        let namespace = needs[1];
        assert_eq!(
            (namespace.cluster.as_str(), namespace.phase),
            ("us", Phase::Namespace)
        );
    }

    #[test]
    fn per_cluster_steps_are_chained_in_phase_order() {
        let plan = plan_of(&helm_spec(THREE, "multi-primary"));
        let eu: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.cluster == "eu" && s.phase != Phase::RemoteSecrets)
            .collect();
        assert_eq!(eu[0].phase, Phase::Namespace);
        assert!(eu[0].needs.is_empty());
        let chain: Vec<String> = eu
            .iter()
            .filter(|s| s.phase != Phase::Readers)
            .map(|s| format!("{} {}", s.phase, s.object))
            .collect();
        assert_eq!(
            chain,
            [
                "namespace Namespace istio-system",
                "cacerts Secret istio-system/cacerts",
                "control-plane HelmRelease istio-system/istio-base",
                "control-plane HelmRelease istio-system/istiod",
                "gateways HelmRelease istio-system/istio-eastwestgateway",
                "gateways Gateway istio-system/cross-network-gateway",
            ]
        );
        let chained: Vec<&&Step> = eu.iter().filter(|s| s.phase != Phase::Readers).collect();
        for w in chained.windows(2) {
            assert_eq!(w[1].needs, [w[0].id], "{:?}", w[1]);
        }
        // The readers build on the namespace and istio/base (the account) only: never on
        // cacerts, istiod or the gateway.
        let first_reader = eu.iter().find(|s| s.phase == Phase::Readers).unwrap();
        let namespace = eu.iter().rfind(|s| s.phase == Phase::Namespace).unwrap();
        let base = eu.iter().find(|s| s.object.name == "istio-base").unwrap();
        assert_eq!(first_reader.needs, [namespace.id, base.id]);
        // istiod waits until ready, the gateway for its address; nothing else waits.
        let istiod = eu.iter().find(|s| s.object.name == "istiod").unwrap();
        assert_eq!(helm_of(istiod).wait, Some(Wait::Ready));
        let gateway = eu
            .iter()
            .find(|s| s.object.name == "istio-eastwestgateway")
            .unwrap();
        assert_eq!(helm_of(gateway).wait, Some(Wait::ExternalAddress));
        assert_eq!(helm_of(gateway).release.chart, "gateway");
        assert_eq!(helm_of(base).wait, None);
    }

    #[test]
    fn install_none_plans_no_release_and_no_chart_object() {
        let plan = plan_of(&spec(THREE, "multi-primary"));
        assert!(
            plan.steps
                .iter()
                .all(|s| !matches!(s.action, Action::Helm(_))),
            "install: none installs nothing"
        );
        let kinds: BTreeSet<&str> = plan.steps.iter().map(|s| s.object.kind.as_str()).collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["Gateway", "Namespace", "Secret"],
            "no Deployment, Service, ServiceAccount or RBAC of the charts"
        );
    }

    #[test]
    fn a_remote_istiod_needs_its_primarys_gateway_and_nothing_else_crosses() {
        let plan = plan_of(&helm_spec(
            "  - {name: hub, network: n1, context: hub, role: primary}\n  - {name: edge, network: n2, context: edge, role: remote}\n",
            "primary-remote",
        ));
        let istiod = plan
            .steps
            .iter()
            .find(|s| s.cluster == "edge" && s.object.name == "istiod")
            .unwrap();
        assert_eq!(
            helm_of(istiod).remote_pilot_address_from.as_deref(),
            Some("hub")
        );
        let plan_ref = &plan;
        let crossing: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.phase != Phase::RemoteSecrets)
            .flat_map(|s| s.needs.iter().map(move |n| (s, plan_ref.step(*n))))
            .filter(|(s, n)| s.cluster != n.cluster)
            .map(|(s, n)| format!("{} {} -> {} {}", s.cluster, s.object, n.cluster, n.object))
            .collect();
        assert_eq!(
            crossing,
            [
                "edge HelmRelease istio-system/istiod -> hub HelmRelease istio-system/istio-eastwestgateway"
            ]
        );
        // The primary's istiod is not waiting for anyone's address.
        let hub_istiod = plan
            .steps
            .iter()
            .find(|s| s.cluster == "hub" && s.object.name == "istiod")
            .unwrap();
        assert_eq!(helm_of(hub_istiod).remote_pilot_address_from, None);
        // In the plan's JSON the release is data: chart, version, values, where from.
        let json = serde_json::to_value(istiod).unwrap();
        assert_eq!(json["action"], "helm");
        assert_eq!(json["release"]["chart"], "istiod");
        assert_eq!(json["release"]["version"], "1.28.2");
        assert_eq!(json["release"]["remotePilotAddressFrom"], "hub");
        assert_eq!(json["release"]["values"]["global"]["configCluster"], true);
        assert_eq!(json["object"]["kind"], "HelmRelease");
    }

    #[test]
    fn debug_and_json_never_show_object_bodies() {
        let plan = plan_of(&spec(THREE, "multi-primary"));
        let cacerts = plan
            .steps
            .iter()
            .find(|s| s.phase == Phase::CaCerts)
            .unwrap();
        assert!(!format!("{cacerts:?}").contains("key"));
        let json = serde_json::to_value(cacerts).unwrap();
        assert_eq!(json["action"], "apply");
        assert_eq!(json["object"]["name"], "cacerts");
        assert!(!json.to_string().contains("ca-key.pem"));
    }

    #[test]
    fn writes_name_resources_for_access_reviews() {
        let own_reader = crate::render::RenderOptions {
            readers: [("eu".to_string(), crate::render::ReaderIdentity::Meshboot)].into(),
            ..Default::default()
        };
        let plan = plan_with(&spec(THREE, "multi-primary"), &own_reader);
        let writes = plan.writes_on("eu");
        assert!(writes.contains(&(String::new(), "namespaces".into(), None)));
        assert!(writes.contains(&(String::new(), "secrets".into(), Some("istio-system".into()))));
        assert!(writes.contains(&(
            "rbac.authorization.k8s.io".into(),
            "clusterroles".into(),
            None
        )));
        // The charts' reader: only its token is meshboot's to write.
        let plan = plan_of(&spec(THREE, "multi-primary"));
        assert!(
            !plan
                .writes_on("eu")
                .iter()
                .any(|(g, _, _)| g == "rbac.authorization.k8s.io")
        );
        // Installing the charts writes what they hold.
        let plan = plan_of(&helm_spec(THREE, "multi-primary"));
        let writes = plan.writes_on("eu");
        for (group, resource, namespace) in [
            ("apiextensions.k8s.io", "customresourcedefinitions", None),
            ("apps", "deployments", Some("istio-system")),
            ("", "secrets", Some("istio-system")),
        ] {
            assert!(
                writes.contains(&(
                    group.to_string(),
                    resource.to_string(),
                    namespace.map(str::to_string)
                )),
                "{resource}"
            );
        }
        assert!(!writes.iter().any(|(_, r, _)| r == "helmreleases"));
    }

    #[test]
    fn only_secrets_keeps_the_secrets_and_what_they_need() {
        let own_reader = crate::render::RenderOptions {
            readers: [("eu".to_string(), crate::render::ReaderIdentity::Meshboot)].into(),
            ..Default::default()
        };
        let full = plan_with(&spec(THREE, "multi-primary"), &own_reader);
        let plan = full.only(Only::Secrets);
        let shown: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.cluster == "eu")
            .map(|s| format!("{} {}", s.phase, s.object))
            .collect();
        // eu's own reader identity comes along: its token Secret needs it.
        assert!(
            shown.contains(&"namespace Namespace istio-system".to_string()),
            "{shown:?}"
        );
        assert!(shown.contains(&"cacerts Secret istio-system/cacerts".to_string()));
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("readers ServiceAccount")),
            "{shown:?}"
        );
        assert!(!shown.iter().any(|s| s.contains("cross-network-gateway")));
        assert_eq!(plan.pair_steps().count(), 6);
        // Ids are dense and every need points backwards, at a kept step.
        for (i, s) in plan.steps.iter().enumerate() {
            assert_eq!(s.id, StepId(i));
            assert!(s.needs.iter().all(|n| n.0 < i), "{s:?}");
        }
        // The needs are the same steps as in the full plan.
        for s in &plan.steps {
            let twin = full
                .steps
                .iter()
                .find(|f| f.cluster == s.cluster && f.object == s.object && f.source == s.source)
                .unwrap();
            let want: Vec<String> = twin
                .needs
                .iter()
                .map(|n| format!("{} {}", full.step(*n).cluster, full.step(*n).object))
                .collect();
            let got: Vec<String> = s
                .needs
                .iter()
                .map(|n| format!("{} {}", plan.step(*n).cluster, plan.step(*n).object))
                .collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn only_secrets_with_the_charts_installs_base_for_the_reader_only() {
        let plan = plan_of(&helm_spec(THREE, "multi-primary")).only(Only::Secrets);
        let releases: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Helm(_)))
            .map(|s| format!("{} {}", s.cluster, s.object.name))
            .collect();
        assert_eq!(
            releases,
            ["eu istio-base", "ap istio-base", "us istio-base"]
        );
    }

    #[test]
    fn a_render_for_an_unknown_cluster_is_an_error() {
        let s = spec(THREE, "multi-primary");
        let err = Plan::build(
            &s,
            &[ClusterRender {
                cluster: "mars".into(),
                objects: vec![],
                helm_values: vec![],
            }],
        )
        .unwrap_err();
        assert!(err.to_string().contains("mars"));
    }
}
