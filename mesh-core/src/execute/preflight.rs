//! Preflight: everything read from the clusters before anything is written anywhere.
//!
//! Two passes, both read-only: [`Preflight::probe`] (reachable, authenticated, existing
//! `cacerts`, what of Istio is there and how it was installed ([`super::detect`]), a server
//! other clusters can reach) runs before the local CA is
//! touched, so a conflicting root stops the run with nothing written at all;
//! [`Preflight::check_permissions`] needs the plan (it asks for exactly the kinds the plan
//! writes) and runs after it, still before the first cluster write.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use futures::stream;
use serde_json::Value;

use super::detect::{Detected, Found, detect};
use super::listed::{ListJob, Lists};
use super::report::{self, CaReport, Event, Notice, Problem, Report};
use super::run::{Clusters, Runner};
use super::{EventSink, ExecuteOptions};
use crate::cluster::{ClusterError, ClusterOps, ObjectRef};
use crate::helm::Helm;
use crate::plan::Plan;
use crate::remote_secret::is_loopback_server;
use crate::render::reader::MESHBOOT_SERVICE_ACCOUNT;
use crate::render::{Needs, RenderOptions};
use crate::spec::{ClusterSpec, MeshSpec};
use crate::verify::cacerts::CacertsSecret;

/// What preflight knows of every cluster of the mesh file, pass after pass.
pub(crate) struct Preflight<C> {
    /// Per cluster: what was read, or why it cannot take part.
    probes: BTreeMap<String, Result<ClusterState, Blocker>>,
    clients: BTreeMap<String, Result<C, ClusterError>>,
    /// The server written into each cluster's remote secrets.
    servers: BTreeMap<String, String>,
    /// What the user should know before the run (an east-west gateway still to install).
    notices: Vec<Notice>,
    /// The destinations' remote secrets, listed while preflight and planning go on.
    lists: Option<Lists>,
}

/// What preflight concluded, for the report: the clusters skipped from the start and what was
/// found on each reachable one.
pub(crate) struct Verdicts {
    /// Clusters skipped from the start (unreachable, with `--skip-unreachable`).
    pub blockers: BTreeMap<String, Blocker>,
    /// What was found of Istio on each probed cluster, and the reader chosen.
    pub detected: BTreeMap<String, Detected>,
}

impl<C: ClusterOps> Preflight<C> {
    /// The first pass: reads every cluster (a few requests each, all clusters at once up to
    /// the concurrency) and judges what it read against the local root and the servers other
    /// clusters would dial.
    pub(crate) async fn probe(
        spec: &MeshSpec,
        clients: Vec<(String, Result<C, ClusterError>)>,
        options: &ExecuteOptions,
        local_root: Option<BTreeSet<String>>,
    ) -> Preflight<C> {
        let clients: BTreeMap<String, Result<C, ClusterError>> = clients.into_iter().collect();
        let servers: BTreeMap<String, String> = spec
            .clusters
            .iter()
            .filter_map(|cluster| match clients.get(&cluster.name) {
                Some(Ok(client)) => Some((
                    cluster.name.clone(),
                    cluster
                        .api_server
                        .clone()
                        .unwrap_or_else(|| client.server().to_string()),
                )),
                _ => None,
            })
            .collect();
        let lists = Lists::start(
            remote_secret_lists(spec, &servers),
            clients
                .iter()
                .filter_map(|(name, client)| Some((name.as_str(), client.as_ref().ok()?))),
        );
        let clients_ref = &clients;
        let probes: Vec<(String, Result<ClusterState, Blocker>)> =
            stream::iter(spec.clusters.iter())
                .map(|cluster| async move {
                    let state = match clients_ref.get(&cluster.name) {
                        Some(Ok(client)) => probe(client, spec, cluster).await,
                        Some(Err(err)) => Err(Blocker::from(err)),
                        None => Err(Blocker::new(
                            Problem::Other,
                            format!("cluster {}: no client was given for it", cluster.name),
                        )),
                    };
                    (cluster.name.clone(), state)
                })
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
        let mut preflight = Preflight {
            probes: probes.into_iter().collect(),
            clients,
            servers,
            notices: Vec::new(),
            lists: Some(lists),
        };
        preflight.judge(spec, options, local_root.as_ref());
        preflight
    }

