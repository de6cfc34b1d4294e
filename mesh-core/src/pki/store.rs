//! The CA directory, laid out like Istio's `tools/certs` Makefile output:
//! `<dir>/root-cert.pem`, `<dir>/root-key.pem`, and per cluster
//! `<dir>/<cluster>/{ca-cert.pem,ca-key.pem,cert-chain.pem,root-cert.pem}`.
//!
//! This file holds the directory itself (paths, reading a bundle, loading and writing the
//! root). The rest of [`CaDir`] lives beside it, one concern per file: `lock.rs` (one writer
//! at a time), `import.rs` (what a brought root must satisfy), `issue.rs` (deciding and
//! issuing intermediates, [`CaDir::prepare`]) and `report.rs` ([`CaDir::inspect`]). Every
//! file is written through [`crate::files::write_atomic`], keys with mode 0600, and nothing
//! is replaced unless the caller forces it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::inspect::{CertInfo, info_of_der, organization, parse_der, pem_certs};
use super::key::{LoadedKey, generate_keys, load_private_key};
use super::{CaOptions, ClusterBundle, PkiError, profile, validate_cluster_name};
use crate::files::{Access, write_atomic};

/// Root certificate file name (top level and in each cluster folder).
pub const ROOT_CERT_FILE: &str = "root-cert.pem";
/// Root key file name (top level only).
pub const ROOT_KEY_FILE: &str = "root-key.pem";
/// Intermediate certificate file name.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
/// Intermediate key file name.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// Intermediate-then-root chain file name.
pub const CERT_CHAIN_FILE: &str = "cert-chain.pem";

/// A CA directory on disk.
///
/// ```
/// use mesh_core::pki::{CaDir, CaOptions, IntermediateAction, KeyAlgorithm};
/// let tmp = tempfile::tempdir().unwrap();
/// let ca = CaDir::open(tmp.path().join("pki"));
/// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// ca.init(&opts, false).unwrap();
/// let first = ca.ensure_intermediates(&["eu", "us"], &opts, false).unwrap();
/// assert!(first.iter().all(|s| s.action == IntermediateAction::Created));
/// let again = ca.ensure_intermediates(&["eu", "us"], &opts, false).unwrap();
/// assert!(again.iter().all(|s| s.action == IntermediateAction::Unchanged));
/// assert!(ca.path().join("eu/cert-chain.pem").exists());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaDir {
    pub(super) dir: PathBuf,
}

/// The signing root, loaded and checked, in memory.
pub(super) struct Root {
    pub(super) cert_pem: String,
    pub(super) der: CertificateDer<'static>,
    pub(super) key: KeyPair,
    pub(super) not_after: OffsetDateTime,
    /// The root's `O=`, which new intermediates carry ([`profile::intermediate_org`]).
    pub(super) org: Option<String>,
}

impl Root {
    /// A root just generated from `opts`, not yet on disk.
    pub(super) fn generate(opts: &CaOptions, key: KeyPair) -> Result<Root, PkiError> {
        let (cert, params) = profile::self_sign_root(&opts.org, opts.root_days, &key)?;
        Ok(Root {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            key,
            not_after: params.not_after,
            org: Some(opts.org.clone()),
        })
    }
}

