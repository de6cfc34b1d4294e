//! Credentials held in memory only: a Karmada hub's token and CA bundle for a Push member.
//! They become a kubeconfig document just long enough for [`Connector::connect_yaml`] to parse
//! it, and are never written to a file, a log, an error or a report (`Debug` redacts them).
//!
//! [`Connector::connect_yaml`]: super::Connector::connect_yaml

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// How to reach a cluster without a kubeconfig context: a bearer token and the CA bundle of its
/// API server at `server`, and what they were read from (named in errors).
///
/// ```
/// use mesh_core::cluster::MemberCredentials;
/// let c = MemberCredentials::new("https://203.0.113.10:6443", "s3cr3t", b"-----BEGIN CERTIFICATE-----\n".to_vec(), "Secret karmada-cluster/eu in the Karmada hub");
/// assert!(!format!("{c:?}").contains("s3cr3t"));
/// assert_eq!(c.server(), "https://203.0.113.10:6443");
/// assert!(mesh_core::cluster::kubeconfig_server(&c.kubeconfig_yaml()).is_some());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MemberCredentials {
    server: String,
    token: String,
    ca_bundle: Vec<u8>,
    insecure_skip_tls_verify: bool,
    source: String,
}

impl MemberCredentials {
    /// Credentials for the API server at `server`; `source` names where they came from.
    pub fn new(server: &str, token: &str, ca_bundle: Vec<u8>, source: &str) -> MemberCredentials {
        MemberCredentials {
            server: server.to_string(),
            token: token.to_string(),
            ca_bundle,
            insecure_skip_tls_verify: false,
            source: source.to_string(),
        }
    }

    /// Skips verifying the server's certificate (the `Cluster`'s
    /// `spec.insecureSkipTLSVerification`, which Karmada honours too).
    pub fn insecure(mut self, skip: bool) -> MemberCredentials {
        self.insecure_skip_tls_verify = skip;
        self
    }

    /// The API server these credentials are for.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Where they were read from, e.g. `Secret karmada-cluster/eu in the Karmada hub`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A kubeconfig document with one context holding these credentials, for
    /// [`Connector::connect_yaml`](super::Connector::connect_yaml). It holds the token: keep
    /// it in memory and drop it once connected.
    pub fn kubeconfig_yaml(&self) -> String {
        let mut cluster = json!({"server": self.server});
        if !self.ca_bundle.is_empty() {
            cluster["certificate-authority-data"] = json!(STANDARD.encode(&self.ca_bundle));
        }
        if self.insecure_skip_tls_verify {
            cluster["insecure-skip-tls-verify"] = json!(true);
        }
        // JSON is YAML: no second serializer that could quote the token into an error.
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "member", "cluster": cluster}],
            "users": [{"name": "member", "user": {"token": self.token}}],
            "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
            "current-context": "member",
        })
        .to_string()
    }
}

impl std::fmt::Debug for MemberCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberCredentials")
            .field("server", &self.server)
            .field("token", &"<redacted>")
            .field("ca_bundle_len", &self.ca_bundle.len())
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("source", &self.source)
            .finish()
    }
}
