//! Certificate rotation, planned as data and run through the same executor, events and
//! [`Report`](crate::execute::Report) as `apply` (DESIGN §6, `reference/istio.md` §1.2 and §2).
//!
//! - [`rotate_intermediates_with`]: a new intermediate from the same root for the chosen
//!   clusters (or every cluster whose intermediate expires soon), or back to the previous one
//!   ([`IntermediateRequest::rollback`]); workloads keep working because their certificates
//!   still chain to the same root. The previous intermediate stays on disk
//!   (`<dir>/<cluster>/previous/`), and the report says what istiod will do, from the istiod
//!   version read from the cluster.
//! - [`rotate_root_with`]: the gated three-phase root rotation over every cluster of the mesh,
//!   as Istio's own `cacert_rotation` test does it:
//!   1. `root-cert.pem` = old root, then new root, everywhere; intermediates unchanged.
//!      Gate: every `cacerts` holds that bundle *and* istiod published it (ConfigMap
//!      `istio-ca-root-cert` in `istio-system` and every namespace that has one);
//!   2. new intermediates signed by the new root; bundle unchanged.
//!      Gate: [`RootRequest::min_phase_age`] (default 24 h, the default workload certificate
//!      TTL) since phase 2 completed everywhere;
//!   3. `root-cert.pem` = the new root only.
//!
//!   The phase is derived from the live clusters (which roots each bundle holds, which root
//!   signed each intermediate) and the CA directory (which roots those are), and the time a
//!   phase was reached is recorded on each `cacerts` as annotations ([`annotations`]), so a
//!   re-run, after a crash or from another machine with the same CA directory, continues where
//!   the last one stopped. No cluster enters a phase before every cluster completed the one
//!   before; a cluster that is down or disagrees stops the advance for all and is named.
//!   [`RootRequest::abort`] before phase 3 walks back to the old root and intermediates.
//! - [`check_expiry_with`]: every certificate of the local CA and of every cluster's live
//!   `cacerts`, and the tokens inside remote secrets, against warning and critical thresholds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use mesh_core::rotate::{IntermediateRequest, RotateOptions, rotate_intermediates};
//! use mesh_core::spec::MeshSpec;
//!
//! let spec = MeshSpec::from_file("mesh.yaml")?;
//! let request = IntermediateRequest {
//!     expiring_within: Some(Duration::from_secs(30 * 86_400)),
//!     ..IntermediateRequest::default()
//! };
//! let report = rotate_intermediates(&spec, &request, &RotateOptions::default(), &|_| {}).await?;
//! for c in &report.clusters {
//!     println!("{}: {}", c.cluster, c.action);
//! }
//! # Ok(()) }
//! ```

pub mod annotations;
mod ca_secret;
mod expiry;
mod intermediate;
mod job;
mod live;
mod root;

use std::time::Duration;

pub use ca_secret::{
    CaSecretRef, SECRET_LIMIT, ca_dir_secret, load_ca_secret, load_ca_secret_with, restore_ca_dir,
    restore_ca_dir_with, store_ca_secret,
};
pub use expiry::{
    ExpiryItem, ExpiryReport, ExpiryStatus, ExpiryThresholds, check_expiry, check_expiry_with,
    check_local, jwt_expiry,
};
pub use intermediate::{
    CertSummary, ClusterRotation, IntermediateOutcome, IntermediateReport, IntermediateRequest,
    IstiodAction, WORKLOADS_KEEP_WORKING, plan_intermediates, rotate_intermediates,
    rotate_intermediates_with,
};
pub use job::{JobCredentials, mint_job_credentials_with};
pub use live::{IstiodInfo, ROOT_CONFIGMAP};
pub(crate) use root::verify_findings;
pub use root::{
    ClusterPhase, Gate, GateStatus, NewRoot, NextStep, PlannedWrite, RootOutcome, RootPhase,
    RootReport, RootRequest, StepRun, rotate_root, rotate_root_with,
};

use crate::cluster::ClusterError;
use crate::execute::ExecuteError;
use crate::pki::PkiError;

/// How a rotation runs.
///
/// ```
/// let opts = mesh_core::rotate::RotateOptions::default();
/// assert!(!opts.dry_run);
/// assert_eq!(opts.timeout.as_secs(), 120);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateOptions {
    /// Read and decide only: nothing is written to any cluster or to the CA directory (a new
    /// root or intermediate is made in memory to show what would be written).
    pub dry_run: bool,
    /// Clusters read or written at once, and requests in flight across the fleet.
    pub concurrency: usize,
    /// Requests in flight to any one API server.
    pub cluster_concurrency: usize,
    /// How long a root rotation waits for istiod to publish the new bundle (gate 1) before it
    /// stops and says so; a later run goes on from there.
    pub timeout: Duration,
    /// How often a wait re-reads the clusters.
    pub poll: Duration,
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            dry_run: false,
            concurrency: crate::cluster::DEFAULT_GLOBAL,
            cluster_concurrency: crate::cluster::DEFAULT_PER_CLUSTER,
            timeout: Duration::from_secs(120),
            poll: Duration::from_secs(2),
        }
    }
}

impl RotateOptions {
    pub(crate) fn execute(&self) -> crate::execute::ExecuteOptions {
        crate::execute::ExecuteOptions {
            dry_run: self.dry_run,
            concurrency: self.concurrency,
            cluster_concurrency: self.cluster_concurrency,
            ..crate::execute::ExecuteOptions::default()
        }
    }

    /// The connector of a rotation's clients, within its request bounds.
    fn connector(&self) -> crate::cluster::KubeConnector {
        crate::cluster::KubeConnector::within(self.execute().limits())
    }
}

/// Errors that stop a rotation before it writes anything to a cluster. What happens on a
/// cluster is in the report, not here.
///
/// ```
/// let err = mesh_core::rotate::RotateError::NothingChosen;
/// assert!(err.to_string().contains("--cluster"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// Neither clusters nor an expiry window were given.
    #[error(
        "choose the clusters to rotate: name them with --cluster NAME, or pass --expiring-within DURATION to rotate every intermediate that expires within it"
    )]
    NothingChosen,
    /// A cluster named in the request is not in the mesh file.
    #[error("cluster {cluster:?} is not in the mesh file (clusters: {known})")]
    UnknownCluster {
        /// The name given.
        cluster: String,
        /// The mesh file's clusters.
        known: String,
    },
    /// The request combines options that do not go together.
    #[error("{0}")]
    Conflict(String),
    /// The CA directory cannot do what is asked.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Building or running the plan failed.
    #[error(transparent)]
    Execute(#[from] ExecuteError),
    /// Intermediates cannot rotate while a root rotation is under way.
    #[error(
        "a root rotation is under way ({dir}): intermediates change as part of it; finish it with `meshboot rotate root` (or undo it with `--abort`) first"
    )]
    RootRotationUnderWay {
        /// The rotation folder.
        dir: String,
    },
    /// A cluster could not be read where nothing can go on without it.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}
