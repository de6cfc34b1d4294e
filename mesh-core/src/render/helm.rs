//! Helm values for the Istio charts (`reference/istio.md` §6), one values file per chart and no
//! `--set` needed: the same identity values everywhere (meshID, clusterName, network), plus what
//! the model and data plane add, with the user's `controlPlane.values` merged over them. The
//! east-west gateway is configured only through `name` + `networkGateway`, which avoids every
//! common hand-written mistake of §5.5 (wrong selector, unescaped or duplicated network label,
//! duplicated env, ignored ports).
//!
//! Every key meshboot sets is listed in [`OWNED_VALUES`]; the mesh file may not override them
//! (validation names the key), and a test checks that nothing rendered is missing from it.

use serde_json::{Map, Value, json};

use super::{HelmValues, Needs, RenderError, eastwest};
use crate::spec::{ClusterSpec, Dataplane, MeshSpec, Model, Role};

/// A Helm value meshboot sets (or that a value meshboot sets already decides), so a user
/// override would silently disagree with the rest of the mesh.
///
/// ```
/// use mesh_core::render::helm::OWNED_VALUES;
/// assert!(OWNED_VALUES.iter().any(|o| o.chart == "istiod" && o.path == ["global", "meshID"]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedValue {
    /// The chart: `base`, `istiod`, `gateway`, `cni` or `ztunnel`.
    pub chart: &'static str,
    /// The key, one segment per mapping level (`["global", "meshID"]`).
    pub path: &'static [&'static str],
    /// Where meshboot takes the value from, for the validation message.
    pub why: &'static str,
}

const fn owned(
    chart: &'static str,
    path: &'static [&'static str],
    why: &'static str,
) -> OwnedValue {
    OwnedValue { chart, path, why }
}

const FROM_MODEL: &str = "from model and role";
const FROM_PR: &str = "from model: primary-remote";
const FROM_REMOTE: &str = "from role: remote";
const NO_REVISIONS: &str = "meshboot installs the default revision: the reader, the remote secrets and the exposure assume it";

/// Every value meshboot renders into a chart's values, or that `networkGateway` already sets.
pub const OWNED_VALUES: &[OwnedValue] = &[
    owned("base", &["profile"], FROM_MODEL),
    owned("base", &["global", "externalIstiod"], FROM_PR),
    owned("base", &["revision"], NO_REVISIONS),
    owned("istiod", &["profile"], "from model, role and dataplane"),
    owned("istiod", &["revision"], NO_REVISIONS),
    owned("istiod", &["global", "meshID"], "from meshID"),
    owned(
        "istiod",
        &["global", "multiCluster", "clusterName"],
        "from clusters[].name, which must equal the cluster's remote-secret key",
    ),
    owned("istiod", &["global", "network"], "from clusters[].network"),
    owned(
        "istiod",
        &["meshConfig", "trustDomain"],
        "from trustDomain, which the mesh CA's identities use",
    ),
    owned(
        "istiod",
        &["env", "AMBIENT_ENABLE_MULTI_NETWORK"],
        "from dataplane: ambient",
    ),
    owned("istiod", &["global", "externalIstiod"], FROM_PR),
    owned("istiod", &["pilot", "env", "EXTERNAL_ISTIOD"], FROM_PR),
    owned("istiod", &["global", "configCluster"], FROM_REMOTE),
    owned(
        "istiod",
        &["global", "remotePilotAddress"],
        "from the primary's east-west gateway address",
    ),
    owned(
        "istiod",
        &["istiodRemote", "injectionPath"],
        "from the remote's name and network",
    ),
    owned("istiod", &["pilot", "enabled"], FROM_REMOTE),
    owned(
        "gateway",
        &["name"],
        "the east-west gateway is istio-eastwestgateway, the name PLAN.md, verify and the exposure use",
    ),
    owned("gateway", &["revision"], NO_REVISIONS),
    owned("gateway", &["networkGateway"], "from clusters[].network"),
    owned(
        "gateway",
        &["labels", "app"],
        "the gateway's selector, derived from its name",
    ),
    owned(
        "gateway",
        &["labels", "istio"],
        "the selector the exposure Gateways use (istio: eastwestgateway)",
    ),
    owned(
        "gateway",
        &["labels", "topology.istio.io/network"],
        "networkGateway sets it; a second copy is a duplicate key",
    ),
    owned(
        "gateway",
        &["env", "ISTIO_META_REQUESTED_NETWORK_VIEW"],
        "networkGateway sets it",
    ),
    owned(
        "gateway",
        &["service", "ports"],
        "networkGateway replaces them with the east-west ports; change networkGatewayPorts instead",
    ),
    owned("cni", &["profile"], "from dataplane: ambient"),
    owned("cni", &["revision"], NO_REVISIONS),
    owned(
        "ztunnel",
        &["multiCluster", "clusterName"],
        "from clusters[].name, which must equal istiod's clusterName",
    ),
    owned("ztunnel", &["global", "network"], "from clusters[].network"),
    owned("ztunnel", &["revision"], NO_REVISIONS),
];

