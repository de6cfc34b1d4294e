//! What a run tells its caller: the typed event stream while it runs and the [`Report`] at the
//! end. Human output and `-o json` are both rendered from these, so they cannot disagree.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ExecuteOptions;
use super::detect::Detected;
use super::preflight::{Blocker, ClusterState, Verdicts};
use super::run::RunResult;
use crate::cluster::ObjectRef;
use crate::plan::{Phase, Step, serialize_object_ref};
use crate::spec::MeshSpec;

/// What happened to one step.
///
/// In a dry run the outcome is what *would* happen, as far as reading the cluster can tell.
///
/// ```
/// use mesh_core::execute::Outcome;
/// assert_eq!(Outcome::Unchanged.as_str(), "unchanged");
/// assert!(Outcome::Created.is_success() && !Outcome::Skipped.is_success());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The object did not exist and was created.
    Created,
    /// The object existed and some of its fields were changed.
    Updated,
    /// The object already held every desired field: nothing was written.
    Unchanged,
    /// The step was attempted and failed.
    Failed,
    /// The step was not attempted: its cluster was unreachable, or a step it needs failed.
    Skipped,
}

impl Outcome {
    /// The lower-case name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    /// True for created, updated and unchanged.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            Outcome::Created | Outcome::Updated | Outcome::Unchanged
        )
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of step outcomes.
///
/// ```
/// use mesh_core::execute::{Outcome, Totals};
/// let mut t = Totals::default();
/// t.add(Outcome::Created);
/// t.add(Outcome::Unchanged);
/// assert_eq!((t.created, t.unchanged, t.total()), (1, 1, 2));
/// assert!(t.all_succeeded());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Steps that created an object.
    pub created: usize,
    /// Steps that changed an object.
    pub updated: usize,
    /// Steps that found their object already right.
    pub unchanged: usize,
    /// Steps that failed.
    pub failed: usize,
    /// Steps not attempted.
    pub skipped: usize,
}

impl Totals {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &Totals) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    /// Every step counted.
    pub fn total(&self) -> usize {
        self.created + self.updated + self.unchanged + self.failed + self.skipped
    }

    /// Steps that wrote something.
    pub fn written(&self) -> usize {
        self.created + self.updated
    }

    /// True when nothing failed and nothing was skipped.
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0 && self.skipped == 0
    }
}

/// How a cluster fared as a whole.
///
/// ```
/// use mesh_core::execute::ClusterStatus;
/// assert_eq!(ClusterStatus::NotAttempted.as_str(), "not-attempted");
/// assert_eq!(serde_json::to_value(ClusterStatus::Incomplete).unwrap(), "incomplete");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterStatus {
    /// Every step succeeded.
    Ok,
    /// At least one step (or its preflight) failed.
    Failed,
    /// Nothing failed here, but some steps were skipped because another cluster they need did
    /// not complete (a remote secret whose source failed).
    Incomplete,
    /// The cluster could not be reached; with `--skip-unreachable` its steps were skipped.
    Unreachable,
    /// Nothing was attempted on it because preflight stopped the run elsewhere.
    NotAttempted,
}

impl ClusterStatus {
    /// The name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Ok => "ok",
            ClusterStatus::Failed => "failed",
            ClusterStatus::Incomplete => "incomplete",
            ClusterStatus::Unreachable => "unreachable",
            ClusterStatus::NotAttempted => "not-attempted",
        }
    }
}

/// Why preflight kept a cluster out, as a kind a caller can act on (the message has details).
///
/// ```
/// use mesh_core::execute::Problem;
/// assert_eq!(serde_json::to_value(Problem::CacertsConflict).unwrap(), "cacerts-conflict");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// The API server could not be reached (after retries).
    Unreachable,
    /// The kubeconfig entry is missing or broken, or the credentials were rejected.
    Credentials,
    /// The credentials may not read or write what apply needs.
    Forbidden,
    /// `cacerts` already exists with a different root.
    CacertsConflict,
    /// The API server other clusters would dial is a loopback address.
    LoopbackServer,
    /// Istio (or, for ambient, the Gateway API) is not installed, and the mesh file does not
    /// have meshboot install it: the message has the command that does.
    IstioMissing,
    /// `controlPlane.install: helm`, but an object the charts own was installed another way
    /// (istioctl, manifests, another Helm release): Helm would refuse it.
    ControlPlaneConflict,
    /// Anything else (the message says what).
    Other,
}

