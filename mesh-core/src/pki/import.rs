//! Bring your own root: what a root certificate and key must satisfy before the mesh trusts
//! them, and copying them into the CA directory.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::inspect::{CertInfo, info_of_der, organization, parse_der, pem_certs};
use super::key::load_private_key;
use super::store::{Root, der_to_pem, read_text, rfc3339};
use super::verify::{ChainError, verify_path};
use super::{CaDir, PkiError};

impl CaDir {
    /// Brings your own root: copies `cert` and `key` into the directory (the key re-encoded as
    /// PKCS#8, mode 0600) after checking that the certificate is one self-signed, currently
    /// valid CA certificate and that the key is its plain (unencrypted) RSA or ECDSA key.
    /// Importing the same root again is a no-op; a different one is refused
    /// ([`PkiError::DifferentRootExists`]).
    ///
    /// ```no_run
    /// use mesh_core::pki::CaDir;
    /// use std::path::Path;
    /// let ca = CaDir::open("./pki");
    /// let root = ca.import(Path::new("corp-root.pem"), Path::new("corp-root-key.pem")).unwrap();
    /// println!("imported {}", root.subject);
    /// ```
    pub fn import(&self, cert: &Path, key: &Path) -> Result<CertInfo, PkiError> {
        self.import_with(cert, key, false)
    }

    /// [`CaDir::import`], or with `dry_run` every check of it (the files, the key matching
    /// the certificate, a different root already in the directory) and nothing written.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// let ca = mesh_core::pki::CaDir::open("pki");
    /// let root = ca.import_with(Path::new("corp-root.pem"), Path::new("corp-root-key.pem"), true).unwrap();
    /// println!("would import {}", root.subject);
    /// ```
    pub fn import_with(
        &self,
        cert: &Path,
        key: &Path,
        dry_run: bool,
    ) -> Result<CertInfo, PkiError> {
        let (root, info) = load_brought_root(cert, key)?;
        let _lock = self.lock(!dry_run)?;
        if !self.holds_same_root(&root)? && !dry_run {
            self.write_root(&root)?;
            tracing::info!(dir = %self.dir.display(), from = %cert.display(), "root CA imported");
        }
        Ok(info)
    }

    /// True when the directory already holds exactly `root` (a re-import is a no-op); false
    /// when it holds no root; an error when it holds another one (or half of one).
    pub(super) fn holds_same_root(&self, root: &Root) -> Result<bool, PkiError> {
        if !self.has_root() {
            return Ok(false);
        }
        if let Ok(existing) = self.load_root()
            && existing.der.as_ref() == root.der.as_ref()
        {
            return Ok(true);
        }
        let file = if self.root_cert_path().exists() {
            self.root_cert_path()
        } else {
            self.root_key_path()
        };
        Err(PkiError::DifferentRootExists {
            dir: self.dir.clone(),
            file,
        })
    }
}

/// Reads a brought root into memory and checks it (see [`CaDir::import`]); writes nothing.
pub(super) fn load_brought_root(cert: &Path, key: &Path) -> Result<(Root, CertInfo), PkiError> {
    let cert_label = cert.display().to_string();
    let key_label = key.display().to_string();
    let cert_pem = read_text(cert)?;
    let mut certs = pem_certs(&cert_pem, &cert_label)?;
    if certs.len() != 1 {
        return Err(PkiError::TooManyCertificates {
            file: cert_label,
            count: certs.len(),
        });
    }
    let der = certs.swap_remove(0);
    let now = OffsetDateTime::now_utc();
    let info = info_of_der(&der, &cert_label, now)?;
    check_root_certificate(&der, &cert_label, &info, now)?;

    let key_pem = read_text(key)?;
    let loaded = load_private_key(&key_pem, &key_label)?;
    let parsed = parse_der(&der, &cert_label)?;
    if loaded.key.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
        return Err(PkiError::KeyMismatch {
            key_file: key_label,
            cert_file: cert_label,
        });
    }
    let org = organization(&parsed);
    drop(parsed);
    let root = Root {
        cert_pem: der_to_pem(&der),
        der,
        key: loaded.key,
        not_after: info.not_after,
        org,
    };
    Ok((root, info))
}

/// Refuses a brought root that cannot serve as the mesh root.
fn check_root_certificate(
    der: &CertificateDer<'_>,
    file: &str,
    info: &CertInfo,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let not_ca = |reason| PkiError::NotCa {
        file: file.to_string(),
        subject: info.subject.clone(),
        reason,
    };
    if !info.is_ca {
        return Err(not_ca("basicConstraints CA:TRUE is missing"));
    }
    if !info.key_usage.is_empty() && !info.key_usage.iter().any(|k| k == "keyCertSign") {
        return Err(not_ca("keyUsage lacks keyCertSign"));
    }
    if now < info.not_before {
        return Err(PkiError::NotYetValid {
            file: file.to_string(),
            subject: info.subject.clone(),
            not_before: rfc3339(info.not_before),
        });
    }
    if now > info.not_after {
        return Err(PkiError::Expired {
            file: file.to_string(),
            subject: info.subject.clone(),
            not_after: rfc3339(info.not_after),
        });
    }
    let not_self_signed = || PkiError::NotSelfSigned {
        file: file.to_string(),
        subject: info.subject.clone(),
        issuer: info.issuer.clone(),
    };
    if !info.self_issued {
        return Err(not_self_signed());
    }
    match verify_path(der, &[], std::slice::from_ref(der), now) {
        Ok(_) => Ok(()),
        Err(ChainError::BadSignature { .. }) => Err(not_self_signed()),
        Err(ChainError::UnsupportedAlgorithm { .. }) => Err(PkiError::BadCertificate {
            file: file.to_string(),
            reason: "its signature algorithm is not supported (use RSA or ECDSA with SHA-256/384)"
                .into(),
        }),
        Err(e) => Err(PkiError::BadCertificate {
            file: file.to_string(),
            reason: e.to_string(),
        }),
    }
}
