//! `karmada` in the mesh file: take the fleet from a Karmada control plane instead of listing
//! every cluster by hand.
//!
//! ```yaml
//! karmada:
//!   context: karmada-apiserver        # kubeconfig context of the Karmada API server (required)
//!   # kubeconfig: ./karmada-config    # default $KUBECONFIG, else ~/.kube/config
//!   clusterSelector: {matchLabels: {mesh: mesh1}}   # optional; default every Cluster
//!   network: region                   # region | zone | cluster (required)
//! clusters:                           # optional: entries override what Karmada says
//!   - {name: eu, network: network3}
//! ```
//!
//! With `karmada`, `clusters[]` entries need only a `name` (a member of the hub); `network`,
//! `context`, `kubeconfig`, `apiServer` and `controlPlane.values` override what the hub says.
//! The members themselves are read from the hub by [`crate::karmada::resolve_fleet`].
//!
//! ```
//! use mesh_core::spec::{MeshSpec, NetworkFrom};
//! let spec = MeshSpec::from_yaml(
//!     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nkarmada: {context: karmada-apiserver, network: region, clusterSelector: {matchLabels: {mesh: m}}}\nclusters: [{name: eu, network: network3}]\n",
//!     std::path::Path::new("."), "mesh.yaml")?;
//! let karmada = spec.karmada.as_ref().unwrap();
//! assert_eq!(karmada.network, NetworkFrom::Region);
//! assert_eq!(karmada.cluster_selector.to_query().as_deref(), Some("mesh=m"));
//! assert_eq!(karmada.clusters[0].network.as_deref(), Some("network3"));
//! assert!(spec.clusters.is_empty(), "the members come from the hub");
//! # Ok::<(), mesh_core::spec::SpecError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::file::{KarmadaFile, Node, RequirementFile, S, SelectorFile};
use super::load::resolve;
use super::validate::{Issues, label_value};

/// The `karmada` section, validated; `clusters` holds the `clusters[]` overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KarmadaSpec {
    /// kubeconfig context of the Karmada API server.
    pub context: String,
    /// kubeconfig file of that context (resolved relative to the mesh file); `None` means
    /// `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Which `Cluster` objects are members of the mesh (empty: every one).
    pub cluster_selector: ClusterSelector,
    /// How a member's network is named when `clusters[]` does not say.
    pub network: NetworkFrom,
    /// `clusters[]`: what the user overrides, per member, in file order.
    pub clusters: Vec<MemberOverride>,
}

impl KarmadaSpec {
    /// The override for member `name`, with its index in `clusters[]`.
    pub fn override_of(&self, name: &str) -> Option<(usize, &MemberOverride)> {
        self.clusters
            .iter()
            .enumerate()
            .find(|(_, o)| o.name == name)
    }
}

/// `karmada.network`: where a member's `topology.istio.io/network` comes from.
///
/// ```
/// use mesh_core::spec::NetworkFrom;
/// assert_eq!("zone".parse::<NetworkFrom>(), Ok(NetworkFrom::Zone));
/// assert!("vpc".parse::<NetworkFrom>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkFrom {
    /// The `Cluster`'s `spec.region`: clusters of one region share a network.
    #[default]
    Region,
    /// The `Cluster`'s zone (`spec.zone`, or the only entry of `spec.zones`).
    Zone,
    /// The member's name: every cluster is its own network.
    Cluster,
}

/// `clusters[i]` of a mesh file with `karmada`: only `name` is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOverride {
    /// The member (`Cluster` `metadata.name` in the hub).
    pub name: String,
    /// Replaces the network the `karmada.network` rule gives.
    pub network: Option<String>,
    /// A kubeconfig context to reach the member with; it wins over the hub's credentials and
    /// is the only way to reach a Pull member.
    pub context: Option<String>,
    /// The kubeconfig file of `context`.
    pub kubeconfig: Option<PathBuf>,
    /// Replaces `spec.apiEndpoint` as the address the other clusters use.
    pub api_server: Option<String>,
    /// `clusters[].controlPlane.values`, as without karmada.
    pub control_plane_values: BTreeMap<String, serde_json::Value>,
}

