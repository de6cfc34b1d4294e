//! Everything each cluster needs, as complete Kubernetes objects in apply order: pure functions
//! of the [`MeshSpec`], the cluster's CA [`ClusterBundle`] and the [`RenderOptions`]; the same
//! input gives the same output, byte for byte once written by [`output`].
//!
//! Per cluster, in order (file stems are fixed per concept so the same concept has the same file
//! name in every cluster and across runs):
//!
//! | file stem | phase | what |
//! |---|---|---|
//! | `01-namespace` | namespace | the Istio namespace with `topology.istio.io/network` ([`namespace`]) |
//! | `02-cacerts` | cacerts | Secret `cacerts` ([`cacerts`]) |
//! | (Helm values) | control-plane | `base`, `istiod`, `gateway` or `cni`/`ztunnel` values ([`helm`]) |
//! | `03-eastwest-gateway` | gateways | ambient only: the Gateway API east-west `Gateway` ([`eastwest`]) |
//! | `04-expose-services` | gateways | `cross-network-gateway` ([`expose`]) |
//! | `05-expose-istiod` | gateways | `istiod-gateway` + `istiod-vs` ([`expose`]) |
//! | `06-reader` | readers | the reader's token Secret (with `readerToken.ttl`: one bound object per destination instead), and its own identity if it has to ([`reader`]) |
//!
//! Objects Istio's charts own are never rendered ([`render_mesh_with`]): the sidecar east-west
//! gateway comes from the `istio/gateway` chart (its values are rendered), the reader account
//! and RBAC from `istio/base` and `istio/istiod` (or meshboot's own reader, under names no chart
//! uses, where preflight finds no chart reader: [`ReaderIdentity`]).
//!
//! Remote secrets are not rendered: they carry live tokens, so `meshboot apply` (or
//! `meshboot remote-secret`) creates them.
//!
//! ```
//! use std::collections::BTreeMap;
//! use mesh_core::{pki::ClusterBundle, render, spec::MeshSpec};
//! let spec = MeshSpec::from_yaml(
//!     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nclusters:\n  - {name: eu, network: net1, context: eu}\n  - {name: us, network: net2, context: us}\n",
//!     std::path::Path::new("."),
//!     "mesh.yaml",
//! )?;
//! let bundle = |c: &str| ClusterBundle {
//!     cluster: c.into(),
//!     ca_cert_pem: "ca".into(),
//!     ca_key_pem: "key".into(),
//!     root_cert_pem: "root".into(),
//!     cert_chain_pem: "chain".into(),
//! };
//! let bundles: BTreeMap<_, _> = ["eu", "us"].map(|c| (c.to_string(), bundle(c))).into();
//! let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?;
//! let eu = &renders[0];
//! assert_eq!(eu.objects[0].object["kind"], "Namespace");
//! assert_eq!(eu.objects[0].object["metadata"]["labels"]["topology.istio.io/network"], "net1");
//! assert!(eu.objects.iter().any(|o| o.object["metadata"]["name"] == "cross-network-gateway"));
//! // The gateway itself is the istio/gateway chart's, installed with these values:
//! assert!(eu.helm_values.iter().any(|h| h.chart == "gateway"));
//! assert!(!eu.objects.iter().any(|o| o.object["kind"] == "Deployment"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cacerts;
pub mod demo;
pub mod eastwest;
pub mod expose;
pub mod helm;
pub mod karmada;
pub mod namespace;
pub mod output;
pub mod plan_doc;
pub mod reader;
pub mod rotation_job;
pub mod webster;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::phase::Phase;
use crate::pki::ClusterBundle;
use crate::spec::{ClusterSpec, Dataplane, MeshSpec, Model};
pub use reader::ReaderIdentity;

/// Everything rendered for one cluster.
#[derive(Clone, PartialEq)]
pub struct ClusterRender {
    /// The cluster's name.
    pub cluster: String,
    /// Kubernetes objects, in apply order.
    pub objects: Vec<RenderedObject>,
    /// Helm values, in install order (`base`, `istiod`, then `cni`/`ztunnel` or `gateway`).
    pub helm_values: Vec<HelmValues>,
}

/// One complete Kubernetes object (apiVersion, kind, metadata.name, metadata.namespace when
/// namespaced) and where it goes.
#[derive(Clone, PartialEq)]
pub struct RenderedObject {
    /// The phase that applies it.
    pub phase: Phase,
    /// The file it is written to, without extension, e.g. `01-namespace`.
    pub file_stem: String,
    /// The object.
    pub object: Value,
}

