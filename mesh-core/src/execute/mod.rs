//! Runs a [`Plan`](crate::plan::Plan) against the clusters: what `meshboot apply` does.
//!
//! [`apply_mesh`] is the whole job, in DESIGN §4's order:
//!
//! 1. **preflight** on every cluster, reads only: reachable, authenticated, existing `cacerts`
//!    (a different root is a conflict that stops everything) and istiod; the server written
//!    into remote secrets must not be loopback unless allowed;
//! 2. **ca**, local: root and intermediates ([`CaDir`](crate::pki::CaDir));
//! 3. render and plan; then access reviews for every kind the plan writes, still before the
//!    first write;
//! 4. namespace, cacerts and gateways, each phase on every cluster before the next, clusters in
//!    parallel (bounded by [`ExecuteOptions::concurrency`]);
//! 5. readers and remote secrets as a pipeline: the pairs of a source start as soon as its
//!    reader token is there.
//!
//! A cluster that fails only stops what depends on it: its own later steps, and the pairs it is
//! the source or destination of. Progress is a stream of [`Event`]s; the result is a
//! [`Report`], serialisable as the `-o json` output.
//!
//! The executor works through the [`ClusterOps`] trait, implemented by
//! [`ClusterClient`](crate::cluster::ClusterClient), so [`apply_with`] runs the same code
//! against any implementation (the tests use one in memory).

mod ca;
mod ops;
mod preflight;
mod report;
mod run;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use serde_json::Value;

use crate::cluster::{ClusterClient, ClusterError, TokenData};
use crate::pki::PkiError;
use crate::plan::{Plan, PlanError};
use crate::remote_secret::{RemoteSecret, RemoteSecretError, SecretType, is_loopback_server};
use crate::render::RenderError;
use crate::spec::MeshSpec;

pub use ca::prepare_mesh_ca;
pub use ops::ClusterOps;
pub use report::{
    CaReport, ClusterReport, ClusterStatus, Event, Notice, Outcome, Problem, Report, StepReport,
    Totals,
};

use preflight::{Blocker, ClusterState};
use run::Runner;

