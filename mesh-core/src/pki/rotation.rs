//! What rotation keeps in the CA directory, beside the Makefile layout:
//!
//! ```text
//! <dir>/<cluster>/previous/            the intermediate before the last rotation (rollback)
//! <dir>/<cluster>/history/<stamp>/     every older one, never deleted
//! <dir>/rotation/old/root-{cert,key}.pem          a root rotation under way: the old root,
//! <dir>/rotation/old/<cluster>/ca-{cert,key}.pem  ... every cluster's old intermediate,
//! <dir>/rotation/new/root-{cert,key}.pem          ... the new root,
//! <dir>/rotation/new/<cluster>/...                ... and the intermediates it signed
//! <dir>/retired/<stamp>-<completed|aborted>/      a finished rotation folder, moved whole
//! ```
//!
//! The top-level root and the cluster folders always hold what the step in progress pushes
//! ([`RootRotation::project`]), so `apply` mid-rotation pushes exactly what is live and
//! `render` shows it. Nothing is overwritten before a complete copy of it exists elsewhere:
//! the current intermediate is copied to `previous/` (the older `previous/` moved to
//! `history/`) before a new one is written, and the rotation folder is staged and renamed into
//! place whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use serde::Serialize;
use time::OffsetDateTime;

use super::import::load_brought_root;
use super::inspect::{CertInfo, fingerprint, info_of_der, locality, parse_der, pem_certs};
use super::key::{generate_keys, load_private_key};
use super::store::{Root, check_cluster_names, read_text, with_newline, write_file};
use super::verify::verify_bundle_at;
use super::{
    CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, CaDir, CaOptions, ClusterBundle, PkiError,
    ROOT_CERT_FILE, ROOT_KEY_FILE, RootFiles, par, profile,
};
use crate::files::{self, Access};

/// The folder inside a cluster folder holding the intermediate before the last rotation.
pub const PREVIOUS_DIR: &str = "previous";
/// The folder inside a cluster folder holding every older intermediate.
pub const HISTORY_DIR: &str = "history";
/// The folder of a root rotation under way.
pub const ROTATION_DIR: &str = "rotation";
/// The folder finished root rotations are moved into.
pub const RETIRED_DIR: &str = "retired";

/// What [`CaDir::rotate_intermediates`] or [`CaDir::rollback_intermediate`] did for a cluster.
///
/// ```
/// assert_eq!(serde_json::to_value(mesh_core::pki::RotationAction::RolledBack).unwrap(), "rolled-back");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationAction {
    /// A new intermediate was issued from the same root; the old one is in `previous/`.
    Issued,
    /// `previous/` became the current intermediate again; the one it replaced is in
    /// `history/`.
    RolledBack,
}

/// The result of rotating (or rolling back) one cluster's intermediate. `Debug` never shows
/// the key.
#[derive(Debug, Clone)]
pub struct RotatedIntermediate {
    /// The cluster.
    pub cluster: String,
    /// What was done (or, in a dry run, would be).
    pub action: RotationAction,
    /// The intermediate now current (what `cacerts` gets).
    pub bundle: ClusterBundle,
    /// What the replaced intermediate said, when there was a readable one.
    pub replaced: Option<CertInfo>,
    /// What the new current intermediate says.
    pub current: CertInfo,
}

/// Which roots a cluster's `root-cert.pem` holds during a root rotation.
///
/// ```
/// use mesh_core::pki::Trust;
/// assert_eq!(serde_json::to_value(Trust::Both).unwrap(), "both");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// The old root only.
    Old,
    /// The old root, then the new one (that order, byte for byte: istiod 1.20–1.30 accepts a
    /// new bundle only when one file contains the other).
    Both,
    /// The new root only.
    New,
}

/// Which root signed the intermediate a cluster gets during a root rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signer {
    /// The cluster's intermediate from before the rotation.
    Old,
    /// A new intermediate signed by the new root.
    New,
}

/// One root of a root rotation. `Debug` never shows the key.
pub struct RotationRoot {
    root: Root,
    /// What the certificate says.
    pub info: CertInfo,
}

impl std::fmt::Debug for RotationRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationRoot")
            .field("subject", &self.info.subject)
            .field("fingerprint", &self.info.fingerprint_sha256)
            .finish_non_exhaustive()
    }
}