/// A `metav1.LabelSelector` over the hub's `Cluster` objects.
///
/// ```
/// use mesh_core::spec::{ClusterSelector, SelectorOperator, SelectorRequirement};
/// let s = ClusterSelector {
///     match_labels: [("mesh".to_string(), "m1".to_string())].into(),
///     match_expressions: vec![
///         SelectorRequirement { key: "tier".into(), operator: SelectorOperator::In, values: vec!["a".into(), "b".into()] },
///         SelectorRequirement { key: "retired".into(), operator: SelectorOperator::DoesNotExist, values: vec![] },
///     ],
/// };
/// assert_eq!(s.to_query().as_deref(), Some("mesh=m1,tier in (a,b),!retired"));
/// assert_eq!(ClusterSelector::default().to_query(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSelector {
    /// `matchLabels`: each label must have exactly this value.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`: each must hold.
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRequirement {
    /// The label key.
    pub key: String,
    /// How the label is compared.
    pub operator: SelectorOperator,
    /// The values (`In`/`NotIn`: at least one; `Exists`/`DoesNotExist`: none).
    pub values: Vec<String>,
}

/// `matchExpressions[].operator`, as apimachinery spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SelectorOperator {
    /// The label's value is one of the values.
    #[default]
    In,
    /// The label is absent or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl ClusterSelector {
    /// The selector in the `labelSelector` query syntax of a list request; `None` selects
    /// everything.
    pub fn to_query(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for r in &self.match_expressions {
            parts.push(match r.operator {
                SelectorOperator::In => format!("{} in ({})", r.key, r.values.join(",")),
                SelectorOperator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                SelectorOperator::Exists => r.key.clone(),
                SelectorOperator::DoesNotExist => format!("!{}", r.key),
            });
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

impl fmt::Display for ClusterSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_query().as_deref().unwrap_or("(every Cluster)"))
    }
}

pub(super) fn validate_karmada(
    f: &S<KarmadaFile>,
    base_dir: &Path,
    issues: &mut Issues,
) -> KarmadaSpec {
    let k = &f.value;
    let context = match &k.context {
        None => {
            issues.at(
                "karmada.context",
                f.referenced,
                "required: the kubeconfig context of the Karmada API server, e.g. context: karmada-apiserver",
            );
            String::new()
        }
        Some(v) if v.value.trim().is_empty() => {
            issues.at("karmada.context", v.referenced, "must not be empty");
            String::new()
        }
        Some(v) => v.value.clone(),
    };
    let kubeconfig = match &k.kubeconfig {
        None => None,
        Some(v) if v.value.trim().is_empty() => {
            issues.at(
                "karmada.kubeconfig",
                v.referenced,
                "must not be empty (leave it out to use $KUBECONFIG)",
            );
            None
        }
        Some(v) => Some(resolve(base_dir, &v.value)),
    };
    let network = match &k.network {
        None => {
            issues.at(
                "karmada.network",
                f.referenced,
                "required: how a member's network is named when clusters[] does not say: region (the Cluster's spec.region), zone (its zone) or cluster (its name)",
            );
            NetworkFrom::default()
        }
        Some(v) => v
            .value
            .parse()
            .unwrap_or_else(|why: super::UnknownKeyword| {
                issues.at("karmada.network", v.referenced, why.to_string());
                NetworkFrom::default()
            }),
    };
    let cluster_selector = k
        .cluster_selector
        .as_ref()
        .map(|s| selector(s, issues))
        .unwrap_or_default();
    KarmadaSpec {
        context,
        kubeconfig,
        cluster_selector,
        network,
        clusters: Vec::new(),
    }
}

