//! Cross-cluster checks: does every cluster of a mesh file hold what a working multicluster
//! mesh needs (DESIGN §4 phase 9)? Read-only: verify never writes.
//!
//! Two halves: [`facts`] gathers what the clusters hold (reads only, through the
//! [`ClusterOps`] door), and [`checks`] judges those facts without I/O, one small pure function
//! per check. One [`Finding`] per check and object; the CLI prints them one per line or as
//! JSON, from the same [`VerifyReport`].

pub mod cacerts;
mod checks;
mod facts;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cluster::{ClusterOps, Connector, KubeConnector, RetryPolicy};
use crate::spec::MeshSpec;

/// How bad a finding is.
///
/// ```
/// use mesh_core::verify::Severity;
/// assert!(Severity::Error > Severity::Warning);
/// assert_eq!(serde_json::to_string(&Severity::Ok).unwrap(), "\"ok\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check passed.
    Ok,
    /// Works, but deserves attention.
    Warning,
    /// The mesh will not work as configured; verify exits non-zero.
    Error,
}

impl Severity {
    /// `ok`, `warning` or `error`.
    ///
    /// ```
    /// assert_eq!(mesh_core::verify::Severity::Warning.as_str(), "warning");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What was checked.
///
/// ```
/// use mesh_core::verify::Check;
/// assert_eq!(Check::RemoteSecret.as_str(), "remote-secret");
/// // Text and JSON output name checks alike.
/// let json = serde_json::to_value(Check::EastWestGateway).unwrap();
/// assert_eq!(json, Check::EastWestGateway.as_str());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The cluster's API server answered with the kubeconfig's credentials.
    Reachable,
    /// `cacerts` is complete, verifies, and its intermediate names this cluster.
    Cacerts,
    /// Every cluster's `cacerts` chains to the same root.
    Root,
    /// The istio namespace carries the cluster's network label.
    Network,
    /// An expected remote secret is present and usable.
    RemoteSecret,
    /// The remote secret's token is accepted by its source cluster.
    Token,
    /// When the remote secret's token expires (bound tokens, `readerToken`).
    TokenExpiry,
    /// A remote secret that should not be there.
    UnexpectedSecret,
    /// The east-west gateway Service has an external address.
    #[serde(rename = "eastwest-gateway")]
    EastWestGateway,
    /// A root rotation is under way: the phase of every cluster.
    Rotation,
}

impl Check {
    /// The kebab-case name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Reachable => "reachable",
            Check::Cacerts => "cacerts",
            Check::Root => "root",
            Check::Network => "network",
            Check::RemoteSecret => "remote-secret",
            Check::Token => "token",
            Check::TokenExpiry => "token-expiry",
            Check::UnexpectedSecret => "unexpected-secret",
            Check::EastWestGateway => "eastwest-gateway",
            Check::Rotation => "rotation",
        }
    }
}

/// One line of the report. Never carries key material or tokens.
///
/// ```
/// use mesh_core::verify::{Check, Finding, Severity};
/// let f = Finding { severity: Severity::Error, cluster: Some("eu".into()), check: Check::Network,
///     message: "label missing".into(), hint: None };
/// assert_eq!(f.to_string(), "error    eu  network: label missing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// The cluster it is about; `None` for mesh-wide findings.
    pub cluster: Option<String>,
    /// What was checked.
    pub check: Check,
    /// What was found.
    pub message: String,
    /// What to do about it, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<8} {}  {}: {}",
            self.severity.as_str(),
            self.cluster.as_deref().unwrap_or("*"),
            self.check.as_str(),
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Everything verify found, in spec order.
///
/// ```
/// use mesh_core::verify::VerifyReport;
/// let report = VerifyReport::default();
/// assert!(report.is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Every finding.
    pub findings: Vec<Finding>,
    /// How many findings are errors.
    pub errors: usize,
    /// How many are warnings.
    pub warnings: usize,
}

impl VerifyReport {
    /// True when no finding is an error.
    pub fn is_ok(&self) -> bool {
        self.errors == 0
    }

    fn push(&mut self, finding: Finding) {
        match finding.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Ok => {}
        }
        self.findings.push(finding);
    }
}

