//! Running the steps of a plan. A step waits only for what it needs (its [`Step::needs`]):
//!
//! 1. **namespace**, then **cacerts**, each on every cluster before the next (they are one
//!    object each, and `cacerts` everywhere before any istiod starts is the order users expect);
//! 2. then, side by side:
//!    - the per-cluster **control-plane** and **gateways** steps, one chain per cluster (the
//!      east-west gateway waits, bounded, for its external address);
//!    - the **readers**, one chain per cluster, and each source's **remote secrets** as soon as
//!      its reader token is there.
//!
//! So a gateway that never gets a load-balancer address fails the gateway steps of its cluster
//! only: its readers and remote secrets do not need the address. A step whose need failed is
//! skipped and says which step failed. A need on another cluster is waited for (without holding
//! a concurrency slot), which is how a step on one cluster can depend on a step on another: a
//! primary-remote remote's `istio/istiod` on its primary's east-west gateway, whose address the
//! runner keeps and hands to the remote's values as `global.remotePilotAddress`.
//!
//! Helm releases ([`Action::Helm`]) run the real `helm`, at most [`HELM_IN_FLIGHT`] processes at
//! once across the clusters; each reads the release first and runs `helm upgrade --install`
//! only when the chart version or values differ, so a converged re-run writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use super::listed::{ListJob, Lists, Live, digest_data};
use super::report::{Event, Notice, Outcome, Removal, StepReport, Totals};
use super::{EventSink, ExecuteOptions};
use crate::cluster::{
    ApplyOptions, ApplyOutcome, ClusterError, ClusterOps, ObjectRef, TokenData, external_addresses,
    is_converged, normalize_secret, token_data,
};
use crate::helm::{Decision, EnsureOptions, Helm, Release};
use crate::phase::Phase;
use crate::plan::{Action, BoundReader, HelmStep, Plan, Step, StepId, Wait};
use crate::remote_secret::multicluster_selector;
use crate::render::{self, Needs};
use crate::spec::{Install, MeshSpec};

/// Phases run one after the other, each on every cluster, before anything else.
const BARRIER_PHASES: [Phase; 2] = [Phase::Namespace, Phase::CaCerts];

/// Per-cluster phases that run alongside the readers and remote secrets, as one chain per
/// cluster.
const GATEWAY_SIDE: [Phase; 2] = [Phase::ControlPlane, Phase::Gateways];

/// `helm` processes at once, across every cluster: each renders its chart and holds a
/// connection per resource kind it watches, and istiod's `--wait` can take minutes.
pub const HELM_IN_FLIGHT: usize = 8;

/// A step's result: outcome, why for failed or skipped steps, and what else it says.
#[derive(Clone)]
struct StepResult {
    outcome: Outcome,
    error: Option<String>,
    detail: Option<String>,
}

/// What a step that ran did: its outcome, and why when there is more to say.
type Done = (Outcome, Option<String>);

pub(crate) struct Runner<'a, C> {
    spec: &'a MeshSpec,
    plan: &'a Plan,
    options: &'a ExecuteOptions,
    clusters: Clusters<C>,
    on_event: EventSink<'a>,
    state: Mutex<State>,
    /// One flag per step, raised when its result is recorded: what a step waits on for a need
    /// that runs elsewhere.
    done: Vec<watch::Sender<bool>>,
    /// Slots for `helm` processes.
    helm_slots: Semaphore,
    /// The destinations' remote secrets, listed once each.
    lists: Lists,
}

/// What preflight hands the runner about the clusters.
pub(crate) struct Clusters<C> {
    /// Clients of the clusters that passed preflight.
    pub clients: BTreeMap<String, C>,
    /// Clusters whose steps are skipped, with the reason (unreachable at preflight).
    pub excluded: BTreeMap<String, String>,
    /// The server written into each source cluster's remote secret.
    pub servers: BTreeMap<String, String>,
    /// Clusters where istiod already ran at preflight (or had made its self-signed CA).
    pub istiod_running: BTreeSet<String>,
    /// The `helm` binary, when the plan installs charts.
    pub helm: Option<Helm>,
    /// Preflight's notices, reported with the run's.
    pub notices: Vec<Notice>,
    /// The istiod image of each cluster that runs one (for the refresh caveat).
    pub istiod_images: BTreeMap<String, String>,
    /// Clusters whose Istio namespace did not exist at preflight: the namespace and every
    /// object in it are applied without a read first (there is nothing to read).
    pub fresh: BTreeSet<String>,
    /// Objects preflight read whole, by cluster (the namespace, `cacerts`, the reader
    /// account): each one's apply step compares with what was read instead of reading again,
    /// once (taken when used).
    pub read: Mutex<BTreeMap<(String, ObjectRef), Option<Value>>>,
    /// Bound tokens expiring within this are replaced (`rotate tokens --expiring-within`);
    /// `None`: the mesh file's `readerToken.refreshBefore`.
    pub refresh_within: Option<std::time::Duration>,
    /// Look for what meshboot made for clusters no longer in the mesh file (`apply`): removed
    /// with [`ExecuteOptions::prune`], otherwise returned for warnings.
    pub find_stale: bool,
    /// The destinations' remote secrets, when their lists were started before the runner
    /// (`apply` starts them beside preflight); `None`: the runner lists what its plan's pairs
    /// need.
    pub lists: Option<Lists>,
}