fn selector(s: &S<SelectorFile>, issues: &mut Issues) -> ClusterSelector {
    const AT: &str = "karmada.clusterSelector";
    let mut out = ClusterSelector::default();
    if let Some(labels) = &s.value.match_labels {
        match &labels.value {
            Node::Map(entries) => {
                for (key, value) in entries {
                    let path = format!("{AT}.matchLabels.{}", key.value);
                    if let Err(why) = label_key(&key.value) {
                        issues.at(&path, key.referenced, why);
                    }
                    match &value.value {
                        Node::Str(v) => {
                            // An empty value is a valid label value.
                            if !v.is_empty()
                                && let Err(why) = label_value(v)
                            {
                                issues.at(&path, value.referenced, why);
                            }
                            out.match_labels.insert(key.value.clone(), v.clone());
                        }
                        _ => issues.at(
                            &path,
                            value.referenced,
                            "a label value is a string: quote it (e.g. \"1\", \"true\")",
                        ),
                    }
                }
            }
            _ => issues.at(
                format!("{AT}.matchLabels"),
                labels.referenced,
                "must be a mapping of label to value, e.g. {mesh: mesh1}",
            ),
        }
    }
    if let Some(list) = &s.value.match_expressions {
        for (i, r) in list.value.iter().enumerate() {
            if let Some(req) = requirement(&format!("{AT}.matchExpressions[{i}]"), r, issues) {
                out.match_expressions.push(req);
            }
        }
    }
    out
}

fn requirement(
    path: &str,
    r: &S<RequirementFile>,
    issues: &mut Issues,
) -> Option<SelectorRequirement> {
    let f = &r.value;
    let key = match &f.key {
        None => {
            issues.at(format!("{path}.key"), r.referenced, "required: a label key");
            return None;
        }
        Some(k) => {
            if let Err(why) = label_key(&k.value) {
                issues.at(format!("{path}.key"), k.referenced, why);
            }
            k.value.clone()
        }
    };
    let operator = match &f.operator {
        None => {
            issues.at(
                format!("{path}.operator"),
                r.referenced,
                "required: In, NotIn, Exists or DoesNotExist",
            );
            return None;
        }
        Some(o) => match o.value.parse::<SelectorOperator>() {
            Ok(op) => op,
            Err(why) => {
                issues.at(format!("{path}.operator"), o.referenced, why.to_string());
                return None;
            }
        },
    };
    let values: Vec<String> = f
        .values
        .as_ref()
        .map(|v| v.value.iter().map(|s| s.value.clone()).collect())
        .unwrap_or_default();
    let values_at = f
        .values
        .as_ref()
        .map(|v| v.referenced)
        .unwrap_or(r.referenced);
    // The rules of apimachinery's ValidateLabelSelectorRequirement.
    match operator {
        SelectorOperator::In | SelectorOperator::NotIn if values.is_empty() => issues.at(
            format!("{path}.values"),
            values_at,
            format!("must be non-empty when operator is {operator}"),
        ),
        SelectorOperator::Exists | SelectorOperator::DoesNotExist if !values.is_empty() => issues
            .at(
                format!("{path}.values"),
                values_at,
                format!("may not be specified when operator is {operator}"),
            ),
        _ => {}
    }
    for (i, v) in f.values.iter().flat_map(|l| l.value.iter()).enumerate() {
        if !v.value.is_empty()
            && let Err(why) = label_value(&v.value)
        {
            issues.at(format!("{path}.values[{i}]"), v.referenced, why);
        }
    }
    Some(SelectorRequirement {
        key,
        operator,
        values,
    })
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of 1-63 letters, digits,
/// '-', '_' or '.', starting and ending with a letter or digit.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = label_value(name).is_ok();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.')
                .all(|l| super::validate::dns1123_label(l).is_ok())
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a valid label key: an optional DNS subdomain prefix and '/', then 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_follow_apimachinery() {
        for ok in ["mesh", "karmada.io/region", "a.b-c_d", "x/y"] {
            assert_eq!(label_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "a/", "/a", "Bad_Prefix/x", "a b", &"n".repeat(64)] {
            assert!(label_key(bad).is_err(), "{bad}");
        }
    }
}
