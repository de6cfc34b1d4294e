//! Errors of the CA code. Every variant names the file, cluster or value it is about, and none
//! ever carries key material: key parsing errors are reduced to a reason before they get here.

use std::path::PathBuf;

use super::names::NameError;
use super::verify::ChainError;

/// Errors from [`crate::pki`].
///
/// ```
/// use mesh_core::pki::{validate_cluster_name, PkiError};
/// let err: PkiError = validate_cluster_name("EU").unwrap_err().into();
/// assert!(err.to_string().contains("\"EU\""));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// An unknown key algorithm name.
    #[error(
        "unknown key algorithm {0:?}: expected one of rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384"
    )]
    UnknownKeyAlgorithm(String),

    /// A cluster name that is not a DNS-1123 label.
    #[error(transparent)]
    InvalidClusterName(#[from] NameError),

    /// The same cluster was named twice in one request.
    #[error("cluster {0:?} is listed more than once")]
    DuplicateCluster(String),

    /// A [`super::CaOptions`] field with a value that cannot produce a usable CA.
    #[error("invalid CA option {field}: {reason}")]
    InvalidOption {
        /// The option, as spelled in `CaOptions`.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A file that should be present is not.
    #[error("{} is missing", path.display())]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },

    /// PEM text that holds no certificate.
    #[error("{file}: no PEM CERTIFICATE block found")]
    NoCertificate {
        /// The file (or label) that was read.
        file: String,
    },

    /// A certificate that does not parse.
    #[error("{file}: not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// The file (or label) that was read.
        file: String,
        /// What the parser said.
        reason: String,
    },

    /// A certificate file with more than one certificate where exactly one is expected.
    #[error("{file}: expected exactly one certificate, found {count}")]
    TooManyCertificates {
        /// The file (or label) that was read.
        file: String,
        /// How many were found.
        count: usize,
    },

    /// A private key that cannot be used. The reason never contains key bytes.
    #[error("{file}: {reason}")]
    BadKey {
        /// The key file (or label).
        file: String,
        /// Why it was refused.
        reason: String,
    },

    /// A password-protected private key; meshboot (like istiod) reads only plain keys.
    #[error(
        "{file}: the private key is encrypted; decrypt it first (openssl pkey -in {file} -out plain-key.pem) and keep the result private"
    )]
    EncryptedKey {
        /// The key file.
        file: String,
    },

    /// A certificate that cannot sign other certificates.
    #[error("{file}: certificate {subject:?} is not a CA certificate ({reason})")]
    NotCa {
        /// The certificate file.
        file: String,
        /// Its subject.
        subject: String,
        /// Which flag is missing.
        reason: &'static str,
    },

    /// A root certificate that was not issued by itself.
    #[error(
        "{file}: certificate {subject:?} is not self-signed (issuer {issuer:?}); bring the root of your PKI, not an intermediate"
    )]
    NotSelfSigned {
        /// The certificate file.
        file: String,
        /// Its subject.
        subject: String,
        /// Its issuer.
        issuer: String,
    },

    /// A certificate whose validity period ended.
    #[error("{file}: certificate {subject:?} expired on {not_after}")]
    Expired {
        /// The certificate file.
        file: String,
        /// Its subject.
        subject: String,
        /// End of validity (RFC 3339).
        not_after: String,
    },

    /// A certificate whose validity period has not started.
    #[error("{file}: certificate {subject:?} is not valid before {not_before}")]
    NotYetValid {
        /// The certificate file.
        file: String,
        /// Its subject.
        subject: String,
        /// Start of validity (RFC 3339).
        not_before: String,
    },

    /// A private key that belongs to another certificate.
    #[error("{key_file} does not match the public key of {cert_file}")]
    KeyMismatch {
        /// The key file.
        key_file: String,
        /// The certificate file.
        cert_file: String,
    },

    /// `init` on a directory that already holds a root.
    #[error(
        "{} already holds a root CA ({}); refusing to replace it (use --force to replace it, which invalidates every intermediate it signed)",
        dir.display(),
        file.display()
    )]
    RootExists {
        /// The CA directory.
        dir: PathBuf,
        /// The file found.
        file: PathBuf,
    },

    /// `import` on a directory that already holds a different root.
    #[error(
        "{} already holds a different root CA ({}); refusing to import over it, because every intermediate it signed would stop verifying (move root-cert.pem and root-key.pem away first if that is intended)",
        dir.display(),
        file.display()
    )]
    DifferentRootExists {
        /// The CA directory.
        dir: PathBuf,
        /// The existing root certificate (or key) file.
        file: PathBuf,
    },

    /// An operation that needs a root on a directory without one.
    #[error(
        "{} holds no root CA (root-cert.pem and root-key.pem); create one with `meshboot ca init --dir {}` or bring your own with `meshboot ca import`",
        dir.display(),
        dir.display()
    )]
    NoRoot {
        /// The CA directory.
        dir: PathBuf,
    },

    /// An existing intermediate that this root did not sign.
    #[error(
        "{}: intermediate for cluster {cluster:?} was not signed by the root in {} ({reason}); use --force to replace it",
        file.display(),
        root.display()
    )]
    ForeignIntermediate {
        /// The cluster.
        cluster: String,
        /// The intermediate certificate file.
        file: PathBuf,
        /// The root certificate file.
        root: PathBuf,
        /// What the verification said.
        reason: String,
    },

    /// An existing intermediate that is signed by this root but unusable as it is.
    #[error("{}: intermediate for cluster {cluster:?} {reason}; use --force to replace it", file.display())]
    StaleIntermediate {
        /// The cluster.
        cluster: String,
        /// The file at fault.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A bundle whose chain does not verify.
    #[error("cluster {cluster:?}: {source}")]
    Chain {
        /// The cluster of the bundle.
        cluster: String,
        /// What failed.
        source: ChainError,
    },

    /// rcgen failed to generate a key or sign a certificate.
    #[error("{what}: {reason}")]
    Crypto {
        /// What was being done ("generating the root key", ...).
        what: String,
        /// rcgen's reason (never key material).
        reason: String,
    },

    /// `rotate intermediate --rollback` for a cluster that was never rotated.
    #[error(
        "cluster {cluster:?} has no previous intermediate to roll back to ({} does not exist)",
        dir.display()
    )]
    NoPrevious {
        /// The cluster.
        cluster: String,
        /// Where the previous intermediate would be.
        dir: PathBuf,
    },

    /// A root rotation cannot start or go on with what the CA directory holds.
    #[error("root rotation: {reason}")]
    Rotation {
        /// What is wrong and what to do.
        reason: String,
    },
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PkiError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn crypto(what: impl Into<String>, err: rcgen::Error) -> Self {
        PkiError::Crypto {
            what: what.into(),
            reason: err.to_string(),
        }
    }
}