impl RotationRoot {
    /// The certificate, PEM, ending in a newline.
    pub fn cert_pem(&self) -> String {
        with_newline(&self.root.cert_pem)
    }

    /// SHA-256 fingerprint, `AB:CD:...`.
    pub fn fingerprint(&self) -> &str {
        &self.info.fingerprint_sha256
    }

    fn from_root(root: Root, label: &str) -> Result<RotationRoot, PkiError> {
        let info = info_of_der(&root.der, label, OffsetDateTime::now_utc())?;
        Ok(RotationRoot { root, info })
    }
}

/// An intermediate without its root file: certificate, key and chain.
#[derive(Clone)]
struct Intermediate {
    cert_pem: String,
    key_pem: String,
    chain_pem: String,
}

/// A root rotation's CA material: both roots and both generations of intermediates, read from
/// (or about to be written to) `<dir>/rotation/`. `Debug` never shows a key.
pub struct RootRotation {
    /// The root being replaced.
    pub old: RotationRoot,
    /// The root replacing it.
    pub new: RotationRoot,
    old_intermediates: BTreeMap<String, Intermediate>,
    new_intermediates: BTreeMap<String, Intermediate>,
    /// False until the folder exists on disk (a dry run that would start a rotation).
    pub on_disk: bool,
}

impl std::fmt::Debug for RootRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootRotation")
            .field("old", &self.old)
            .field("new", &self.new)
            .field("old_intermediates", &self.old_intermediates.keys())
            .field("new_intermediates", &self.new_intermediates.keys())
            .field("on_disk", &self.on_disk)
            .finish()
    }
}

impl RootRotation {
    /// The `root-cert.pem` for `trust`: old then new for [`Trust::Both`].
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, Trust};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let ca = CaDir::open(tmp.path());
    /// ca.ensure(&opts, &["eu"]).unwrap();
    /// let rotation = ca.start_root_rotation(None, &opts, &["eu"], false).unwrap();
    /// let both = rotation.root_bundle(Trust::Both);
    /// assert!(both.starts_with(&rotation.root_bundle(Trust::Old)));
    /// assert!(both.ends_with(&rotation.root_bundle(Trust::New)));
    /// ```
    pub fn root_bundle(&self, trust: Trust) -> String {
        match trust {
            Trust::Old => self.old.cert_pem(),
            Trust::New => self.new.cert_pem(),
            Trust::Both => format!("{}{}", self.old.cert_pem(), self.new.cert_pem()),
        }
    }

    /// True when every cluster has an intermediate signed by the new root.
    pub fn has_new_intermediates(&self, clusters: &[&str]) -> bool {
        clusters
            .iter()
            .all(|c| self.new_intermediates.contains_key(*c))
    }

    /// The `cacerts` bundle of `cluster` for one step of the rotation.
    pub fn bundle(
        &self,
        cluster: &str,
        trust: Trust,
        signer: Signer,
    ) -> Result<ClusterBundle, PkiError> {
        let (set, which) = match signer {
            Signer::Old => (&self.old_intermediates, "old"),
            Signer::New => (&self.new_intermediates, "new"),
        };
        let i = set.get(cluster).ok_or_else(|| PkiError::Rotation {
            reason: format!(
                "the rotation folder has no {which} intermediate for cluster {cluster:?}"
            ),
        })?;
        Ok(ClusterBundle {
            cluster: cluster.to_string(),
            ca_cert_pem: i.cert_pem.clone(),
            ca_key_pem: i.key_pem.clone(),
            root_cert_pem: self.root_bundle(trust),
            cert_chain_pem: i.chain_pem.clone(),
        })
    }

    /// What the new intermediate of `cluster` says, once issued.
    pub fn new_intermediate_info(&self, cluster: &str) -> Option<CertInfo> {
        let i = self.new_intermediates.get(cluster)?;
        let der = pem_certs(&i.cert_pem, CA_CERT_FILE).ok()?.swap_remove(0);
        info_of_der(&der, CA_CERT_FILE, OffsetDateTime::now_utc()).ok()
    }
}

impl CaDir {
    /// `<dir>/<cluster>/previous`.
    pub fn previous_dir(&self, cluster: &str) -> PathBuf {
        self.cluster_dir(cluster).join(PREVIOUS_DIR)
    }

