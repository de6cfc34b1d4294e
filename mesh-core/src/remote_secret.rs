//! istioctl-compatible remote secrets (being built: see issue "apply, remote-secret and verify").

/// Errors building a remote secret.
#[derive(Debug, thiserror::Error)]
pub enum RemoteSecretError {
    /// Placeholder until remote secrets land.
    #[error("{0}")]
    Other(String),
}
