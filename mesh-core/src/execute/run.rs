//! Running the steps of a plan: phases in order, clusters in parallel inside a phase, and the
//! remote-secret pairs as a pipeline that starts a source's pairs as soon as its reader token
//! is there.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream;
use serde_json::{Value, json};

use super::ops::ClusterOps;
use super::report::{Event, Notice, Outcome, StepReport, Totals};
use super::{EventSink, ExecuteOptions};
use crate::cluster::{
    ApplyOptions, ApplyOutcome, ClusterError, ObjectRef, TokenData, is_subset, normalize_secret,
};
use crate::plan::{Action, Phase, Plan, Step, StepId, Wait};
use crate::spec::MeshSpec;

/// The label istiod selects remote secrets by (`reference/istio.md` §4).
const MULTICLUSTER_LABEL: &str = "istio/multiCluster=true";

/// Per-cluster phases, run one after the other; the readers phase and the pairs follow as a
/// pipeline.
const BARRIER_PHASES: [Phase; 3] = [Phase::Namespace, Phase::CaCerts, Phase::Gateways];

/// Remote-secret lists in flight. Each answer holds every remote secret of a destination (99
/// in a 100-cluster mesh, managedFields included) until it is trimmed, so a few at a time keep
/// the peak memory low; they overlap the per-cluster phases, which take longer anyway.
const LISTS_IN_FLIGHT: usize = 4;

/// A step's result: outcome and, for failed or skipped steps, why.
pub(crate) type StepResult = (Outcome, Option<String>);

pub(crate) struct Runner<'a, C> {
    pub spec: &'a MeshSpec,
    pub plan: &'a Plan,
    pub options: &'a ExecuteOptions,
    /// Clients of the clusters that passed preflight.
    pub clients: BTreeMap<String, C>,
    /// Clusters whose steps are skipped, with the reason (unreachable at preflight).
    pub excluded: BTreeMap<String, String>,
    /// The server written into each source cluster's remote secret.
    pub servers: BTreeMap<String, String>,
    /// Clusters where istiod already ran at preflight.
    pub istiod_running: BTreeSet<String>,
    pub on_event: EventSink<'a>,
    pub state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    pub results: BTreeMap<StepId, StepResult>,
    /// The first failed step of each cluster: later steps there are skipped.
    pub failed: BTreeMap<String, StepId>,
    pub tokens: BTreeMap<String, TokenData>,
    /// Remote secrets already in each destination, by name (listed once per cluster).
    pub live_remote: BTreeMap<String, BTreeMap<String, Value>>,
    pub notices: Vec<Notice>,
}

impl<'a, C: ClusterOps> Runner<'a, C> {
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

    /// Runs every step of the plan.
    pub async fn run(&self) {
        // The destinations' remote secrets are listed while the per-cluster phases run: only
        // the pair phase writes them, so the answer is still current when it starts.
        futures::join!(self.list_remote_secrets(), self.run_barrier_phases());
        self.run_readers_and_pairs().await;
    }

    async fn run_barrier_phases(&self) {
        for phase in BARRIER_PHASES {
            let count = self.plan.steps.iter().filter(|s| s.phase == phase).count();
            if count == 0 {
                continue;
            }
            self.emit(Event::PhaseStarted {
                phase,
                steps: count,
            });
            stream::iter(&self.plan.clusters)
                .map(|cluster| self.run_cluster_phase(phase, cluster))
                .buffer_unordered(self.options.concurrency.max(1))
                .collect::<Vec<()>>()
                .await;
            self.emit(Event::PhaseDone {
                phase,
                totals: self.phase_totals(phase),
            });
        }
    }

    async fn run_cluster_phase(&self, phase: Phase, cluster: &str) {
        for step in self.plan.steps_of(phase, cluster) {
            self.run_step(step).await;
        }
    }

