//! The Istio namespace, carrying the cluster's network (`reference/istio.md` §6.1, §6.2 B/D).
//! It is created before Helm runs so that the label is in place when istiod starts, and a
//! primary-remote remote also carries the annotation that lets its primary's istiod manage it.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::{NETWORK_LABEL, RenderError, string_map, to_value};
use crate::spec::{ClusterSpec, MeshSpec, Role};

/// Annotation naming the primaries whose istiod manages a remote (§6.1 `externalIstiod`).
pub const CONTROL_PLANE_CLUSTERS: &str = "topology.istio.io/controlPlaneClusters";

/// The namespace object for `cluster`.
///
/// ```
/// use mesh_core::{render::namespace::namespace, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nmodel: primary-remote\nclusters:\n  - {name: a, network: n1, context: a, role: primary}\n  - {name: b, network: n1, context: b, role: remote}\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let ns = namespace(&spec, &spec.clusters[1])?;
/// assert_eq!(ns["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"], "a");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn namespace(spec: &MeshSpec, cluster: &ClusterSpec) -> Result<Value, RenderError> {
    let annotations = match cluster.role {
        Role::Primary => None,
        Role::Remote => {
            let primary = spec
                .control_plane_of(cluster)
                .ok_or_else(|| RenderError::NoPrimary {
                    cluster: cluster.name.clone(),
                })?;
            Some(string_map([(
                CONTROL_PLANE_CLUSTERS,
                primary.name.as_str(),
            )]))
        }
    };
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(spec.istio_namespace.clone()),
            labels: Some(string_map([(NETWORK_LABEL, cluster.network.as_str())])),
            annotations,
            ..Default::default()
        },
        ..Default::default()
    };
    to_value(cluster, "Namespace", &ns)
}
