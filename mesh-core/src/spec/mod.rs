//! The mesh file (`mesh.yaml`): its schema, defaults and validation.
//!
//! [`MeshSpec`] is the validated form every other module works from. It is only ever built by
//! [`MeshSpec::from_file`] / [`MeshSpec::from_yaml`], so holding one means every rule below
//! already passed:
//!
//! - unknown fields are errors, reported with line and column;
//! - `apiVersion: meshboot/v1alpha1`, `kind: Mesh`, `meshID` and at least one cluster are required;
//! - cluster names are unique DNS-1123 labels (they become istiod's `clusterName`, the remote
//!   secret's data key and the intermediate CA's `L=`);
//! - every cluster has a `network` and a kubeconfig `context`;
//! - `apiServer`, when set, is `https://` and not loopback (the other clusters dial it);
//! - `dataplane: ambient` needs `model: multi-primary` and one network per cluster (the only
//!   ambient multicluster topology Istio supports);
//! - `model: multi-primary`: every cluster is a primary, so `role: remote` is an error;
//! - `model: primary-remote`: every cluster states its `role`; there is at least one primary and
//!   one remote; each remote is served by exactly one primary (see [`MeshSpec::control_plane_of`]);
//! - `controlPlane` (optional, [`ControlPlaneSpec`]): `install: helm|none` (default `none`),
//!   `version` (an exact chart version, required with `install: helm`), `repo` (default
//!   [`DEFAULT_CHART_REPO`]) or `chartDir` (never both), and `values` per chart (`base`,
//!   `istiod`, `gateway` for sidecar; `cni`, `ztunnel` for ambient) merged over what meshboot
//!   renders; `clusters[].controlPlane.values` adds per-cluster values over those. A key
//!   meshboot sets itself ([`crate::render::helm::OWNED_VALUES`]: the mesh identity, the
//!   multicluster and east-west gateway keys) is an error naming the key.
//! - `readerToken` (optional, [`ReaderTokenSpec`]): `ttl` (10m to 2^32 s, whole seconds) and
//!   `refreshBefore` (below the ttl; default a third of it); absent, remote secrets carry
//!   istioctl's long-lived token.
//!
//! Paths in the file (`ca.dir`, `ca.root.*`, `clusters[].kubeconfig`, `controlPlane.chartDir`)
//! are relative to the file; a leading `~/` is the home folder.
//!
//! ```
//! use mesh_core::spec::{MeshSpec, Model};
//! let spec = MeshSpec::from_yaml(
//!     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nclusters:\n  - {name: eu, network: net1, context: eu}\n  - {name: us, network: net2, context: us}\n",
//!     std::path::Path::new("/etc/mesh"),
//!     "mesh.yaml",
//! )?;
//! assert_eq!(spec.model, Model::MultiPrimary);
//! assert_eq!(spec.remote_secret_pairs(), vec![("eu".to_string(), "us".to_string()), ("us".to_string(), "eu".to_string())]);
//! assert_eq!(spec.ca.dir, std::path::Path::new("/etc/mesh/pki"));
//! # Ok::<(), mesh_core::spec::SpecError>(())
//! ```

mod control_plane;
mod file;
mod karmada;
mod load;
mod path;
mod reader_token;
mod validate;

pub use control_plane::{ChartSource, ControlPlaneSpec, DEFAULT_CHART_REPO};
pub use karmada::{
    ClusterSelector, KarmadaSpec, MemberOverride, NetworkFrom, SelectorOperator,
    SelectorRequirement,
};
pub use reader_token::{MAX_TTL, MIN_TTL, ReaderTokenSpec};
pub(crate) use validate::label_value as label_value_rule;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use crate::pki::{CaOptions, KeyAlgorithm};

/// The `apiVersion` this build reads.
pub const API_VERSION: &str = "meshboot/v1alpha1";
/// The `kind` of a mesh file.
pub const KIND: &str = "Mesh";