/// Receives every [`Event`] of a run, in the order they happen. It is called from the task
/// running the apply, so it should return quickly.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use mesh_core::execute::{Event, EventSink};
/// let done = AtomicUsize::new(0);
/// let count = |e: &Event<'_>| {
///     if matches!(e, Event::StepDone { .. }) {
///         done.fetch_add(1, Ordering::Relaxed);
///     }
/// };
/// let sink: EventSink<'_> = &count;
/// # let _ = sink;
/// ```
pub type EventSink<'a> = &'a (dyn Fn(&Event<'_>) + Send + Sync);

/// How to run.
///
/// ```
/// use mesh_core::execute::ExecuteOptions;
/// let opts = ExecuteOptions { dry_run: true, ..ExecuteOptions::default() };
/// assert_eq!(opts.concurrency, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteOptions {
    /// Read and compare only: nothing is written to any cluster or to the CA directory.
    pub dry_run: bool,
    /// How many operations run at once: clusters worked on in parallel in the per-cluster
    /// phases, and remote secrets being written (each is one read and at most one write).
    pub concurrency: usize,
    /// Continue without the clusters that cannot be reached at preflight (their steps are
    /// skipped and reported) instead of stopping.
    pub skip_unreachable: bool,
    /// Accept a loopback API server address in remote secrets (local test clusters).
    pub allow_loopback: bool,
    /// Server-side apply with `force`: take over fields another field manager owns.
    pub force: bool,
    /// The bound of each wait: a gateway's external address, a reader token.
    pub timeout: Duration,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            dry_run: false,
            concurrency: 64,
            skip_unreachable: false,
            allow_loopback: false,
            force: false,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Errors that stop a run before it reaches the clusters' steps. Problems found on a cluster
/// are not errors: they are in the [`Report`].
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec) {
/// use mesh_core::execute::{ExecuteError, ExecuteOptions, apply_mesh};
/// match apply_mesh(&spec, &ExecuteOptions::default(), &|_| {}).await {
///     Ok(report) => println!("succeeded: {}", report.succeeded),
///     Err(ExecuteError::Pki(e)) => eprintln!("the CA directory needs attention: {e}"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The local CA could not be created, read or imported.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Rendering a cluster's objects failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The rendered objects do not make a consistent plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The root certificate the mesh uses could not be read for the preflight comparison.
    #[error("cannot read the mesh root certificate {}: {source}", path.display())]
    ReadRoot {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A dry run could not make its scratch directory for a not-yet-existing CA.
    #[error("cannot create a scratch directory for the dry-run CA: {0}")]
    Scratch(#[source] std::io::Error),
}

/// Connects to every cluster of the mesh file (kubeconfig + context), in parallel. A cluster
/// that cannot be connected keeps its error, which preflight reports.
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec) {
/// let clients = mesh_core::execute::connect(&spec).await;
/// for (name, client) in &clients {
///     println!("{name}: {}", if client.is_ok() { "connected" } else { "failed" });
/// }
/// # }
/// ```
pub async fn connect(spec: &MeshSpec) -> Vec<(String, Result<ClusterClient, ClusterError>)> {
    // Connecting reads and parses the whole kubeconfig for each cluster (all contexts, CA data
    // included); a few at a time keeps a 100-cluster kubeconfig from being held 100 times.
    stream::iter(spec.clusters.iter())
        .map(|c| async move {
            let client = ClusterClient::connect(&c.name, c.kubeconfig.as_deref(), &c.context).await;
            (c.name.clone(), client)
        })
        .buffered(CONNECTS_IN_FLIGHT)
        .collect()
        .await
}

/// Clusters connected at once.
const CONNECTS_IN_FLIGHT: usize = 4;

/// Brings every cluster of the mesh file to the desired state: connect, preflight, CA,
/// render, plan, execute. `on_event` sees progress as it happens.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mesh_core::execute::{apply_mesh, Event, ExecuteOptions};
/// use mesh_core::spec::MeshSpec;
///
/// let spec = MeshSpec::from_file("mesh.yaml")?;
/// let print = |event: &Event<'_>| {
///     if let Event::StepDone { step, outcome, .. } = event {
///         println!("{} {} {}", step.cluster, step.object, outcome);
///     }
/// };
/// let report = apply_mesh(&spec, &ExecuteOptions::default(), &print).await?;
/// println!("{} objects written", report.totals.written());
/// # Ok(()) }
/// ```
pub async fn apply_mesh(
    spec: &MeshSpec,
    options: &ExecuteOptions,
    on_event: EventSink<'_>,
) -> Result<Report, ExecuteError> {
    let clients = connect(spec).await;
    apply_with(spec, clients, options, on_event).await
}

/// [`apply_mesh`] with the clients given: one entry per cluster of the mesh file, or its
/// connection error. Any [`ClusterOps`] implementation works.
pub async fn apply_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    options: &ExecuteOptions,
    on_event: EventSink<'_>,
) -> Result<Report, ExecuteError> {
    let concurrency = options.concurrency.max(1);
    let mut clients: BTreeMap<String, Result<C, ClusterError>> = clients.into_iter().collect();

    // Preflight, first pass: read every cluster before anything is written anywhere.
    let local_root = ca::local_root(spec)?;
    let namespace = spec.istio_namespace.as_str();
    let probes: Vec<(String, Result<ClusterState, Blocker>)> = stream::iter(spec.clusters.iter())
        .map(|cluster| {
            let client = clients.get(&cluster.name);
            async move {
                let state = match client {
                    Some(Ok(client)) => preflight::probe(client, namespace).await,
                    Some(Err(err)) => Err(Blocker::from(err)),
                    None => Err(Blocker::new(
                        Problem::Other,
                        format!("cluster {}: no client was given for it", cluster.name),
                    )),
                };
                (cluster.name.clone(), state)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut probes: BTreeMap<String, Result<ClusterState, Blocker>> = probes.into_iter().collect();
    let sources: BTreeSet<String> = spec
        .remote_secret_pairs()
        .into_iter()
        .map(|(src, _)| src)
        .collect();
    let mut servers = BTreeMap::new();
    for cluster in &spec.clusters {
        let Some(Ok(state)) = probes.get(&cluster.name) else {
            continue;
        };
        let mut problem = state
            .cacerts
            .as_ref()
            .and_then(|secret| {
                preflight::cacerts_conflict(&cluster.name, secret, local_root.as_ref())
            })
            .map(|message| Blocker::new(Problem::CacertsConflict, message));
        if let Some(Ok(client)) = clients.get(&cluster.name) {
            let server = cluster
                .api_server
                .clone()
                .unwrap_or_else(|| client.server().to_string());
            if problem.is_none()
                && sources.contains(&cluster.name)
                && !options.allow_loopback
                && is_loopback_server(&server)
            {
                problem = Some(Blocker::new(
                    Problem::LoopbackServer,
                    format!(
                        "cluster {}: the API server other clusters would use is {server}, a \
                         loopback address they cannot reach; set clusters[].apiServer for {} \
                         in the mesh file (or pass --allow-loopback for local test clusters)",
                        cluster.name, cluster.name
                    ),
                ));
            }
            servers.insert(cluster.name.clone(), server);
        }
        if let Some(blocker) = problem {
            probes.insert(cluster.name.clone(), Err(blocker));
        }
    }
    for cluster in &spec.clusters {
        if let Some(result) = probes.get(&cluster.name) {
            let (error, problem) = match result {
                Ok(_) => (None, None),
                Err(b) => (Some(b.message.as_str()), Some(b.problem)),
            };
            on_event(&Event::Preflight {
                cluster: &cluster.name,
                error,
                problem,
            });
        }
    }
    let stops: Vec<&str> = spec
        .clusters
        .iter()
        .filter(|c| match probes.get(&c.name) {
            Some(Err(blocker)) => !(blocker.is_skippable() && options.skip_unreachable),
            _ => false,
        })
        .map(|c| c.name.as_str())
        .collect();
    if !stops.is_empty() {
        return Ok(stopped_report(spec, options, &probes, None, &stops));
    }

    // The CA, the objects and the plan.
    let (bundles, ca_report) = ca::prepare(spec, options.dry_run)?;
    on_event(&Event::Ca { report: &ca_report });
    let renders = crate::render::render_mesh(spec, &bundles)?;
    drop(bundles);
    let plan = Plan::build(spec, &renders)?;
    drop(renders);
    on_event(&Event::Planned { plan: &plan });

    // Preflight, second pass: may we write what the plan writes?
    let mut usable: BTreeMap<String, C> = BTreeMap::new();
    let mut excluded = BTreeMap::new();
    let mut istiod_running = BTreeSet::new();
    for cluster in &spec.clusters {
        match (probes.get(&cluster.name), clients.remove(&cluster.name)) {
            (Some(Ok(state)), Some(Ok(client))) => {
                if state.istiod {
                    istiod_running.insert(cluster.name.clone());
                }
                usable.insert(cluster.name.clone(), client);
            }
            (Some(Err(blocker)), _) => {
                excluded.insert(cluster.name.clone(), blocker.message.clone());
            }
            _ => {
                excluded.insert(cluster.name.clone(), "not connected".to_string());
            }
        }
    }
    let permission_checks: Vec<(String, Result<Vec<String>, ClusterError>)> =
        stream::iter(usable.iter())
            .map(|(name, client)| {
                let plan = &plan;
                async move {
                    (
                        name.clone(),
                        preflight::check_permissions(client, plan).await,
                    )
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let mut denied_clusters = Vec::new();
    for (name, answer) in permission_checks {
        let blocker = match answer {
            Ok(denied) if denied.is_empty() => continue,
            Ok(denied) => Blocker::new(
                Problem::Forbidden,
                format!(
                    "cluster {name}: the credentials of context {} may not {}",
                    spec.cluster(&name)
                        .map(|c| c.context.as_str())
                        .unwrap_or(&name),
                    denied.join(", ")
                ),
            ),
            Err(err) => Blocker::from(err),
        };
        on_event(&Event::Preflight {
            cluster: &name,
            error: Some(&blocker.message),
            problem: Some(blocker.problem),
        });
        probes.insert(name.clone(), Err(blocker));
        denied_clusters.push(name);
    }
    if !denied_clusters.is_empty() {
        let names: Vec<&str> = spec
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| denied_clusters.iter().any(|d| d == n))
            .collect();
        return Ok(stopped_report(
            spec,
            options,
            &probes,
            Some(ca_report),
            &names,
        ));
    }

    let runner = Runner {
        spec,
        plan: &plan,
        options,
        clients: usable,
        excluded,
        servers,
        istiod_running,
        on_event,
        state: Mutex::new(Default::default()),
    };
    runner.run().await;

    let mut per_cluster: BTreeMap<String, Vec<StepReport>> = BTreeMap::new();
    for (cluster, step) in runner.step_reports() {
        per_cluster.entry(cluster).or_default().push(step);
    }
    let notices = runner
        .state
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .notices;
    let mut totals = Totals::default();
    let clusters: Vec<ClusterReport> = spec
        .clusters
        .iter()
        .map(|c| {
            let steps = per_cluster.remove(&c.name).unwrap_or_default();
            let mut cluster_totals = Totals::default();
            for step in &steps {
                cluster_totals.add(step.outcome);
            }
            totals.merge(&cluster_totals);
            let (status, error, problem) = match probes.get(&c.name) {
                Some(Err(blocker)) => (
                    ClusterStatus::Unreachable,
                    Some(blocker.message.clone()),
                    Some(blocker.problem),
                ),
                _ if cluster_totals.failed > 0 => (ClusterStatus::Failed, None, None),
                _ if cluster_totals.skipped > 0 => (ClusterStatus::Incomplete, None, None),
                _ => (ClusterStatus::Ok, None, None),
            };
            ClusterReport {
                cluster: c.name.clone(),
                status,
                error,
                problem,
                steps,
                totals: cluster_totals,
            }
        })
        .collect();
    let succeeded = clusters.iter().all(|c| c.status == ClusterStatus::Ok);
    Ok(Report {
        dry_run: options.dry_run,
        succeeded,
        stopped: None,
        ca: Some(ca_report),
        clusters,
        notices,
        hints: Vec::new(),
        totals,
    })
}

/// The report of a run that preflight stopped: nothing was written to any cluster.
fn stopped_report(
    spec: &MeshSpec,
    options: &ExecuteOptions,
    probes: &BTreeMap<String, Result<ClusterState, Blocker>>,
    ca: Option<CaReport>,
    stops: &[&str],
) -> Report {
    let clusters = spec
        .clusters
        .iter()
        .map(|c| {
            let (status, error, problem) = match probes.get(&c.name) {
                Some(Err(b)) if b.problem == Problem::Unreachable => (
                    ClusterStatus::Unreachable,
                    Some(b.message.clone()),
                    Some(b.problem),
                ),
                Some(Err(b)) => (
                    ClusterStatus::Failed,
                    Some(b.message.clone()),
                    Some(b.problem),
                ),
                _ => (ClusterStatus::NotAttempted, None, None),
            };
            ClusterReport {
                cluster: c.name.clone(),
                status,
                error,
                problem,
                steps: Vec::new(),
                totals: Totals::default(),
            }
        })
        .collect();
    Report {
        dry_run: options.dry_run,
        succeeded: false,
        stopped: Some(format!(
            "preflight failed on {}: nothing was written to any cluster",
            stops.join(", ")
        )),
        ca,
        clusters,
        notices: Vec::new(),
        hints: Vec::new(),
        totals: Totals::default(),
    }
}

/// The remote secret of `source`, as it is applied in another cluster: istioctl's Secret
/// (`reference/istio.md` §3.3), its kubeconfig carrying the reader token and the `ca.crt` of
/// the token Secret.
fn remote_secret_object(
    source: &str,
    namespace: &str,
    server: &str,
    token: &TokenData,
) -> Result<Value, RemoteSecretError> {
    RemoteSecret {
        cluster: source.to_string(),
        namespace: namespace.to_string(),
        secret_type: SecretType::Remote,
        server: server.to_string(),
        tls_server_name: None,
        ca_data: token.ca_crt.clone(),
        token: token.token.clone(),
    }
    .to_object()
}
