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
//!   and nothing else, so the executor can start it as soon as both are there.
//!
//! A need may name a step on another cluster (the pairs do); the executor waits for it. That is
//! the hook for steps such as a primary-remote remote's control plane, which needs its primary's
//! east-west gateway address: push the primary's step id into the remote step's `needs`. The
//! executor runs namespace, then cacerts, then everything else side by side, so a need must be
//! in the same group as its step or an earlier one (a cacerts step cannot need a gateway).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::cluster::ObjectRef;
pub use crate::phase::Phase;
use crate::render::ClusterRender;
use crate::spec::MeshSpec;

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
}

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
}

impl Action {
    /// A short name for output: `apply` or `remote-secret`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Apply { .. } => "apply",
            Action::RemoteSecret { .. } => "remote-secret",
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
/// let plan = Plan::build(&spec, &render::render_mesh(&spec, &bundles)?)?;
/// // us's remote secret goes to eu, once its token and eu's namespace are there.
/// let pair = plan.pair_steps().find(|s| s.cluster == "eu").unwrap();
/// assert_eq!(pair.phase, Phase::RemoteSecrets);
/// assert_eq!(pair.object.to_string(), "Secret istio-system/istio-remote-secret-us");
/// assert!(matches!(&pair.action, Action::RemoteSecret { source } if source == "us"));
/// assert_eq!(pair.needs.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Its position in [`Plan::steps`].
    pub id: StepId,
    /// The phase it belongs to.
    pub phase: Phase,
    /// The cluster it reads or writes.
    pub cluster: String,
    /// The object it is about.
    #[serde(serialize_with = "serialize_object_ref")]
    pub object: ObjectRef,
    /// What it does.
    pub action: Action,
    /// The source cluster, for remote-secret steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Steps that must have succeeded before this one may run.
    pub needs: Vec<StepId>,
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
/// let renders = render::render_mesh(&spec, &bundles)?;
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
    /// The reader token of every cluster that is the source of a remote secret.
    pub reader_tokens: BTreeMap<String, ReaderToken>,
    /// The namespace istiod watches for remote secrets.
    pub istio_namespace: String,
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
    /// Builds the plan from the spec and every cluster's rendered objects.
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

        let mut steps: Vec<Step> = Vec::new();
        // The last step of each (cluster, phase), and the step that makes a cluster's reader
        // token.
        let mut last_of: BTreeMap<(&str, Phase), StepId> = BTreeMap::new();
        let mut token_ready: BTreeMap<&str, StepId> = BTreeMap::new();
        let mut reader_tokens = BTreeMap::new();

        for phase in CLUSTER_PHASES {
            for cluster in &clusters {
                let render =
                    by_cluster
                        .get(cluster.as_str())
                        .ok_or_else(|| PlanError::MissingRender {
                            cluster: cluster.clone(),
                        })?;
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
                    let wait = if token.is_some() {
                        Some(Wait::Token)
                    } else if phase == Phase::Gateways && is_load_balancer(&rendered.object) {
                        Some(Wait::ExternalAddress)
                    } else {
                        None
                    };
                    // The previous step of this phase, else the last step of the phase it
                    // builds on (those form a chain of their own).
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
                    let id = StepId(steps.len());
                    steps.push(Step {
                        id,
                        phase,
                        cluster: cluster.clone(),
                        object,
                        action: Action::Apply {
                            object: Box::new(rendered.object.clone()),
                            wait,
                        },
                        source: None,
                        needs: need.into_iter().collect(),
                    });
                    last_of.insert((cluster, phase), id);
                    if let Some(token) = token {
                        token_ready.insert(cluster, id);
                        reader_tokens.insert(cluster.clone(), token);
                    }
                }
            }
        }

        for (src, dst) in &pairs {
            let token = token_ready.get(src.as_str()).copied().ok_or_else(|| {
                PlanError::MissingReaderToken {
                    cluster: src.clone(),
                }
            })?;
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
            istio_namespace: spec.istio_namespace.clone(),
        })
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
    /// reviews; remote secrets count for the cluster they are written to.
    pub fn writes_on(&self, cluster: &str) -> BTreeSet<(String, String, Option<String>)> {
        self.steps
            .iter()
            .filter(|s| s.cluster == cluster)
            .map(|s| {
                (
                    api_group(&s.object.api_version).to_string(),
                    resource_of(&s.object),
                    s.object.namespace.clone(),
                )
            })
            .collect()
    }
}

fn is_load_balancer(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Service")
        && object.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
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

    fn plan_of(spec: &MeshSpec) -> Plan {
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
        let renders = crate::render::render_mesh(spec, &bundles).unwrap();
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
        let plan = plan_of(&spec(THREE, "multi-primary"));
        let eu: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| s.cluster == "eu" && s.phase != Phase::RemoteSecrets)
            .collect();
        assert_eq!(eu[0].phase, Phase::Namespace);
        assert!(eu[0].needs.is_empty());
        for w in eu.windows(2) {
            assert!(w[0].phase <= w[1].phase);
            if w[0].phase == w[1].phase || w[1].phase != Phase::Readers {
                assert_eq!(w[1].needs, [w[0].id]);
            }
        }
        // The readers build on the namespace only: never on cacerts or a gateway.
        let first_reader = eu.iter().find(|s| s.phase == Phase::Readers).unwrap();
        let namespace = eu.iter().rfind(|s| s.phase == Phase::Namespace).unwrap();
        assert_eq!(first_reader.needs, [namespace.id]);
        // The east-west Service waits for its address; nothing else in the gateways phase does.
        let waits: Vec<&Step> = eu
            .iter()
            .copied()
            .filter(|s| {
                matches!(
                    s.action,
                    Action::Apply {
                        wait: Some(Wait::ExternalAddress),
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].object.kind, "Service");
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
        let plan = plan_of(&spec(THREE, "multi-primary"));
        let writes = plan.writes_on("eu");
        assert!(writes.contains(&(String::new(), "namespaces".into(), None)));
        assert!(writes.contains(&(String::new(), "secrets".into(), Some("istio-system".into()))));
        assert!(writes.contains(&(
            "rbac.authorization.k8s.io".into(),
            "clusterroles".into(),
            None
        )));
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