/// A validated mesh file.
///
/// ```
/// use mesh_core::spec::MeshSpec;
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."),
///     "inline",
/// )?;
/// assert_eq!(spec.cluster("a").map(|c| c.network.as_str()), Some("n"));
/// # Ok::<(), mesh_core::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSpec {
    /// `meshID`: the same in every cluster (`global.meshID`).
    pub mesh_id: String,
    /// `trustDomain` (default `cluster.local`).
    pub trust_domain: String,
    /// `istioNamespace` (default `istio-system`).
    pub istio_namespace: String,
    /// `model` (default `multi-primary`).
    pub model: Model,
    /// `dataplane` (default `sidecar`).
    pub dataplane: Dataplane,
    /// `ca`: where the mesh CA lives and how it is made.
    pub ca: CaSpec,
    /// `controlPlane`: whether meshboot installs Istio's charts, which version, from where, and
    /// the values added to what meshboot renders.
    pub control_plane: ControlPlaneSpec,
    /// `readerToken`: `None` for the legacy long-lived token Secret (istioctl's), else the
    /// lifetime of the bound token each remote secret carries ([`ReaderTokenSpec`]).
    pub reader_token: Option<ReaderTokenSpec>,
    /// `karmada`: the fleet comes from a Karmada API server. While it is set and not yet
    /// resolved ([`crate::karmada::resolve_fleet`]), `clusters` is empty and the file's
    /// `clusters[]` entries are overrides ([`KarmadaSpec::clusters`]); the resolved spec keeps
    /// it and lists every member in `clusters`.
    pub karmada: Option<KarmadaSpec>,
    /// `clusters`, in file order (which is also the order output is produced in).
    pub clusters: Vec<ClusterSpec>,
}

/// The deployment model (`reference/istio.md` §6.2).
///
/// ```
/// use mesh_core::spec::Model;
/// assert_eq!("primary-remote".parse::<Model>(), Ok(Model::PrimaryRemote));
/// assert_eq!(Model::MultiPrimary.to_string(), "multi-primary");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Model {
    /// Every cluster runs istiod and watches every other cluster.
    #[default]
    MultiPrimary,
    /// Primaries run istiod; remotes are served by a primary's istiod through its east-west
    /// gateway.
    PrimaryRemote,
}

/// The data plane (`reference/istio.md` §5.4).
///
/// ```
/// use mesh_core::spec::Dataplane;
/// assert_eq!("ambient".parse::<Dataplane>(), Ok(Dataplane::Ambient));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dataplane {
    /// Envoy sidecars; east-west traffic through the `istio/gateway` chart on 15443.
    #[default]
    Sidecar,
    /// ztunnel; east-west traffic through a Gateway API `istio-east-west` Gateway on 15008.
    Ambient,
}

/// A cluster's role (only meaningful for [`Model::PrimaryRemote`]).
///
/// ```
/// use mesh_core::spec::Role;
/// assert_eq!("remote".parse::<Role>(), Ok(Role::Remote));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Runs istiod.
    #[default]
    Primary,
    /// Runs no istiod; served by a primary.
    Remote,
}

/// `controlPlane.install`: who installs Istio's charts.
///
/// ```
/// use mesh_core::spec::Install;
/// assert_eq!("helm".parse::<Install>(), Ok(Install::Helm));
/// assert_eq!(Install::default(), Install::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Install {
    /// meshboot installs nothing: Istio is installed by the user (PLAN.md and the hints give
    /// the exact Helm commands); meshboot composes with what it finds.
    #[default]
    None,
    /// meshboot installs `istio/base`, `istio/istiod` and the east-west gateway (or, ambient,
    /// `istio/cni` and `istio/ztunnel`) with the real `helm` binary, in the cross-cluster order.
    Helm,
}