/// Values for one Helm chart.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmValues {
    /// Chart name in the `istio` Helm repository: `base`, `istiod`, `gateway`, `cni`, `ztunnel`.
    pub chart: String,
    /// The values (written to `helm/<chart>-values.yaml`).
    pub values: Value,
}

impl RenderedObject {
    /// `Kind/namespace/name` (or `Kind/name`), for messages.
    ///
    /// ```
    /// let o = mesh_core::render::RenderedObject {
    ///     phase: mesh_core::phase::Phase::Namespace,
    ///     file_stem: "01-namespace".into(),
    ///     object: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
    /// };
    /// assert_eq!(o.describe(), "Namespace/istio-system");
    /// ```
    pub fn describe(&self) -> String {
        describe(&self.object)
    }

    /// True when the object carries private key material (the `cacerts` Secret): written with
    /// mode 0600 and never printed.
    pub fn is_sensitive(&self) -> bool {
        self.phase == Phase::CaCerts
    }
}

fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("?");
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

// Hand-written: the cacerts object holds the intermediate's private key, and `{:?}` must never
// print it.
impl fmt::Debug for RenderedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedObject")
            .field("phase", &self.phase)
            .field("file_stem", &self.file_stem)
            .field("object", &self.describe())
            .finish()
    }
}

impl fmt::Debug for ClusterRender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterRender")
            .field("cluster", &self.cluster)
            .field("objects", &self.objects)
            .field("helm_values", &self.helm_values)
            .finish()
    }
}

/// Errors from rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A cluster has no CA bundle.
    #[error("cluster {cluster}: no CA bundle (run the CA step for it first)")]
    MissingBundle {
        /// The cluster.
        cluster: String,
    },
    /// The bundle passed for a cluster belongs to another cluster.
    #[error("cluster {cluster}: the CA bundle given is cluster {bundle_cluster}'s")]
    BundleMismatch {
        /// The cluster being rendered.
        cluster: String,
        /// The cluster the bundle was made for.
        bundle_cluster: String,
    },
    /// The cluster is not part of the mesh.
    #[error("cluster {cluster} is not in the mesh file")]
    UnknownCluster {
        /// The cluster.
        cluster: String,
    },
    /// A remote's primary is missing from the spec (only possible for a hand-built spec).
    #[error("cluster {cluster}: remote without a primary")]
    NoPrimary {
        /// The remote cluster.
        cluster: String,
    },
    /// An object could not be turned into JSON.
    #[error("cluster {cluster}: cannot serialize {object}: {source}")]
    Serialize {
        /// The cluster.
        cluster: String,
        /// `Kind/name` of the object.
        object: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Turning an object into YAML text.
    #[error("cannot write YAML: {message}")]
    Yaml {
        /// The serializer's message (never the value: it may be a key).
        message: String,
    },
    /// Writing the rendered files.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a cluster gets, decided once from the spec so that every renderer and PLAN.md agree.
///
/// ```
/// use mesh_core::{render::Needs, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}, {name: b, network: n, context: b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let needs = Needs::of(&spec, &spec.clusters[0]);
/// assert!(!needs.eastwest_gateway, "one network, multi-primary: no gateway");
/// # Ok::<(), mesh_core::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// An east-west gateway (sidecar: the `istio/gateway` chart; ambient: a Gateway API
    /// `Gateway`).
    pub eastwest_gateway: bool,
    /// `cross-network-gateway` (sidecar, multi-network, on clusters running istiod).
    pub expose_services: bool,
    /// `istiod-gateway` + `istiod-vs` (primary-remote primaries).
    pub expose_istiod: bool,
    /// A reader token (and identity, [`ReaderIdentity`]): only clusters some other cluster's
    /// istiod reads, i.e. the source of at least one remote secret.
    pub reader: bool,
}

