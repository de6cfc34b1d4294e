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
    pub clusters: Option<S<Vec<S<ClusterFile>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CaFile {
    pub dir: Option<S<String>>,
    pub key: Option<S<String>>,
    pub root_days: Option<S<i64>>,
    pub intermediate_days: Option<S<i64>>,
    pub root: Option<S<RootFile>>,
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
}