/// Merge `over` into `base` the way Helm merges values files: mappings merge key by key,
/// anything else (scalar, list, null) replaces.
///
/// ```
/// use serde_json::json;
/// let mut v = json!({"global": {"meshID": "m", "proxy": {"cpu": "1"}}, "list": [1, 2]});
/// mesh_core::render::helm::merge(&mut v, &json!({"global": {"proxy": {"cpu": "2"}}, "list": [3]}));
/// assert_eq!(v, json!({"global": {"meshID": "m", "proxy": {"cpu": "2"}}, "list": [3]}));
/// ```
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The `helm install` release name for each chart, as the Istio docs name them.
///
/// ```
/// assert_eq!(mesh_core::render::helm::release_name("base"), "istio-base");
/// assert_eq!(mesh_core::render::helm::release_name("gateway"), "istio-eastwestgateway");
/// ```
pub fn release_name(chart: &str) -> &str {
    match chart {
        "base" => "istio-base",
        "istiod" => "istiod",
        "gateway" => eastwest::NAME,
        "cni" => "istio-cni",
        "ztunnel" => "ztunnel",
        other => other,
    }
}

/// The injection path a remote's webhook uses to reach its primary's istiod (§6.1).
///
/// ```
/// assert_eq!(mesh_core::render::helm::injection_path("b", "n2"), "/inject/cluster/b/net/n2");
/// ```
pub fn injection_path(cluster: &str, network: &str) -> String {
    format!("/inject/cluster/{cluster}/net/{network}")
}

fn insert(map: &mut Map<String, Value>, dotted: &str, value: Value) {
    let mut parts = dotted.split('.').peekable();
    let mut cur = map;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return;
        }
        let next = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        cur = m;
    }
}

fn build(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        insert(&mut m, k, v);
    }
    Value::Object(m)
}

/// Every chart's values for `cluster`, in install order, with `controlPlane.values` and then
/// `clusters[].controlPlane.values` merged over them ([`merge`]). `remote_pilot_address` is the
/// primary's east-west gateway address for a remote's `global.remotePilotAddress`; it is only
/// known once that gateway has an external address, so offline rendering passes `None` and
/// PLAN.md shows how to supply it.
///
/// ```
/// use mesh_core::{render::{Needs, helm::values}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nclusters: [{name: a, network: n1, context: a}, {name: b, network: n2, context: b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let c = &spec.clusters[0];
/// let v = values(&spec, c, Needs::of(&spec, c), None)?;
/// assert_eq!(v[1].chart, "istiod");
/// assert_eq!(v[1].values["global"]["multiCluster"]["clusterName"], "a");
/// assert_eq!(v[2].values, serde_json::json!({"name": "istio-eastwestgateway", "networkGateway": "n1"}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn values(
    spec: &MeshSpec,
    cluster: &ClusterSpec,
    needs: Needs,
    remote_pilot_address: Option<&str>,
) -> Result<Vec<HelmValues>, RenderError> {
    let mut out = vec![
        HelmValues {
            chart: "base".into(),
            values: base(spec, cluster),
        },
        HelmValues {
            chart: "istiod".into(),
            values: istiod(spec, cluster, remote_pilot_address)?,
        },
    ];
    match spec.dataplane {
        Dataplane::Ambient => {
            out.push(HelmValues {
                chart: "cni".into(),
                values: json!({ "profile": "ambient" }),
            });
            out.push(HelmValues {
                chart: "ztunnel".into(),
                values: build(vec![
                    ("multiCluster.clusterName", json!(cluster.name)),
                    ("global.network", json!(cluster.network)),
                ]),
            });
        }
        Dataplane::Sidecar if needs.eastwest_gateway => out.push(HelmValues {
            chart: "gateway".into(),
            values: json!({ "name": eastwest::NAME, "networkGateway": cluster.network }),
        }),
        Dataplane::Sidecar => {}
    }
    for h in &mut out {
        for layer in [&spec.control_plane.values, &cluster.control_plane_values] {
            if let Some(user) = layer.get(&h.chart) {
                merge(&mut h.values, user);
            }
        }
    }
    Ok(out)
}