    /// `<dir>/rotation`: a root rotation under way.
    pub fn rotation_dir(&self) -> PathBuf {
        self.dir.join(ROTATION_DIR)
    }

    /// The intermediate before the last rotation of `cluster`.
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let ca = CaDir::open(tmp.path());
    /// let before = ca.ensure(&opts, &["eu"]).unwrap().remove(0);
    /// assert!(ca.previous_bundle("eu").is_err()); // never rotated
    /// ca.rotate_intermediates(&["eu"], &opts, false).unwrap();
    /// assert_eq!(ca.previous_bundle("eu").unwrap(), before);
    /// ```
    pub fn previous_bundle(&self, cluster: &str) -> Result<ClusterBundle, PkiError> {
        read_bundle_in(&self.previous_dir(cluster), cluster)
    }

    /// Issues a new intermediate from the directory's root for each cluster (new keys made in
    /// parallel). The current one (when it is a readable bundle) is copied into `previous/`
    /// first, the older `previous/` moved into `history/`; nothing is deleted. With `dry_run`
    /// the new intermediates are made in memory only.
    ///
    /// ```
    /// use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, RotationAction, verify_bundle};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path());
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let before = ca.ensure(&opts, &["eu"]).unwrap().remove(0);
    /// let done = ca.rotate_intermediates(&["eu"], &opts, false).unwrap().remove(0);
    /// assert_eq!(done.action, RotationAction::Issued);
    /// assert_ne!(done.bundle.ca_cert_pem, before.ca_cert_pem);
    /// assert_eq!(done.bundle.root_cert_pem, before.root_cert_pem); // same root
    /// verify_bundle(&done.bundle).unwrap();
    /// assert_eq!(ca.bundle("eu").unwrap(), done.bundle);
    /// ```
    pub fn rotate_intermediates(
        &self,
        clusters: &[&str],
        opts: &CaOptions,
        dry_run: bool,
    ) -> Result<Vec<RotatedIntermediate>, PkiError> {
        opts.validate()?;
        check_cluster_names(clusters)?;
        let _lock = self.lock(false)?;
        if !self.has_root() {
            return Err(PkiError::NoRoot {
                dir: self.dir.clone(),
            });
        }
        let root = self.load_root()?;
        let keys = generate_keys(&vec![opts.key; clusters.len()])?;
        let org = profile::intermediate_org(root.org.as_deref(), opts);
        let issuer = Issuer::from_ca_cert_der(&root.der, &root.key).map_err(|e| {
            PkiError::crypto(format!("reading {}", self.root_cert_path().display()), e)
        })?;
        let work: Vec<(&str, &KeyPair)> = clusters.iter().copied().zip(keys.iter()).collect();
        let results = par::map_writing(&work, |(cluster, key)| {
            let cert = profile::issue_intermediate(
                cluster,
                &org,
                opts.intermediate_days,
                root.not_after,
                key,
                &issuer,
            )?;
            let ca_cert_pem = cert.pem();
            let root_cert_pem = with_newline(&root.cert_pem);
            let bundle = ClusterBundle {
                cluster: cluster.to_string(),
                cert_chain_pem: format!("{}{root_cert_pem}", with_newline(&ca_cert_pem)),
                ca_cert_pem,
                ca_key_pem: key.serialize_pem(),
                root_cert_pem,
            };
            self.replace_current(cluster, bundle, RotationAction::Issued, dry_run)
        })
        .ok_or_else(|| PkiError::Crypto {
            what: "rotating intermediates".into(),
            reason: "a worker stopped early".into(),
        })?;
        results.into_iter().collect()
    }

