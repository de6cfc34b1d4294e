//! Runs a [`Plan`](crate::plan::Plan) against the clusters: what `meshboot apply` does.
//!
//! [`apply_mesh`] is the whole job, in DESIGN §4's order:
//!
//! 1. **preflight**: with `controlPlane.install: helm`, the `helm` binary (found and new
//!    enough) and the charts of a `chartDir`; then on every cluster, reads only: reachable,
//!    authenticated, existing `cacerts` (a different root is a conflict that stops everything),
//!    what of Istio is there and how it was installed, which reader identity the cluster gets
//!    ([`Detected`]); the server written into remote secrets must not be loopback unless allowed;
//! 2. **ca**, local: root and intermediates ([`CaDir`](crate::pki::CaDir));
//! 3. render and plan; then access reviews for every kind the plan writes, still before the
//!    first write;
//! 4. namespace, then cacerts, each on every cluster before the next, clusters in parallel
//!    (at most [`ExecuteOptions::cluster_concurrency`] requests in flight to one API server,
//!    [`ExecuteOptions::concurrency`] in all);
//! 5. side by side: the control plane and gateways of each cluster (Istio's charts with
//!    `install: helm`: base, istiod until ready, the east-west gateway until it has an
//!    external address, then the exposure; a remote's istiod after its primary's gateway), and
//!    the readers with the remote secrets as a pipeline: the pairs of a source start as soon as
//!    its reader token is there.
//!
//! A step waits only for what it needs: a failure stops only the steps
//! that depend on it, on its cluster and in the pairs it is the source or destination of; a
//! gateway without a load-balancer address fails the gateway steps only. Progress is a stream of [`Event`]s; the result is a
//! [`Report`], serialisable as the `-o json` output.
//!
//! The executor works through the [`ClusterOps`] trait, implemented by
//! [`ClusterClient`](crate::cluster::ClusterClient), so [`apply_with`] runs the same code
//! against any implementation (the tests run it against the API-server emulator).

mod ca;
mod detect;
mod listed;
mod preflight;
mod report;
mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use serde_json::Value;

use crate::cluster::{ClusterClient, ClusterError, Connector, KubeConnector, Limits, TokenData};
use crate::helm::{Helm, HelmError};
use crate::pki::PkiError;
use crate::plan::{Plan, PlanError};
use crate::remote_secret::{RemoteSecret, RemoteSecretError, SecretType};
use crate::render::{RenderError, RenderOptions};
use crate::spec::{Install, MeshSpec};

pub use crate::cluster::ClusterOps;
pub use ca::prepare_mesh_ca;
pub use detect::{Detected, ReaderChoice};
pub use report::{
    CaReport, ClusterReport, ClusterStatus, Event, Notice, Outcome, Problem, Removal, Report,
    StepReport, Totals,
};
pub use run::HELM_IN_FLIGHT;

use preflight::Preflight;

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
/// assert_eq!(opts.concurrency, mesh_core::cluster::DEFAULT_GLOBAL);
/// assert_eq!(opts.limits().per_cluster(), mesh_core::cluster::DEFAULT_PER_CLUSTER);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteOptions {
    /// Read and compare only: nothing is written to any cluster or to the CA directory.
    pub dry_run: bool,
    /// Requests in flight across the whole fleet (sockets, memory), and steps worked on at
    /// once ([`Limits::global`](crate::cluster::Limits::global)).
    pub concurrency: usize,
    /// Requests in flight to any one API server
    /// ([`Limits::per_cluster`](crate::cluster::Limits::per_cluster)); a server that answers
    /// 429 gets fewer, for a while.
    pub cluster_concurrency: usize,
    /// Continue without the clusters that cannot be reached at preflight (their steps are
    /// skipped and reported) instead of stopping.
    pub skip_unreachable: bool,
    /// Accept a loopback API server address in remote secrets (local test clusters).
    pub allow_loopback: bool,
    /// Server-side apply with `force`: take over fields another field manager owns.
    pub force: bool,
    /// The bound of each wait: a gateway's external address, a reader token, a Helm
    /// release's `--wait` (istiod available).
    pub timeout: Duration,
    /// The `helm` binary for `controlPlane.install: helm` (`None`: `helm` on `PATH`).
    pub helm: Option<PathBuf>,
    /// Run only this part of the plan ([`Plan::only`]): `apply --only secrets`.
    pub only: Option<crate::plan::Only>,
    /// Remove what meshboot made for clusters no longer in the mesh file (their remote
    /// secrets, and with bound tokens the objects their tokens are bound to) in every cluster
    /// of the mesh; without it they are reported as notices.
    pub prune: bool,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            dry_run: false,
            concurrency: crate::cluster::DEFAULT_GLOBAL,
            cluster_concurrency: crate::cluster::DEFAULT_PER_CLUSTER,
            skip_unreachable: false,
            allow_loopback: false,
            force: false,
            timeout: Duration::from_secs(120),
            helm: None,
            only: None,
            prune: false,
        }
    }
}

