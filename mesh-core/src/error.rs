//! The crate-wide error: one variant per module, each carrying that module's typed error so a
//! caller can match on what went wrong and where (cluster, file, field, object).

/// Any error mesh-core returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Certificate authority: generating, loading, verifying or writing CA files.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// The mesh file: parsing and validation.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// Rendering objects for a cluster.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// Talking to a cluster.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Finding or running `helm`.
    #[error(transparent)]
    Helm(#[from] crate::helm::HelmError),
    /// Building a remote secret.
    #[error(transparent)]
    RemoteSecret(#[from] crate::remote_secret::RemoteSecretError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
