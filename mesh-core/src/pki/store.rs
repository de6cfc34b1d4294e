//! The CA directory, laid out like Istio's `tools/certs` Makefile output:
//! `<dir>/root-cert.pem`, `<dir>/root-key.pem`, and per cluster
//! `<dir>/<cluster>/{ca-cert.pem,ca-key.pem,cert-chain.pem,root-cert.pem}`.
//!
//! Every file is written atomically (temp file in the same directory, then rename), keys with
//! mode 0600 set before the rename, and nothing is replaced unless the caller forces it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::OffsetDateTime;

use super::inspect::{CertInfo, fingerprint, info_of_der, locality, parse_der, pem_certs};
use super::key::{LoadedKey, generate_keys, load_private_key};
use super::verify::{ChainError, verify_bundle_at, verify_path};
use super::{CaOptions, ClusterBundle, PkiError, par, profile, validate_cluster_name};

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

/// Days of validity left below which `inspect` warns.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What [`CaDir::ensure_intermediates`] did for one cluster.
///
/// ```
/// use mesh_core::pki::IntermediateAction;
/// assert_eq!(IntermediateAction::Unchanged.to_string(), "unchanged");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntermediateAction {
    /// No intermediate existed; a new one was written.
    Created,
    /// A valid intermediate signed by this root was already there; no byte was written.
    Unchanged,
    /// The intermediate was valid but `cert-chain.pem` or the cluster's `root-cert.pem` was
    /// missing; only the missing files were written (the key and certificate are untouched).
    Repaired,
    /// An unusable or foreign intermediate was replaced because the caller forced it.
    Replaced,
}

impl std::fmt::Display for IntermediateAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IntermediateAction::Created => "created",
            IntermediateAction::Unchanged => "unchanged",
            IntermediateAction::Repaired => "repaired",
            IntermediateAction::Replaced => "replaced",
        })
    }
}

/// The outcome for one cluster of [`CaDir::ensure_intermediates`].
///
/// ```
/// # use mesh_core::pki::{CaDir, CaOptions, IntermediateAction, KeyAlgorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let ca = CaDir::open(tmp.path());
/// ca.init(&opts, false).unwrap();
/// let status = ca.ensure_intermediates(&["eu"], &opts, false).unwrap().remove(0);
/// assert_eq!((status.cluster.as_str(), status.action), ("eu", IntermediateAction::Created));
/// assert_eq!(status.dir, tmp.path().join("eu"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntermediateStatus {
    /// The cluster.
    pub cluster: String,
    /// What was done.
    pub action: IntermediateAction,
    /// The cluster's folder.
    pub dir: PathBuf,
}

/// One certificate as `meshboot ca inspect` reports it.
///
/// ```
/// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let ca = CaDir::open(tmp.path());
/// ca.ensure(&opts, &["eu"]).unwrap();
/// let eu = &ca.inspect().unwrap().intermediates[0];
/// assert_eq!((eu.cluster.as_deref(), eu.chain_ok, eu.chain.as_str()), (Some("eu"), true, "ok"));
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct InspectedCert {
    /// The certificate file.
    pub file: PathBuf,
    /// The cluster folder it lives in; `None` for the root.
    pub cluster: Option<String>,
    /// What the certificate says, when it parses.
    pub info: Option<CertInfo>,
    /// Whether the chain (for the root: its self-signature and key) verified.
    pub chain_ok: bool,
    /// `ok`, or why the chain failed.
    pub chain: String,
    /// Problems that do not break the chain yet: expiry soon, key readable by others.
    pub warnings: Vec<String>,
}

/// Everything `meshboot ca inspect` shows for a CA directory.
///
/// ```
/// # use mesh_core::pki::CaDir;
/// let tmp = tempfile::tempdir().unwrap();
/// let report = CaDir::open(tmp.path()).inspect().unwrap();
/// assert!(report.root.is_none() && report.intermediates.is_empty());
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct CaReport {
    /// The directory.
    pub dir: PathBuf,
    /// The root, when `root-cert.pem` exists.
    pub root: Option<InspectedCert>,
    /// One entry per cluster folder, sorted by name.
    pub intermediates: Vec<InspectedCert>,
}

