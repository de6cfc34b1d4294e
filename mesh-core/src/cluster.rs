//! The one door to clusters (being built: see issue "apply, remote-secret and verify").

/// Errors talking to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Placeholder until the cluster client lands.
    #[error("{0}")]
    Other(String),
}