/// The result of one step.
///
/// ```
/// use mesh_core::{cluster::ObjectRef, execute::{Outcome, StepReport}, plan::Phase};
/// let step = StepReport {
///     phase: Phase::RemoteSecrets,
///     action: "remote-secret",
///     object: ObjectRef::namespaced("v1", "Secret", "istio-system", "istio-remote-secret-ap"),
///     source: Some("ap".into()),
///     outcome: Outcome::Created,
///     error: None,
///     detail: None,
/// };
/// let json = serde_json::to_value(&step).unwrap();
/// assert_eq!(json["object"]["name"], "istio-remote-secret-ap");
/// assert_eq!(json["outcome"], "created");
/// assert!(json.get("error").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// The phase of the step.
    pub phase: Phase,
    /// `apply` or `remote-secret`.
    pub action: &'static str,
    /// The object written (or that would be).
    #[serde(serialize_with = "serialize_object_ref")]
    pub object: ObjectRef,
    /// For a remote secret: the cluster it gives access to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it did what it did, when there is more to say than the outcome: for a Helm
    /// release, why it is installed, upgraded or left (`values differ at global.network`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything about one cluster: its preflight, its steps (remote secrets are listed under the
/// cluster they are written to) and their totals.
///
/// ```
/// use mesh_core::execute::{ClusterReport, ClusterStatus, Problem, Totals};
/// let down = ClusterReport {
///     cluster: "us".into(),
///     status: ClusterStatus::Unreachable,
///     error: Some("cluster us: cannot reach API server".into()),
///     problem: Some(Problem::Unreachable),
///     detected: None,
///     steps: vec![],
///     totals: Totals::default(),
/// };
/// assert_eq!(serde_json::to_value(&down).unwrap()["problem"], "unreachable");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport {
    /// The cluster name.
    pub cluster: String,
    /// How it fared.
    pub status: ClusterStatus,
    /// Why preflight failed or the cluster was unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kind of preflight problem, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// What preflight found of Istio there, and the reader identity it chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<Detected>,
    /// The steps, in plan order.
    pub steps: Vec<StepReport>,
    /// Outcome counts of `steps`.
    pub totals: Totals,
}

/// An object meshboot deleted (or, in a dry run, would delete) because nothing needs it any
/// more: a long-lived reader token once the remote secrets carry bound tokens, or what a
/// cluster that left the mesh had (`apply --prune`).
///
/// ```
/// use mesh_core::{cluster::ObjectRef, execute::Removal};
/// let r = Removal { cluster: "eu".into(),
///     object: ObjectRef::namespaced("v1", "Secret", "istio-system", "meshboot-reader-token"),
///     reason: "long-lived reader token".into() };
/// assert_eq!(serde_json::to_value(&r).unwrap()["object"]["name"], "meshboot-reader-token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// The cluster it was in.
    pub cluster: String,
    /// The object.
    #[serde(serialize_with = "serialize_object_ref")]
    pub object: ObjectRef,
    /// Why it went.
    pub reason: String,
}

/// Something the user must do that apply cannot do for them.
///
/// ```
/// let n = mesh_core::execute::Notice {
///     cluster: "eu".into(),
///     message: "istiod in eu must be restarted to pick it up".into(),
///     hint: Some("kubectl --context eu -n istio-system rollout restart deployment/istiod".into()),
/// };
/// assert!(n.hint.unwrap().contains("rollout restart"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The cluster it is about.
    pub cluster: String,
    /// What to know, e.g. `istiod in eu must be restarted to pick it up`.
    pub message: String,
    /// The command that does it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The local CA phase: what happened to the root and to each cluster's intermediate.
///
/// ```
/// let ca = mesh_core::execute::CaReport {
///     dir: "./pki".into(),
///     root: "unchanged".into(),
///     intermediates: vec![("eu".into(), "created".into())],
/// };
/// assert_eq!(serde_json::to_value(&ca).unwrap()["intermediates"][0][1], "created");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaReport {
    /// The CA directory.
    pub dir: String,
    /// `created`, `imported`, `unchanged`, or in a dry run `would create`/`would import`.
    pub root: String,
    /// Per cluster: `created`, `unchanged` or `replaced` (dry run: `would create`...).
    pub intermediates: Vec<(String, String)>,
}

/// The result of a run: per cluster and step, and totals. Serialises to the `-o json` output.
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec) -> Result<(), mesh_core::execute::ExecuteError> {
/// use mesh_core::execute::{ExecuteOptions, Outcome, apply_mesh};
/// let report = apply_mesh(&spec, &ExecuteOptions::default(), &|_| {}).await?;
/// if let Some(why) = &report.stopped {
///     eprintln!("nothing written: {why}");
/// }
/// for cluster in &report.clusters {
///     let failed = cluster.steps.iter().filter(|s| s.outcome == Outcome::Failed).count();
///     println!("{}: {} ({failed} failed)", cluster.cluster, cluster.status.as_str());
/// }
/// let json = serde_json::to_string_pretty(&report).expect("a report always serialises");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// True when nothing was written because this was a dry run.
    pub dry_run: bool,
    /// True when every step on every cluster succeeded (exit code 0).
    pub succeeded: bool,
    /// Set when preflight stopped the run before anything was written, with the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The local CA phase (absent when preflight stopped the run first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaReport>,
    /// One entry per cluster, in mesh-file order.
    pub clusters: Vec<ClusterReport>,
    /// Things the user must do, such as restarting istiod.
    pub notices: Vec<Notice>,
    /// Objects deleted because nothing needs them any more (dry run: would be deleted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Removal>,
    /// What to run next when something is left to do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// Outcome counts over every cluster.
    pub totals: Totals,
}