    /// Makes `previous/` the current intermediate of `cluster` again, once it is checked to
    /// verify, to name the cluster and to chain to the directory's root. The intermediate it
    /// replaces is kept in `history/`.
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, RotationAction};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let ca = CaDir::open(tmp.path());
    /// let first = ca.ensure(&opts, &["eu"]).unwrap().remove(0);
    /// ca.rotate_intermediates(&["eu"], &opts, false).unwrap();
    /// let back = ca.rollback_intermediate("eu", false).unwrap();
    /// assert_eq!((back.action, back.bundle), (RotationAction::RolledBack, first));
    /// ```
    pub fn rollback_intermediate(
        &self,
        cluster: &str,
        dry_run: bool,
    ) -> Result<RotatedIntermediate, PkiError> {
        check_cluster_names(&[cluster])?;
        let _lock = self.lock(false)?;
        let previous_dir = self.previous_dir(cluster);
        if !previous_dir.join(CA_CERT_FILE).exists() {
            return Err(PkiError::NoPrevious {
                cluster: cluster.to_string(),
                dir: previous_dir,
            });
        }
        let previous = self.previous_bundle(cluster)?;
        let root = self.load_root()?;
        let unusable = |reason: String| PkiError::StaleIntermediate {
            cluster: cluster.to_string(),
            file: previous_dir.join(CA_CERT_FILE),
            reason,
        };
        let verified = verify_bundle_at(&previous, OffsetDateTime::now_utc())
            .map_err(|e| unusable(format!("cannot be rolled back to: {e}")))?;
        if verified.root_fingerprint != fingerprint(&root.der) {
            return Err(unusable(format!(
                "chains to a root other than {}, so rolling back to it would break trust",
                self.root_cert_path().display()
            )));
        }
        let der = pem_certs(&previous.ca_cert_pem, CA_CERT_FILE)?.swap_remove(0);
        let parsed = parse_der(&der, CA_CERT_FILE)?;
        if locality(&parsed).as_deref() != Some(cluster) {
            return Err(unusable("is issued for another cluster (L=)".into()));
        }
        drop(parsed);
        self.replace_current(cluster, previous, RotationAction::RolledBack, dry_run)
    }

    /// Writes `bundle` as the current intermediate of `cluster`, keeping what it replaces:
    /// for a new one in `previous/` (the older `previous/` into `history/`), for a rollback
    /// in `history/`.
    fn replace_current(
        &self,
        cluster: &str,
        bundle: ClusterBundle,
        action: RotationAction,
        dry_run: bool,
    ) -> Result<RotatedIntermediate, PkiError> {
        let dir = self.cluster_dir(cluster);
        // Only a bundle that reads whole is worth keeping; a half-written one (a crash while
        // the last rotation wrote) is simply replaced.
        let current = self.bundle(cluster).ok();
        let replaced = current.as_ref().and_then(|b| cert_summary(&b.ca_cert_pem));
        let new_info = cert_summary(&bundle.ca_cert_pem).ok_or_else(|| PkiError::Crypto {
            what: format!("reading the new intermediate of {cluster:?}"),
            reason: "it does not parse".into(),
        })?;
        if !dry_run {
            if let Some(current) = &current {
                match action {
                    RotationAction::Issued => {
                        let previous = self.previous_dir(cluster);
                        if previous.exists() {
                            let stamp = history_stamp(&previous);
                            let target = unique(&dir.join(HISTORY_DIR), &stamp);
                            std::fs::create_dir_all(dir.join(HISTORY_DIR))
                                .map_err(|e| PkiError::io(dir.join(HISTORY_DIR), e))?;
                            std::fs::rename(&previous, &target)
                                .map_err(|e| PkiError::io(&target, e))?;
                            files::sync_dir(&dir.join(HISTORY_DIR))
                                .map_err(|e| PkiError::io(dir.join(HISTORY_DIR), e))?;
                        }
                        write_dir_staged(&dir, &previous, &bundle_files(current))?;
                    }
                    RotationAction::RolledBack => {
                        let history = dir.join(HISTORY_DIR);
                        let stamp = current_stamp(current);
                        let target = unique(&history, &stamp);
                        std::fs::create_dir_all(&history).map_err(|e| PkiError::io(&history, e))?;
                        write_dir_staged(&history, &target, &bundle_files(current))?;
                    }
                }
            }
            // Key first over an existing folder: a crash before the certificate lands leaves
            // a mismatch the next run reports and replaces, never a certificate without key.
            std::fs::create_dir_all(&dir).map_err(|e| PkiError::io(&dir, e))?;
            for (name, contents, access) in bundle_files(&bundle) {
                write_file(&dir.join(name), contents, access)?;
            }
            tracing::info!(%cluster, ?action, "intermediate rotated");
        }
        Ok(RotatedIntermediate {
            cluster: cluster.to_string(),
            action,
            bundle,
            replaced,
            current: new_info,
        })
    }

    /// The root rotation under way, read from `<dir>/rotation/`; `None` when there is none.
    pub fn root_rotation(&self) -> Result<Option<RootRotation>, PkiError> {
        let dir = self.rotation_dir();
        if !dir.exists() {
            return Ok(None);
        }
        let old = read_root_in(&dir.join("old"))?;
        let new = read_root_in(&dir.join("new"))?;
        Ok(Some(RootRotation {
            old,
            new,
            old_intermediates: read_intermediates(&dir.join("old"))?,
            new_intermediates: read_intermediates(&dir.join("new"))?,
            on_disk: true,
        }))
    }

    /// Starts a root rotation: the new root (`new_root` brought, else generated from `opts`
    /// with the old root's `O=`), and a copy of the directory's root and of every cluster's
    /// current intermediate (which must chain to it), written as `<dir>/rotation/` all at once.
    /// With `dry_run` everything is made in memory only. Refuses when a rotation is already
    /// under way.
    ///
    /// ```
    /// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let ca = CaDir::open(tmp.path());
    /// ca.ensure(&opts, &["eu"]).unwrap();
    /// let started = ca.start_root_rotation(None, &opts, &["eu"], false).unwrap();
    /// assert_ne!(started.old.fingerprint(), started.new.fingerprint());
    /// assert!(ca.root_rotation().unwrap().is_some());
    /// assert!(ca.start_root_rotation(None, &opts, &["eu"], false).is_err()); // one at a time
    /// ```
    pub fn start_root_rotation(
        &self,
        new_root: Option<RootFiles<'_>>,
        opts: &CaOptions,
        clusters: &[&str],
        dry_run: bool,
    ) -> Result<RootRotation, PkiError> {
        opts.validate()?;
        check_cluster_names(clusters)?;
        for reserved in [ROTATION_DIR, RETIRED_DIR] {
            if clusters.contains(&reserved) {
                return Err(PkiError::Rotation {
                    reason: format!(
                        "a cluster named {reserved:?} would share its folder with the rotation's; rename the cluster"
                    ),
                });
            }
        }
        let _lock = self.lock(false)?;
        if self.rotation_dir().exists() {
            return Err(PkiError::Rotation {
                reason: format!(
                    "a root rotation is already under way ({} exists)",
                    self.rotation_dir().display()
                ),
            });
        }
        if !self.has_root() {
            return Err(PkiError::NoRoot {
                dir: self.dir.clone(),
            });
        }
        let old = self.load_root()?;
        let old_fp = fingerprint(&old.der);
        let mut old_intermediates = BTreeMap::new();
        for cluster in clusters {
            let bundle = self.bundle(cluster)?;
            let verified = verify_bundle_at(&bundle, OffsetDateTime::now_utc()).map_err(|e| {
                PkiError::Chain {
                    cluster: cluster.to_string(),
                    source: e,
                }
            })?;
            if verified.root_fingerprint != old_fp {
                return Err(PkiError::Rotation {
                    reason: format!(
                        "the intermediate of {cluster:?} does not chain to {}; run `meshboot apply` (or finish the rotation that made it) first",
                        self.root_cert_path().display()
                    ),
                });
            }
            old_intermediates.insert(
                cluster.to_string(),
                Intermediate {
                    cert_pem: bundle.ca_cert_pem,
                    key_pem: bundle.ca_key_pem,
                    chain_pem: bundle.cert_chain_pem,
                },
            );
        }
        let new = match new_root {
            Some(files) => load_brought_root(files.cert, files.key)?.0,
            None => {
                let key = generate_keys(&[opts.key])?
                    .pop()
                    .ok_or_else(|| PkiError::Crypto {
                        what: "generating the new root key".into(),
                        reason: "no key was produced".into(),
                    })?;
                let org = old.org.clone().unwrap_or_else(|| opts.org.clone());
                let opts = CaOptions {
                    org,
                    ..opts.clone()
                };
                Root::generate(&opts, key)?
            }
        };
        if fingerprint(&new.der) == old_fp {
            return Err(PkiError::Rotation {
                reason: "the new root is the current root".into(),
            });
        }
        let rotation = RootRotation {
            old: RotationRoot::from_root(old, "rotation/old/root-cert.pem")?,
            new: RotationRoot::from_root(new, "rotation/new/root-cert.pem")?,
            old_intermediates,
            new_intermediates: BTreeMap::new(),
            on_disk: !dry_run,
        };
        if !dry_run {
            self.write_rotation(&rotation)?;
            tracing::info!(dir = %self.dir.display(), new_root = %rotation.new.fingerprint(), "root rotation started");
        }
        Ok(rotation)
    }

    /// Issues an intermediate signed by the new root for every cluster that has none yet in
    /// the rotation folder (an existing one is never re-issued: it may be live already).
    /// Returns the clusters issued for.
    pub fn issue_rotation_intermediates(
        &self,
        rotation: &mut RootRotation,
        clusters: &[&str],
        opts: &CaOptions,
        dry_run: bool,
    ) -> Result<Vec<String>, PkiError> {
        opts.validate()?;
        let _lock = self.lock(false)?;
        let missing: Vec<&str> = clusters
            .iter()
            .copied()
            .filter(|c| !rotation.new_intermediates.contains_key(*c))
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let keys = generate_keys(&vec![opts.key; missing.len()])?;
        let root = &rotation.new.root;
        let org = profile::intermediate_org(root.org.as_deref(), opts);
        let issuer = Issuer::from_ca_cert_der(&root.der, &root.key)
            .map_err(|e| PkiError::crypto("reading the new root", e))?;
        let work: Vec<(&str, &KeyPair)> = missing.iter().copied().zip(keys.iter()).collect();
        let issued = par::map_writing(&work, |(cluster, key)| {
            let cert = profile::issue_intermediate(
                cluster,
                &org,
                opts.intermediate_days,
                root.not_after,
                key,
                &issuer,
            )?;
            let cert_pem = cert.pem();
            let i = Intermediate {
                chain_pem: format!("{}{}", with_newline(&cert_pem), rotation.new.cert_pem()),
                cert_pem,
                key_pem: key.serialize_pem(),
            };
            if !dry_run {
                let dir = self.rotation_dir().join("new");
                write_dir_staged(&dir, &dir.join(cluster), &intermediate_files(&i))?;
            }
            Ok::<_, PkiError>((cluster.to_string(), i))
        })
        .ok_or_else(|| PkiError::Crypto {
            what: "issuing intermediates under the new root".into(),
            reason: "a worker stopped early".into(),
        })?;
        let mut names = Vec::new();
        for result in issued {
            let (cluster, i) = result?;
            names.push(cluster.clone());
            rotation.new_intermediates.insert(cluster, i);
        }
        Ok(names)
    }

    /// Makes the top-level root and the cluster folders hold what one step of the rotation
    /// pushes: the root that signs the intermediates (`signer`), and per cluster its bundle
    /// for (`trust`, `signer`). A no-op for files that already hold it.
    pub fn project_root_rotation(
        &self,
        rotation: &RootRotation,
        clusters: &[&str],
        trust: Trust,
        signer: Signer,
    ) -> Result<(), PkiError> {
        let _lock = self.lock(false)?;
        let root = match signer {
            Signer::Old => &rotation.old.root,
            Signer::New => &rotation.new.root,
        };
        write_if_changed(
            &self.root_key_path(),
            &root.key.serialize_pem(),
            Access::Private,
        )?;
        write_if_changed(&self.root_cert_path(), &root.cert_pem, Access::Shared)?;
        for cluster in clusters {
            let bundle = rotation.bundle(cluster, trust, signer)?;
            let dir = self.cluster_dir(cluster);
            for (name, contents, access) in bundle_files(&bundle) {
                write_if_changed(&dir.join(name), contents, access)?;
            }
        }
        Ok(())
    }

    /// Moves `<dir>/rotation/` whole to `<dir>/retired/<stamp>-<outcome>` once every cluster
    /// is through (`outcome`: `completed` or `aborted`), and returns where it went.
    pub fn retire_root_rotation(&self, outcome: &str) -> Result<PathBuf, PkiError> {
        let _lock = self.lock(false)?;
        let retired = self.dir.join(RETIRED_DIR);
        std::fs::create_dir_all(&retired).map_err(|e| PkiError::io(&retired, e))?;
        let stamp = format!("{}-{outcome}", compact(OffsetDateTime::now_utc()));
        let target = unique(&retired, &stamp);
        std::fs::rename(self.rotation_dir(), &target).map_err(|e| PkiError::io(&target, e))?;
        files::sync_dir(&retired).map_err(|e| PkiError::io(&retired, e))?;
        files::sync_dir(&self.dir).map_err(|e| PkiError::io(&self.dir, e))?;
        Ok(target)
    }

    fn write_rotation(&self, rotation: &RootRotation) -> Result<(), PkiError> {
        let staging = tempfile::Builder::new()
            .prefix(files::TEMP_PREFIX)
            .tempdir_in(&self.dir)
            .map_err(|e| PkiError::io(&self.dir, e))?;
        for (side, root) in [("old", &rotation.old), ("new", &rotation.new)] {
            let dir = staging.path().join(side);
            std::fs::create_dir(&dir).map_err(|e| PkiError::io(&dir, e))?;
            let key = root.root.key.serialize_pem();
            let cert = root.cert_pem();
            for (name, contents, access) in [
                (ROOT_KEY_FILE, &key, Access::Private),
                (ROOT_CERT_FILE, &cert, Access::Shared),
            ] {
                files::write_new(&dir.join(name), contents.as_bytes(), access)
                    .map_err(|e| PkiError::io(dir.join(name), e))?;
            }
            files::sync_dir(&dir).map_err(|e| PkiError::io(&dir, e))?;
        }
        for (cluster, i) in &rotation.old_intermediates {
            let dir = staging.path().join("old").join(cluster);
            std::fs::create_dir(&dir).map_err(|e| PkiError::io(&dir, e))?;
            for (name, contents, access) in intermediate_files(i) {
                files::write_new(&dir.join(name), contents.as_bytes(), access)
                    .map_err(|e| PkiError::io(dir.join(name), e))?;
            }
            files::sync_dir(&dir).map_err(|e| PkiError::io(&dir, e))?;
        }
        files::sync_dir(staging.path()).map_err(|e| PkiError::io(staging.path(), e))?;
        set_folder_mode(staging.path())?;
        let target = self.rotation_dir();
        std::fs::rename(staging.path(), &target).map_err(|e| PkiError::io(&target, e))?;
        let _ = staging.keep();
        files::sync_dir(&self.dir).map_err(|e| PkiError::io(&self.dir, e))
    }
}