impl Needs {
    /// Decide for one cluster.
    pub fn of(spec: &MeshSpec, cluster: &ClusterSpec) -> Needs {
        let multi_network = spec.is_multi_network();
        let primary_remote_primary = spec.model == Model::PrimaryRemote && cluster.is_primary();
        let sidecar = spec.dataplane == Dataplane::Sidecar;
        Needs {
            // A primary of a primary-remote mesh exposes istiod through it even on one network
            // (reference/istio.md §6.2 C step 2); otherwise only crossing networks needs one.
            eastwest_gateway: multi_network || (sidecar && primary_remote_primary),
            // Istio config lives where istiod runs; a remote's gateway gets it from its primary
            // (§6.2 D step 10).
            expose_services: sidecar && multi_network && cluster.is_primary(),
            expose_istiod: sidecar && primary_remote_primary,
            // The source of a remote secret: some other primary's istiod reads this cluster
            // (the same rule as MeshSpec::remote_secret_pairs, without building every pair).
            reader: spec.primaries().any(|p| p.name != cluster.name),
        }
    }
}

/// What rendering needs beyond the mesh file: facts only the clusters know, found in preflight
/// or while applying. The default is what `meshboot render` writes for the GitOps path, where
/// the charts are installed first (PLAN.md's order): the charts' reader, no address yet.
///
/// ```
/// use mesh_core::render::{ReaderIdentity, RenderOptions};
/// let mut opts = RenderOptions::default();
/// opts.readers.insert("eu".into(), ReaderIdentity::Meshboot);
/// opts.eastwest_addresses.insert("primary1".into(), "203.0.113.7".into());
/// assert_eq!(opts.reader("eu"), ReaderIdentity::Meshboot);
/// assert_eq!(opts.reader("us"), ReaderIdentity::Chart);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// The reader identity per cluster (chosen in preflight: `reference/istio.md` §9 and
    /// decision 1); a cluster not listed gets [`ReaderIdentity::Chart`].
    pub readers: BTreeMap<String, ReaderIdentity>,
    /// The external address of each primary's east-west gateway, keyed by the primary's name:
    /// its remotes get it as `global.remotePilotAddress`. Empty offline (PLAN.md reads it from
    /// the cluster instead).
    pub eastwest_addresses: BTreeMap<String, String>,
}

impl RenderOptions {
    /// The reader identity of `cluster`.
    pub fn reader(&self, cluster: &str) -> ReaderIdentity {
        self.readers.get(cluster).copied().unwrap_or_default()
    }
}

/// Render every object and Helm values file one cluster needs.
///
/// ```
/// use mesh_core::{pki::ClusterBundle, render, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let bundle = ClusterBundle { cluster: "a".into(), ca_cert_pem: "c".into(), ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() };
/// let r = render::render_cluster_with(&spec, &spec.clusters[0], &bundle, &render::RenderOptions::default())?;
/// let stems: Vec<_> = r.objects.iter().map(|o| o.file_stem.as_str()).collect();
/// // One cluster: nothing crosses a network and no other istiod reads it.
/// assert_eq!(stems, ["01-namespace", "02-cacerts"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_cluster_with(
    spec: &MeshSpec,
    cluster: &ClusterSpec,
    bundle: &ClusterBundle,
    options: &RenderOptions,
) -> Result<ClusterRender, RenderError> {
    if spec.cluster(&cluster.name).is_none() {
        return Err(RenderError::UnknownCluster {
            cluster: cluster.name.clone(),
        });
    }
    if bundle.cluster != cluster.name {
        return Err(RenderError::BundleMismatch {
            cluster: cluster.name.clone(),
            bundle_cluster: bundle.cluster.clone(),
        });
    }
    let needs = Needs::of(spec, cluster);
    // The namespace first, then cacerts (before istiod starts), then the gateways' objects.
    let mut public = public_objects(spec, cluster)?;
    let gateways = public.split_off(1);
    let mut objects = public;
    objects.push(RenderedObject {
        phase: Phase::CaCerts,
        file_stem: "02-cacerts".into(),
        object: cacerts::cacerts(spec, cluster, bundle)?,
    });
    objects.extend(gateways);
    if needs.reader {
        for object in reader::reader_objects(spec, cluster, options.reader(&cluster.name))? {
            objects.push(RenderedObject {
                phase: Phase::Readers,
                file_stem: "06-reader".into(),
                object,
            });
        }
    }
    let address = spec
        .control_plane_of(cluster)
        .filter(|p| p.name != cluster.name)
        .and_then(|p| options.eastwest_addresses.get(&p.name))
        .map(String::as_str);

    Ok(ClusterRender {
        cluster: cluster.name.clone(),
        objects,
        helm_values: helm::values(spec, cluster, needs, address)?,
    })
}