    /// A `cacerts` from another root, or a loopback server in the remote secrets, keeps a
    /// cluster out.
    fn judge(
        &mut self,
        spec: &MeshSpec,
        options: &ExecuteOptions,
        local_root: Option<&BTreeSet<String>>,
    ) {
        let sources: BTreeSet<String> = spec
            .remote_secret_pairs()
            .into_iter()
            .map(|(src, _)| src)
            .collect();
        for cluster in &spec.clusters {
            let Some(Ok(state)) = self.probes.get(&cluster.name) else {
                continue;
            };
            let mut problem = state
                .cacerts
                .as_ref()
                .and_then(|secret| cacerts_conflict(&cluster.name, secret, local_root))
                .map(|message| Blocker::new(Problem::CacertsConflict, message))
                .or_else(|| state.istio.blocker(spec, cluster));
            self.notices.extend(state.istio.notices(spec, cluster));
            if let Some(server) = self.servers.get(&cluster.name)
                && problem.is_none()
                && sources.contains(&cluster.name)
                && !options.allow_loopback
                && is_loopback_server(server)
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
            if let Some(blocker) = problem {
                self.probes.insert(cluster.name.clone(), Err(blocker));
            }
        }
    }

    /// The live `cacerts` of every cluster that passed, by name.
    pub(crate) fn live_cacerts(&self) -> BTreeMap<String, Value> {
        self.probes
            .iter()
            .filter_map(|(name, p)| Some((name.clone(), p.as_ref().ok()?.cacerts.clone()?)))
            .collect()
    }

    /// One [`Event::Preflight`] per cluster, in mesh-file order, then the notices.
    pub(crate) fn announce(&self, spec: &MeshSpec, on_event: EventSink<'_>) {
        for cluster in &spec.clusters {
            if let Some(result) = self.probes.get(&cluster.name) {
                let (error, problem, detected) = match result {
                    Ok(state) => (None, None, Some(&state.detected)),
                    Err(b) => (Some(b.message.as_str()), Some(b.problem), None),
                };
                on_event(&Event::Preflight {
                    cluster: &cluster.name,
                    error,
                    problem,
                    detected,
                });
            }
        }
        for notice in &self.notices {
            on_event(&Event::Notice { notice });
        }
    }

    /// What rendering needs from preflight: the reader identity chosen for every cluster.
    pub(crate) fn render_options(&self, spec: &MeshSpec) -> RenderOptions {
        let install = spec.control_plane.install;
        RenderOptions {
            readers: self
                .probes
                .iter()
                .filter_map(|(name, probe)| {
                    let state = probe.as_ref().ok()?;
                    Some((name.clone(), state.istio.reader(install).0))
                })
                .collect(),
            eastwest_addresses: BTreeMap::new(),
        }
    }

    /// The report of a stopped run when a cluster cannot take part and may not be skipped
    /// (only an unreachable one may, with `--skip-unreachable`); `None` to go on.
    pub(crate) fn stopped(
        &self,
        spec: &MeshSpec,
        options: &ExecuteOptions,
        ca: Option<&CaReport>,
    ) -> Option<Report> {
        let stops: Vec<&str> = spec
            .clusters
            .iter()
            .filter(|c| match self.probes.get(&c.name) {
                Some(Err(blocker)) => !(blocker.is_skippable() && options.skip_unreachable),
                _ => false,
            })
            .map(|c| c.name.as_str())
            .collect();
        (!stops.is_empty())
            .then(|| report::stopped(spec, options, &self.probes, ca.cloned(), &stops))
    }

