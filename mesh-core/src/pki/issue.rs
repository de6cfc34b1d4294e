//! Intermediates: decide per cluster what to do (reading only), issue what is missing in
//! memory, then write. A dry run stops before the writing, so it plans the whole CA (a new or
//! brought root included) without writing or copying a single file.

use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use serde::Serialize;
use time::OffsetDateTime;

use super::import::load_brought_root;
use super::inspect::{fingerprint, locality, parse_der, pem_certs};
use super::key::{generate_keys, load_private_key};
use super::store::{Root, check_cluster_names, read_text, with_newline, write_file};
use super::verify::{ChainError, verify_bundle_at, verify_path};
use super::{
    CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, CaDir, CaOptions, ClusterBundle, PkiError,
    ROOT_CERT_FILE, par, profile,
};
use crate::files::{self, Access};

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

impl IntermediateAction {
    /// The word a report uses: the past tense, or for a dry run what would be done.
    ///
    /// ```
    /// use mesh_core::pki::IntermediateAction;
    /// assert_eq!(IntermediateAction::Created.describe(true), "would create");
    /// assert_eq!(IntermediateAction::Unchanged.describe(true), "unchanged");
    /// assert_eq!(IntermediateAction::Repaired.describe(false), "repaired");
    /// ```
    pub fn describe(self, dry_run: bool) -> &'static str {
        match (dry_run, self) {
            (_, IntermediateAction::Unchanged) => "unchanged",
            (false, IntermediateAction::Created) => "created",
            (false, IntermediateAction::Repaired) => "repaired",
            (false, IntermediateAction::Replaced) => "replaced",
            (true, IntermediateAction::Created) => "would create",
            (true, IntermediateAction::Repaired) => "would repair",
            (true, IntermediateAction::Replaced) => "would replace",
        }
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

/// What [`CaDir::prepare`] found or made for the root.
///
/// ```
/// assert_eq!(mesh_core::pki::RootAction::Imported.to_string(), "imported");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootAction {
    /// The directory had no root and none was brought: a new one was generated.
    Created,
    /// The brought root (`ca.root`) was copied into the directory.
    Imported,
    /// The directory already held the root (the brought one, if any).
    Unchanged,
}

impl RootAction {
    /// The word a report uses: the past tense, or for a dry run what would be done.
    ///
    /// ```
    /// use mesh_core::pki::RootAction;
    /// assert_eq!(RootAction::Imported.describe(true), "would import");
    /// assert_eq!(RootAction::Created.describe(false), "created");
    /// ```
    pub fn describe(self, dry_run: bool) -> &'static str {
        match (dry_run, self) {
            (_, RootAction::Unchanged) => "unchanged",
            (false, RootAction::Created) => "created",
            (false, RootAction::Imported) => "imported",
            (true, RootAction::Created) => "would create",
            (true, RootAction::Imported) => "would import",
        }
    }
}

impl std::fmt::Display for RootAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RootAction::Created => "created",
            RootAction::Imported => "imported",
            RootAction::Unchanged => "unchanged",
        })
    }
}

/// A root the caller brings, as two PEM files (a mesh file's `ca.root`).
///
/// ```
/// use std::path::Path;
/// let brought = mesh_core::pki::RootFiles { cert: Path::new("corp.pem"), key: Path::new("corp-key.pem") };
/// assert_eq!(brought.cert, Path::new("corp.pem"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootFiles<'a> {
    /// The root certificate.
    pub cert: &'a Path,
    /// Its private key.
    pub key: &'a Path,
}

/// What [`CaDir::prepare`] did, or in a dry run would do, and every cluster's bundle.
/// Deliberately not `Serialize`: the bundles hold private keys.
///
/// ```
/// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, RootAction};
/// let tmp = tempfile::tempdir().unwrap();
/// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let plan = CaDir::open(tmp.path().join("pki")).prepare(None, &opts, &["eu"], true).unwrap();
/// assert_eq!((plan.root, plan.bundles[0].cluster.as_str()), (RootAction::Created, "eu"));
/// assert!(!tmp.path().join("pki").exists()); // a dry run writes nothing
/// ```
#[derive(Debug)]
pub struct PreparedCa {
    /// True when nothing was written (the actions say what a real run would do).
    pub dry_run: bool,
    /// The root.
    pub root: RootAction,
    /// Per cluster, in the order asked for.
    pub intermediates: Vec<IntermediateStatus>,
    /// Per cluster, in the order asked for.
    pub bundles: Vec<ClusterBundle>,
}

