//! Certificate authority for the mesh: one root, one intermediate per cluster, Istio's
//! `tools/certs` profile (`reference/istio.md` §1).

mod key;

pub use key::KeyAlgorithm;

/// The four PEM files of one cluster's `cacerts` Secret, as istiod loads them from
/// `/etc/cacerts` (`reference/istio.md` §1.2).
///
/// ```
/// use mesh_core::pki::ClusterBundle;
/// let b = ClusterBundle {
///     cluster: "eu".into(),
///     ca_cert_pem: String::new(),
///     ca_key_pem: String::new(),
///     root_cert_pem: String::new(),
///     cert_chain_pem: String::new(),
/// };
/// assert_eq!(b.cluster, "eu");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterBundle {
    /// Cluster name (the intermediate's `L=`).
    pub cluster: String,
    /// `ca-cert.pem`: the cluster's intermediate certificate.
    pub ca_cert_pem: String,
    /// `ca-key.pem`: the intermediate's private key (PKCS#8). Never logged.
    pub ca_key_pem: String,
    /// `root-cert.pem`: the root certificate(s) the mesh trusts.
    pub root_cert_pem: String,
    /// `cert-chain.pem`: intermediate then root.
    pub cert_chain_pem: String,
}

// Hand-written so the private key can never reach a log line through `{:?}`.
impl std::fmt::Debug for ClusterBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBundle")
            .field("cluster", &self.cluster)
            .field("ca_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Errors from the CA code.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// An unknown key algorithm name.
    #[error(
        "unknown key algorithm {0:?}: expected one of rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384"
    )]
    UnknownKeyAlgorithm(String),
}