/// The `ca` section, with paths resolved relative to the mesh file.
///
/// ```
/// use mesh_core::spec::MeshSpec;
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nca: {dir: ./certs, key: ecdsa-p256}\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("/srv"),
///     "inline",
/// )?;
/// assert_eq!(spec.ca.dir, std::path::Path::new("/srv/certs"));
/// assert_eq!(spec.ca.root_days, 3650);
/// # Ok::<(), mesh_core::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSpec {
    /// `ca.dir` (default `./pki`): root files plus one folder per cluster.
    pub dir: PathBuf,
    /// `ca.key` (default `rsa-4096`).
    pub key: KeyAlgorithm,
    /// `ca.rootDays` (default 3650).
    pub root_days: u32,
    /// `ca.intermediateDays` (default 730); never more than `root_days`.
    pub intermediate_days: u32,
    /// `ca.root`: bring your own root instead of generating one.
    pub root: Option<RootSource>,
    /// `ca.multiRoot` (default false): render the istiod and proxy settings a root rotation
    /// needs (`ISTIO_MULTIROOT_MESH=true` on istiod, `PROXY_CONFIG_XDS_AGENT=true` in the
    /// proxies' mesh config), so `meshboot rotate root` can replace the root without restarts.
    pub multi_root: bool,
}

/// A root CA the user brings (`ca.root`), paths resolved relative to the mesh file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSource {
    /// PEM certificate of the root.
    pub cert: PathBuf,
    /// PEM private key of the root.
    pub key: PathBuf,
}

/// One entry of `clusters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// DNS-1123 label: istiod's `clusterName`, the remote-secret key, the intermediate's `L=`.
    pub name: String,
    /// The `topology.istio.io/network` this cluster is on.
    pub network: String,
    /// kubeconfig context used to reach the cluster.
    pub context: String,
    /// kubeconfig file (resolved relative to the mesh file); `None` means `$KUBECONFIG` or
    /// `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The API server address the other clusters use; `None` means the kubeconfig's server.
    pub api_server: Option<String>,
    /// Primary or remote (always [`Role::Primary`] in a multi-primary mesh).
    pub role: Role,
    /// For a remote: the primary whose istiod serves it (explicit `primary:` or inferred; see
    /// [`MeshSpec::control_plane_of`]). `None` for primaries.
    pub primary: Option<String>,
    /// `clusters[].controlPlane.values`: per-chart Helm values for this cluster only, merged
    /// over the mesh-wide `controlPlane.values` (keyed by chart name: `base`, `istiod`, ...).
    pub control_plane_values: BTreeMap<String, serde_json::Value>,
    /// A Karmada Push member without a context: the hub's credentials for it, held in memory
    /// only ([`crate::cluster::MemberCredentials`]); it is connected with these instead of
    /// `kubeconfig` + `context`. Always `None` for clusters the mesh file lists itself.
    pub credentials: Option<std::sync::Arc<crate::cluster::MemberCredentials>>,
}

impl ClusterSpec {
    /// The context to write into commands for a person (PLAN.md, hints): the kubeconfig
    /// context, or, for a Karmada Push member reached with the hub's credentials, a
    /// placeholder such as `<context of eu>` that no kubeconfig has: an empty `--context` would
    /// make kubectl and helm act on the current context, which may be another cluster.
    ///
    /// ```
    /// use mesh_core::spec::MeshSpec;
    /// let spec = MeshSpec::from_yaml("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: ctx-a}]\n", std::path::Path::new("."), "m.yaml")?;
    /// assert_eq!(spec.clusters[0].context_for_commands(), "ctx-a");
    /// let mut pushed = spec.clusters[0].clone();
    /// pushed.context.clear();
    /// assert_eq!(pushed.context_for_commands(), "<context of a>");
    /// # Ok::<(), mesh_core::spec::SpecError>(())
    /// ```
    pub fn context_for_commands(&self) -> String {
        if self.context.is_empty() {
            format!("<context of {}>", self.name)
        } else {
            self.context.clone()
        }
    }

    /// True when this cluster runs istiod.
    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }
}

impl MeshSpec {
    /// The cluster with this name.
    pub fn cluster(&self, name: &str) -> Option<&ClusterSpec> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The primaries, in file order.
    pub fn primaries(&self) -> impl Iterator<Item = &ClusterSpec> {
        self.clusters.iter().filter(|c| c.is_primary())
    }

    /// The distinct networks, sorted.
    pub fn networks(&self) -> BTreeSet<&str> {
        self.clusters.iter().map(|c| c.network.as_str()).collect()
    }

    /// True when the mesh spans more than one network: east-west gateways and the
    /// `cross-network-gateway` exposure are then needed.
    pub fn is_multi_network(&self) -> bool {
        self.networks().len() > 1
    }