    /// The second pass: access reviews for what the plan writes on every usable cluster. A
    /// cluster that may not is kept out (and reported at once).
    pub(crate) async fn check_permissions(
        &mut self,
        spec: &MeshSpec,
        plan: &Plan,
        options: &ExecuteOptions,
        on_event: EventSink<'_>,
    ) {
        let usable: Vec<(&String, &C)> = self
            .clients
            .iter()
            .filter(|(name, _)| matches!(self.probes.get(*name), Some(Ok(_))))
            .filter_map(|(name, client)| client.as_ref().ok().map(|c| (name, c)))
            .collect();
        let answers: Vec<(String, Result<Vec<String>, ClusterError>)> =
            stream::iter(usable)
                .map(|(name, client)| async move {
                    (name.clone(), check_permissions(client, plan).await)
                })
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
        for (name, answer) in answers {
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
                detected: None,
            });
            self.probes.insert(name, Err(blocker));
        }
    }

    /// The runner over the clusters that passed (with `helm` when the plan installs charts),
    /// and what preflight concluded.
    pub(crate) fn into_runner<'a>(
        self,
        spec: &'a MeshSpec,
        plan: &'a Plan,
        options: &'a ExecuteOptions,
        helm: Option<Helm>,
        on_event: EventSink<'a>,
    ) -> (Runner<'a, C>, Verdicts) {
        let mut clients = self.clients;
        let mut usable = BTreeMap::new();
        let mut excluded = BTreeMap::new();
        let mut blockers = BTreeMap::new();
        let mut detected = BTreeMap::new();
        let mut istiod_running = BTreeSet::new();
        let mut istiod_images = BTreeMap::new();
        let mut fresh = BTreeSet::new();
        let mut read = BTreeMap::new();
        for cluster in &spec.clusters {
            match (
                self.probes.get(&cluster.name),
                clients.remove(&cluster.name),
            ) {
                (Some(Ok(state)), Some(Ok(client))) => {
                    // An istiod that runs, or ran, on its self-signed CA must restart to use a
                    // cacerts that appears now.
                    if state.istio.istiod.is_some() || state.istio.self_signed_ca {
                        istiod_running.insert(cluster.name.clone());
                    }
                    detected.insert(cluster.name.clone(), state.detected.clone());
                    if let Some(image) = &state.istio.istiod_image {
                        istiod_images.insert(cluster.name.clone(), image.clone());
                    }
                    if state.fresh {
                        fresh.insert(cluster.name.clone());
                    }
                    for (object, live) in &state.read {
                        read.insert((cluster.name.clone(), object.clone()), live.clone());
                    }
                    usable.insert(cluster.name.clone(), client);
                }
                (Some(Err(blocker)), _) => {
                    excluded.insert(cluster.name.clone(), blocker.message.clone());
                    blockers.insert(cluster.name.clone(), blocker.clone());
                }
                _ => {
                    excluded.insert(cluster.name.clone(), "not connected".to_string());
                }
            }
        }
        let clusters = Clusters {
            clients: usable,
            excluded,
            servers: self.servers,
            istiod_running,
            helm,
            notices: self.notices,
            istiod_images,
            refresh_within: None,
            fresh,
            read: std::sync::Mutex::new(read),
            find_stale: true,
            lists: self.lists,
        };
        let runner = Runner::new(spec, plan, options, clusters, on_event);
        (runner, Verdicts { blockers, detected })
    }
}

/// What preflight learnt about a reachable cluster.
#[derive(Debug, Clone)]
pub(crate) struct ClusterState {
    /// The `cacerts` Secret, when present.
    pub cacerts: Option<Value>,
    /// What of Istio is there, and how it was installed.
    pub istio: Found,
    /// The same for the report, with the reader chosen.
    pub detected: Detected,
    /// The Istio namespace did not exist: nothing in it exists either.
    pub fresh: bool,
    /// Objects read whole here (the namespace, `cacerts`, meshboot's reader account): their
    /// apply steps need not read them again.
    pub read: Vec<(ObjectRef, Option<Value>)>,
}

/// Why a cluster cannot take part.
#[derive(Debug, Clone)]
pub(crate) struct Blocker {
    pub problem: Problem,
    pub message: String,
}

impl Blocker {
    pub(crate) fn new(problem: Problem, message: String) -> Blocker {
        Blocker { problem, message }
    }

    /// True when `--skip-unreachable` lets the run go on without the cluster.
    pub(crate) fn is_skippable(&self) -> bool {
        self.problem == Problem::Unreachable
    }
}

impl From<&ClusterError> for Blocker {
    fn from(err: &ClusterError) -> Self {
        let problem = match err {
            ClusterError::Unreachable { .. } => Problem::Unreachable,
            ClusterError::Kubeconfig { .. } | ClusterError::Unauthorized { .. } => {
                Problem::Credentials
            }
            ClusterError::Forbidden { .. } => Problem::Forbidden,
            _ => Problem::Other,
        };
        Blocker::new(problem, err.to_string())
    }
}

impl From<ClusterError> for Blocker {
    fn from(err: ClusterError) -> Self {
        Blocker::from(&err)
    }
}

/// Reads the namespace (reachability and credentials), `cacerts`, and what of Istio is there.
async fn probe<C: ClusterOps>(
    client: &C,
    spec: &MeshSpec,
    cluster: &ClusterSpec,
) -> Result<ClusterState, Blocker> {
    let namespace = spec.istio_namespace.as_str();
    // The namespace read comes first and alone: when the server is down, one request pays the
    // retries instead of several.
    let namespace_ref = ObjectRef::cluster_scoped("v1", "Namespace", namespace);
    let namespace_object = client.get(&namespace_ref).await?;
    let namespace_found = namespace_object.is_some();
    let cacerts_ref = ObjectRef::namespaced("v1", "Secret", namespace, "cacerts");
    let (cacerts, istio) =
        futures::future::join(client.get(&cacerts_ref), detect(client, spec, cluster)).await;
    let mut istio = istio?;
    let cacerts = cacerts?;
    let mut read = vec![
        (namespace_ref, namespace_object),
        (cacerts_ref, cacerts.clone()),
    ];
    if let Some(reader) = istio.meshboot_reader_object.take() {
        read.push((
            ObjectRef::namespaced("v1", "ServiceAccount", namespace, MESHBOOT_SERVICE_ACCOUNT),
            reader,
        ));
    }
    let detected = istio.detected(
        spec.control_plane.install,
        Needs::of(spec, cluster).reader,
        spec.reader_token.is_some(),
    );
    Ok(ClusterState {
        cacerts,
        istio,
        detected,
        fresh: !namespace_found,
        read,
    })
}

