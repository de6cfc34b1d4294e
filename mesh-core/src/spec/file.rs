//! The `mesh.yaml` document exactly as written: every field optional where the file may omit it,
//! every value carrying its line and column so validation can point at it. Turning this into a
//! [`MeshSpec`](super::MeshSpec) (defaults, paths, rules) is `validate`'s job.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A value together with where it was written.
pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MeshFile {
    pub api_version: Option<S<String>>,
    pub kind: Option<S<String>>,
    #[serde(rename = "meshID")]
    pub mesh_id: Option<S<String>>,
    pub trust_domain: Option<S<String>>,
    pub istio_namespace: Option<S<String>>,
    pub model: Option<S<String>>,
    pub dataplane: Option<S<String>>,
    pub ca: Option<S<CaFile>>,
    pub control_plane: Option<S<ControlPlaneFile>>,
    pub reader_token: Option<S<ReaderTokenFile>>,
    pub karmada: Option<S<KarmadaFile>>,
    pub clusters: Option<S<Vec<S<ClusterFile>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct KarmadaFile {
    pub context: Option<S<String>>,
    pub kubeconfig: Option<S<String>>,
    pub cluster_selector: Option<S<SelectorFile>>,
    pub network: Option<S<String>>,
}

/// A `metav1.LabelSelector` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SelectorFile {
    /// A map of label to value; [`Node`] keeps every key's position.
    pub match_labels: Option<S<Node>>,
    pub match_expressions: Option<S<Vec<S<RequirementFile>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RequirementFile {
    pub key: Option<S<String>>,
    pub operator: Option<S<String>>,
    pub values: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ReaderTokenFile {
    pub ttl: Option<S<Scalar>>,
    pub refresh_before: Option<S<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CaFile {
    pub dir: Option<S<String>>,
    pub key: Option<S<String>>,
    pub root_days: Option<S<i64>>,
    pub intermediate_days: Option<S<i64>>,
    pub root: Option<S<RootFile>>,
    pub multi_root: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RootFile {
    pub cert: Option<S<String>>,
    pub key: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ClusterFile {
    pub name: Option<S<String>>,
    pub network: Option<S<String>>,
    pub context: Option<S<String>>,
    pub kubeconfig: Option<S<String>>,
    pub api_server: Option<S<String>>,
    pub role: Option<S<String>>,
    pub primary: Option<S<String>>,
    pub control_plane: Option<S<ClusterControlPlaneFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ControlPlaneFile {
    pub install: Option<S<String>>,
    pub version: Option<S<Scalar>>,
    pub repo: Option<S<String>>,
    pub chart_dir: Option<S<String>>,
    pub values: Option<S<ChartValuesFile>>,
}

/// Per cluster only the values may differ: one mesh runs one Istio version from one source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ClusterControlPlaneFile {
    pub values: Option<S<ChartValuesFile>>,
}

/// One entry per chart meshboot installs; an unknown chart name is a typo.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChartValuesFile {
    pub base: Option<S<Node>>,
    pub istiod: Option<S<Node>>,
    pub gateway: Option<S<Node>>,
    pub cni: Option<S<Node>>,
    pub ztunnel: Option<S<Node>>,
}

impl ChartValuesFile {
    /// `(chart name, values)` for every chart given, in the order above.
    pub fn charts(&self) -> impl Iterator<Item = (&'static str, &S<Node>)> {
        [
            ("base", &self.base),
            ("istiod", &self.istiod),
            ("gateway", &self.gateway),
            ("cni", &self.cni),
            ("ztunnel", &self.ztunnel),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (name, v)))
    }
}

/// A version as written: `1.28.2` is a string to YAML, but `1.28` or `2` are numbers, and the
/// error for those should say "write it as a string", not "invalid type".
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Text(String),
    Number(String),
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Node::deserialize(d)? {
            Node::Str(s) => Scalar::Text(s),
            Node::Int(i) => Scalar::Number(i.to_string()),
            Node::UInt(u) => Scalar::Number(u.to_string()),
            Node::Float(f) => Scalar::Number(f.to_string()),
            _ => Scalar::Other,
        })
    }
}

/// Free-form YAML (Helm values) that keeps the position of every value, so that an override of
/// a key meshboot owns is reported at its line and column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<S<Node>>),
    Map(Vec<(S<String>, S<Node>)>),
}

impl Node {
    /// The same value as JSON, map order kept (Helm values are JSON-compatible).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::UInt(u) => Value::from(*u),
            Node::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.to_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("Helm values (any YAML value)")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Node, E> {
                Ok(Node::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Node, E> {
                Ok(Node::UInt(u))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Node, E> {
                Ok(Node::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Node, E> {
                Ok(Node::Str(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element::<S<Node>>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = a.next_key::<S<String>>()? {
                    let value = a.next_value::<S<Node>>()?;
                    entries.push((key, value));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}
