//! Certificate authority for the mesh: one root, one intermediate per cluster, Istio's
//! `tools/certs` profile (`reference/istio.md` §1).
//!
//! - [`CaDir`]: the Makefile-compatible directory (`root-cert.pem`, `root-key.pem`,
//!   `<cluster>/{ca-cert,ca-key,cert-chain,root-cert}.pem`): create, import, ensure, inspect;
//!   [`CaDir::prepare`] is the one way `render` and `apply` get a mesh's CA (dry run in memory).
//! - [`intermediate_subject`]: the one rule for an intermediate's subject, whichever command
//!   issues it.
//! - [`cert_info`], [`root_fingerprints`]: read certificates.
//! - [`verify_bundle`], [`verify_chain`]: chain verification with real signature checks.
//! - [`validate_cluster_name`]: the DNS-1123 label rule for cluster names.
//! - rotation: [`CaDir::rotate_intermediates`] (the previous one kept in `previous/`),
//!   [`CaDir::rollback_intermediate`], and a root rotation's material in `rotation/`
//!   ([`CaDir::start_root_rotation`], [`RootRotation`]).
//!
//! ```
//! use mesh_core::pki::{verify_bundle, CaDir, CaOptions, KeyAlgorithm};
//! let tmp = tempfile::tempdir().unwrap();
//! let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
//! let bundles = CaDir::open(tmp.path()).ensure(&opts, &["eu", "ap", "us"]).unwrap();
//! for b in &bundles {
//!     verify_bundle(b).unwrap();
//! }
//! ```

mod der;
mod error;
mod import;
mod inspect;
mod issue;
mod key;
mod lock;
mod names;
mod par;
mod profile;
mod report;
mod rotation;
mod store;
mod verify;

pub use error::PkiError;
pub use inspect::{CertInfo, cert_info, root_fingerprints};
pub use issue::{IntermediateAction, IntermediateStatus, PreparedCa, RootAction, RootFiles};
pub use key::KeyAlgorithm;
pub use names::{MAX_CLUSTER_NAME_LEN, NameError, validate_cluster_name};
pub use profile::{DEFAULT_ORG, INTERMEDIATE_CN, ISTIOD_SAN, ROOT_CN, intermediate_subject};
pub use report::{CaReport, EXPIRY_WARNING_DAYS, InspectedCert};
pub use rotation::{
    HISTORY_DIR, PREVIOUS_DIR, RETIRED_DIR, ROTATION_DIR, RootRotation, RotatedIntermediate,
    RotationAction, RotationRoot, Signer, Trust,
};
pub use store::{CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, CaDir, ROOT_CERT_FILE, ROOT_KEY_FILE};
pub use verify::{ChainError, VerifiedChain, verify_bundle, verify_chain};

/// How to create the CA. Defaults follow Istio's Makefile: RSA-4096, root 3650 days,
/// intermediates 730 days, `O=Istio`, trust domain `cluster.local`.
///
/// ```
/// use mesh_core::pki::{CaOptions, KeyAlgorithm};
/// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// assert_eq!((opts.root_days, opts.intermediate_days), (3650, 730));
/// assert_eq!(opts.org, "Istio");
/// assert!(opts.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaOptions {
    /// Key algorithm for new root and intermediate keys.
    pub key: KeyAlgorithm,
    /// Validity of a new root, in days.
    pub root_days: u32,
    /// Validity of a new intermediate, in days (capped at the root's expiry).
    pub intermediate_days: u32,
    /// The `O=` of a new root.
    pub org: String,
    /// The `O=` of new intermediates; `None` (the default) means the `O=` of the root that
    /// signs them, whichever command issues them ([`intermediate_subject`]).
    #[serde(default)]
    pub intermediate_org: Option<String>,
    /// The mesh trust domain. Istio's plug-in CA profile does not put it into the CA
    /// certificates (workload SPIFFE IDs come from `meshConfig.trustDomain`); it travels with the
    /// options so callers that render mesh config use the same value.
    pub trust_domain: String,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            key: KeyAlgorithm::Rsa4096,
            root_days: 3650,
            intermediate_days: 730,
            org: DEFAULT_ORG.into(),
            intermediate_org: None,
            trust_domain: "cluster.local".into(),
        }
    }
}

impl CaOptions {
    /// Refuses values that cannot produce a usable CA.
    ///
    /// ```
    /// use mesh_core::pki::CaOptions;
    /// let bad = CaOptions { root_days: 0, ..CaOptions::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("root_days"));
    /// ```
    pub fn validate(&self) -> Result<(), PkiError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(PkiError::InvalidOption {
                field,
                reason: reason.to_string(),
            })
        };
        // 100 years keeps not_after far from the X.509 GeneralizedTime limits.
        const MAX_DAYS: u32 = 36_500;
        if self.root_days == 0 || self.root_days > MAX_DAYS {
            return invalid("root_days", "must be between 1 and 36500");
        }
        if self.intermediate_days == 0 || self.intermediate_days > MAX_DAYS {
            return invalid("intermediate_days", "must be between 1 and 36500");
        }
        if self.org.trim().is_empty() {
            return invalid("org", "must not be empty");
        }
        if self
            .intermediate_org
            .as_deref()
            .is_some_and(|o| o.trim().is_empty())
        {
            return invalid("intermediate_org", "must not be empty when given");
        }
        if self.trust_domain.trim().is_empty() {
            return invalid("trust_domain", "must not be empty");
        }
        Ok(())
    }
}

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