fn cert_summary(pem: &str) -> Option<CertInfo> {
    let der = pem_certs(pem, CA_CERT_FILE).ok()?.swap_remove(0);
    info_of_der(&der, CA_CERT_FILE, OffsetDateTime::now_utc()).ok()
}

fn bundle_files(b: &ClusterBundle) -> [(&'static str, &str, Access); 4] {
    [
        (CA_KEY_FILE, b.ca_key_pem.as_str(), Access::Private),
        (CA_CERT_FILE, b.ca_cert_pem.as_str(), Access::Shared),
        (CERT_CHAIN_FILE, b.cert_chain_pem.as_str(), Access::Shared),
        (ROOT_CERT_FILE, b.root_cert_pem.as_str(), Access::Shared),
    ]
}

fn intermediate_files(i: &Intermediate) -> [(&'static str, &str, Access); 3] {
    [
        (CA_KEY_FILE, i.key_pem.as_str(), Access::Private),
        (CA_CERT_FILE, i.cert_pem.as_str(), Access::Shared),
        (CERT_CHAIN_FILE, i.chain_pem.as_str(), Access::Shared),
    ]
}

fn read_bundle_in(dir: &Path, cluster: &str) -> Result<ClusterBundle, PkiError> {
    Ok(ClusterBundle {
        cluster: cluster.to_string(),
        ca_cert_pem: read_text(&dir.join(CA_CERT_FILE))?,
        ca_key_pem: read_text(&dir.join(CA_KEY_FILE))?,
        root_cert_pem: read_text(&dir.join(ROOT_CERT_FILE))?,
        cert_chain_pem: read_text(&dir.join(CERT_CHAIN_FILE))?,
    })
}

fn read_root_in(dir: &Path) -> Result<RotationRoot, PkiError> {
    let cert_path = dir.join(ROOT_CERT_FILE);
    let key_path = dir.join(ROOT_KEY_FILE);
    let cert_label = cert_path.display().to_string();
    let key_label = key_path.display().to_string();
    let der = pem_certs(&read_text(&cert_path)?, &cert_label)?.swap_remove(0);
    let loaded = load_private_key(&read_text(&key_path)?, &key_label)?;
    let parsed = parse_der(&der, &cert_label)?;
    if loaded.key.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
        return Err(PkiError::KeyMismatch {
            key_file: key_label,
            cert_file: cert_label,
        });
    }
    let org = super::inspect::organization(&parsed);
    let not_after = parsed.validity().not_after.to_datetime();
    drop(parsed);
    let root = Root {
        cert_pem: super::store::der_to_pem(&der),
        der,
        key: loaded.key,
        not_after,
        org,
    };
    RotationRoot::from_root(root, &cert_label)
}

fn read_intermediates(dir: &Path) -> Result<BTreeMap<String, Intermediate>, PkiError> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| PkiError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PkiError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_dir() || name.starts_with(files::TEMP_PREFIX) {
            continue;
        }
        out.insert(
            name,
            Intermediate {
                cert_pem: read_text(&path.join(CA_CERT_FILE))?,
                key_pem: read_text(&path.join(CA_KEY_FILE))?,
                chain_pem: read_text(&path.join(CERT_CHAIN_FILE))?,
            },
        );
    }
    Ok(out)
}

