//! The one door to the clusters: every request meshboot makes to a Kubernetes API server goes
//! through the [`ClusterOps`] trait, which [`ClusterClient`] implements for real API servers;
//! clients are made by a [`Connector`] ([`KubeConnector`] for real ones). Apply, verify and
//! `remote-secret` all take any implementation, so they share the retries below and one test
//! double (the API-server emulator) drives them all.
//!
//! - [`ClusterClient::connect`] picks a kubeconfig context (never the current one by accident);
//! - [`ClusterClient::apply`] reads first and writes only when the live object differs from
//!   what an apply would make of it ([`is_converged`]: values as the server stores them, and
//!   no field meshboot owns but no longer sets), so a converged cluster sees zero writes;
//! - every request is retried with backoff and jitter on 429 (honouring `Retry-After`), 500,
//!   502, 503, 504 and connection errors ([`RetryPolicy`]);
//! - at most [`Limits::per_cluster`] requests are in flight to one API server and
//!   [`Limits::global`] across the fleet; a 429 pauses and narrows only its own server's
//!   window (`limits`);
//! - every error is a [`ClusterError`] naming the cluster and the object.
//!
//! Inside, one file per seam: reading kubeconfig files (`kubeconfig`) apart from resolving a
//! context in them (`context`), as kube-rs keeps `file_config` apart from `file_loader`; the
//! transport with its retries (`transport`); where a kind lives (`discovery`); the verbs
//! (`client`); bounded waits (`wait`); and the comparison of desired and live objects
//! (`converge`, `quantity`).

mod client;
mod context;
mod converge;
mod credentials;
mod discovery;
mod error;
mod http;
mod kubeconfig;
mod limits;
mod object;
mod ops;
mod quantity;
mod retry;
mod stream;
mod token_request;
mod transport;
mod wait;

pub use client::ClusterClient;
pub(crate) use converge::meshboot_entry;
pub use converge::{holds, is_converged, owns_only_desired};
pub use credentials::MemberCredentials;
pub use error::ClusterError;
pub use kubeconfig::kubeconfig_server;
pub use limits::{DEFAULT_GLOBAL, DEFAULT_PER_CLUSTER, Limits};
pub use object::{ObjectRef, normalize_secret};
pub use ops::{ClusterOps, Connector, KubeConnector};
pub use quantity::{quantity_nanos, same_quantity};
pub use retry::RetryPolicy;
pub use token_request::{BoundObjectRef, IssuedToken, TokenRequest};
pub use wait::{external_addresses, token_data};

/// The field manager of every server-side apply meshboot makes.
pub const FIELD_MANAGER: &str = "meshboot";

/// What [`ClusterClient::apply`] did (or, with `dry_run`, would do).
///
/// ```
/// use mesh_core::cluster::ApplyOutcome;
/// assert_eq!(ApplyOutcome::Unchanged.to_string(), "unchanged");
/// assert_eq!(serde_json::to_string(&ApplyOutcome::Created).unwrap(), "\"created\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// The object did not exist.
    Created,
    /// The object existed but lacked some desired field or value.
    Updated,
    /// The live object already had every desired field: nothing was written.
    Unchanged,
}

impl ApplyOutcome {
    /// The lowercase word used in output and JSON.
    ///
    /// ```
    /// assert_eq!(mesh_core::cluster::ApplyOutcome::Updated.as_str(), "updated");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Updated => "updated",
            ApplyOutcome::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for ApplyOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of [`ClusterClient::apply`].
///
/// ```
/// use mesh_core::cluster::ApplyOptions;
/// let opts = ApplyOptions { dry_run: true, ..ApplyOptions::default() };
/// assert!(opts.dry_run && !opts.force);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Read and compare only; never send a write. The outcome says what a real apply would do.
    pub dry_run: bool,
    /// Take ownership of fields another field manager owns instead of failing with
    /// [`ClusterError::Conflict`].
    pub force: bool,
}

/// The credentials a service-account token Secret holds once the token controller filled it.
///
/// `Debug` never shows the token.
///
/// ```
/// use mesh_core::cluster::TokenData;
/// let t = TokenData { token: "s3cr3t".into(), ca_crt: b"-----BEGIN CERTIFICATE-----".to_vec() };
/// assert!(!format!("{t:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TokenData {
    /// The bearer token (`data.token`, decoded).
    pub token: String,
    /// The cluster CA bundle (`data["ca.crt"]`, decoded PEM bytes).
    pub ca_crt: Vec<u8>,
}

impl std::fmt::Debug for TokenData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenData")
            .field("token", &"<redacted>")
            .field("ca_crt_len", &self.ca_crt.len())
            .finish()
    }
}