/// A source's cluster CA, read once for all of its bound-token pairs.
type CaCell = Arc<tokio::sync::OnceCell<Result<Vec<u8>, String>>>;

#[derive(Default)]
struct State {
    results: BTreeMap<StepId, StepResult>,
    tokens: BTreeMap<String, TokenData>,
    /// Each source's remote secret as applied (the same in every destination), built once.
    desired_remote: BTreeMap<String, Arc<Desired>>,
    /// The east-west gateway address of each cluster whose gateway step ran.
    addresses: BTreeMap<String, String>,
    notices: Vec<Notice>,
    /// Bound tokens: each source's cluster CA.
    cas: BTreeMap<String, CaCell>,
    /// Destinations already warned about istiod's client swap.
    swap_warned: BTreeSet<String>,
    removed: Vec<Removal>,
}

/// What a run leaves: every step's report, in plan order, and the notices.
pub(crate) struct RunResult {
    pub steps: Vec<(String, StepReport)>,
    pub notices: Vec<Notice>,
    pub removed: Vec<Removal>,
    /// Stale objects left in place (no `--prune`).
    pub stale: Vec<crate::tokens::prune::Stale>,
}

impl<'a, C: ClusterOps> Runner<'a, C> {
    pub(crate) fn new(
        spec: &'a MeshSpec,
        plan: &'a Plan,
        options: &'a ExecuteOptions,
        mut clusters: Clusters<C>,
        on_event: EventSink<'a>,
    ) -> Self {
        let state = State {
            notices: std::mem::take(&mut clusters.notices),
            ..State::default()
        };
        let lists = clusters.lists.take().unwrap_or_else(|| {
            let job = ListJob::new(
                &plan.istio_namespace,
                plan.pair_steps().map(|s| s.cluster.clone()),
                plan.pair_steps()
                    .filter_map(|s| s.source.as_deref())
                    .filter_map(|s| Some((s, clusters.servers.get(s)?.as_str()))),
                plan.bound_readers.keys().cloned().collect(),
            );
            Lists::start(job, clusters.clients.iter().map(|(n, c)| (n.as_str(), c)))
        });
        Runner {
            spec,
            plan,
            options,
            clusters,
            on_event,
            state: Mutex::new(state),
            done: plan
                .steps
                .iter()
                .map(|_| watch::Sender::new(false))
                .collect(),
            helm_slots: Semaphore::new(HELM_IN_FLIGHT),
            lists,
        }
    }