    /// The primary whose istiod serves `cluster`: the cluster itself for a primary, else the
    /// remote's resolved `primary`.
    ///
    /// A remote's primary is, in this order: its explicit `primary:` field; else the only primary
    /// on the remote's network; else the only primary of the mesh. Any network works, because
    /// the primary exposes istiod (15012, 15017) through its east-west gateway
    /// (`reference/istio.md` §6.2 C and D) and the remote reaches it at the gateway's external
    /// address. When that leaves a choice, validation asks for `primary:`.
    pub fn control_plane_of<'a>(&'a self, cluster: &'a ClusterSpec) -> Option<&'a ClusterSpec> {
        match cluster.role {
            Role::Primary => Some(cluster),
            Role::Remote => cluster.primary.as_deref().and_then(|p| self.cluster(p)),
        }
    }

    /// The CA settings as the PKI takes them.
    ///
    /// ```
    /// use mesh_core::{pki::KeyAlgorithm, spec::MeshSpec};
    /// let spec = MeshSpec::from_yaml(
    ///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\ntrustDomain: example.org\nca: {key: ecdsa-p256, intermediateDays: 365}\nclusters: [{name: a, network: n, context: a}]\n",
    ///     std::path::Path::new("."), "m.yaml")?;
    /// let opts = spec.ca_options();
    /// assert_eq!((opts.key, opts.intermediate_days, opts.trust_domain.as_str()), (KeyAlgorithm::EcdsaP256, 365, "example.org"));
    /// # Ok::<(), mesh_core::spec::SpecError>(())
    /// ```
    pub fn ca_options(&self) -> CaOptions {
        CaOptions {
            key: self.ca.key,
            root_days: self.ca.root_days,
            intermediate_days: self.ca.intermediate_days,
            trust_domain: self.trust_domain.clone(),
            ..CaOptions::default()
        }
    }

    /// Cluster names in file order, as the PKI takes them.
    pub fn cluster_names(&self) -> Vec<&str> {
        self.clusters.iter().map(|c| c.name.as_str()).collect()
    }

    /// Every ordered pair `(src, dst)` that needs Secret `istio-remote-secret-<src>` in `dst`:
    /// every `dst` is a primary (only istiod reads remote secrets) and `src != dst`. In a
    /// multi-primary mesh that is every ordered pair; with one primary it is remote → primary.
    pub fn remote_secret_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for src in &self.clusters {
            for dst in self.primaries() {
                if src.name != dst.name {
                    pairs.push((src.name.clone(), dst.name.clone()));
                }
            }
        }
        pairs
    }

    /// The sources whose remote secrets carry bound tokens (`readerToken` set: every source of
    /// a pair, each pair with a token of its own); empty with long-lived reader tokens. The
    /// render gives these sources one bound object per destination (`render::reader`), and
    /// `apply` keeps their listed remote secrets whole, to judge each token by its expiry.
    ///
    /// ```
    /// use mesh_core::spec::MeshSpec;
    /// let yaml = concat!(
    ///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters:\n",
    ///     "  - {name: eu, network: n1, context: eu}\n  - {name: us, network: n2, context: us}\n",
    /// );
    /// let spec = MeshSpec::from_yaml(yaml, std::path::Path::new("."), "mesh.yaml")?;
    /// assert!(spec.bound_token_sources().is_empty());
    /// let bound = MeshSpec::from_yaml(&yaml.replace("meshID: m\n", "meshID: m\nreaderToken: {ttl: 24h}\n"),
    ///     std::path::Path::new("."), "mesh.yaml")?;
    /// assert_eq!(bound.bound_token_sources().into_iter().collect::<Vec<_>>(), ["eu", "us"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bound_token_sources(&self) -> BTreeSet<String> {
        if self.reader_token.is_none() {
            return BTreeSet::new();
        }
        self.remote_secret_pairs()
            .into_iter()
            .map(|(src, _)| src)
            .collect()
    }
}

macro_rules! keyword_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every accepted spelling, in documentation order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The spelling used in `mesh.yaml`.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownKeyword;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(UnknownKeyword {
                        field: $what,
                        value: other.to_string(),
                        expected: $ty::NAMES,
                    }),
                }
            }
        }
    };
}