impl CaReport {
    /// True when every chain verified (vacuously true for an empty directory).
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let ca = CaDir::open(tmp.path());
    /// ca.ensure(&opts, &["eu"]).unwrap();
    /// std::fs::remove_file(tmp.path().join("eu/cert-chain.pem")).unwrap();
    /// assert!(!ca.inspect().unwrap().all_ok());
    /// ```
    pub fn all_ok(&self) -> bool {
        self.root
            .iter()
            .chain(&self.intermediates)
            .all(|c| c.chain_ok)
    }
}

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
    dir: PathBuf,
}

/// The signing root, loaded and checked.
struct Root {
    cert_pem: String,
    der: CertificateDer<'static>,
    key: KeyPair,
    not_after: OffsetDateTime,
}

/// What to do for one cluster, decided before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Create,
    Keep,
    Repair,
    Replace,
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
        opts.validate()?;
        let _lock = self.lock(true)?;
        self.refuse_existing_root(force)?;
        let mut keys = generate_keys(&[opts.key])?;
        let key = keys.pop().ok_or_else(|| PkiError::Crypto {
            what: "generating the root key".into(),
            reason: "no key was produced".into(),
        })?;
        let (cert, _) = profile::self_sign_root(&opts.org, opts.root_days, &key)?;
        self.write_root(&cert.pem(), &key.serialize_pem())?;
        info_of_der(cert.der(), ROOT_CERT_FILE, OffsetDateTime::now_utc())
    }

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
        let cert_label = cert.display().to_string();
        let key_label = key.display().to_string();
        let cert_pem = read_text(cert)?;
        let certs = pem_certs(&cert_pem, &cert_label)?;
        if certs.len() != 1 {
            return Err(PkiError::TooManyCertificates {
                file: cert_label,
                count: certs.len(),
            });
        }
        let der = &certs[0];
        let now = OffsetDateTime::now_utc();
        let info = info_of_der(der, &cert_label, now)?;
        check_root_certificate(der, &cert_label, &info, now)?;

        let key_pem = read_text(key)?;
        let loaded = load_private_key(&key_pem, &key_label)?;
        let parsed = parse_der(der, &cert_label)?;
        if loaded.key.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::KeyMismatch {
                key_file: key_label,
                cert_file: cert_label,
            });
        }

        let _lock = self.lock(true)?;
        if self.has_root() {
            // Same certificate and a matching key already in place: nothing to do.
            if let Ok(existing) = self.load_root()
                && existing.der.as_ref() == der.as_ref()
            {
                return Ok(info);
            }
            let file = if self.root_cert_path().exists() {
                self.root_cert_path()
            } else {
                self.root_key_path()
            };
            return Err(PkiError::DifferentRootExists {
                dir: self.dir.clone(),
                file,
            });
        }
        self.write_root(&der_to_pem(der), &loaded.key.serialize_pem())?;
        Ok(info)
    }

    /// Makes sure each cluster has an intermediate signed by this directory's root. An existing
    /// valid one is left byte-for-byte unchanged; one that this root did not sign, or that is
    /// expired, mismatched or for another cluster, is an error naming the file unless `force`.
    /// Every check runs before anything is written; new keys are generated in parallel.
    ///
    /// ```
    /// use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, PkiError};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path());
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// // No root yet: an error that says how to make one.
    /// assert!(matches!(ca.ensure_intermediates(&["eu"], &opts, false), Err(PkiError::NoRoot { .. })));
    /// ```
    pub fn ensure_intermediates(
        &self,
        clusters: &[&str],
        opts: &CaOptions,
        force: bool,
    ) -> Result<Vec<IntermediateStatus>, PkiError> {
        opts.validate()?;
        check_cluster_names(clusters)?;
        let _lock = self.lock(false)?;
        if !self.has_root() {
            return Err(PkiError::NoRoot {
                dir: self.dir.clone(),
            });
        }
        let root = self.load_root()?;
        let done = self.ensure_with_root(clusters, opts, force, Some(root))?;
        Ok(done.into_iter().map(|(status, _)| status).collect())
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

    /// What `render` and `apply` call: creates the root if the directory has none, then the
    /// intermediates idempotently (never forcing), and returns every cluster's bundle in the
    /// order given. When the root is new, its key and all intermediate keys are generated in
    /// one parallel batch.
    ///
    /// ```
    /// use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path());
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let first = ca.ensure(&opts, &["eu", "ap", "us"]).unwrap();
    /// let second = ca.ensure(&opts, &["eu", "ap", "us"]).unwrap();
    /// assert_eq!(first, second); // same bytes: nothing was regenerated
    /// assert_eq!(first[1].cluster, "ap");
    /// ```
    pub fn ensure(
        &self,
        opts: &CaOptions,
        clusters: &[&str],
    ) -> Result<Vec<ClusterBundle>, PkiError> {
        opts.validate()?;
        check_cluster_names(clusters)?;
        let _lock = self.lock(true)?;
        let root = if self.has_root() {
            Some(self.load_root()?)
        } else {
            None
        };
        let done = self.ensure_with_root(clusters, opts, false, root)?;
        // New intermediates come back from memory; existing ones are read from disk.
        done.into_iter()
            .map(|(status, bundle)| match bundle {
                Some(b) => Ok(b),
                None => self.bundle(&status.cluster),
            })
            .collect()
    }

    /// Reads every certificate of the directory and checks each chain. Unreadable or broken
    /// files become failed entries rather than errors, so one bad cluster does not hide the
    /// others; only an unreadable directory is an error.
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let ca = CaDir::open(tmp.path());
    /// ca.ensure(&opts, &["eu", "us"]).unwrap();
    /// let report = ca.inspect().unwrap();
    /// assert!(report.all_ok());
    /// assert_eq!(report.intermediates.len(), 2);
    /// ```
    pub fn inspect(&self) -> Result<CaReport, PkiError> {
        let now = OffsetDateTime::now_utc();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| PkiError::io(&self.dir, e))?;
        let mut clusters = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| PkiError::io(&self.dir, e))?;
            let path = entry.path();
            let holds_bundle = [CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE]
                .iter()
                .any(|f| path.join(f).exists());
            if path.is_dir() && holds_bundle {
                clusters.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        let root = self
            .root_cert_path()
            .exists()
            .then(|| self.inspect_root(now));
        let root_fp = root
            .as_ref()
            .and_then(|r| r.info.as_ref())
            .map(|i| i.fingerprint_sha256.clone());
        let intermediates = clusters
            .iter()
            .map(|c| self.inspect_cluster(c, root_fp.as_deref(), now))
            .collect();
        Ok(CaReport {
            dir: self.dir.clone(),
            root,
            intermediates,
        })
    }

    fn inspect_root(&self, now: OffsetDateTime) -> InspectedCert {
        let file = self.root_cert_path();
        let mut entry = InspectedCert {
            file: file.clone(),
            cluster: None,
            info: None,
            chain_ok: false,
            chain: String::new(),
            warnings: Vec::new(),
        };
        let result = (|| -> Result<(), String> {
            let pem = read_text(&file).map_err(|e| e.to_string())?;
            let certs = pem_certs(&pem, ROOT_CERT_FILE).map_err(|e| e.to_string())?;
            let info = info_of_der(&certs[0], ROOT_CERT_FILE, now).map_err(|e| e.to_string())?;
            entry.warnings.extend(expiry_warning(&info));
            entry.info = Some(info);
            verify_path(&certs[0], &[], &certs[..1], now).map_err(|e| e.to_string())?;
            self.load_root().map_err(|e| e.to_string())?;
            entry
                .warnings
                .extend(key_mode_warning(&self.root_key_path()));
            Ok(())
        })();
        (entry.chain_ok, entry.chain) = match result {
            Ok(()) => (true, "ok".into()),
            Err(e) => (false, e),
        };
        entry
    }

    fn inspect_cluster(
        &self,
        cluster: &str,
        root_fp: Option<&str>,
        now: OffsetDateTime,
    ) -> InspectedCert {
        let dir = self.cluster_dir(cluster);
        let mut entry = InspectedCert {
            file: dir.join(CA_CERT_FILE),
            cluster: Some(cluster.to_string()),
            info: None,
            chain_ok: false,
            chain: String::new(),
            warnings: Vec::new(),
        };
        let result = (|| -> Result<(), String> {
            let pem = read_text(&entry.file).map_err(|e| e.to_string())?;
            let certs = pem_certs(&pem, CA_CERT_FILE).map_err(|e| e.to_string())?;
            let info = info_of_der(&certs[0], CA_CERT_FILE, now).map_err(|e| e.to_string())?;
            entry.warnings.extend(expiry_warning(&info));
            if info.cluster.as_deref() != Some(cluster) {
                entry.warnings.push(format!(
                    "L={} in the certificate differs from the folder name {cluster:?}",
                    info.cluster.as_deref().unwrap_or("<none>")
                ));
            }
            entry.info = Some(info);
            let bundle = self.bundle(cluster).map_err(|e| e.to_string())?;
            let verified = verify_bundle_at(&bundle, now).map_err(|e| e.to_string())?;
            entry
                .warnings
                .extend(key_mode_warning(&dir.join(CA_KEY_FILE)));
            match root_fp {
                Some(fp) if fp != verified.root_fingerprint => Err(format!(
                    "chains to a root other than {}",
                    self.root_cert_path().display()
                )),
                _ => Ok(()),
            }
        })();
        (entry.chain_ok, entry.chain) = match result {
            Ok(()) => (true, "ok".into()),
            Err(e) => (false, e),
        };
        entry
    }

    /// An exclusive advisory lock (flock) on the directory itself, held while files are
    /// decided and written, so two meshboot processes on one CA directory cannot both create
    /// a root or the same intermediate. Locking the directory rather than a lock file leaves
    /// no extra file behind. With `create`, a missing directory is created first (callers
    /// validate their input before that).
    fn lock(&self, create: bool) -> Result<Option<std::fs::File>, PkiError> {
        if create {
            create_dir(&self.dir)?;
        }
        if !cfg!(unix) || !self.dir.is_dir() {
            return Ok(None);
        }
        let handle = std::fs::File::open(&self.dir).map_err(|e| PkiError::io(&self.dir, e))?;
        handle.lock().map_err(|e| PkiError::io(&self.dir, e))?;
        Ok(Some(handle))
    }

    fn refuse_existing_root(&self, force: bool) -> Result<(), PkiError> {
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

    fn write_root(&self, cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
        create_dir(&self.dir)?;
        write_atomic(&self.root_key_path(), key_pem.as_bytes(), true)?;
        write_atomic(&self.root_cert_path(), cert_pem.as_bytes(), false)
    }

    fn load_root(&self) -> Result<Root, PkiError> {
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
        drop(parsed);
        Ok(Root {
            cert_pem: der_to_pem(&der),
            der,
            key,
            not_after,
        })
    }

    /// Decides per cluster, then generates, signs and writes. `root: None` creates one.
    fn ensure_with_root(
        &self,
        clusters: &[&str],
        opts: &CaOptions,
        force: bool,
        root: Option<Root>,
    ) -> Result<Vec<(IntermediateStatus, Option<ClusterBundle>)>, PkiError> {
        let now = OffsetDateTime::now_utc();
        // Checking an existing intermediate is a few signature checks and a key parse per
        // cluster; independent, so spread over the cores like key generation.
        let plans = par::map(clusters, |c| self.plan(c, root.as_ref(), force, now))
            .ok_or_else(|| PkiError::Crypto {
                what: "checking existing intermediates".into(),
                reason: "a worker stopped early".into(),
            })?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;

        let mut algs = Vec::new();
        if root.is_none() {
            algs.push(opts.key);
        }
        algs.extend(
            plans
                .iter()
                .filter(|p| matches!(p, Plan::Create | Plan::Replace))
                .map(|_| opts.key),
        );
        let mut keys = generate_keys(&algs)?.into_iter();

        let root = match root {
            Some(root) => root,
            None => {
                let key = keys.next().ok_or_else(|| PkiError::Crypto {
                    what: "generating the root key".into(),
                    reason: "no key was produced".into(),
                })?;
                let (cert, params) = profile::self_sign_root(&opts.org, opts.root_days, &key)?;
                let cert_pem = cert.pem();
                self.write_root(&cert_pem, &key.serialize_pem())?;
                Root {
                    cert_pem,
                    der: cert.der().clone(),
                    key,
                    not_after: params.not_after,
                }
            }
        };
        let issuer = Issuer::from_ca_cert_der(&root.der, &root.key).map_err(|e| {
            PkiError::crypto(format!("reading {}", self.root_cert_path().display()), e)
        })?;

        // Pair every new intermediate with its key, then sign and write the clusters in
        // parallel: each touches only its own folder.
        let mut work = Vec::with_capacity(clusters.len());
        for (cluster, plan) in clusters.iter().zip(plans) {
            let key = match plan {
                Plan::Create | Plan::Replace => {
                    Some(keys.next().ok_or_else(|| PkiError::Crypto {
                        what: format!("generating the key for {cluster:?}"),
                        reason: "no key was produced".into(),
                    })?)
                }
                Plan::Keep | Plan::Repair => None,
            };
            work.push((*cluster, plan, key));
        }
        let results = par::map(&work, |(cluster, plan, key)| {
            self.apply_plan(cluster, *plan, key.as_ref(), opts, &root, &issuer)
        })
        .ok_or_else(|| PkiError::Crypto {
            what: "writing intermediates".into(),
            reason: "a worker stopped early".into(),
        })?;
        results.into_iter().collect()
    }

    /// Carries out one cluster's plan. Returns the status and, for a new intermediate, the
    /// bundle that was written.
    fn apply_plan(
        &self,
        cluster: &str,
        plan: Plan,
        key: Option<&KeyPair>,
        opts: &CaOptions,
        root: &Root,
        issuer: &Issuer<'_, &KeyPair>,
    ) -> Result<(IntermediateStatus, Option<ClusterBundle>), PkiError> {
        let dir = self.cluster_dir(cluster);
        let (action, bundle) = match (plan, key) {
            (Plan::Keep, _) => (IntermediateAction::Unchanged, None),
            (Plan::Repair, _) => {
                let cert_pem = read_text(&dir.join(CA_CERT_FILE))?;
                self.write_derived(&dir, &cert_pem, &root.cert_pem, true)?;
                (IntermediateAction::Repaired, None)
            }
            (Plan::Create | Plan::Replace, Some(key)) => {
                let cert = profile::issue_intermediate(
                    cluster,
                    &opts.org,
                    opts.intermediate_days,
                    root.not_after,
                    key,
                    issuer,
                )?;
                let ca_cert_pem = cert.pem();
                let ca_key_pem = key.serialize_pem();
                let root_cert_pem = with_newline(&root.cert_pem);
                let cert_chain_pem = format!("{}{root_cert_pem}", with_newline(&ca_cert_pem));
                let files = [
                    (CA_KEY_FILE, &ca_key_pem, true),
                    (CA_CERT_FILE, &ca_cert_pem, false),
                    (CERT_CHAIN_FILE, &cert_chain_pem, false),
                    (ROOT_CERT_FILE, &root_cert_pem, false),
                ];
                if dir.exists() {
                    // Key first: a crash before the certificate lands leaves a mismatch that
                    // the next run reports, never a certificate without its key.
                    for (name, contents, private) in files {
                        write_atomic(&dir.join(name), contents.as_bytes(), private)?;
                    }
                } else {
                    self.write_bundle_dir(&dir, &files)?;
                }
                let action = if plan == Plan::Create {
                    IntermediateAction::Created
                } else {
                    IntermediateAction::Replaced
                };
                let bundle = ClusterBundle {
                    cluster: cluster.to_string(),
                    ca_cert_pem,
                    ca_key_pem,
                    root_cert_pem,
                    cert_chain_pem,
                };
                (action, Some(bundle))
            }
            (Plan::Create | Plan::Replace, None) => {
                return Err(PkiError::Crypto {
                    what: format!("generating the key for {cluster:?}"),
                    reason: "no key was produced".into(),
                });
            }
        };
        let status = IntermediateStatus {
            cluster: cluster.to_string(),
            action,
            dir,
        };
        Ok((status, bundle))
    }

    /// Writes a new cluster folder all at once: the four files go into a private staging
    /// folder next to it, which is then renamed into place, so the bundle appears complete or
    /// not at all (and costs one rename instead of four).
    fn write_bundle_dir(
        &self,
        dir: &Path,
        files: &[(&str, &String, bool); 4],
    ) -> Result<(), PkiError> {
        let staging = tempfile::Builder::new()
            .prefix(".meshboot-")
            .tempdir_in(&self.dir)
            .map_err(|e| PkiError::io(&self.dir, e))?;
        for (name, contents, private) in files {
            let path = staging.path().join(name);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(if *private { 0o600 } else { 0o644 });
            }
            let mut file = options
                .open(&path)
                .map_err(|e| PkiError::io(dir.join(name), e))?;
            file.write_all(contents.as_bytes())
                .map_err(|e| PkiError::io(dir.join(name), e))?;
        }
        #[cfg(unix)]
        {
            // The staging folder is created 0700; a cluster folder is as readable as one made
            // with mkdir (the key inside stays 0600).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| PkiError::io(staging.path(), e))?;
        }
        std::fs::rename(staging.path(), dir).map_err(|e| PkiError::io(dir, e))?;
        // Renamed away: nothing left for the guard to delete.
        let _ = staging.keep();
        Ok(())
    }

    /// Writes `cert-chain.pem` and the cluster's `root-cert.pem`; with `only_missing`, leaves
    /// existing ones alone.
    fn write_derived(
        &self,
        dir: &Path,
        ca_cert_pem: &str,
        root_pem: &str,
        only_missing: bool,
    ) -> Result<(String, String), PkiError> {
        let root = with_newline(root_pem);
        let chain = format!("{}{root}", with_newline(ca_cert_pem));
        for (name, contents) in [(CERT_CHAIN_FILE, &chain), (ROOT_CERT_FILE, &root)] {
            let path = dir.join(name);
            if only_missing && path.exists() {
                continue;
            }
            write_atomic(&path, contents.as_bytes(), false)?;
        }
        Ok((chain, root))
    }

    /// Decides what to do for `cluster` without writing anything.
    fn plan(
        &self,
        cluster: &str,
        root: Option<&Root>,
        force: bool,
        now: OffsetDateTime,
    ) -> Result<Plan, PkiError> {
        let dir = self.cluster_dir(cluster);
        let cert_path = dir.join(CA_CERT_FILE);
        let files = [CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE];
        if !files.iter().any(|f| dir.join(f).exists()) {
            return Ok(Plan::Create);
        }
        let refuse = |err: PkiError| if force { Ok(Plan::Replace) } else { Err(err) };
        let stale = |file: &Path, reason: String| PkiError::StaleIntermediate {
            cluster: cluster.to_string(),
            file: file.to_path_buf(),
            reason,
        };
        let Some(root) = root else {
            return refuse(PkiError::ForeignIntermediate {
                cluster: cluster.to_string(),
                file: dir.clone(),
                root: self.root_cert_path(),
                reason: "the directory has no root yet, so no existing intermediate can chain to the one being created".into(),
            });
        };
        if !cert_path.exists() {
            return refuse(stale(
                &cert_path,
                "is missing while other files of the bundle exist".into(),
            ));
        }
        let cert_pem = read_text(&cert_path)?;
        let label = cert_path.display().to_string();
        let der = match pem_certs(&cert_pem, &label) {
            Ok(mut certs) => certs.swap_remove(0),
            Err(e) => return refuse(stale(&cert_path, format!("does not parse ({e})"))),
        };
        match verify_path(&der, &[], std::slice::from_ref(&root.der), now) {
            Ok(_) => {}
            Err(e @ (ChainError::BadSignature { .. } | ChainError::UnknownIssuer { .. })) => {
                return refuse(PkiError::ForeignIntermediate {
                    cluster: cluster.to_string(),
                    file: cert_path.clone(),
                    root: self.root_cert_path(),
                    reason: e.to_string(),
                });
            }
            Err(e) => return refuse(stale(&cert_path, e.to_string())),
        }
        let parsed = parse_der(&der, &label)?;
        let l = locality(&parsed);
        if l.as_deref() != Some(cluster) {
            return refuse(stale(
                &cert_path,
                format!(
                    "is issued for L={} instead",
                    l.as_deref().unwrap_or("<none>")
                ),
            ));
        }
        let key_path = dir.join(CA_KEY_FILE);
        if !key_path.exists() {
            return refuse(stale(&key_path, "is missing".into()));
        }
        let key_pem = read_text(&key_path)?;
        match load_private_key(&key_pem, &key_path.display().to_string()) {
            Ok(k)
                if k.key.public_key_raw()
                    == parsed.public_key().subject_public_key.data.as_ref() => {}
            Ok(_) => return refuse(stale(&key_path, format!("does not match {CA_CERT_FILE}"))),
            Err(e) => return refuse(stale(&key_path, e.to_string())),
        }
        if !dir.join(CERT_CHAIN_FILE).exists() || !dir.join(ROOT_CERT_FILE).exists() {
            return Ok(Plan::Repair);
        }
        let bundle = self.bundle(cluster)?;
        match verify_bundle_at(&bundle, now) {
            Ok(v) if v.root_fingerprint == fingerprint(&root.der) => Ok(Plan::Keep),
            Ok(_) => refuse(stale(
                &dir.join(ROOT_CERT_FILE),
                format!(
                    "anchors the chain on a root other than {}",
                    self.root_cert_path().display()
                ),
            )),
            Err(e) => refuse(stale(&dir, e.to_string())),
        }
    }
}

