//! Rendering objects per cluster (being built: see issue "The mesh file and render").

/// Errors from rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Placeholder until render lands.
    #[error("{0}")]
    Other(String),
}
