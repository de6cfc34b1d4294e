//! The east-west gateway object meshboot renders.
//!
//! Ambient: the Gateway API `Gateway` of class `istio-east-west` (§5.4), which no chart makes:
//! istiod (with `AMBIENT_ENABLE_MULTI_NETWORK`) turns it into the gateway Deployment and
//! Service.
//!
//! Sidecar: the gateway is the `istio/gateway` chart's, installed with the values of
//! [`super::helm`] (`name=istio-eastwestgateway`, `networkGateway=<network>`), so meshboot
//! renders none of its objects (the Deployment, Service, ServiceAccount, Role, RoleBinding and
//! HPA are the chart's: `reference/istio.md` §9). Only the names the exposure, verify and the
//! address wait use are defined here.

use serde_json::{Value, json};

use super::NETWORK_LABEL;
use crate::spec::{ClusterSpec, MeshSpec};

/// Name of the gateway (Deployment, Service, ServiceAccount, Role, RoleBinding; the
/// `istio/gateway` release).
pub const NAME: &str = "istio-eastwestgateway";
/// The `istio` selector label the exposure Gateways select (`NAME` without `istio-`).
pub const ISTIO_LABEL: &str = "eastwestgateway";
/// The four ports `networkGateway` sets on the Service (§5.3).
pub const PORTS: [(&str, i32); 4] = [
    ("status-port", 15021),
    ("tls", 15443),
    ("tls-istiod", 15012),
    ("tls-webhook", 15017),
];

/// What `gen-eastwest-gateway.sh --network <net> --ambient` prints (§5.4): HBONE on 15008,
/// "double HBONE" TLS termination with Istio mTLS.
///
/// ```
/// use mesh_core::{render::eastwest::ambient_gateway, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\ndataplane: ambient\nclusters: [{name: a, network: n1, context: a}, {name: b, network: n2, context: b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let gw = ambient_gateway(&spec, &spec.clusters[0]);
/// assert_eq!(gw["spec"]["gatewayClassName"], "istio-east-west");
/// assert_eq!(gw["spec"]["listeners"][0]["port"], 15008);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ambient_gateway(spec: &MeshSpec, cluster: &ClusterSpec) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": NAME,
            "namespace": spec.istio_namespace,
            "labels": { NETWORK_LABEL: cluster.network },
        },
        "spec": {
            "gatewayClassName": "istio-east-west",
            "listeners": [{
                "name": "mesh",
                "port": 15008,
                "protocol": "HBONE",
                "tls": {
                    "mode": "Terminate",
                    "options": { "gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL" },
                },
            }],
        },
    })
}