/// What to do for one cluster, decided before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Create,
    Keep,
    Repair,
    Replace,
}

impl Plan {
    fn action(self) -> IntermediateAction {
        match self {
            Plan::Create => IntermediateAction::Created,
            Plan::Keep => IntermediateAction::Unchanged,
            Plan::Repair => IntermediateAction::Repaired,
            Plan::Replace => IntermediateAction::Replaced,
        }
    }
}

/// The root [`CaDir::issue`] signs with, and whether it still has to be written.
enum RootChoice {
    /// Already in the directory.
    OnDisk(Root),
    /// Brought by the caller and not in the directory yet.
    Brought(Root),
    /// None yet: generate one in the same parallel batch as the intermediate keys.
    Generate,
}

impl CaDir {
    /// What `render` and `apply` call, the one way a mesh's CA comes to be: the root brought
    /// in `brought` (imported; a no-op when already there, an error when the directory holds
    /// another), else the directory's, else a new one; then every cluster's intermediate,
    /// idempotently and never forcing. Returns what was done and every bundle in the order
    /// given. Every check runs before anything is written. With `dry_run` nothing is written
    /// anywhere, not even a temp file: what is missing is made in memory only.
    ///
    /// ```
    /// use mesh_core::pki::{CaDir, CaOptions, IntermediateAction, KeyAlgorithm, RootAction};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path());
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// let first = ca.prepare(None, &opts, &["eu", "us"], false).unwrap();
    /// assert_eq!(first.root, RootAction::Created);
    /// let again = ca.prepare(None, &opts, &["eu", "us"], false).unwrap();
    /// assert_eq!(again.root, RootAction::Unchanged);
    /// assert!(again.intermediates.iter().all(|s| s.action == IntermediateAction::Unchanged));
    /// assert_eq!(first.bundles, again.bundles);
    /// ```
    pub fn prepare(
        &self,
        brought: Option<RootFiles<'_>>,
        opts: &CaOptions,
        clusters: &[&str],
        dry_run: bool,
    ) -> Result<PreparedCa, PkiError> {
        opts.validate()?;
        check_cluster_names(clusters)?;
        let brought = match brought {
            Some(files) => Some(load_brought_root(files.cert, files.key)?.0),
            None => None,
        };
        let _lock = self.lock(!dry_run)?;
        let choice = match brought {
            Some(root) if self.holds_same_root(&root)? => RootChoice::OnDisk(root),
            Some(root) => RootChoice::Brought(root),
            None if self.has_root() => RootChoice::OnDisk(self.load_root()?),
            None => RootChoice::Generate,
        };
        let root = match &choice {
            RootChoice::OnDisk(_) => RootAction::Unchanged,
            RootChoice::Brought(_) => RootAction::Imported,
            RootChoice::Generate => RootAction::Created,
        };
        tracing::debug!(dir = %self.dir.display(), root = %root, dry_run, "CA root decided");
        let (intermediates, bundles) = self
            .issue(clusters, opts, false, choice, dry_run)?
            .into_iter()
            .unzip();
        Ok(PreparedCa {
            dry_run,
            root,
            intermediates,
            bundles,
        })
    }