/// Options of [`verify_mesh`].
///
/// ```
/// use mesh_core::verify::VerifyOptions;
/// assert!(!VerifyOptions::default().allow_loopback);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Accept remote secrets whose server is a loopback address (local test clusters).
    pub allow_loopback: bool,
    /// Try each remote secret's token against its source cluster.
    pub check_tokens: bool,
    /// How many clusters (and token checks) are worked on at once, and requests in flight
    /// across the fleet.
    pub concurrency: usize,
    /// Requests in flight to any one API server.
    pub cluster_concurrency: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            allow_loopback: false,
            check_tokens: true,
            concurrency: 16,
            cluster_concurrency: crate::cluster::DEFAULT_PER_CLUSTER,
        }
    }
}

/// Connects to every cluster of `spec` and checks it; see [`verify_clusters`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mesh_core::{spec::MeshSpec, verify::{verify_mesh, VerifyOptions}};
/// let spec = MeshSpec::from_file("mesh.yaml")?;
/// let report = verify_mesh(&spec, &VerifyOptions::default()).await;
/// for finding in &report.findings { println!("{finding}"); }
/// # Ok(()) }
/// ```
pub async fn verify_mesh(spec: &MeshSpec, options: &VerifyOptions) -> VerifyReport {
    let limits = crate::cluster::Limits::new(options.cluster_concurrency, options.concurrency);
    let connected = crate::execute::connect_with(spec, &KubeConnector::within(limits)).await;
    let mut clients = BTreeMap::new();
    let mut connect_errors = BTreeMap::new();
    for (name, client) in connected {
        match client {
            Ok(client) => {
                clients.insert(name, client);
            }
            Err(err) => {
                connect_errors.insert(name, checks::with_causes(&err));
            }
        }
    }
    let facts = facts::gather(spec, &clients, &connect_errors, &token_connector(), options).await;
    checks::check(spec, &facts, options)
}

/// The connector of token checks: a remote secret's server may be reachable only from inside
/// the clusters, so a few attempts, not the default patience.
fn token_connector() -> KubeConnector {
    KubeConnector {
        retry: RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        },
        ..KubeConnector::default()
    }
}

/// Checks every cluster of `spec` through `clients` (clusters without a client are reported
/// as unreachable): `cacerts` verify and chain to one root, each intermediate's `L=` is its
/// cluster, the network label matches, every expected remote secret exists exactly where it
/// should, is labelled, keyed by the right cluster, points at a non-loopback https server and
/// carries a token the source cluster accepts, no cluster holds a remote secret for itself,
/// and east-west gateways have an external address. Tokens are tried with real API clients;
/// see [`verify_with`] to dial them through another [`Connector`].
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec, clients: std::collections::BTreeMap<String, mesh_core::cluster::ClusterClient>) {
/// use mesh_core::verify::{verify_clusters, VerifyOptions};
/// let report = verify_clusters(&spec, &clients, &VerifyOptions::default()).await;
/// std::process::exit(if report.is_ok() { 0 } else { 1 });
/// # }
/// ```
pub async fn verify_clusters<C: ClusterOps>(
    spec: &MeshSpec,
    clients: &BTreeMap<String, C>,
    options: &VerifyOptions,
) -> VerifyReport {
    verify_with(spec, clients, &token_connector(), options).await
}

/// [`verify_clusters`] with the token checks dialled through `connector`: it is given each
/// remote secret's embedded kubeconfig, as istiod would use it.
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec, clients: std::collections::BTreeMap<String, mesh_core::cluster::ClusterClient>) {
/// use mesh_core::cluster::{KubeConnector, RetryPolicy};
/// use mesh_core::verify::{verify_with, VerifyOptions};
/// let once = KubeConnector { retry: RetryPolicy::none(), ..KubeConnector::default() };
/// let report = verify_with(&spec, &clients, &once, &VerifyOptions::default()).await;
/// # }
/// ```
pub async fn verify_with<C: ClusterOps, K: Connector>(
    spec: &MeshSpec,
    clients: &BTreeMap<String, C>,
    connector: &K,
    options: &VerifyOptions,
) -> VerifyReport {
    let facts = facts::gather(spec, clients, &BTreeMap::new(), connector, options).await;
    checks::check(spec, &facts, options)
}