    fn emit(&self, event: Event<'_>) {
        (self.on_event)(&event);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than losing the report, so a poisoned lock is simply taken over.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs every step of the plan and returns what happened.
    pub(crate) async fn run(mut self) -> RunResult {
        // The destinations' remote secrets are listed meanwhile (`Lists`): only the pairs
        // write them, and each pair waits for its destination's list, and only for it.
        for phase in BARRIER_PHASES {
            self.run_chains(&[phase], |_| {}).await;
        }
        futures::join!(
            self.run_chains(&GATEWAY_SIDE, |_| {}),
            self.run_readers_and_pairs()
        );
        self.retire_legacy_tokens().await;
        let stale = self.prune_stale().await;
        // What is left of the lists is no use to the report, which is built next.
        self.lists = Lists::none();
        let steps = self.step_reports();
        let mut state = self.lock();
        let notices = std::mem::take(&mut state.notices);
        let removed = std::mem::take(&mut state.removed);
        RunResult {
            steps,
            notices,
            removed,
            stale,
        }
    }

    /// Runs the steps of `phases` as one chain per cluster (phase order, then plan order),
    /// clusters in parallel, at most [`ExecuteOptions::concurrency`] steps at once; `finished`
    /// is told when a cluster's chain is through.
    async fn run_chains(&self, phases: &[Phase], finished: impl Fn(&str)) {
        let counts: Vec<(Phase, usize)> = phases
            .iter()
            .map(|p| (*p, self.plan.steps.iter().filter(|s| s.phase == *p).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        for (phase, steps) in &counts {
            self.emit(Event::PhaseStarted {
                phase: *phase,
                steps: *steps,
            });
        }
        let slots = Semaphore::new(self.options.concurrency.max(1));
        let (slots, finished) = (&slots, &finished);
        futures::future::join_all(self.plan.clusters.iter().map(|cluster| async move {
            for phase in phases {
                for step in self.plan.steps_of(*phase, cluster) {
                    self.run_step(step, Some(slots)).await;
                }
            }
            finished(cluster);
        }))
        .await;
        for (phase, _) in counts {
            self.emit(Event::PhaseDone {
                phase,
                totals: self.phase_totals(phase),
            });
        }
    }

    /// Readers per cluster, and each source's pairs as soon as its reader chain is through.
    async fn run_readers_and_pairs(&self) {
        let concurrency = self.options.concurrency.max(1);
        let mut pairs_by_source: BTreeMap<&str, Vec<&Step>> = BTreeMap::new();
        for step in self.plan.pair_steps() {
            if let Some(source) = &step.source {
                pairs_by_source.entry(source).or_default().push(step);
            }
        }
        let pair_steps: usize = pairs_by_source.values().map(Vec::len).sum();
        let (ready_tx, ready_rx) = futures::channel::mpsc::unbounded::<String>();
        let readers = async move {
            self.run_chains(&[Phase::Readers], |cluster| {
                // The receiver lives until every sender is gone, so this cannot fail.
                let _ = ready_tx.unbounded_send(cluster.to_string());
            })
            .await;
        };
        let pairs = async {
            if pair_steps == 0 {
                ready_rx.collect::<Vec<_>>().await;
                return;
            }
            self.emit(Event::PhaseStarted {
                phase: Phase::RemoteSecrets,
                steps: pair_steps,
            });
            ready_rx
                .flat_map(|source| {
                    stream::iter(
                        pairs_by_source
                            .get(source.as_str())
                            .cloned()
                            .unwrap_or_default(),
                    )
                })
                .map(|step| self.run_step(step, None))
                .buffer_unordered(concurrency)
                .collect::<Vec<()>>()
                .await;
            self.emit(Event::PhaseDone {
                phase: Phase::RemoteSecrets,
                totals: self.phase_totals(Phase::RemoteSecrets),
            });
        };
        futures::join!(readers, pairs);
    }

    /// The remote secret of `source` as it is applied with `token`, and its kubeconfig's
    /// digest: the same in every destination, so built once per source.
    fn desired_remote(
        &self,
        source: &str,
        server: &str,
        token: &TokenData,
    ) -> Result<Arc<Desired>, String> {
        if let Some(desired) = self.lock().desired_remote.get(source) {
            return Ok(desired.clone());
        }
        let object = super::remote_secret_object(source, &self.plan.istio_namespace, server, token)
            .map_err(|e| e.to_string())?;
        let digested = digest_data(normalize_secret(object.clone()));
        let desired = Arc::new(Desired {
            kubeconfig: digested
                .get("data")
                .and_then(|d| d.get(source))
                .and_then(Value::as_str)
                .and_then(super::listed::digest_of),
            digested,
            object,
        });
        self.lock()
            .desired_remote
            .insert(source.to_string(), desired.clone());
        Ok(desired)
    }

    /// Runs one step once its needs are through (or skips it), and records the result. The
    /// slot, when given, is held only while the step runs, never while it waits for a need.
    async fn run_step(&self, step: &Step, slots: Option<&Semaphore>) {
        self.await_needs(step).await;
        let result = match self.blocked_by(step) {
            Some(reason) => StepResult {
                outcome: Outcome::Skipped,
                error: Some(reason),
                detail: None,
            },
            None => {
                let _slot = match slots {
                    Some(slots) => slots.acquire().await.ok(),
                    None => None,
                };
                self.emit(Event::StepStarted { step });
                match self.execute(step).await {
                    Ok((outcome, detail)) => StepResult {
                        outcome,
                        error: None,
                        detail,
                    },
                    Err(error) => StepResult {
                        outcome: Outcome::Failed,
                        error: Some(error),
                        detail: None,
                    },
                }
            }
        };
        self.lock().results.insert(step.id, result.clone());
        if let Some(done) = self.done.get(step.id.0) {
            done.send_replace(true);
        }
        self.emit(Event::StepDone {
            step,
            outcome: result.outcome,
            error: result.error.as_deref(),
            detail: result.detail.as_deref(),
        });
    }

    async fn await_needs(&self, step: &Step) {
        for need in &step.needs {
            if let Some(flag) = self.done.get(need.0) {
                let mut done = flag.subscribe();
                // The sender lives as long as the runner, so this cannot fail.
                let _ = done.wait_for(|done| *done).await;
            }
        }
    }

    /// Why a step cannot run, if it cannot: its cluster is excluded, or a need did not succeed
    /// (a need on the same cluster that was itself skipped passes its reason on, so the step
    /// that failed is named).
    fn blocked_by(&self, step: &Step) -> Option<String> {
        if let Some(why) = self.clusters.excluded.get(&step.cluster) {
            return Some(format!("cluster {} was skipped: {why}", step.cluster));
        }
        let state = self.lock();
        for need in &step.needs {
            let needed = self.plan.step(*need);
            let same_cluster = needed.cluster == step.cluster;
            let reason = match state.results.get(need).map(|r| (r.outcome, &r.error)) {
                Some((outcome, _)) if outcome.is_success() => continue,
                Some((Outcome::Skipped, Some(reason))) if same_cluster => reason.clone(),
                Some((Outcome::Failed, _)) if same_cluster => format!(
                    "not attempted: needs {}, which failed on {}",
                    needed.object, needed.cluster
                ),
                _ if same_cluster => format!(
                    "not attempted: needs {} on {}",
                    needed.object, needed.cluster
                ),
                _ => format!(
                    "not attempted: needs {} on cluster {}, which did not complete",
                    needed.object, needed.cluster
                ),
            };
            return Some(reason);
        }
        None
    }

    fn client(&self, cluster: &str) -> Result<&C, String> {
        self.clusters
            .clients
            .get(cluster)
            .ok_or_else(|| format!("cluster {cluster} is not connected"))
    }

    fn apply_options(&self) -> ApplyOptions {
        ApplyOptions {
            dry_run: self.options.dry_run,
            force: self.options.force,
        }
    }

    async fn execute(&self, step: &Step) -> Result<Done, String> {
        let client = self.client(&step.cluster)?;
        match &step.action {
            Action::Apply { object, wait } => {
                let read_before = self.read_at_preflight(step);
                let mut token = None;
                let applied = if self.known_absent(step) {
                    client.apply_unread(object, &self.apply_options()).await
                } else if let Some(live) = read_before {
                    client
                        .apply_known(object, live.as_ref(), &self.apply_options())
                        .await
                } else if *wait == Some(Wait::Token) {
                    // Read here rather than in apply, so that the token it already holds
                    // needs no second read.
                    match client.get(&step.object).await {
                        Ok(live) => {
                            let applied = client
                                .apply_known(object, live.as_ref(), &self.apply_options())
                                .await;
                            token = live.as_ref().and_then(|l| token_data(l).ok());
                            applied
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    client.apply(object, &self.apply_options()).await
                };
                let outcome = match applied {
                    Ok(outcome) => outcome,
                    Err(ClusterError::UnknownKind { .. }) if self.installed_by_a_chart(step) => {
                        // A dry run installs no chart, so the kind istio/base would serve is
                        // not there yet: the object would be created once it is.
                        return Ok((
                            Outcome::Created,
                            Some(format!(
                                "{} is served once istio/base has installed Istio's CRDs",
                                step.object.kind
                            )),
                        ));
                    }
                    Err(e) => return Err(e.to_string()),
                };
                if *wait == Some(Wait::Token) {
                    match token.filter(|_| outcome == ApplyOutcome::Unchanged) {
                        // An unchanged token Secret keeps the token the controller put in.
                        Some(data) => {
                            self.lock().tokens.insert(step.cluster.clone(), data);
                        }
                        None => self.reader_token(client, step).await?,
                    }
                }
                if outcome == ApplyOutcome::Created
                    && step.phase == Phase::CaCerts
                    && step.object.kind == "Secret"
                    && step.object.name == "cacerts"
                    && self.clusters.istiod_running.contains(&step.cluster)
                {
                    self.istiod_restart_notice(&step.cluster);
                }
                Ok((outcome.into(), None))
            }
            Action::RemoteSecret { source } => {
                if let Some(reader) = self.plan.bound_readers.get(source) {
                    return self.bound_remote_secret(client, step, source, reader).await;
                }
                Ok((self.remote_secret(client, step, source).await?, None))
            }
            Action::Helm(helm) => self.helm_release(client, step, helm).await,
        }
    }

    /// The step's object cannot exist yet: it is the Istio namespace, or in it, on a cluster
    /// where preflight found no such namespace (the one read then answers for all of them).
    fn known_absent(&self, step: &Step) -> bool {
        let namespace = &self.plan.istio_namespace;
        self.clusters.fresh.contains(&step.cluster)
            && match step.object.namespace.as_deref() {
                Some(ns) => ns == namespace,
                None => step.object.kind == "Namespace" && &step.object.name == namespace,
            }
    }

    /// What preflight read of the step's object, if it did (`Some(None)`: absent); taken, so
    /// a second step for the same object reads it itself.
    fn read_at_preflight(&self, step: &Step) -> Option<Option<Value>> {
        self.clusters
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(step.cluster.clone(), step.object.clone()))
    }

    /// In a dry run with `install: helm`, an Istio kind the charts have not installed yet.
    fn installed_by_a_chart(&self, step: &Step) -> bool {
        self.options.dry_run
            && self.spec.control_plane.install == Install::Helm
            && step.object.api_version.contains(".istio.io/")
    }

    /// Installs, upgrades or leaves one chart's release, then waits for what the release is
    /// for: Helm's `--wait` for istiod (bounded by the timeout), the gateway's address.
    async fn helm_release(
        &self,
        client: &C,
        step: &Step,
        helm_step: &HelmStep,
    ) -> Result<Done, String> {
        let helm = self
            .clusters
            .helm
            .as_ref()
            .ok_or_else(|| "helm was not located in preflight".to_string())?;
        let (release, unknown_address) = self.with_pilot_address(step, helm_step).await?;
        let options = EnsureOptions {
            dry_run: self.options.dry_run,
            wait: helm_step.wait == Some(Wait::Ready),
            timeout: self.options.timeout,
        };
        let report = {
            let _slot = self.helm_slots.acquire().await.ok();
            helm.ensure(&release, &options)
                .await
                .map_err(|e| e.to_string())?
        };
        let outcome = match report.decision {
            Decision::Install => Outcome::Created,
            Decision::Upgrade => Outcome::Updated,
            Decision::Unchanged | Decision::Blocked => Outcome::Unchanged,
        };
        let mut detail = report.reason;
        if let Some(primary) = unknown_address {
            detail.push_str(&format!(
                "; global.remotePilotAddress is {primary}'s east-west gateway address, not known                  until that gateway has one"
            ));
        }
        if helm_step.wait == Some(Wait::ExternalAddress) {
            let service = helm_step.service();
            let addresses = if self.options.dry_run {
                match client.get(&service).await {
                    Ok(Some(svc)) => external_addresses(&svc),
                    _ => Vec::new(),
                }
            } else {
                self.await_address(client, step, &service).await?
            };
            if let Some(first) = addresses.into_iter().next() {
                self.lock().addresses.insert(step.cluster.clone(), first);
            }
        }
        Ok((outcome, Some(detail)))
    }

    /// The release with its remote's `global.remotePilotAddress` filled in from the primary's
    /// east-west gateway (rendered again with it, so the mesh file's overrides merge as always),
    /// and the primary's name when its address is not known (only in a dry run of a fresh mesh).
    async fn with_pilot_address(
        &self,
        step: &Step,
        helm_step: &HelmStep,
    ) -> Result<(Release, Option<String>), String> {
        let Some(primary) = &helm_step.remote_pilot_address_from else {
            return Ok((helm_step.release.clone(), None));
        };
        let mut address = self.lock().addresses.get(primary).cloned();
        if address.is_none() && self.options.dry_run {
            // The primary's gateway step of a dry run reads the address only when it exists.
            if let Ok(client) = self.client(primary) {
                let service = helm_step.service();
                if let Ok(Some(svc)) = client.get(&service).await {
                    address = external_addresses(&svc).into_iter().next();
                }
            }
        }
        let Some(address) = address else {
            if self.options.dry_run {
                return Ok((helm_step.release.clone(), Some(primary.clone())));
            }
            return Err(format!(
                "no address of {primary}'s east-west gateway is known, and the remote's istiod \
                 reaches {primary} through it (global.remotePilotAddress)"
            ));
        };
        let cluster = self
            .spec
            .cluster(&step.cluster)
            .ok_or_else(|| format!("cluster {} is not in the mesh file", step.cluster))?;
        let values = render::helm::values(
            self.spec,
            cluster,
            Needs::of(self.spec, cluster),
            Some(&address),
        )
        .map_err(|e| e.to_string())?;
        let mut release = helm_step.release.clone();
        if let Some(v) = values.into_iter().find(|v| v.chart == release.chart) {
            release.values = v.values;
        }
        Ok((release, None))
    }

    /// Waits for the token controller (or, in a dry run, reads whatever token exists so the
    /// remote secrets can be compared exactly).
    async fn reader_token(&self, client: &C, step: &Step) -> Result<(), String> {
        let namespace = step.object.namespace.as_deref().unwrap_or_default();
        let data = if self.options.dry_run {
            match client.get(&step.object).await {
                Ok(Some(secret)) => crate::cluster::token_data(&secret).ok(),
                _ => None,
            }
        } else {
            let data = client
                .wait_for_token_secret(namespace, &step.object.name, self.options.timeout)
                .await
                .map_err(|e| match e {
                    ClusterError::Timeout { .. } => format!(
                        "{e}; the reader token is what the other clusters' istiod use to read \
                         {}, so no remote secret of {} can be made without it",
                        step.cluster, step.cluster
                    ),
                    other => other.to_string(),
                })?;
            Some(data)
        };
        if let Some(data) = data {
            self.lock().tokens.insert(step.cluster.clone(), data);
        }
        Ok(())
    }

    async fn await_address(
        &self,
        client: &C,
        step: &Step,
        service: &crate::cluster::ObjectRef,
    ) -> Result<Vec<String>, String> {
        match client
            .wait_for_external_address(service, self.options.timeout)
            .await
        {
            Ok(addresses) => Ok(addresses),
            Err(ClusterError::Timeout { waited, .. }) => Err(format!(
                "cluster {cluster}: {service} has no external address after {}s: the other \
                 networks reach {cluster}'s workloads through it, so only the gateway steps of \
                 {cluster} fail (its readers and remote secrets do not need the address). Does \
                 the cluster have a load-balancer controller (cloud LB, MetalLB)? Otherwise set \
                 spec.externalIPs on the Service, or raise --timeout",
                waited.as_secs(),
                cluster = step.cluster,
            )),
            Err(other) => Err(other.to_string()),
        }
    }

    async fn remote_secret(
        &self,
        client: &C,
        step: &Step,
        source: &str,
    ) -> Result<Outcome, String> {
        let token = self.lock().tokens.get(source).cloned();
        let server = self
            .clusters
            .servers
            .get(source)
            .ok_or_else(|| format!("no API server address known for {source}"))?;
        let Some(token) = token else {
            // Only a dry run gets here (a real run skips the step when the token wait failed):
            // the token does not exist yet, so whatever is there will change.
            let live = self.known_live(step).await;
            return Ok(match live {
                Some(None) => Outcome::Created,
                Some(Some(_)) => Outcome::Updated,
                None => match client.get(&step.object).await.map_err(|e| e.to_string())? {
                    None => Outcome::Created,
                    Some(_) => Outcome::Updated,
                },
            });
        };
        let desired = self.desired_remote(source, server, &token)?;
        let Some(live) = self.known_live(step).await else {
            return client
                .apply(&desired.object, &self.apply_options())
                .await
                .map(Outcome::from)
                .map_err(|e| e.to_string());
        };
        let unchanged = match &live {
            Some(Live::Judged { unchanged_with }) => {
                unchanged_with.is_some() && *unchanged_with == desired.kubeconfig
            }
            Some(Live::Kept(live)) => is_converged(&desired.digested, live),
            None => false,
        };
        if unchanged {
            return Ok(Outcome::Unchanged);
        }
        // The list said what is there: no read before the write.
        client
            .apply_unread(&desired.object, &self.apply_options())
            .await
            .map(Outcome::from)
            .map_err(|e| e.to_string())
    }

    /// The remote secret of `source` with a bound token of its own ([`crate::tokens`]): kept
    /// when the live token may stay, else minted from the source's reader.
    async fn bound_remote_secret(
        &self,
        client: &C,
        step: &Step,
        source: &str,
        reader: &BoundReader,
    ) -> Result<Done, String> {
        let lifetime = self.spec.reader_token.ok_or_else(|| {
            format!("{source} has bound tokens in the plan but readerToken is not set")
        })?;
        let server = self
            .clusters
            .servers
            .get(source)
            .ok_or_else(|| format!("no API server address known for {source}"))?;
        let src = self.client(source)?;
        let ca = self.source_ca(source, src, &reader.namespace).await?;
        let pair = crate::tokens::pair::Pair {
            source,
            destination: &step.cluster,
            namespace: &reader.namespace,
            service_account: &reader.service_account,
            server,
            ca: &ca,
            expiration_seconds: lifetime.expiration_seconds(),
            refresh_before: lifetime.refresh_before,
            refresh_within: self
                .clusters
                .refresh_within
                .unwrap_or(lifetime.refresh_before),
        };
        let before_swap = || self.swap_notice(&step.cluster, source);
        let run = crate::tokens::pair::converge(
            src,
            client,
            &pair,
            self.known_live(step)
                .await
                .map(|live| live.and_then(Live::into_kept)),
            &self.apply_options(),
            crate::tokens::now_unix(),
            &before_swap,
        )
        .await?;
        if let Some(granted) = run.capped {
            self.notice(Notice {
                cluster: source.to_string(),
                message: format!(
                    "the API server of {source} granted its reader tokens {} instead of the {} \
                     asked for (--service-account-max-token-expiration): at or below \
                     readerToken.refreshBefore ({}), every run replaces them",
                    crate::duration::exact(std::time::Duration::from_secs(granted.unsigned_abs())),
                    crate::duration::exact(lifetime.ttl),
                    crate::duration::exact(lifetime.refresh_before),
                ),
                hint: Some("lower readerToken.refreshBefore below the granted lifetime".into()),
            });
        }
        // Which token the remote secret now carries, in words (never the token).
        let detail = match (&run.replaced, run.expires) {
            (Some(why), Some(exp)) => Some(format!(
                "new token ({why}), expires {}",
                crate::tokens::rfc3339(exp)
            )),
            (Some(why), None) => Some(format!("a new token would be minted: {why}")),
            (None, _) => None,
        };
        Ok((run.outcome.into(), detail))
    }

    async fn source_ca(
        &self,
        source: &str,
        client: &C,
        namespace: &str,
    ) -> Result<Vec<u8>, String> {
        let cell = self
            .lock()
            .cas
            .entry(source.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| crate::tokens::pair::cluster_ca(client, namespace))
            .await
            .clone()
    }

    /// Warns, once per destination, before a refreshed remote secret makes its istiod swap a
    /// client on a release that drops the source's endpoints while it does.
    fn swap_notice(&self, destination: &str, source: &str) {
        if !self.lock().swap_warned.insert(destination.to_string()) {
            return;
        }
        let Some(image) = self.clusters.istiod_images.get(destination) else {
            return;
        };
        let risk = crate::tokens::swap_risk(image);
        if let Some(message) =
            crate::tokens::swap_warning(destination, &risk, &[source.to_string()])
        {
            self.notice(Notice {
                cluster: destination.to_string(),
                message,
                hint: None,
            });
        }
    }

    fn notice(&self, notice: Notice) {
        self.emit(Event::Notice { notice: &notice });
        self.lock().notices.push(notice);
    }

    /// Sources whose every remote secret now carries a bound token lose the long-lived token
    /// Secret meshboot made for them (switching from the legacy mode), which revokes it.
    async fn retire_legacy_tokens(&self) {
        // Mesh-file order, as every report lists clusters.
        let sources = self
            .spec
            .clusters
            .iter()
            .filter_map(|c| self.plan.bound_readers.get_key_value(&c.name));
        for (source, reader) in sources {
            // A plan with only some of the source's pairs (`rotate tokens`) says nothing of the
            // others, which may still carry the long-lived token.
            let planned = self
                .plan
                .pair_steps()
                .filter(|s| s.source.as_deref() == Some(source.as_str()))
                .count();
            let in_mesh = self
                .spec
                .remote_secret_pairs()
                .iter()
                .filter(|(src, _)| src == source)
                .count();
            let all_bound = planned == in_mesh && {
                let state = self.lock();
                self.plan
                    .pair_steps()
                    .filter(|s| s.source.as_deref() == Some(source.as_str()))
                    .all(|s| {
                        state
                            .results
                            .get(&s.id)
                            .is_some_and(|r| r.outcome.is_success())
                    })
            };
            let Some(client) = self.clusters.clients.get(source).filter(|_| all_bound) else {
                continue;
            };
            let (removed, errors) = crate::tokens::retire::legacy_token_secrets(
                client,
                &reader.namespace,
                self.options.dry_run,
            )
            .await;
            for object in removed {
                self.lock().removed.push(Removal {
                    cluster: source.clone(),
                    object,
                    reason: format!(
                        "the long-lived reader token of {source}: its remote secrets carry bound tokens now"
                    ),
                });
            }
            for error in errors {
                self.notice(Notice {
                    cluster: source.clone(),
                    message: format!(
                        "the long-lived reader token of {source} could not be removed: {error}"
                    ),
                    hint: None,
                });
            }
        }
    }

    /// What meshboot made for clusters that left the mesh file, in every connected cluster:
    /// deleted with `--prune` (listed only in a dry run), else returned. A destination's
    /// remote secrets were listed already; bound objects are listed only with bound tokens.
    async fn prune_stale(&self) -> Vec<crate::tokens::prune::Stale> {
        if !self.clusters.find_stale {
            return Vec::new();
        }
        let namespace = self.plan.istio_namespace.as_str();
        let clusters: Vec<(&str, &C)> = self
            .spec
            .clusters
            .iter()
            .filter_map(|c| {
                self.clusters
                    .clients
                    .get_key_value(&c.name)
                    .map(|(n, c)| (n.as_str(), c))
            })
            .collect();
        let mut found = Vec::new();
        for (name, client) in clusters {
            // A judged secret is of a cluster in the mesh, so never stale.
            let listed = self.lists.kept(name);
            let remote = match listed {
                Some(listed) => listed,
                None => match client
                    .list(
                        "v1",
                        "Secret",
                        Some(namespace),
                        Some(&multicluster_selector()),
                    )
                    .await
                {
                    Ok(items) => items,
                    Err(_) => continue,
                },
            };
            let bound = if self.spec.reader_token.is_some() {
                client
                    .list(
                        "v1",
                        "Secret",
                        Some(namespace),
                        Some(crate::tokens::DESTINATION_LABEL),
                    )
                    .await
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            found.extend(crate::tokens::prune::stale_in(
                self.spec, name, &remote, &bound,
            ));
        }
        if !self.options.prune {
            return found;
        }
        for stale in found {
            if !self.options.dry_run {
                let Ok(client) = self.client(&stale.cluster) else {
                    continue;
                };
                if let Err(e) = client.delete(&stale.object, stale.uid.as_deref()).await {
                    self.notice(Notice {
                        cluster: stale.cluster.clone(),
                        message: format!("{} could not be pruned: {e}", stale.object),
                        hint: None,
                    });
                    continue;
                }
            }
            self.lock().removed.push(Removal {
                cluster: stale.cluster.clone(),
                object: stale.object.clone(),
                reason: stale.reason(),
            });
        }
        Vec::new()
    }

    /// What the destination's list said about this step's remote secret, once the list is
    /// through: `None` when the destination was not listed, `Some(None)` when listed and
    /// absent. Asked once per step: the answer is taken from the list.
    async fn known_live(&self, step: &Step) -> Option<Option<Live>> {
        self.lists.take(&step.cluster, &step.object.name).await
    }

    fn istiod_restart_notice(&self, cluster: &str) {
        let context = self
            .spec
            .cluster(cluster)
            .map(|c| c.context.as_str())
            .unwrap_or(cluster);
        let notice = Notice {
            cluster: cluster.to_string(),
            message: format!(
                "istiod in {cluster} must be restarted to pick it up: it started without cacerts \
                 and signs with its own self-signed CA"
            ),
            hint: Some(format!(
                "kubectl --context {context} -n {} rollout restart deployment/istiod",
                self.plan.istio_namespace
            )),
        };
        self.emit(Event::Notice { notice: &notice });
        self.lock().notices.push(notice);
    }

    fn phase_totals(&self, phase: Phase) -> Totals {
        let state = self.lock();
        let mut totals = Totals::default();
        for step in self.plan.steps.iter().filter(|s| s.phase == phase) {
            if let Some(result) = state.results.get(&step.id) {
                totals.add(result.outcome);
            }
        }
        totals
    }

    /// The results of every step in plan order (a step never reached counts as skipped).
    fn step_reports(&self) -> Vec<(String, StepReport)> {
        // Taken, not copied: the report is the last use of 10,600 results at 100 clusters.
        let mut results = std::mem::take(&mut self.lock().results);
        self.plan
            .steps
            .iter()
            .map(|step| {
                let result = results.remove(&step.id).unwrap_or(StepResult {
                    outcome: Outcome::Skipped,
                    error: Some("not attempted".to_string()),
                    detail: None,
                });
                (
                    step.cluster.clone(),
                    StepReport {
                        phase: step.phase,
                        action: step.action.as_str(),
                        object: step.object.clone(),
                        source: step.source.clone(),
                        outcome: result.outcome,
                        error: result.error,
                        detail: result.detail,
                    },
                )
            })
            .collect()
    }
}

impl From<ApplyOutcome> for Outcome {
    fn from(outcome: ApplyOutcome) -> Self {
        match outcome {
            ApplyOutcome::Created => Outcome::Created,
            ApplyOutcome::Updated => Outcome::Updated,
            ApplyOutcome::Unchanged => Outcome::Unchanged,
        }
    }
}

/// A source's remote secret as it is applied, as it is compared (data digested), and the
/// digest of its kubeconfig.
struct Desired {
    object: Value,
    digested: Value,
    kubeconfig: Option<super::listed::Digest>,
}