/// A `cacerts` already in `cluster` is a conflict unless it trusts the local root (alone, or
/// with others in its bundle).
/// `local` is `None` when no root exists yet (a new one would be made).
fn cacerts_conflict(
    cluster: &str,
    secret: &Value,
    local: Option<&BTreeSet<String>>,
) -> Option<String> {
    let existing = match CacertsSecret::read(secret).and_then(|c| c.root_fingerprints()) {
        Ok(roots) => roots,
        Err(why) => {
            return Some(format!(
                "cluster {cluster}: Secret cacerts already exists and {why}; meshboot will not \
                 overwrite a CA it cannot compare (inspect it, or delete it if it is unused)"
            ));
        }
    };
    let short = |set: &BTreeSet<String>| {
        set.iter()
            .map(|fp| fp.chars().take(23).collect::<String>())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match local {
        // A bundle holding the mesh root and more (a root rotation under way) is not a
        // conflict: apply keeps such a bundle as it is (`rotate::annotations::carry_into_plan`).
        Some(local) if local.is_subset(&existing) => None,
        Some(local) => Some(format!(
            "cluster {cluster}: Secret cacerts trusts a different root (SHA-256 {}) than the \
             mesh CA (SHA-256 {}); apply never replaces a root, because workloads signed by \
             the old one would stop being trusted. Use that root as ca.root in the mesh file, or \
             rotate deliberately",
            short(&existing),
            short(local)
        )),
        None => Some(format!(
            "cluster {cluster}: Secret cacerts already exists (root SHA-256 {}) but the mesh CA \
             has no root yet, so apply would plug in a different one; set ca.root in the mesh \
             file to that root's certificate and key",
            short(&existing)
        )),
    }
}

/// Access reviews in flight per cluster: all of them at once, within the server's window
/// ([`Limits`](crate::cluster::Limits)); over HTTP/2 they share one connection.
const REVIEWS_IN_FLIGHT: usize = 32;

/// Asks the cluster, with access reviews, whether it may create and patch every kind the plan
/// writes there. Returns one line per denied permission.
async fn check_permissions<C: ClusterOps>(
    client: &C,
    plan: &Plan,
) -> Result<Vec<String>, ClusterError> {
    let writes = plan.writes_on(client.name());
    let checks = writes.iter().flat_map(|(group, resource, namespace)| {
        ["create", "patch"].into_iter().map(move |verb| async move {
            let allowed = client
                .can_i(verb, group, resource, namespace.as_deref())
                .await?;
            Ok::<_, ClusterError>((!allowed).then(|| {
                let what = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                match namespace {
                    Some(ns) => format!("{verb} {what} in namespace {ns}"),
                    None => format!("{verb} {what} (cluster-wide)"),
                }
            }))
        })
    });
    let mut denied = Vec::new();
    let answers: Vec<_> = futures::stream::iter(checks)
        .buffer_unordered(REVIEWS_IN_FLIGHT)
        .collect()
        .await;
    for answer in answers {
        if let Some(line) = answer? {
            denied.push(line);
        }
    }
    Ok(denied)
}

/// What `apply` lists, from the mesh file alone so that it can start before the plan: the
/// remote secrets of every destination of a pair, the sources' secrets judged against what
/// meshboot applies, or kept whole for the sources with bound tokens
/// ([`MeshSpec::bound_token_sources`], which the plan's `bound_readers` are).
fn remote_secret_lists(spec: &MeshSpec, servers: &BTreeMap<String, String>) -> ListJob {
    let pairs = spec.remote_secret_pairs();
    let sources: BTreeSet<&str> = pairs.iter().map(|(src, _)| src.as_str()).collect();
    ListJob::new(
        &spec.istio_namespace,
        pairs.iter().map(|(_, dst)| dst.clone()),
        sources
            .into_iter()
            .filter_map(|s| Some((s, servers.get(s)?.as_str()))),
        spec.bound_token_sources(),
    )
}