/// A `model`, `dataplane` or `role` value the schema does not know.
///
/// ```
/// use mesh_core::spec::Model;
/// let err = "multi-cluster".parse::<Model>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown model \"multi-cluster\": expected multi-primary or primary-remote");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {field} {value:?}: expected {}", .expected.join(" or "))]
pub struct UnknownKeyword {
    /// The field: `model`, `dataplane` or `role`.
    pub field: &'static str,
    /// The value as written.
    pub value: String,
    /// The accepted values.
    pub expected: &'static [&'static str],
}

keyword_enum!(Model, "model", { MultiPrimary => "multi-primary", PrimaryRemote => "primary-remote" });
keyword_enum!(Dataplane, "dataplane", { Sidecar => "sidecar", Ambient => "ambient" });
keyword_enum!(Role, "role", { Primary => "primary", Remote => "remote" });
keyword_enum!(Install, "install", { None => "none", Helm => "helm" });
keyword_enum!(NetworkFrom, "karmada.network", { Region => "region", Zone => "zone", Cluster => "cluster" });
keyword_enum!(SelectorOperator, "operator", { In => "In", NotIn => "NotIn", Exists => "Exists", DoesNotExist => "DoesNotExist" });

/// One problem found in a mesh file: the field path (e.g. `clusters[2].name`), where it is and
/// what is wrong.
///
/// ```
/// use mesh_core::spec::Issue;
/// let i = Issue { path: "clusters[1].name".into(), line: 9, column: 11, message: "duplicate cluster name \"eu\"".into() };
/// assert_eq!(i.to_string(), "9:11: clusters[1].name: duplicate cluster name \"eu\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Field path, `.`-separated, with `[i]` for list entries.
    pub path: String,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.line, self.column, self.path, self.message
        )
    }
}

/// Errors from reading or validating `mesh.yaml`. Every variant names the file; parse and
/// validation errors also name the field and its line:column.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read mesh file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A field the schema does not know (often a typo).
    #[error("{file}:{issue}; expected one of: {expected}")]
    UnknownField {
        /// The file label.
        file: String,
        /// Path of the unknown field, e.g. `clusters[0].netwrok`.
        issue: Issue,
        /// The fields allowed at that place.
        expected: String,
    },
    /// Not valid YAML, or a value of the wrong type.
    #[error("{file}:{issue}")]
    Syntax {
        /// The file label.
        file: String,
        /// Where and what.
        issue: Issue,
    },
    /// The file parsed but breaks one or more rules; every problem is listed.
    #[error("{file}: {}", display_issues(file, issues))]
    Invalid {
        /// The file label.
        file: String,
        /// Every problem found, in file order.
        issues: Vec<Issue>,
    },
}

fn display_issues(file: &str, issues: &[Issue]) -> String {
    match issues {
        [one] => one.to_string(),
        many => {
            let mut s = format!("{} problems", many.len());
            for i in many {
                s.push_str(&format!("\n  {file}:{i}"));
            }
            s
        }
    }
}

impl SpecError {
    /// One line per problem, each `file:line:column: path: message`, for printing on stderr.
    ///
    /// ```
    /// use mesh_core::spec::MeshSpec;
    /// let err = MeshSpec::from_yaml("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: []\n", std::path::Path::new("."), "m.yaml").unwrap_err();
    /// assert_eq!(err.lines(), vec!["m.yaml:4:11: clusters: at least one cluster is required".to_string()]);
    /// ```
    pub fn lines(&self) -> Vec<String> {
        match self {
            SpecError::Invalid { file, issues } => {
                issues.iter().map(|i| format!("{file}:{i}")).collect()
            }
            other => vec![other.to_string()],
        }
    }

    /// The problems as structured issues (a read error has none).
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            SpecError::Read { .. } => Vec::new(),
            SpecError::UnknownField { issue, .. } | SpecError::Syntax { issue, .. } => {
                vec![issue.clone()]
            }
            SpecError::Invalid { issues, .. } => issues.clone(),
        }
    }
}