    /// [`CaDir::prepare`] without a brought root, returning the bundles only.
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
        Ok(self.prepare(None, opts, clusters, false)?.bundles)
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
        self.ensure_intermediates_with(clusters, opts, force, false)
    }

    /// [`CaDir::ensure_intermediates`], or with `dry_run` the same decisions (and errors) with
    /// the new intermediates made in memory only: nothing is written, not even a temp file.
    ///
    /// ```
    /// use mesh_core::pki::{CaDir, CaOptions, IntermediateAction, KeyAlgorithm};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let ca = CaDir::open(tmp.path());
    /// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
    /// ca.init(&opts, false).unwrap();
    /// let planned = ca.ensure_intermediates_with(&["eu"], &opts, false, true).unwrap();
    /// assert_eq!(planned[0].action, IntermediateAction::Created);
    /// assert!(!ca.cluster_dir("eu").exists());
    /// ```
    pub fn ensure_intermediates_with(
        &self,
        clusters: &[&str],
        opts: &CaOptions,
        force: bool,
        dry_run: bool,
    ) -> Result<Vec<IntermediateStatus>, PkiError> {
        opts.validate()?;
        check_cluster_names(clusters)?;
        let _lock = self.lock(false)?;
        if !self.has_root() {
            return Err(PkiError::NoRoot {
                dir: self.dir.clone(),
            });
        }
        let root = RootChoice::OnDisk(self.load_root()?);
        let done = self.issue(clusters, opts, force, root, dry_run)?;
        Ok(done.into_iter().map(|(status, _)| status).collect())
    }

    /// Decides per cluster, generates the keys, signs, and (unless `dry_run`) writes.
    fn issue(
        &self,
        clusters: &[&str],
        opts: &CaOptions,
        force: bool,
        root: RootChoice,
        dry_run: bool,
    ) -> Result<Vec<(IntermediateStatus, ClusterBundle)>, PkiError> {
        let now = OffsetDateTime::now_utc();
        let known_root = match &root {
            RootChoice::OnDisk(r) | RootChoice::Brought(r) => Some(r),
            RootChoice::Generate => None,
        };
        // Checking an existing intermediate is a few signature checks and a key parse per
        // cluster; independent, so spread over the cores like key generation.
        let plans = par::map(clusters, |c| self.decide(c, known_root, force, now))
            .ok_or_else(|| PkiError::Crypto {
                what: "checking existing intermediates".into(),
                reason: "a worker stopped early".into(),
            })?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        for (cluster, plan) in clusters.iter().zip(&plans) {
            tracing::debug!(%cluster, decision = %plan.action(), dry_run, "intermediate decided");
        }

        let mut algs = Vec::new();
        if matches!(root, RootChoice::Generate) {
            algs.push(opts.key);
        }
        algs.extend(
            plans
                .iter()
                .filter(|p| matches!(p, Plan::Create | Plan::Replace))
                .map(|_| opts.key),
        );
        if !algs.is_empty() {
            tracing::debug!(keys = algs.len(), algorithm = %opts.key, "generating keys in parallel");
        }
        let mut keys = generate_keys(&algs)?.into_iter();

        let root = match root {
            RootChoice::OnDisk(root) => root,
            RootChoice::Brought(root) => {
                if !dry_run {
                    self.write_root(&root)?;
                    tracing::info!(dir = %self.dir.display(), "brought root CA imported");
                }
                root
            }
            RootChoice::Generate => {
                let key = keys.next().ok_or_else(|| PkiError::Crypto {
                    what: "generating the root key".into(),
                    reason: "no key was produced".into(),
                })?;
                let root = Root::generate(opts, key)?;
                if !dry_run {
                    self.write_root(&root)?;
                    tracing::info!(dir = %self.dir.display(), key = %opts.key, "root CA created");
                }
                root
            }
        };
        let org = profile::intermediate_org(root.org.as_deref(), opts);
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
        let signing = Signing {
            opts,
            org: &org,
            root: &root,
            issuer: &issuer,
            dry_run,
        };
        let results = par::map_writing(&work, |(cluster, plan, key)| {
            self.carry_out(cluster, *plan, key.as_ref(), &signing)
        })
        .ok_or_else(|| PkiError::Crypto {
            what: "writing intermediates".into(),
            reason: "a worker stopped early".into(),
        })?;
        results.into_iter().collect()
    }

    /// Carries out one cluster's plan and returns its status and bundle.
    fn carry_out(
        &self,
        cluster: &str,
        plan: Plan,
        key: Option<&KeyPair>,
        signing: &Signing<'_>,
    ) -> Result<(IntermediateStatus, ClusterBundle), PkiError> {
        let dir = self.cluster_dir(cluster);
        let bundle = match (plan, key) {
            (Plan::Keep, _) => self.bundle(cluster)?,
            (Plan::Repair, _) => self.repair(cluster, &signing.root.cert_pem, signing.dry_run)?,
            (Plan::Create | Plan::Replace, Some(key)) => {
                let cert = profile::issue_intermediate(
                    cluster,
                    signing.org,
                    signing.opts.intermediate_days,
                    signing.root.not_after,
                    key,
                    signing.issuer,
                )?;
                let ca_cert_pem = cert.pem();
                let root_cert_pem = with_newline(&signing.root.cert_pem);
                let bundle = ClusterBundle {
                    cluster: cluster.to_string(),
                    cert_chain_pem: format!("{}{root_cert_pem}", with_newline(&ca_cert_pem)),
                    ca_cert_pem,
                    ca_key_pem: key.serialize_pem(),
                    root_cert_pem,
                };
                if !signing.dry_run {
                    self.write_bundle(&dir, &bundle)?;
                }
                bundle
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
            action: plan.action(),
            dir,
        };
        Ok((status, bundle))
    }

    /// Writes a new bundle: into a fresh folder all at once, or over an existing one key first
    /// (a crash before the certificate lands leaves a mismatch that the next run reports,
    /// never a certificate without its key).
    fn write_bundle(&self, dir: &Path, bundle: &ClusterBundle) -> Result<(), PkiError> {
        let files = [
            (CA_KEY_FILE, &bundle.ca_key_pem, Access::Private),
            (CA_CERT_FILE, &bundle.ca_cert_pem, Access::Shared),
            (CERT_CHAIN_FILE, &bundle.cert_chain_pem, Access::Shared),
            (ROOT_CERT_FILE, &bundle.root_cert_pem, Access::Shared),
        ];
        if dir.exists() {
            for (name, contents, access) in files {
                write_file(&dir.join(name), contents, access)?;
            }
            Ok(())
        } else {
            self.write_bundle_dir(dir, &files)
        }
    }

    /// Writes the bundle folder's missing `cert-chain.pem` and `root-cert.pem` (unless
    /// `dry_run`) and returns the bundle as it then is.
    fn repair(
        &self,
        cluster: &str,
        root_pem: &str,
        dry_run: bool,
    ) -> Result<ClusterBundle, PkiError> {
        let dir = self.cluster_dir(cluster);
        let ca_cert_pem = read_text(&dir.join(CA_CERT_FILE))?;
        let root_cert_pem = with_newline(root_pem);
        let cert_chain_pem = format!("{}{root_cert_pem}", with_newline(&ca_cert_pem));
        let mut derived = [
            (CERT_CHAIN_FILE, cert_chain_pem),
            (ROOT_CERT_FILE, root_cert_pem),
        ];
        for (name, contents) in &mut derived {
            let path = dir.join(*name);
            if path.exists() {
                *contents = read_text(&path)?;
            } else if !dry_run {
                write_file(&path, contents, Access::Shared)?;
            }
        }
        let [(_, cert_chain_pem), (_, root_cert_pem)] = derived;
        Ok(ClusterBundle {
            cluster: cluster.to_string(),
            ca_key_pem: read_text(&dir.join(CA_KEY_FILE))?,
            ca_cert_pem,
            root_cert_pem,
            cert_chain_pem,
        })
    }

    /// Writes a new cluster folder all at once: the four files go into a private staging
    /// folder next to it, which is then renamed into place, so the bundle appears complete or
    /// not at all.
    fn write_bundle_dir(
        &self,
        dir: &Path,
        bundle_files: &[(&str, &String, Access); 4],
    ) -> Result<(), PkiError> {
        let staging = tempfile::Builder::new()
            .prefix(files::TEMP_PREFIX)
            .tempdir_in(&self.dir)
            .map_err(|e| PkiError::io(&self.dir, e))?;
        for (name, contents, access) in bundle_files {
            files::write_new(&staging.path().join(name), contents.as_bytes(), *access)
                .map_err(|e| PkiError::io(dir.join(name), e))?;
        }
        files::sync_dir(staging.path()).map_err(|e| PkiError::io(staging.path(), e))?;
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
        files::sync_dir(&self.dir).map_err(|e| PkiError::io(&self.dir, e))
    }

    /// Decides what to do for `cluster` without writing anything.
    fn decide(
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

/// What every new intermediate of one run is signed with.
struct Signing<'a> {
    opts: &'a CaOptions,
    org: &'a str,
    root: &'a Root,
    issuer: &'a Issuer<'a, &'a KeyPair>,
    dry_run: bool,
}
