//! Chain verification with real signature checks.
//!
//! rustls-webpki refuses a CA certificate as an end entity, and an Istio intermediate *is* the
//! thing we verify, so the path is built here and each link is checked with webpki's
//! aws-lc-rs signature algorithms over the TBS bytes, plus validity, `CA:TRUE`, keyCertSign and
//! pathlen. Names are compared only to find candidate issuers; trust comes from signatures.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use super::inspect::{fingerprint, parse_der, pem_certs};
use super::key::load_private_key;
use super::{ClusterBundle, PkiError, der};

/// Longest path we try to build; Istio's is 2 (intermediate, root).
const MAX_DEPTH: usize = 8;

/// Why a certificate chain does not verify. Variants name certificates by subject.
///
/// ```
/// # use mesh_core::pki::{verify_chain, CaDir, CaOptions, ChainError, KeyAlgorithm};
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
/// let eu = CaDir::open(a.path()).ensure(&opts, &["eu"]).unwrap().remove(0);
/// let other = CaDir::open(b.path()).ensure(&opts, &["eu"]).unwrap().remove(0);
/// // Same names, different keys: only the signature tells them apart.
/// let err = verify_chain(&eu.ca_cert_pem, "", &other.root_cert_pem).unwrap_err();
/// assert!(matches!(err, ChainError::BadSignature { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A file of the bundle does not parse.
    #[error("{file}: {reason}")]
    Unreadable {
        /// `ca-cert.pem`, `cert-chain.pem`, ...
        file: &'static str,
        /// The parse error.
        reason: String,
    },
    /// `ca-key.pem` is not the key of `ca-cert.pem`.
    #[error("ca-key.pem does not match the public key of ca-cert.pem")]
    KeyMismatch,
    /// `cert-chain.pem` does not begin with `ca-cert.pem`.
    #[error("cert-chain.pem does not start with the certificate in ca-cert.pem")]
    ChainOrder,
    /// The signing certificate cannot sign (istiod refuses it).
    #[error("ca-cert.pem ({subject:?}) is not a CA certificate")]
    NotCa {
        /// Its subject.
        subject: String,
    },
    /// No certificate in the chain or root bundle is the issuer.
    #[error(
        "{subject:?} was not issued by any certificate in cert-chain.pem or root-cert.pem (its issuer is {issuer:?})"
    )]
    UnknownIssuer {
        /// The certificate whose issuer is missing.
        subject: String,
        /// The issuer name it carries.
        issuer: String,
    },
    /// A certificate with the issuer's name exists but its key did not make the signature.
    #[error("the signature on {subject:?} does not verify with the key of {issuer:?}")]
    BadSignature {
        /// The signed certificate.
        subject: String,
        /// The would-be issuer.
        issuer: String,
    },
    /// A signature or key algorithm webpki does not support.
    #[error("{subject:?} uses a signature algorithm that cannot be verified")]
    UnsupportedAlgorithm {
        /// The certificate.
        subject: String,
    },
    /// A certificate of the path is past its `notAfter`.
    #[error("{subject:?} expired on {not_after}")]
    Expired {
        /// The certificate.
        subject: String,
        /// RFC 3339.
        not_after: String,
    },
    /// A certificate of the path is before its `notBefore`.
    #[error("{subject:?} is not valid before {not_before}")]
    NotYetValid {
        /// The certificate.
        subject: String,
        /// RFC 3339.
        not_before: String,
    },
    /// An issuer without `CA:TRUE` or keyCertSign.
    #[error("{subject:?} signed another certificate but is not allowed to ({reason})")]
    IssuerNotCa {
        /// The issuer.
        subject: String,
        /// The missing flag.
        reason: &'static str,
    },
    /// An issuer whose pathlen forbids the CAs below it.
    #[error("{subject:?} has pathlen:{path_len} but {below} CA certificate(s) below it")]
    PathLenExceeded {
        /// The issuer.
        subject: String,
        /// Its pathlen.
        path_len: u32,
        /// CA certificates below it, counting the one being verified.
        below: usize,
    },
    /// The path did not reach a root within a sane number of steps.
    #[error("no root reached within {MAX_DEPTH} certificates")]
    TooLong,
}

/// A chain that verified: subjects from the verified certificate up to the root.
///
/// ```
/// # use mesh_core::pki::{verify_bundle, CaDir, CaOptions, KeyAlgorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let bundles = CaDir::open(tmp.path()).ensure(&opts, &["eu"]).unwrap();
/// let chain = verify_bundle(&bundles[0]).unwrap();
/// assert_eq!(chain.subjects, ["O=Istio, CN=Intermediate CA, L=eu", "O=Istio, CN=Root CA"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedChain {
    /// Subject DNs, verified certificate first, root last.
    pub subjects: Vec<String>,
    /// SHA-256 fingerprint of the root that anchors the chain.
    pub root_fingerprint: String,
}