    /// Readers per cluster, and each source's pairs as soon as its token is there.
    async fn run_readers_and_pairs(&self) {
        let concurrency = self.options.concurrency.max(1);
        let mut pairs_by_source: BTreeMap<&str, Vec<&Step>> = BTreeMap::new();
        for step in self.plan.pair_steps() {
            if let Some(source) = &step.source {
                pairs_by_source.entry(source).or_default().push(step);
            }
        }
        let reader_steps = self
            .plan
            .steps
            .iter()
            .filter(|s| s.phase == Phase::Readers)
            .count();
        let pair_steps: usize = pairs_by_source.values().map(Vec::len).sum();

        let (ready_tx, ready_rx) = futures::channel::mpsc::unbounded::<&str>();
        let readers = async move {
            if reader_steps > 0 {
                self.emit(Event::PhaseStarted {
                    phase: Phase::Readers,
                    steps: reader_steps,
                });
            }
            stream::iter(&self.plan.clusters)
                .map(|cluster| {
                    let ready_tx = ready_tx.clone();
                    async move {
                        self.run_cluster_phase(Phase::Readers, cluster).await;
                        // The receiver lives until every sender is gone, so this cannot fail.
                        let _ = ready_tx.unbounded_send(cluster.as_str());
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<()>>()
                .await;
            drop(ready_tx);
            if reader_steps > 0 {
                self.emit(Event::PhaseDone {
                    phase: Phase::Readers,
                    totals: self.phase_totals(Phase::Readers),
                });
            }
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
                    stream::iter(pairs_by_source.get(source).cloned().unwrap_or_default())
                })
                .map(|step| self.run_step(step))
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

    /// One list per destination instead of one read per pair: on a converged mesh the whole
    /// pair phase then costs one request per cluster. A failed list only costs the shortcut.
    async fn list_remote_secrets(&self) {
        let destinations: BTreeSet<&str> = self
            .plan
            .pair_steps()
            .map(|s| s.cluster.as_str())
            .filter(|c| self.clients.contains_key(*c))
            .collect();
        let namespace = self.plan.istio_namespace.as_str();
        let listed: Vec<(&str, Result<Vec<Value>, ClusterError>)> = stream::iter(destinations)
            .map(|dst| async move {
                let client = &self.clients[dst];
                let items = client
                    .list("v1", "Secret", Some(namespace), Some(MULTICLUSTER_LABEL))
                    .await;
                (dst, items)
            })
            .buffer_unordered(LISTS_IN_FLIGHT)
            .collect()
            .await;
        let mut state = self.lock();
        for (dst, items) in listed {
            let Ok(items) = items else {
                continue;
            };
            let by_name = items
                .into_iter()
                .filter_map(|item| {
                    let name = item.pointer("/metadata/name")?.as_str()?.to_string();
                    Some((name, essentials(item)))
                })
                .collect();
            state.live_remote.insert(dst.to_string(), by_name);
        }
    }

    /// Runs one step (or skips it) and records the result.
    async fn run_step(&self, step: &Step) {
        let (outcome, error) = match self.blocked_by(step) {
            Some(reason) => (Outcome::Skipped, Some(reason)),
            None => {
                self.emit(Event::StepStarted { step });
                match self.execute(step).await {
                    Ok(outcome) => (outcome, None),
                    Err(error) => (Outcome::Failed, Some(error)),
                }
            }
        };
        {
            let mut state = self.lock();
            if outcome == Outcome::Failed {
                state.failed.entry(step.cluster.clone()).or_insert(step.id);
            }
            state.results.insert(step.id, (outcome, error.clone()));
        }
        self.emit(Event::StepDone {
            step,
            outcome,
            error: error.as_deref(),
        });
    }

    /// Why a step cannot run, if it cannot.
    fn blocked_by(&self, step: &Step) -> Option<String> {
        if let Some(why) = self.excluded.get(&step.cluster) {
            return Some(format!("cluster {} was skipped: {why}", step.cluster));
        }
        let state = self.lock();
        if let Some(first) = state.failed.get(&step.cluster) {
            let failed = self.plan.step(*first);
            return Some(format!(
                "not attempted: {} failed earlier on {}",
                failed.object, step.cluster
            ));
        }
        for need in &step.needs {
            let needed = self.plan.step(*need);
            let ok = state
                .results
                .get(need)
                .is_some_and(|(outcome, _)| outcome.is_success());
            if !ok {
                return Some(if needed.cluster == step.cluster {
                    format!(
                        "not attempted: needs {} on {}",
                        needed.object, needed.cluster
                    )
                } else {
                    format!(
                        "not attempted: needs {} on cluster {}, which did not complete",
                        needed.object, needed.cluster
                    )
                });
            }
        }
        None
    }

    fn client(&self, cluster: &str) -> Result<&C, String> {
        self.clients
            .get(cluster)
            .ok_or_else(|| format!("cluster {cluster} is not connected"))
    }

    fn apply_options(&self) -> ApplyOptions {
        ApplyOptions {
            dry_run: self.options.dry_run,
            force: self.options.force,
        }
    }

    async fn execute(&self, step: &Step) -> Result<Outcome, String> {
        let client = self.client(&step.cluster)?;
        match &step.action {
            Action::Apply { object, wait } => {
                let outcome = client
                    .apply(object, &self.apply_options())
                    .await
                    .map_err(|e| e.to_string())?;
                match wait {
                    Some(Wait::ExternalAddress) if !self.options.dry_run => {
                        self.await_address(client, &step.object).await?;
                    }
                    Some(Wait::Token) => self.reader_token(client, step).await?,
                    _ => {}
                }
                if outcome == ApplyOutcome::Created
                    && step.phase == Phase::CaCerts
                    && step.object.kind == "Secret"
                    && step.object.name == "cacerts"
                    && self.istiod_running.contains(&step.cluster)
                {
                    self.istiod_restart_notice(&step.cluster);
                }
                Ok(outcome.into())
            }
            Action::RemoteSecret { source } => self.remote_secret(client, step, source).await,
        }
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

    async fn await_address(&self, client: &C, service: &ObjectRef) -> Result<(), String> {
        let started = Instant::now();
        let mut interval = Duration::from_millis(100);
        loop {
            let live = client.get(service).await.map_err(|e| e.to_string())?;
            if live.as_ref().is_some_and(has_external_address) {
                return Ok(());
            }
            let elapsed = started.elapsed();
            if elapsed >= self.options.timeout {
                return Err(format!(
                    "cluster {}: {service} has no external address after {}s: the other \
                     networks reach this cluster through it. Does the cluster have a \
                     load-balancer controller (cloud LB, MetalLB)? Otherwise set \
                     spec.externalIPs on the Service, or raise --timeout",
                    client.name(),
                    elapsed.as_secs()
                ));
            }
            tokio::time::sleep(interval.min(self.options.timeout - elapsed)).await;
            interval = (interval * 2).min(Duration::from_secs(1));
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
            .servers
            .get(source)
            .ok_or_else(|| format!("no API server address known for {source}"))?;
        let Some(token) = token else {
            // Only a dry run gets here (a real run skips the step when the token wait failed):
            // the token does not exist yet, so whatever is there will change.
            let live = self.known_live(step);
            return Ok(match live {
                Some(None) => Outcome::Created,
                Some(Some(_)) => Outcome::Updated,
                None => match client.get(&step.object).await.map_err(|e| e.to_string())? {
                    None => Outcome::Created,
                    Some(_) => Outcome::Updated,
                },
            });
        };
        let desired =
            super::remote_secret_object(source, &self.plan.istio_namespace, server, &token)
                .map_err(|e| e.to_string())?;
        if let Some(live) = self.known_live(step) {
            let unchanged = live
                .as_ref()
                .is_some_and(|live| is_subset(&normalize_secret(desired.clone()), live));
            if unchanged {
                return Ok(Outcome::Unchanged);
            }
        }
        client
            .apply(&desired, &self.apply_options())
            .await
            .map(Outcome::from)
            .map_err(|e| e.to_string())
    }

    /// What the destination's list said about this step's remote secret: `None` when the
    /// destination was not listed, `Some(None)` when listed and absent.
    fn known_live(&self, step: &Step) -> Option<Option<Value>> {
        let state = self.lock();
        let listed = state.live_remote.get(&step.cluster)?;
        Some(listed.get(&step.object.name).cloned())
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
            if let Some((outcome, _)) = state.results.get(&step.id) {
                totals.add(*outcome);
            }
        }
        totals
    }

    /// The results of every step in plan order (a step never reached counts as skipped).
    pub fn step_reports(&self) -> Vec<(String, StepReport)> {
        let state = self.lock();
        self.plan
            .steps
            .iter()
            .map(|step| {
                let (outcome, error) = state
                    .results
                    .get(&step.id)
                    .cloned()
                    .unwrap_or((Outcome::Skipped, Some("not attempted".to_string())));
                (
                    step.cluster.clone(),
                    StepReport {
                        phase: step.phase,
                        action: step.action.as_str(),
                        object: step.object.clone(),
                        source: step.source.clone(),
                        outcome,
                        error,
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

/// The part of a listed remote secret that a desired one is compared with. The rest (notably
/// `managedFields`) is dropped at once: a 100-cluster mesh lists 9,900 of them.
fn essentials(mut secret: Value) -> Value {
    let mut take = |pointer: &str| {
        secret
            .pointer_mut(pointer)
            .map(Value::take)
            .unwrap_or(Value::Null)
    };
    json!({
        "apiVersion": take("/apiVersion"),
        "kind": take("/kind"),
        "type": take("/type"),
        "metadata": {
            "name": take("/metadata/name"),
            "namespace": take("/metadata/namespace"),
            "labels": take("/metadata/labels"),
            "annotations": take("/metadata/annotations"),
        },
        "data": take("/data"),
    })
}

/// True when a Service has an address other networks can dial: a load-balancer ingress IP or
/// hostname, or `spec.externalIPs` (`reference/istio.md` §5.6).
pub(crate) fn has_external_address(service: &Value) -> bool {
    let ingress = service
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|i| {
                ["ip", "hostname"].iter().any(|k| {
                    i.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                })
            })
        });
    let external_ips = service
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|list| !list.is_empty());
    ingress || external_ips
}