/// Refuses a BYO root that cannot serve as the mesh root.
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

fn check_cluster_names(clusters: &[&str]) -> Result<(), PkiError> {
    let mut seen = BTreeSet::new();
    for c in clusters {
        validate_cluster_name(c)?;
        if !seen.insert(*c) {
            return Err(PkiError::DuplicateCluster(c.to_string()));
        }
    }
    Ok(())
}

fn expiry_warning(info: &CertInfo) -> Option<String> {
    (info.days_left < EXPIRY_WARNING_DAYS && info.days_left >= 0)
        .then(|| format!("expires in {} days", info.days_left))
}

#[cfg(unix)]
fn key_mode_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is readable by group or others (mode {mode:04o}); run chmod 600",
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn key_mode_warning(_path: &Path) -> Option<String> {
    None
}

fn read_text(path: &Path) -> Result<String, PkiError> {
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

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))
}

/// Writes `contents` to `path` through a temp file in the same directory and a rename, so a
/// reader (or a crash) never sees half a file. Private files get mode 0600 before the rename,
/// so there is no moment at which the key is readable by others.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], private: bool) -> Result<(), PkiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".meshboot-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Applied when the file is created, so a key is never readable by others, not even
        // for the moment before a chmod.
        let mode = if private { 0o600 } else { 0o644 };
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut tmp = builder
        .tempfile_in(parent)
        .map_err(|e| PkiError::io(parent, e))?;
    tmp.write_all(contents)
        .map_err(|e| PkiError::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| PkiError::io(path, e.error))?;
    Ok(())
}

fn der_to_pem(der: &[u8]) -> String {
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

fn with_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
