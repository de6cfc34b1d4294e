//! The fleet from a Karmada control plane (`reference/karmada.md`).
//!
//! A mesh file with `karmada:` ([`KarmadaSpec`](crate::spec::KarmadaSpec)) lists no clusters of its own: the members are
//! the hub's `Cluster` objects (`cluster.karmada.io/v1alpha1`) that match `clusterSelector`.
//! [`resolve_fleet`] reads them through the one door ([`Connector`] / [`ClusterOps`]) and gives
//! back the mesh file as if it had listed them ([`Fleet::spec`]), so apply, verify, rotate and
//! render need nothing else:
//!
//! - name: the `Cluster`'s name; `apiServer` (what other clusters' istiod dial): its
//!   `spec.apiEndpoint`, normalized to `https://`; network: per `karmada.network` (`region`,
//!   `zone` or `cluster`); a `clusters[]` entry of the same name overrides any of them;
//! - reached with the `clusters[]` entry's context when it has one; else, for a Push member,
//!   with the hub's credentials for it (`spec.secretRef`: `token` + `caBundle`), held in memory
//!   only ([`MemberCredentials`]), never written or logged; a Pull member without a context is
//!   an error, since the hub holds no credentials for it;
//! - only members whose `Ready` condition is `True`, unless [`FleetOptions::include_not_ready`];
//!   the rest are listed in [`Fleet::skipped`].
//!
//! Every problem is found before anything is written anywhere, and reported all at once
//! ([`KarmadaError::Fleet`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_core::cluster::KubeConnector;
//! use mesh_core::karmada::{resolve_fleet, FleetOptions};
//! use mesh_core::spec::MeshSpec;
//!
//! let spec = MeshSpec::from_file("mesh.yaml")?;
//! let fleet = resolve_fleet(&spec, &KubeConnector::default(), &FleetOptions::default()).await?;
//! for m in &fleet.members {
//!     println!("{} on {} at {} ({})", m.name, m.network, m.api_server, m.reached_by);
//! }
//! let resolved = fleet.spec; // every member in `clusters`, ready for apply/verify/render
//! # Ok(()) }
//! ```

mod resolve;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::cluster::{ClusterError, ClusterOps, Connector, MemberCredentials, ObjectRef};
use crate::spec::{ClusterSpec, MeshSpec, NetworkFrom, Role};

pub use resolve::{Planned, PlannedMember, normalize_endpoint, plan_members};

/// `apiVersion` of Karmada's `Cluster` kind.
pub const CLUSTER_API_VERSION: &str = "cluster.karmada.io/v1alpha1";

/// What [`resolve_fleet`] may do beyond the default.
///
/// ```
/// assert!(!mesh_core::karmada::FleetOptions::default().include_not_ready);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetOptions {
    /// Use members whose `Ready` condition is not `True` too (`--include-not-ready`).
    pub include_not_ready: bool,
}

/// The resolved fleet: the mesh file with every member in `clusters`, and what each member
/// came from, for a person to check (`meshboot validate` prints it).
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The mesh file with `clusters` filled from the hub (unchanged without `karmada`).
    pub spec: MeshSpec,
    /// The hub, when the fleet came from one.
    pub hub: Option<Hub>,
    /// The members used, in the order of `spec.clusters`.
    pub members: Vec<FleetMember>,
    /// Members of the hub the selector matched but that are not used, and why.
    pub skipped: Vec<SkippedMember>,
}

/// The Karmada API server the fleet was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hub {
    /// Its kubeconfig context.
    pub context: String,
    /// Its kubeconfig file, when the mesh file names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// Its URL, as the kubeconfig states it.
    pub server: String,
    /// `karmada.clusterSelector` in label-selector syntax (`None`: every `Cluster`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<String>,
    /// `karmada.network`.
    pub network: String,
}

