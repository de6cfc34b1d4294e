//! The typed errors of [`crate::cluster`]: every variant names the cluster, and every variant
//! that comes from a request names the operation and object it was about.

use std::time::Duration;

/// Errors talking to a cluster.
///
/// `object` fields read like `"get Secret istio-system/cacerts"`: the operation and the object,
/// so one line tells the user what failed where.
///
/// ```
/// use mesh_core::cluster::ClusterError;
/// let err = ClusterError::NotFound {
///     cluster: "eu".into(),
///     object: "get ServiceAccount istio-system/istio-reader-service-account".into(),
///     message: "not found".into(),
/// };
/// assert!(err.to_string().starts_with("cluster eu: "));
/// assert_eq!(err.cluster(), "eu");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read, or it has no usable entry for the context.
    #[error("cluster {cluster}: kubeconfig {path}, context {context:?}: {reason}")]
    Kubeconfig {
        /// Cluster name.
        cluster: String,
        /// The kubeconfig file(s) read (`$KUBECONFIG`/default location when none was given).
        path: String,
        /// The context asked for (empty: the current context).
        context: String,
        /// What is wrong, without the file's content (it holds credentials).
        reason: String,
    },
    /// The API server could not be reached (connection refused/reset, TLS failure, timeout),
    /// after every retry.
    #[error("cluster {cluster}: cannot reach API server {server} ({object}, {attempts} attempts)")]
    Unreachable {
        /// Cluster name.
        cluster: String,
        /// The API server URL from the kubeconfig.
        server: String,
        /// Operation and object.
        object: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: Box<kube::Error>,
    },
    /// 401: the credentials were not accepted.
    #[error("cluster {cluster}: unauthorized ({object}): {message}")]
    Unauthorized {
        /// Cluster name.
        cluster: String,
        /// Operation and object.
        object: String,
        /// The API server's message.
        message: String,
    },
    /// 403: the credentials are valid but not allowed to do this.
    #[error("cluster {cluster}: forbidden ({object}): {message}")]
    Forbidden {
        /// Cluster name.
        cluster: String,
        /// Operation and object.
        object: String,
        /// The API server's message.
        message: String,
    },
    /// 404 where the object (or its kind, or its namespace) had to exist.
    #[error("cluster {cluster}: not found ({object}): {message}")]
    NotFound {
        /// Cluster name.
        cluster: String,
        /// Operation and object.
        object: String,
        /// The API server's message.
        message: String,
    },
    /// 409: a field-manager conflict on server-side apply, or the object already exists.
    #[error("cluster {cluster}: conflict ({object}): {message}")]
    Conflict {
        /// Cluster name.
        cluster: String,
        /// Operation and object.
        object: String,
        /// The API server's message (names the conflicting fields and managers).
        message: String,
    },
    /// A bounded wait ran out (for example for the token controller to fill a Secret).
    #[error("cluster {cluster}: timed out after {waited:?} ({object}): {reason}")]
    Timeout {
        /// Cluster name.
        cluster: String,
        /// Operation and object.
        object: String,
        /// How long was waited.
        waited: Duration,
        /// What was still missing.
        reason: String,
    },
    /// Any other API error (after retries for 429 and 5xx).
    #[error("cluster {cluster}: API error {code} {reason} ({object}): {message}")]
    Api {
        /// Cluster name.
        cluster: String,
        /// Operation and object.
        object: String,
        /// HTTP status code.
        code: u16,
        /// The `reason` of the `Status` body (e.g. `Invalid`, `TooManyRequests`).
        reason: String,
        /// The API server's message.
        message: String,
    },
    /// The object handed to the client cannot be sent (no apiVersion, kind or name, or a
    /// namespaced kind without a namespace).
    #[error("cluster {cluster}: invalid object {object}: {reason}")]
    InvalidObject {
        /// Cluster name.
        cluster: String,
        /// What is known of the object.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cluster does not serve this kind (CRD not installed, wrong apiVersion).
    #[error("cluster {cluster}: kind {kind} in {api_version} is not served by the API server")]
    UnknownKind {
        /// Cluster name.
        cluster: String,
        /// apiVersion asked for.
        api_version: String,
        /// Kind asked for.
        kind: String,
    },
    /// A 2xx answer whose body is not what the API promises.
    #[error("cluster {cluster}: unexpected response ({object}): {reason}")]
    InvalidResponse {
        /// Cluster name.
        cluster: String,
        /// Operation and object.
        object: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl ClusterError {
    /// The cluster this error is about.
    ///
    /// ```
    /// use mesh_core::cluster::ClusterError;
    /// let err = ClusterError::UnknownKind {
    ///     cluster: "ap".into(),
    ///     api_version: "networking.istio.io/v1".into(),
    ///     kind: "Gateway".into(),
    /// };
    /// assert_eq!(err.cluster(), "ap");
    /// ```
    pub fn cluster(&self) -> &str {
        match self {
            ClusterError::Kubeconfig { cluster, .. }
            | ClusterError::Unreachable { cluster, .. }
            | ClusterError::Unauthorized { cluster, .. }
            | ClusterError::Forbidden { cluster, .. }
            | ClusterError::NotFound { cluster, .. }
            | ClusterError::Conflict { cluster, .. }
            | ClusterError::Timeout { cluster, .. }
            | ClusterError::Api { cluster, .. }
            | ClusterError::InvalidObject { cluster, .. }
            | ClusterError::UnknownKind { cluster, .. }
            | ClusterError::InvalidResponse { cluster, .. } => cluster,
        }
    }

    /// True for errors a later retry of the whole operation may fix (the cluster was down or
    /// overloaded), as opposed to errors that need a change by the user.
    ///
    /// ```
    /// use mesh_core::cluster::ClusterError;
    /// let err = ClusterError::Forbidden {
    ///     cluster: "eu".into(),
    ///     object: "apply Secret istio-system/cacerts".into(),
    ///     message: "no".into(),
    /// };
    /// assert!(!err.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Unreachable { .. } | ClusterError::Timeout { .. } => true,
            ClusterError::Api { code, .. } => *code == 429 || *code >= 500,
            _ => false,
        }
    }
}