/// The objects of `cluster` that hold no secret and need no CA: the Istio namespace with its
/// labels (`01-namespace`), then the gateway objects meshboot renders (`03`..`05`), in apply
/// order. What a fleet manager such as Karmada may carry to the cluster
/// ([`karmada`]); [`render_cluster_with`] adds `cacerts` and the reader's objects to them.
///
/// ```
/// use mesh_core::{render, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n1, context: a}, {name: b, network: n2, context: b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let objects = render::public_objects(&spec, &spec.clusters[0])?;
/// let stems: Vec<_> = objects.iter().map(|o| o.file_stem.as_str()).collect();
/// assert_eq!(stems, ["01-namespace", "04-expose-services"]);
/// assert!(objects.iter().all(|o| o.object["kind"] != "Secret"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn public_objects(
    spec: &MeshSpec,
    cluster: &ClusterSpec,
) -> Result<Vec<RenderedObject>, RenderError> {
    let needs = Needs::of(spec, cluster);
    let mut objects = Vec::new();
    let mut push = |phase: Phase, stem: &str, values: Vec<Value>| {
        for object in values {
            objects.push(RenderedObject {
                phase,
                file_stem: stem.to_string(),
                object,
            });
        }
    };
    push(
        Phase::Namespace,
        "01-namespace",
        vec![namespace::namespace(spec, cluster)?],
    );
    // Sidecar: the istio/gateway chart's objects, installed from the Helm values.
    if needs.eastwest_gateway && spec.dataplane == Dataplane::Ambient {
        push(
            Phase::Gateways,
            "03-eastwest-gateway",
            vec![eastwest::ambient_gateway(spec, cluster)],
        );
    }
    if needs.expose_services {
        push(
            Phase::Gateways,
            "04-expose-services",
            vec![expose::cross_network_gateway(spec)],
        );
    }
    if needs.expose_istiod {
        push(Phase::Gateways, "05-expose-istiod", expose::istiod(spec));
    }
    Ok(objects)
}

/// Render every cluster of the mesh, in file order, without any object Istio's charts own:
/// what `meshboot render` writes (with [`RenderOptions::default`]) and what `meshboot apply`
/// renders once preflight has chosen each cluster's reader. `bundles` is keyed by cluster name.
///
/// ```
/// use std::collections::BTreeMap;
/// use mesh_core::{pki::ClusterBundle, render::{self, RenderOptions}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nmodel: primary-remote\nclusters:\n  - {name: p, network: n1, context: p, role: primary}\n  - {name: r, network: n2, context: r, role: remote}\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let bundles: BTreeMap<_, _> = ["p", "r"].map(|c| (c.to_string(), ClusterBundle {
///     cluster: c.into(), ca_cert_pem: "c".into(), ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() })).into();
/// let mut opts = RenderOptions::default();
/// opts.eastwest_addresses.insert("p".into(), "203.0.113.7".into());
/// let renders = render::render_mesh_with(&spec, &bundles, &opts)?;
/// let istiod = renders[1].helm_values.iter().find(|h| h.chart == "istiod").unwrap();
/// assert_eq!(istiod.values["global"]["remotePilotAddress"], "203.0.113.7");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_mesh_with(
    spec: &MeshSpec,
    bundles: &BTreeMap<String, ClusterBundle>,
    options: &RenderOptions,
) -> Result<Vec<ClusterRender>, RenderError> {
    spec.clusters
        .iter()
        .map(|c| {
            let bundle = bundles
                .get(&c.name)
                .ok_or_else(|| RenderError::MissingBundle {
                    cluster: c.name.clone(),
                })?;
            render_cluster_with(spec, c, bundle, options)
        })
        .collect()
}

/// Serialize a typed object, naming it if that fails.
pub(crate) fn to_value<T: Serialize>(
    cluster: &ClusterSpec,
    what: &str,
    object: &T,
) -> Result<Value, RenderError> {
    serde_json::to_value(object).map_err(|source| RenderError::Serialize {
        cluster: cluster.name.clone(),
        object: what.to_string(),
        source,
    })
}

/// `BTreeMap<String, String>` from pairs: labels and annotations, always string values.
pub(crate) fn string_map<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The label Istio reads a network from (`reference/istio.md` §5.6).
pub const NETWORK_LABEL: &str = "topology.istio.io/network";
