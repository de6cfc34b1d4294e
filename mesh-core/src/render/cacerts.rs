//! Secret `cacerts`: the cluster's intermediate CA as istiod loads it from `/etc/cacerts`
//! (`reference/istio.md` §1.2). Type Opaque with exactly the four istiod-format keys, as
//! `kubectl create secret generic cacerts --from-file=...` makes it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::{RenderError, to_value};
use crate::pki::ClusterBundle;
use crate::spec::{ClusterSpec, MeshSpec};

/// Name of the Secret istiod mounts.
pub const SECRET_NAME: &str = "cacerts";

/// The four data keys, each with the bundle file it holds.
pub const KEYS: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "root-cert.pem",
    "cert-chain.pem",
];

/// The `cacerts` Secret for `cluster`. It holds the intermediate's private key: treat the result
/// as secret (see [`RenderedObject::is_sensitive`](super::RenderedObject::is_sensitive)).
///
/// ```
/// use mesh_core::{pki::ClusterBundle, render::cacerts::cacerts, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let b = ClusterBundle { cluster: "a".into(), ca_cert_pem: "C".into(), ca_key_pem: "K".into(), root_cert_pem: "R".into(), cert_chain_pem: "CH".into() };
/// let s = cacerts(&spec, &spec.clusters[0], &b)?;
/// assert_eq!(s["type"], "Opaque");
/// assert_eq!(s["data"]["ca-key.pem"], "Sw=="); // base64 of "K"
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cacerts(
    spec: &MeshSpec,
    cluster: &ClusterSpec,
    bundle: &ClusterBundle,
) -> Result<Value, RenderError> {
    let files = [
        &bundle.ca_cert_pem,
        &bundle.ca_key_pem,
        &bundle.root_cert_pem,
        &bundle.cert_chain_pem,
    ];
    let data: BTreeMap<String, ByteString> = KEYS
        .iter()
        .zip(files)
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(spec.istio_namespace.clone()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    };
    to_value(cluster, "Secret/cacerts", &secret)
}