impl Report {
    /// The report of one cluster.
    pub fn cluster(&self, name: &str) -> Option<&ClusterReport> {
        self.clusters.iter().find(|c| c.cluster == name)
    }
}

/// What a running apply reports as it goes. Library users get the same events the CLI renders.
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec) -> Result<(), mesh_core::execute::ExecuteError> {
/// use mesh_core::execute::{Event, ExecuteOptions, apply_mesh};
/// let log = |event: &Event<'_>| match event {
///     Event::PhaseStarted { phase, steps } => eprintln!("{phase}: {steps} steps"),
///     Event::StepDone { step, outcome, error, .. } => {
///         eprintln!("{} {} {outcome} {}", step.cluster, step.object, error.unwrap_or(""))
///     }
///     Event::Notice { notice } => eprintln!("notice: {}", notice.message),
///     _ => {}
/// };
/// apply_mesh(&spec, &ExecuteOptions::default(), &log).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Preflight finished on one cluster: `error` is `None` when it passed.
    Preflight {
        /// The cluster.
        cluster: &'a str,
        /// Why it failed.
        error: Option<&'a str>,
        /// What kind of problem it was.
        problem: Option<Problem>,
        /// What it found of Istio there (when the cluster could be read and passed).
        detected: Option<&'a Detected>,
    },
    /// The local CA is ready.
    Ca {
        /// What happened to it.
        report: &'a CaReport,
    },
    /// The plan is built: every step that follows is one of its steps.
    Planned {
        /// The plan.
        plan: &'a crate::plan::Plan,
    },
    /// A phase starts, with the number of steps it holds.
    PhaseStarted {
        /// The phase.
        phase: Phase,
        /// Steps in it.
        steps: usize,
    },
    /// A step starts.
    StepStarted {
        /// The step.
        step: &'a Step,
    },
    /// A step ended (or was skipped without starting).
    StepDone {
        /// The step.
        step: &'a Step,
        /// What happened.
        outcome: Outcome,
        /// Why it failed or was skipped.
        error: Option<&'a str>,
        /// Why it did what it did ([`StepReport::detail`]).
        detail: Option<&'a str>,
    },
    /// A phase ended on every cluster.
    PhaseDone {
        /// The phase.
        phase: Phase,
        /// Outcome counts of its steps.
        totals: Totals,
    },
    /// Something the user must do.
    Notice {
        /// What.
        notice: &'a Notice,
    },
}

/// The report of a run that preflight stopped: nothing was written to any cluster.
pub(crate) fn stopped(
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
            let detected = match probes.get(&c.name) {
                Some(Ok(state)) => Some(state.detected.clone()),
                _ => None,
            };
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
                detected,
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
        removed: Vec::new(),
        hints: Vec::new(),
        totals: Totals::default(),
    }
}

/// The report of a run that reached the clusters' steps. `verdicts.blockers` are the clusters
/// skipped from the start (unreachable, with `--skip-unreachable`).
pub(crate) fn finished(
    spec: &MeshSpec,
    options: &ExecuteOptions,
    verdicts: &Verdicts,
    ca: CaReport,
    run: RunResult,
) -> Report {
    let blockers = &verdicts.blockers;
    let mut per_cluster: BTreeMap<String, Vec<StepReport>> = BTreeMap::new();
    for (cluster, step) in run.steps {
        per_cluster.entry(cluster).or_default().push(step);
    }
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
            let (status, error, problem) = match blockers.get(&c.name) {
                Some(blocker) => (
                    ClusterStatus::Unreachable,
                    Some(blocker.message.clone()),
                    Some(blocker.problem),
                ),
                None if cluster_totals.failed > 0 => (ClusterStatus::Failed, None, None),
                None if cluster_totals.skipped > 0 => (ClusterStatus::Incomplete, None, None),
                None => (ClusterStatus::Ok, None, None),
            };
            ClusterReport {
                cluster: c.name.clone(),
                status,
                error,
                problem,
                detected: verdicts.detected.get(&c.name).cloned(),
                steps,
                totals: cluster_totals,
            }
        })
        .collect();
    let succeeded = clusters.iter().all(|c| c.status == ClusterStatus::Ok);
    Report {
        dry_run: options.dry_run,
        succeeded,
        stopped: None,
        ca: Some(ca),
        clusters,
        notices: run.notices,
        removed: run.removed,
        hints: Vec::new(),
        totals,
    }
}