fn base(spec: &MeshSpec, cluster: &ClusterSpec) -> Value {
    match (spec.model, cluster.role) {
        (Model::MultiPrimary, _) => json!({}),
        (Model::PrimaryRemote, Role::Primary) => {
            build(vec![("global.externalIstiod", json!(true))])
        }
        (Model::PrimaryRemote, Role::Remote) => build(vec![
            ("profile", json!("remote")),
            ("global.externalIstiod", json!(true)),
        ]),
    }
}

fn istiod(
    spec: &MeshSpec,
    cluster: &ClusterSpec,
    remote_pilot_address: Option<&str>,
) -> Result<Value, RenderError> {
    let mut v: Vec<(&str, Value)> = Vec::new();
    if spec.model == Model::PrimaryRemote && cluster.role == Role::Remote {
        v.push(("profile", json!("remote")));
    } else if spec.dataplane == Dataplane::Ambient {
        v.push(("profile", json!("ambient")));
    }
    v.push(("global.meshID", json!(spec.mesh_id)));
    v.push(("global.multiCluster.clusterName", json!(cluster.name)));
    v.push(("global.network", json!(cluster.network)));
    if spec.trust_domain != "cluster.local" {
        v.push(("meshConfig.trustDomain", json!(spec.trust_domain)));
    }
    if spec.dataplane == Dataplane::Ambient {
        // Env values are strings in the chart; a YAML boolean would render as `true` unquoted
        // into the container env and fail validation.
        v.push(("env.AMBIENT_ENABLE_MULTI_NETWORK", json!("true")));
    }
    if spec.ca.multi_root {
        // What a root rotation needs (`reference/istio.md` §2): istiod accepts a bundle that
        // is a superset or subset of the one it has, and proxies get trust bundles over PCDS
        // instead of only at start. Both are env values, so strings.
        if cluster.role == Role::Primary {
            v.push(("pilot.env.ISTIO_MULTIROOT_MESH", json!("true")));
        }
        v.push((
            "meshConfig.defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT",
            json!("true"),
        ));
    }
    match (spec.model, cluster.role) {
        (Model::MultiPrimary, _) => {}
        (Model::PrimaryRemote, Role::Primary) => {
            v.push(("global.externalIstiod", json!(true)));
            v.push(("pilot.env.EXTERNAL_ISTIOD", json!("true")));
        }
        (Model::PrimaryRemote, Role::Remote) => {
            if spec.control_plane_of(cluster).is_none() {
                return Err(RenderError::NoPrimary {
                    cluster: cluster.name.clone(),
                });
            }
            v.push(("global.configCluster", json!(true)));
            if let Some(addr) = remote_pilot_address {
                v.push(("global.remotePilotAddress", json!(addr)));
            }
            v.push((
                "istiodRemote.injectionPath",
                json!(injection_path(&cluster.name, &cluster.network)),
            ));
            v.push(("pilot.enabled", json!(false)));
            v.push(("pilot.env.EXTERNAL_ISTIOD", json!("true")));
        }
    }
    Ok(build(v))
}