/// One member as resolved: what the mesh uses and where each part came from.
///
/// ```
/// use mesh_core::karmada::{FleetMember, NetworkSource, ReachedBy, SyncMode};
/// let m = FleetMember {
///     name: "eu".into(), network: "eu-west".into(), network_from: NetworkSource::Region,
///     api_server: "https://203.0.113.10:6443".into(), api_endpoint: Some("https://203.0.113.10:6443".into()),
///     sync_mode: Some(SyncMode::Push), ready: true,
///     reached_by: ReachedBy::HubSecret { secret: "karmada-cluster/eu".into() },
/// };
/// assert_eq!(m.reached_by.to_string(), "the hub's Secret karmada-cluster/eu");
/// assert_eq!(serde_json::to_value(&m).unwrap()["reachedBy"]["via"], "hubSecret");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetMember {
    /// The cluster name (the `Cluster`'s name).
    pub name: String,
    /// Its `topology.istio.io/network`.
    pub network: String,
    /// Where the network came from.
    pub network_from: NetworkSource,
    /// The API server other clusters use (remote secrets): `clusters[].apiServer`, else the
    /// `Cluster`'s `spec.apiEndpoint`.
    pub api_server: String,
    /// `spec.apiEndpoint` as the hub records it (normalized to `https://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_endpoint: Option<String>,
    /// `spec.syncMode` (`None` for a cluster the mesh file lists itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<SyncMode>,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    /// How meshboot reaches it.
    pub reached_by: ReachedBy,
}

/// Where a member's network came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkSource {
    /// The member's `clusters[]` entry (or the mesh file's own cluster list).
    MeshFile,
    /// The `Cluster`'s `spec.region`.
    Region,
    /// The `Cluster`'s zone.
    Zone,
    /// The member's name.
    Cluster,
}

impl From<NetworkFrom> for NetworkSource {
    fn from(n: NetworkFrom) -> NetworkSource {
        match n {
            NetworkFrom::Region => NetworkSource::Region,
            NetworkFrom::Zone => NetworkSource::Zone,
            NetworkFrom::Cluster => NetworkSource::Cluster,
        }
    }
}

impl fmt::Display for NetworkSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkSource::MeshFile => "mesh file",
            NetworkSource::Region => "region",
            NetworkSource::Zone => "zone",
            NetworkSource::Cluster => "cluster name",
        })
    }
}

/// `spec.syncMode` of a `Cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SyncMode {
    /// The hub reaches the member, with credentials it holds (`spec.secretRef`).
    Push,
    /// An agent in the member reaches the hub; the hub holds no credentials for it.
    Pull,
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncMode::Push => "Push",
            SyncMode::Pull => "Pull",
        })
    }
}

/// How meshboot reaches a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "camelCase")]
pub enum ReachedBy {
    /// A kubeconfig context (from `clusters[]`, or the mesh file's own cluster list).
    #[serde(rename_all = "camelCase")]
    Context {
        /// The context.
        context: String,
        /// Its kubeconfig file, when the mesh file names one.
        #[serde(skip_serializing_if = "Option::is_none")]
        kubeconfig: Option<PathBuf>,
    },
    /// The hub's credentials for a Push member, read from this Secret (`namespace/name`) and
    /// held in memory only.
    HubSecret {
        /// `namespace/name` of the Secret in the hub.
        secret: String,
    },
}

impl fmt::Display for ReachedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReachedBy::Context {
                context,
                kubeconfig: None,
            } => write!(f, "context {context}"),
            ReachedBy::Context {
                context,
                kubeconfig: Some(k),
            } => write!(f, "context {context} of {}", k.display()),
            ReachedBy::HubSecret { secret } => write!(f, "the hub's Secret {secret}"),
        }
    }
}

/// A member of the hub the selector matched that is not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedMember {
    /// The `Cluster`'s name.
    pub name: String,
    /// Why, e.g. `NotReady (ClusterNotReachable: cluster is not reachable)`.
    pub reason: String,
}

/// What stops the fleet from resolving. Nothing has been written anywhere when it is returned.
#[derive(Debug, thiserror::Error)]
pub enum KarmadaError {
    /// The Karmada API server could not be read.
    #[error(
        "the Karmada API server (karmada.context {context}) could not be read: {source}{}",
        hint(.source)
    )]
    Hub {
        /// `karmada.context`.
        context: String,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// One or more members cannot be used as the mesh file and the hub state them; every
    /// problem names the member and what to change.
    #[error("the fleet from the Karmada API server (context {context}): {}", problems.join("; "))]
    Fleet {
        /// `karmada.context`.
        context: String,
        /// One line per problem.
        problems: Vec<String>,
    },
}