impl ExecuteOptions {
    /// The request bounds of the clients a run connects: [`Self::cluster_concurrency`] per
    /// API server, [`Self::concurrency`] in all.
    ///
    /// ```
    /// use mesh_core::execute::ExecuteOptions;
    /// let opts = ExecuteOptions { concurrency: 100, cluster_concurrency: 5, ..ExecuteOptions::default() };
    /// assert_eq!((opts.limits().per_cluster(), opts.limits().global()), (5, 100));
    /// ```
    pub fn limits(&self) -> Limits {
        Limits::new(self.cluster_concurrency, self.concurrency)
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
    /// `controlPlane.install: helm`, and `helm` is missing, too old, or a chart of the
    /// `chartDir` is not there: found before anything is read from or written to a cluster.
    #[error(transparent)]
    Helm(#[from] HelmError),
    /// A cluster's intermediate in the CA directory is expired, broken or from another root:
    /// apply never replaces one (not even with `--force`); rotation does.
    #[error(
        "cluster {cluster}: {}: its intermediate {reason}; apply never replaces an intermediate (not even with --force, which only takes over fields other tools own): issue a new one with `meshboot rotate intermediate --cluster {cluster}` (the old one is kept for rollback)",
        file.display()
    )]
    IntermediateNeedsRotation {
        /// The cluster.
        cluster: String,
        /// The file that is stale.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Connects to every cluster of the mesh file (kubeconfig + context), a few at a time. A
/// cluster that cannot be connected keeps its error, which preflight reports.
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
    connect_with(spec, &KubeConnector::default()).await
}

/// [`connect`] through any [`Connector`].
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec) {
/// use mesh_core::cluster::{KubeConnector, RetryPolicy};
/// let impatient = KubeConnector { retry: RetryPolicy::none(), ..KubeConnector::default() };
/// let clients = mesh_core::execute::connect_with(&spec, &impatient).await;
/// # }
/// ```
pub async fn connect_with<K: Connector>(
    spec: &MeshSpec,
    connector: &K,
) -> Vec<(String, Result<K::Client, ClusterError>)> {
    // A kubeconfig file is parsed once for all of its contexts (`cluster::kubeconfig`); each
    // client then holds its own context's entries only.
    stream::iter(spec.clusters.iter())
        .map(|c| async move {
            let client = match &c.credentials {
                // A Karmada Push member: the hub's credentials, never a file.
                Some(creds) => {
                    connector
                        .connect_yaml(&c.name, &creds.kubeconfig_yaml(), "", creds.source())
                        .await
                }
                None => {
                    connector
                        .connect(&c.name, c.kubeconfig.as_deref(), &c.context)
                        .await
                }
            };
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
    let clients = connect_with(spec, &KubeConnector::within(options.limits())).await;
    apply_with(spec, clients, options, on_event).await
}

/// [`apply_mesh`] with the clients given: one entry per cluster of the mesh file, or its
/// connection error. Any [`ClusterOps`] implementation works.
///
/// The stages, each a function `rotate` reuses: probe every cluster (reads only) → prepare the
/// CA → render and plan → check permissions (still no write) → run the plan → report.
pub async fn apply_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    options: &ExecuteOptions,
    on_event: EventSink<'_>,
) -> Result<Report, ExecuteError> {
    let helm = locate_helm(spec, options).await?;
    let mut preflight = Preflight::probe(spec, clients, options, ca::local_root(spec)?).await;
    preflight.announce(spec, on_event);
    if let Some(stopped) = preflight.stopped(spec, options, None) {
        return Ok(stopped);
    }
    let (bundles, ca_report) = ca::prepare(spec, options.dry_run)?;
    on_event(&Event::Ca { report: &ca_report });
    let mut expiring = ca::expiry_notices(&bundles);
    for notice in &expiring {
        on_event(&Event::Notice { notice });
    }
    let mut plan = plan_mesh(spec, &bundles, &preflight.render_options(spec))?;
    drop(bundles);
    if let Some(only) = options.only {
        plan = plan.only(only);
    }
    // Mid-rotation the live cacerts carries annotations (and maybe more roots) to keep.
    let kept = crate::rotate::annotations::carry_into_plan(&mut plan, &preflight.live_cacerts());
    for notice in &kept {
        on_event(&Event::Notice { notice });
    }
    on_event(&Event::Planned { plan: &plan });
    preflight
        .check_permissions(spec, &plan, options, on_event)
        .await;
    if let Some(stopped) = preflight.stopped(spec, options, Some(&ca_report)) {
        return Ok(stopped);
    }
    let (runner, verdicts) = preflight.into_runner(spec, &plan, options, helm, on_event);
    let mut run = runner.run().await;
    for stale in std::mem::take(&mut run.stale) {
        run.notices.push(Notice {
            cluster: stale.cluster.clone(),
            message: stale.warning(),
            hint: Some("meshboot apply -f mesh.yaml --prune".into()),
        });
    }
    run.notices.extend(kept);
    run.notices.append(&mut expiring);
    Ok(report::finished(spec, options, &verdicts, ca_report, run))
}

/// With `controlPlane.install: helm`: the `helm` binary, checked, and every chart a cluster
/// installs present in a `chartDir`; before any cluster is read.
async fn locate_helm(
    spec: &MeshSpec,
    options: &ExecuteOptions,
) -> Result<Option<Helm>, ExecuteError> {
    if spec.control_plane.install != Install::Helm {
        return Ok(None);
    }
    let helm = Helm::locate(options.helm.as_deref()).await?;
    let charts: BTreeSet<&str> = match spec.dataplane {
        crate::spec::Dataplane::Sidecar => ["base", "istiod", "gateway"].into(),
        crate::spec::Dataplane::Ambient => ["base", "istiod", "cni", "ztunnel"].into(),
    };
    crate::helm::check_sources(spec, &charts.into_iter().collect::<Vec<_>>())?;
    Ok(Some(helm))
}

/// Runs a plan built elsewhere (rotation's `cacerts` steps) through the same runner, events
/// and report as [`apply_with`]: `clients` are the clusters it may write, `excluded` the ones
/// whose steps are skipped, with why; `ca` says what happened in the CA directory.
pub(crate) async fn run_plan<C: ClusterOps>(
    spec: &MeshSpec,
    plan: &Plan,
    clients: BTreeMap<String, C>,
    excluded: BTreeMap<String, String>,
    options: &ExecuteOptions,
    ca: CaReport,
    on_event: EventSink<'_>,
) -> Report {
    let context = PairContext::default();
    run_plan_with(
        spec, plan, clients, excluded, context, options, ca, on_event,
    )
    .await
}

/// What a plan of remote-secret pairs built outside `apply` (`rotate tokens`, `revoke`) needs
/// beyond the clients, which `apply`'s preflight would otherwise have found.
#[derive(Debug, Clone, Default)]
pub(crate) struct PairContext {
    /// The server written into each source's remote secrets.
    pub servers: BTreeMap<String, String>,
    /// The istiod image of each destination (for the client-swap caveat).
    pub istiod_images: BTreeMap<String, String>,
    /// Replace bound tokens expiring within this instead of `readerToken.refreshBefore`.
    pub refresh_within: Option<Duration>,
}

/// [`run_plan`] with what its remote-secret pairs need.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_plan_with<C: ClusterOps>(
    spec: &MeshSpec,
    plan: &Plan,
    clients: BTreeMap<String, C>,
    excluded: BTreeMap<String, String>,
    context: PairContext,
    options: &ExecuteOptions,
    ca: CaReport,
    on_event: EventSink<'_>,
) -> Report {
    on_event(&Event::Planned { plan });
    let clusters = run::Clusters {
        clients,
        excluded,
        servers: context.servers,
        istiod_running: BTreeSet::new(),
        helm: None,
        istiod_images: context.istiod_images,
        notices: Vec::new(),
        refresh_within: context.refresh_within,
        fresh: BTreeSet::new(),
        read: Default::default(),
        find_stale: false,
        lists: None,
    };
    let runner = run::Runner::new(spec, plan, options, clusters, on_event);
    let run = runner.run().await;
    let verdicts = preflight::Verdicts {
        blockers: BTreeMap::new(),
        detected: BTreeMap::new(),
    };
    report::finished(spec, options, &verdicts, ca, run)
}

/// Renders every cluster's objects, with what preflight chose, and builds the plan over them.
fn plan_mesh(
    spec: &MeshSpec,
    bundles: &BTreeMap<String, crate::pki::ClusterBundle>,
    render_options: &RenderOptions,
) -> Result<Plan, ExecuteError> {
    let renders = crate::render::render_mesh_with(spec, bundles, render_options)?;
    Ok(Plan::build(spec, &renders)?)
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
