//! `meshboot ca inspect`: every certificate of a CA directory, its chain and what needs
//! attention soon.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::inspect::{CertInfo, info_of_der, pem_certs};
use super::store::read_text;
use super::verify::{verify_bundle_at, verify_path};
use super::{CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, CaDir, PkiError, ROOT_CERT_FILE};

/// Days of validity left below which `inspect` warns.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

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

impl CaDir {
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