impl CaDir {
    /// A handle on `dir`; nothing is read or created until a method needs it.
    ///
    /// ```
    /// let ca = mesh_core::pki::CaDir::open("./pki");
    /// assert_eq!(ca.root_cert_path(), std::path::Path::new("./pki/root-cert.pem"));
    /// ```
    pub fn open(dir: impl Into<PathBuf>) -> CaDir {
        CaDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/root-cert.pem`.
    pub fn root_cert_path(&self) -> PathBuf {
        self.dir.join(ROOT_CERT_FILE)
    }

    /// `<dir>/root-key.pem`.
    pub fn root_key_path(&self) -> PathBuf {
        self.dir.join(ROOT_KEY_FILE)
    }

    /// `<dir>/<cluster>`.
    pub fn cluster_dir(&self, cluster: &str) -> PathBuf {
        self.dir.join(cluster)
    }

    /// What the directory's root certificate says.
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path());
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, org: "Acme".into(), ..CaOptions::default() };
    /// ca.init(&opts, false).unwrap();
    /// assert_eq!(ca.root_info().unwrap().organization.as_deref(), Some("Acme"));
    /// ```
    pub fn root_info(&self) -> Result<CertInfo, PkiError> {
        let path = self.root_cert_path();
        let label = path.display().to_string();
        let pem = read_text(&path)?;
        let der = pem_certs(&pem, &label)?.swap_remove(0);
        info_of_der(&der, &label, OffsetDateTime::now_utc())
    }

    /// True when the directory holds a root certificate or root key.
    ///
    /// ```
    /// let tmp = tempfile::tempdir().unwrap();
    /// assert!(!mesh_core::pki::CaDir::open(tmp.path()).has_root());
    /// ```
    pub fn has_root(&self) -> bool {
        self.root_cert_path().exists() || self.root_key_path().exists()
    }

    /// Creates a new root (`root-cert.pem`, `root-key.pem`). Refuses when the directory already
    /// holds one, unless `force`. Returns what the new root certificate says.
    ///
    /// ```
    /// use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, PkiError};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path());
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let root = ca.init(&opts, false).unwrap();
    /// assert_eq!(root.subject, "O=Istio, CN=Root CA");
    /// assert!(matches!(ca.init(&opts, false), Err(PkiError::RootExists { .. })));
    /// ```
    pub fn init(&self, opts: &CaOptions, force: bool) -> Result<CertInfo, PkiError> {
        self.init_with(opts, force, false)
    }

    /// [`CaDir::init`], or with `dry_run` the same checks and a root made in memory only:
    /// nothing is written anywhere (not even the directory), and the key is dropped.
    ///
    /// ```
    /// use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path().join("pki"));
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let planned = ca.init_with(&opts, false, true).unwrap();
    /// assert_eq!(planned.subject, "O=Istio, CN=Root CA");
    /// assert!(!tmp.path().join("pki").exists());
    /// ```
    pub fn init_with(
        &self,
        opts: &CaOptions,
        force: bool,
        dry_run: bool,
    ) -> Result<CertInfo, PkiError> {
        opts.validate()?;
        let _lock = self.lock(!dry_run)?;
        self.refuse_existing_root(force)?;
        let mut keys = generate_keys(&[opts.key])?;
        let key = keys.pop().ok_or_else(|| PkiError::Crypto {
            what: "generating the root key".into(),
            reason: "no key was produced".into(),
        })?;
        let root = Root::generate(opts, key)?;
        if dry_run {
            tracing::info!(dir = %self.dir.display(), key = %opts.key, replaced = force, "root CA planned (dry run, nothing written)");
        } else {
            self.write_root(&root)?;
            tracing::info!(dir = %self.dir.display(), key = %opts.key, replaced = force, "root CA written");
        }
        info_of_der(&root.der, ROOT_CERT_FILE, OffsetDateTime::now_utc())
    }

    /// Reads the four `cacerts` files of `cluster`.
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let ca = CaDir::open(tmp.path());
    /// ca.ensure(&opts, &["eu"]).unwrap();
    /// let eu = ca.bundle("eu").unwrap();
    /// assert!(eu.cert_chain_pem.starts_with(&eu.ca_cert_pem));
    /// assert!(ca.bundle("us").is_err()); // never created
    /// ```
    pub fn bundle(&self, cluster: &str) -> Result<ClusterBundle, PkiError> {
        validate_cluster_name(cluster)?;
        let dir = self.cluster_dir(cluster);
        Ok(ClusterBundle {
            cluster: cluster.to_string(),
            ca_cert_pem: read_text(&dir.join(CA_CERT_FILE))?,
            ca_key_pem: read_text(&dir.join(CA_KEY_FILE))?,
            root_cert_pem: read_text(&dir.join(ROOT_CERT_FILE))?,
            cert_chain_pem: read_text(&dir.join(CERT_CHAIN_FILE))?,
        })
    }

    pub(super) fn refuse_existing_root(&self, force: bool) -> Result<(), PkiError> {
        if force {
            return Ok(());
        }
        for file in [self.root_cert_path(), self.root_key_path()] {
            if file.exists() {
                return Err(PkiError::RootExists {
                    dir: self.dir.clone(),
                    file,
                });
            }
        }
        Ok(())
    }

    /// Key first: a crash between the two leaves a key without a certificate, which the next
    /// run reports, never a certificate whose key is lost.
    pub(super) fn write_root(&self, root: &Root) -> Result<(), PkiError> {
        create_dir(&self.dir)?;
        write_file(
            &self.root_key_path(),
            &root.key.serialize_pem(),
            Access::Private,
        )?;
        write_file(&self.root_cert_path(), &root.cert_pem, Access::Shared)
    }

    pub(super) fn load_root(&self) -> Result<Root, PkiError> {
        let cert_path = self.root_cert_path();
        let key_path = self.root_key_path();
        let cert_label = cert_path.display().to_string();
        let key_label = key_path.display().to_string();
        let cert_pem = read_text(&cert_path)?;
        let key_pem = read_text(&key_path)?;
        let der = pem_certs(&cert_pem, &cert_label)?.swap_remove(0);
        let parsed = parse_der(&der, &cert_label)?;
        let LoadedKey { key, .. } = load_private_key(&key_pem, &key_label)?;
        if key.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::KeyMismatch {
                key_file: key_label,
                cert_file: cert_label,
            });
        }
        let not_before = parsed.validity().not_before.to_datetime();
        let not_after = parsed.validity().not_after.to_datetime();
        // An expired root cannot vouch for anything new; say so instead of issuing
        // intermediates that are born invalid.
        let now = OffsetDateTime::now_utc();
        let subject = parsed.subject().to_string();
        if now > not_after {
            return Err(PkiError::Expired {
                file: cert_label,
                subject,
                not_after: rfc3339(not_after),
            });
        }
        if now < not_before {
            return Err(PkiError::NotYetValid {
                file: cert_label,
                subject,
                not_before: rfc3339(not_before),
            });
        }
        let org = organization(&parsed);
        drop(parsed);
        Ok(Root {
            cert_pem: der_to_pem(&der),
            der,
            key,
            not_after,
            org,
        })
    }
}

pub(super) fn check_cluster_names(clusters: &[&str]) -> Result<(), PkiError> {
    let mut seen = BTreeSet::new();
    for c in clusters {
        validate_cluster_name(c)?;
        if !seen.insert(*c) {
            return Err(PkiError::DuplicateCluster(c.to_string()));
        }
    }
    Ok(())
}

pub(super) fn read_text(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            PkiError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            PkiError::io(path, e)
        }
    })
}

pub(super) fn create_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))
}

/// [`write_atomic`] with the error naming the file.
pub(super) fn write_file(path: &Path, contents: &str, access: Access) -> Result<(), PkiError> {
    write_atomic(path, contents.as_bytes(), access).map_err(|e| PkiError::io(path, e))
}

pub(super) fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

pub(super) fn with_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
