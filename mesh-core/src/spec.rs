//! The mesh file (being built: see issue "The mesh file and render").

/// Errors from reading or validating `mesh.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Placeholder until the spec lands.
    #[error("{0}")]
    Other(String),
}
