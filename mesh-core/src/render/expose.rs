//! What the east-west gateway exposes (`reference/istio.md` §5.2), as
//! `samples/multicluster/expose-services.yaml` and `expose-istiod.yaml` define it.

use serde_json::{Value, json};

use super::eastwest::ISTIO_LABEL;
use crate::spec::MeshSpec;

/// `cross-network-gateway`: mTLS traffic for `*.local` services passes through on 15443 with
/// SNI routing (AUTO_PASSTHROUGH).
///
/// ```
/// use mesh_core::{render::expose::cross_network_gateway, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let gw = cross_network_gateway(&spec);
/// assert_eq!(gw["spec"]["servers"][0]["tls"]["mode"], "AUTO_PASSTHROUGH");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cross_network_gateway(spec: &MeshSpec) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": { "name": "cross-network-gateway", "namespace": spec.istio_namespace },
        "spec": {
            "selector": { "istio": ISTIO_LABEL },
            "servers": [{
                "port": { "number": 15443, "name": "tls", "protocol": "TLS" },
                "tls": { "mode": "AUTO_PASSTHROUGH" },
                "hosts": ["*.local"],
            }],
        },
    })
}

/// `istiod-gateway` and `istiod-vs`: a primary's istiod (xDS on 15012, the injection webhook on
/// 15017 → istiod's 443) reachable by remotes through the east-west gateway.
///
/// ```
/// use mesh_core::{render::expose::istiod, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let objs = istiod(&spec);
/// assert_eq!(objs[1]["spec"]["tls"][1]["route"][0]["destination"]["port"]["number"], 443);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn istiod(spec: &MeshSpec) -> Vec<Value> {
    let ns = &spec.istio_namespace;
    let host = format!("istiod.{ns}.svc.cluster.local");
    vec![
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": { "name": "istiod-gateway", "namespace": ns },
            "spec": {
                "selector": { "istio": ISTIO_LABEL },
                "servers": [
                    {
                        "port": { "name": "tls-istiod", "number": 15012, "protocol": "tls" },
                        "tls": { "mode": "PASSTHROUGH" },
                        "hosts": ["*"],
                    },
                    {
                        "port": { "name": "tls-istiodwebhook", "number": 15017, "protocol": "tls" },
                        "tls": { "mode": "PASSTHROUGH" },
                        "hosts": ["*"],
                    },
                ],
            },
        }),
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": { "name": "istiod-vs", "namespace": ns },
            "spec": {
                "hosts": ["*"],
                "gateways": ["istiod-gateway"],
                "tls": [
                    {
                        "match": [{ "port": 15012, "sniHosts": ["*"] }],
                        "route": [{ "destination": { "host": host, "port": { "number": 15012 } } }],
                    },
                    {
                        "match": [{ "port": 15017, "sniHosts": ["*"] }],
                        "route": [{ "destination": { "host": host, "port": { "number": 443 } } }],
                    },
                ],
            },
        }),
    ]
}