/// Verifies a cluster's `cacerts` bundle the way istiod would load it, and a bit more:
/// `ca-cert.pem` is a CA, `ca-key.pem` is its key, `cert-chain.pem` starts with it, and the
/// path from it through `cert-chain.pem` reaches a root in `root-cert.pem` with every
/// signature, validity period, CA flag and pathlen checked. The intermediate counts as a CA
/// below its issuers, because it will sign workload certificates.
///
/// ```
/// # use mesh_core::pki::{verify_bundle, CaDir, CaOptions, KeyAlgorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let mut bundle = CaDir::open(tmp.path()).ensure(&opts, &["eu"]).unwrap().remove(0);
/// let other = tempfile::tempdir().unwrap();
/// let foreign = CaDir::open(other.path()).ensure(&opts, &["eu"]).unwrap().remove(0);
/// bundle.root_cert_pem = foreign.root_cert_pem; // a root that did not sign this chain
/// assert!(verify_bundle(&bundle).is_err());
/// ```
pub fn verify_bundle(bundle: &ClusterBundle) -> Result<VerifiedChain, PkiError> {
    verify_bundle_at(bundle, OffsetDateTime::now_utc()).map_err(|source| PkiError::Chain {
        cluster: bundle.cluster.clone(),
        source,
    })
}

pub(crate) fn verify_bundle_at(
    bundle: &ClusterBundle,
    now: OffsetDateTime,
) -> Result<VerifiedChain, ChainError> {
    let unreadable = |file: &'static str| {
        move |e: PkiError| ChainError::Unreadable {
            file,
            reason: e.to_string(),
        }
    };
    let ca_certs =
        pem_certs(&bundle.ca_cert_pem, "ca-cert.pem").map_err(unreadable("ca-cert.pem"))?;
    let target_der = &ca_certs[0];
    let target = parse_der(target_der, "ca-cert.pem").map_err(unreadable("ca-cert.pem"))?;
    if !target.is_ca() {
        return Err(ChainError::NotCa {
            subject: target.subject().to_string(),
        });
    }
    let key =
        load_private_key(&bundle.ca_key_pem, "ca-key.pem").map_err(unreadable("ca-key.pem"))?;
    if key.key.public_key_raw() != target.public_key().subject_public_key.data.as_ref() {
        return Err(ChainError::KeyMismatch);
    }
    let chain = pem_certs(&bundle.cert_chain_pem, "cert-chain.pem")
        .map_err(unreadable("cert-chain.pem"))?;
    if chain[0].as_ref() != target_der.as_ref() {
        return Err(ChainError::ChainOrder);
    }
    let roots =
        pem_certs(&bundle.root_cert_pem, "root-cert.pem").map_err(unreadable("root-cert.pem"))?;
    verify_path(target_der, &chain, &roots, now)
}

/// Verifies the first certificate of `cert_pem` up to a root of `roots_pem`, using the
/// certificates of `chain_pem` as intermediates (it may also hold the certificate itself and
/// the root, as Istio's `cert-chain.pem` does).
///
/// ```
/// # use mesh_core::pki::{verify_chain, CaDir, CaOptions, KeyAlgorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let b = CaDir::open(tmp.path()).ensure(&opts, &["eu"]).unwrap().remove(0);
/// let chain = verify_chain(&b.ca_cert_pem, &b.cert_chain_pem, &b.root_cert_pem).unwrap();
/// assert_eq!(chain.subjects.len(), 2);
/// ```
pub fn verify_chain(
    cert_pem: &str,
    chain_pem: &str,
    roots_pem: &str,
) -> Result<VerifiedChain, ChainError> {
    let unreadable = |file: &'static str| {
        move |e: PkiError| ChainError::Unreadable {
            file,
            reason: e.to_string(),
        }
    };
    let target = pem_certs(cert_pem, "certificate").map_err(unreadable("certificate"))?;
    let chain = if chain_pem.trim().is_empty() {
        Vec::new()
    } else {
        pem_certs(chain_pem, "cert-chain.pem").map_err(unreadable("cert-chain.pem"))?
    };
    let roots = pem_certs(roots_pem, "root-cert.pem").map_err(unreadable("root-cert.pem"))?;
    verify_path(&target[0], &chain, &roots, OffsetDateTime::now_utc())
}