fn hint(err: &ClusterError) -> &'static str {
    match err {
        ClusterError::NotFound { .. } => {
            " (is this context the Karmada API server? it serves cluster.karmada.io/v1alpha1 Cluster objects)"
        }
        _ => "",
    }
}

impl KarmadaError {
    /// One line per problem, for printing on stderr.
    ///
    /// ```
    /// let err = mesh_core::karmada::KarmadaError::Fleet { context: "k".into(), problems: vec!["a".into(), "b".into()] };
    /// assert_eq!(err.lines(), vec!["karmada (context k): a", "karmada (context k): b"]);
    /// ```
    pub fn lines(&self) -> Vec<String> {
        match self {
            KarmadaError::Fleet { context, problems } => problems
                .iter()
                .map(|p| format!("karmada (context {context}): {p}"))
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// Resolves the fleet of a mesh file: with `karmada`, reads the hub's `Cluster` objects (and
/// the Push members' credentials) through `connector`; without, returns the file's own
/// clusters unchanged (and makes no request). See the [module docs](self) for the rules.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use mesh_core::cluster::KubeConnector;
/// use mesh_core::karmada::{resolve_fleet, FleetOptions, ReachedBy};
/// use mesh_core::spec::MeshSpec;
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "mesh.yaml").unwrap();
/// let fleet = resolve_fleet(&spec, &KubeConnector::default(), &FleetOptions::default()).await.unwrap();
/// assert_eq!(fleet.spec, spec);
/// assert_eq!(fleet.members[0].reached_by, ReachedBy::Context { context: "a".into(), kubeconfig: None });
/// # });
/// ```
pub async fn resolve_fleet<K: Connector>(
    spec: &MeshSpec,
    connector: &K,
    options: &FleetOptions,
) -> Result<Fleet, KarmadaError> {
    let Some(karmada) = &spec.karmada else {
        return Ok(own_clusters(spec));
    };
    let hub_err = |source| KarmadaError::Hub {
        context: karmada.context.clone(),
        source,
    };
    let hub = connector
        .connect(
            &karmada.context,
            karmada.kubeconfig.as_deref(),
            &karmada.context,
        )
        .await
        .map_err(hub_err)?;
    let selector = karmada.cluster_selector.to_query();
    let objects = hub
        .list(CLUSTER_API_VERSION, "Cluster", None, selector.as_deref())
        .await
        .map_err(hub_err)?;
    let planned = plan_members(spec, karmada, &objects, options);
    let mut problems = planned.problems;
    let mut credentials = Vec::with_capacity(planned.members.len());
    for m in &planned.members {
        let creds = match &m.secret {
            None => None,
            Some(secret_ref) => {
                match read_credentials(&hub, &m.member, secret_ref, m.insecure).await {
                    Ok(c) => Some(Arc::new(c)),
                    Err(problem) => {
                        problems.push(problem);
                        None
                    }
                }
            }
        };
        credentials.push(creds);
    }
    if !problems.is_empty() {
        return Err(KarmadaError::Fleet {
            context: karmada.context.clone(),
            problems,
        });
    }
    let mut resolved = spec.clone();
    resolved.clusters = planned
        .members
        .iter()
        .zip(credentials)
        .map(|(m, credentials)| {
            let o = karmada.override_of(&m.member.name).map(|(_, o)| o);
            let (context, kubeconfig) = match &m.member.reached_by {
                ReachedBy::Context {
                    context,
                    kubeconfig,
                } => (context.clone(), kubeconfig.clone()),
                ReachedBy::HubSecret { .. } => (String::new(), None),
            };
            ClusterSpec {
                name: m.member.name.clone(),
                network: m.member.network.clone(),
                context,
                kubeconfig,
                api_server: Some(m.member.api_server.clone()),
                role: Role::Primary,
                primary: None,
                control_plane_values: o
                    .map(|o| o.control_plane_values.clone())
                    .unwrap_or_default(),
                credentials,
            }
        })
        .collect();
    // What the mesh file alone could not tell: a member that gets no east-west gateway would
    // silently ignore the gateway values its clusters[] entry gives.
    let unused: Vec<String> = karmada
        .clusters
        .iter()
        .enumerate()
        .filter(|(_, o)| o.control_plane_values.contains_key("gateway"))
        .filter_map(|(i, o)| {
            let c = resolved.cluster(&o.name)?;
            (!crate::render::Needs::of(&resolved, c).eastwest_gateway).then(|| {
                format!(
                    "clusters[{i}].controlPlane.values.gateway: cluster {:?} gets no east-west gateway (it is needed only to cross networks), so these values would be ignored",
                    o.name
                )
            })
        })
        .collect();
    if !unused.is_empty() {
        return Err(KarmadaError::Fleet {
            context: karmada.context.clone(),
            problems: unused,
        });
    }
    Ok(Fleet {
        spec: resolved,
        hub: Some(Hub {
            context: karmada.context.clone(),
            kubeconfig: karmada.kubeconfig.clone(),
            server: hub.server().to_string(),
            cluster_selector: selector,
            network: karmada.network.to_string(),
        }),
        members: planned.members.into_iter().map(|m| m.member).collect(),
        skipped: planned.skipped,
    })
}

/// A mesh file without `karmada`: its own clusters, each reached by its context.
fn own_clusters(spec: &MeshSpec) -> Fleet {
    let members = spec
        .clusters
        .iter()
        .map(|c| FleetMember {
            name: c.name.clone(),
            network: c.network.clone(),
            network_from: NetworkSource::MeshFile,
            api_server: c.api_server.clone().unwrap_or_default(),
            api_endpoint: None,
            sync_mode: None,
            ready: true,
            reached_by: ReachedBy::Context {
                context: c.context.clone(),
                kubeconfig: c.kubeconfig.clone(),
            },
        })
        .collect();
    Fleet {
        spec: spec.clone(),
        hub: None,
        members,
        skipped: Vec::new(),
    }
}

/// Reads a Push member's credentials from the hub. The problem, if any, names the member and
/// the Secret, never its content.
async fn read_credentials<C: ClusterOps>(
    hub: &C,
    member: &FleetMember,
    secret: &ObjectRef,
    insecure: bool,
) -> Result<MemberCredentials, String> {
    let name = &member.name;
    let at = format!(
        "Secret {}/{}",
        secret.namespace.as_deref().unwrap_or_default(),
        secret.name
    );
    let obj = match hub.get(secret).await {
        Ok(Some(obj)) => obj,
        Ok(None) => {
            return Err(format!(
                "member {name}: its spec.secretRef names {at}, which does not exist in the hub; re-join it (karmadactl join) or give clusters[].context for {name}"
            ));
        }
        Err(err) => {
            return Err(format!(
                "member {name}: cannot read {at} from the hub: {err}; give clusters[].context for {name} if these credentials are not meant for meshboot"
            ));
        }
    };
    let field = |key: &str| -> Result<Vec<u8>, String> {
        let b64 = obj["data"][key].as_str().unwrap_or_default();
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| format!("member {name}: {at} has data.{key} that is not base64"))?;
        if bytes.is_empty() {
            return Err(format!(
                "member {name}: {at} in the hub has no data.{key}; re-join it (karmadactl join) or give clusters[].context for {name}"
            ));
        }
        Ok(bytes)
    };
    let token = String::from_utf8(field("token")?)
        .map_err(|_| format!("member {name}: {at} has a data.token that is not text"))?;
    let ca_bundle = match field("caBundle") {
        Ok(ca) => ca,
        // Karmada itself connects without a CA when the Cluster skips TLS verification.
        Err(_) if insecure => Vec::new(),
        Err(e) => return Err(e),
    };
    let server = member.api_endpoint.clone().unwrap_or_default();
    Ok(MemberCredentials::new(
        &server,
        token.trim(),
        ca_bundle,
        &format!("{at} in the Karmada hub"),
    )
    .insecure(insecure))
}