/// Writes a folder that appears whole or not at all: staged beside it (in `parent`, the same
/// file system), fsynced, renamed into place.
fn write_dir_staged(
    parent: &Path,
    target: &Path,
    contents: &[(&str, &str, Access)],
) -> Result<(), PkiError> {
    std::fs::create_dir_all(parent).map_err(|e| PkiError::io(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(files::TEMP_PREFIX)
        .tempdir_in(parent)
        .map_err(|e| PkiError::io(parent, e))?;
    for (name, text, access) in contents {
        files::write_new(&staging.path().join(name), text.as_bytes(), *access)
            .map_err(|e| PkiError::io(target.join(name), e))?;
    }
    files::sync_dir(staging.path()).map_err(|e| PkiError::io(staging.path(), e))?;
    set_folder_mode(staging.path())?;
    std::fs::rename(staging.path(), target).map_err(|e| PkiError::io(target, e))?;
    let _ = staging.keep();
    files::sync_dir(parent).map_err(|e| PkiError::io(parent, e))
}

/// A staged folder is created 0700; it ends up as readable as one made with mkdir (keys
/// inside stay 0600).
fn set_folder_mode(path: &Path) -> Result<(), PkiError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| PkiError::io(path, e))?;
    }
    Ok(())
}

fn write_if_changed(path: &Path, contents: &str, access: Access) -> Result<(), PkiError> {
    if std::fs::read_to_string(path).is_ok_and(|c| c == contents) {
        return Ok(());
    }
    write_file(path, contents, access)
}

/// `20260102T030405Z`.
fn compact(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The history name of a kept bundle: its certificate's start of validity and serial prefix.
fn current_stamp(bundle: &ClusterBundle) -> String {
    match cert_summary(&bundle.ca_cert_pem) {
        Some(info) => format!(
            "{}-{}",
            compact(info.not_before),
            info.serial
                .replace(':', "")
                .chars()
                .take(8)
                .collect::<String>()
        ),
        None => compact(OffsetDateTime::now_utc()),
    }
}

fn history_stamp(previous_dir: &Path) -> String {
    match read_text(&previous_dir.join(CA_CERT_FILE))
        .ok()
        .and_then(|pem| cert_summary(&pem))
    {
        Some(info) => format!(
            "{}-{}",
            compact(info.not_before),
            info.serial
                .replace(':', "")
                .chars()
                .take(8)
                .collect::<String>()
        ),
        None => compact(OffsetDateTime::now_utc()),
    }
}

/// `parent/name`, or `parent/name-2`, `-3`... when taken.
fn unique(parent: &Path, name: &str) -> PathBuf {
    let first = parent.join(name);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| parent.join(format!("{name}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}