/// Builds and checks the path from `target` to one of `roots`.
pub(crate) fn verify_path(
    target_der: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    now: OffsetDateTime,
) -> Result<VerifiedChain, ChainError> {
    // Parse everything up front so a broken file is reported as such, not as a missing issuer.
    parse_as(target_der, "certificate")?;
    for r in roots {
        parse_as(r, "root-cert.pem")?;
    }
    for i in intermediates {
        parse_as(i, "cert-chain.pem")?;
    }
    let parsed = |der| parse_as(der, "certificate");

    let target = parsed(target_der)?;
    check_validity(&target, now)?;
    let mut subjects = vec![target.subject().to_string()];
    if let Some(root) = roots.iter().find(|r| r.as_ref() == target_der.as_ref()) {
        // The certificate is itself a trust anchor; it must at least sign itself.
        check_signature(target_der, &target, &target)?;
        return Ok(VerifiedChain {
            subjects,
            root_fingerprint: fingerprint(root),
        });
    }

    let mut path: Vec<&[u8]> = vec![target_der.as_ref()];
    // The certificate under verification counts when it is a CA: it will issue leaves, and a
    // pathlen:0 issuer above it makes those leaves unverifiable (istio.md §1.1, k8s quirk).
    let mut cas_below = usize::from(target.is_ca());
    let mut current_der: &[u8] = target_der.as_ref();
    for _ in 0..MAX_DEPTH {
        let current = parsed(current_der)?;
        let mut signature_error = None;
        for root_der in roots {
            let root = parsed(root_der)?;
            if root.subject().as_raw() != current.issuer().as_raw() {
                continue;
            }
            match check_signature(current_der, &current, &root) {
                Ok(()) => {
                    check_issuer(&root, cas_below, now)?;
                    subjects.push(root.subject().to_string());
                    return Ok(VerifiedChain {
                        subjects,
                        root_fingerprint: fingerprint(root_der),
                    });
                }
                Err(e) => signature_error = Some(e),
            }
        }
        let mut next = None;
        for inter_der in intermediates {
            if path.contains(&inter_der.as_ref()) {
                continue;
            }
            let inter = parsed(inter_der)?;
            if inter.subject().as_raw() != current.issuer().as_raw() {
                continue;
            }
            match check_signature(current_der, &current, &inter) {
                Ok(()) => {
                    check_issuer(&inter, cas_below, now)?;
                    next = Some(inter_der.as_ref());
                    break;
                }
                Err(e) => signature_error = Some(e),
            }
        }
        let Some(next_der) = next else {
            return Err(
                signature_error.unwrap_or_else(|| ChainError::UnknownIssuer {
                    subject: current.subject().to_string(),
                    issuer: current.issuer().to_string(),
                }),
            );
        };
        let next_cert = parsed(next_der)?;
        subjects.push(next_cert.subject().to_string());
        if next_cert.subject().as_raw() != next_cert.issuer().as_raw() {
            cas_below += 1;
        }
        path.push(next_der);
        current_der = next_der;
    }
    Err(ChainError::TooLong)
}

fn parse_as<'a>(der: &'a [u8], file: &'static str) -> Result<X509Certificate<'a>, ChainError> {
    parse_der(der, file).map_err(|e| ChainError::Unreadable {
        file,
        reason: e.to_string(),
    })
}

fn check_validity(cert: &X509Certificate<'_>, now: OffsetDateTime) -> Result<(), ChainError> {
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    if now < not_before {
        return Err(ChainError::NotYetValid {
            subject: cert.subject().to_string(),
            not_before: rfc3339(not_before),
        });
    }
    if now > not_after {
        return Err(ChainError::Expired {
            subject: cert.subject().to_string(),
            not_after: rfc3339(not_after),
        });
    }
    Ok(())
}

fn check_issuer(
    issuer: &X509Certificate<'_>,
    cas_below: usize,
    now: OffsetDateTime,
) -> Result<(), ChainError> {
    let subject = || issuer.subject().to_string();
    let basic = issuer.basic_constraints().ok().flatten();
    let Some(basic) = basic.filter(|b| b.value.ca) else {
        return Err(ChainError::IssuerNotCa {
            subject: subject(),
            reason: "no basicConstraints CA:TRUE",
        });
    };
    if let Ok(Some(ku)) = issuer.key_usage()
        && !ku.value.key_cert_sign()
    {
        return Err(ChainError::IssuerNotCa {
            subject: subject(),
            reason: "keyUsage lacks keyCertSign",
        });
    }
    if let Some(path_len) = basic.value.path_len_constraint
        && cas_below > path_len as usize
    {
        return Err(ChainError::PathLenExceeded {
            subject: subject(),
            path_len,
            below: cas_below,
        });
    }
    check_validity(issuer, now)
}

/// Checks that `issuer`'s key made the signature on `child_der`.
fn check_signature(
    child_der: &[u8],
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), ChainError> {
    let unsupported = || ChainError::UnsupportedAlgorithm {
        subject: child.subject().to_string(),
    };
    let parts = der::signed_parts(child_der).ok_or_else(unsupported)?;
    let (spki_alg, public_key) =
        der::spki_parts(issuer.public_key().raw).ok_or_else(unsupported)?;
    let alg = webpki::ALL_VERIFICATION_ALGS
        .iter()
        .find(|a| {
            a.public_key_alg_id().as_ref() == spki_alg
                && a.signature_alg_id().as_ref() == parts.signature_alg
        })
        .ok_or_else(unsupported)?;
    alg.verify_signature(public_key, parts.tbs, parts.signature)
        .map_err(|_| ChainError::BadSignature {
            subject: child.subject().to_string(),
            issuer: issuer.subject().to_string(),
        })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
