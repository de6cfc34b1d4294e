//! The root rotation: a gated state machine over every cluster of the mesh
//! (`reference/istio.md` §2).
//!
//! Each run reads every cluster, derives each one's phase from its live `cacerts` against the
//! two roots of the CA directory's rotation folder, decides ([`decide`]) and, when a gate is
//! open, takes one step for all clusters at once through the executor; it repeats until a gate
//! is closed (waiting at most [`RotateOptions::timeout`] for istiod to publish the bundle) or
//! the rotation is through. Bundles are always "old root, then new root": every transition is
//! then a byte-wise superset or subset of the one before, which istiod 1.20–1.30 requires
//! (`bytes.Contains`):
//!
//! | phase | `root-cert.pem` | intermediate | entered when |
//! |---|---|---|---|
//! | 0 | old | old | — |
//! | 1 | old + new | old | prerequisites hold everywhere |
//! | 2 | old + new | new (signed by new) | gate 1: every cluster in phase 1, bundle published |
//! | 3 | new | new | gate 2: `min_phase_age` since the last cluster reached phase 2 |
//! | abort-1 | old + new | old again | `--abort` from phase 2 |
//! | 0 (aborted) | old | old | `--abort` from phase 1, or `min_phase_age` after abort-1 |

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::annotations::{self, NEW_ROOT, OLD_ROOT, PHASE, SINCE};
use super::intermediate::{blocking, cacerts_step, describe, observe_all};
use super::live::{ClusterView, ROOT_CONFIGMAP};
use super::{RotateError, RotateOptions};
use crate::cluster::{ClusterError, ClusterOps};
use crate::execute::{CaReport, EventSink, Report};
use crate::pki::{self, CaDir, RootFiles, RootRotation, Signer, Trust};
use crate::plan::Plan;
use crate::spec::{MeshSpec, Role};
use crate::verify::cacerts::CacertsSecret;
use crate::verify::{Check, Finding, Severity};

/// Where the new root comes from.
///
/// ```
/// assert_eq!(mesh_core::rotate::NewRoot::default(), mesh_core::rotate::NewRoot::Generate);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NewRoot {
    /// Generate one with the mesh file's `ca` settings and the old root's `O=`.
    #[default]
    Generate,
    /// Bring one: a PEM certificate and its key.
    Files {
        /// The certificate.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
}

/// What `rotate root` is asked to do.
///
/// ```
/// let r = mesh_core::rotate::RootRequest::default();
/// assert_eq!(r.min_phase_age.as_secs(), 24 * 3600);
/// assert!(!r.abort && r.new_root.is_none()); // resume only
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRequest {
    /// The new root. Needed to start a rotation (so a re-run after one completed never starts
    /// the next by accident); a rotation under way keeps its own and only checks a brought
    /// one matches it.
    pub new_root: Option<NewRoot>,
    /// Gate 2 (and the abort's gate back to the old root): how long after the last cluster
    /// reached phase 2 (or abort-1) before the next step. Default 24 h, Istio's default
    /// workload certificate TTL: by then every workload certificate was re-issued.
    pub min_phase_age: Duration,
    /// Walk back to the old root and intermediates instead (refused once phase 3 started).
    pub abort: bool,
}

impl Default for RootRequest {
    fn default() -> Self {
        RootRequest {
            new_root: None,
            min_phase_age: Duration::from_secs(24 * 3600),
            abort: false,
        }
    }
}

/// The phase of one cluster's `cacerts` in a root rotation.
///
/// ```
/// use mesh_core::rotate::RootPhase;
/// assert_eq!(serde_json::to_value(RootPhase::NewIntermediates).unwrap(), "2");
/// assert!(RootPhase::BothRoots < RootPhase::NewIntermediates);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RootPhase {
    /// Phase 0: old root, old intermediate.
    #[serde(rename = "0")]
    OldRoot,
    /// Phase 1: old + new root, old intermediate.
    #[serde(rename = "1")]
    BothRoots,
    /// Phase 2: old + new root, new intermediate.
    #[serde(rename = "2")]
    NewIntermediates,
    /// Phase 3: new root, new intermediate.
    #[serde(rename = "3")]
    NewRootOnly,
    /// Aborting from phase 2: old + new root, old intermediate again.
    #[serde(rename = "abort-1")]
    Aborting,
}

impl RootPhase {
    /// The annotation value: `0`…`3`, `abort-1`.
    pub fn as_str(self) -> &'static str {
        match self {
            RootPhase::OldRoot => "0",
            RootPhase::BothRoots => "1",
            RootPhase::NewIntermediates => "2",
            RootPhase::NewRootOnly => "3",
            RootPhase::Aborting => "abort-1",
        }
    }

    fn parse(text: &str) -> Option<RootPhase> {
        [
            RootPhase::OldRoot,
            RootPhase::BothRoots,
            RootPhase::NewIntermediates,
            RootPhase::NewRootOnly,
            RootPhase::Aborting,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }

    /// The bundle of the phase.
    pub fn trust(self) -> Trust {
        match self {
            RootPhase::OldRoot => Trust::Old,
            RootPhase::BothRoots | RootPhase::NewIntermediates | RootPhase::Aborting => Trust::Both,
            RootPhase::NewRootOnly => Trust::New,
        }
    }

    /// The signer of the intermediate in the phase.
    pub fn signer(self) -> Signer {
        match self {
            RootPhase::OldRoot | RootPhase::BothRoots | RootPhase::Aborting => Signer::Old,
            RootPhase::NewIntermediates | RootPhase::NewRootOnly => Signer::New,
        }
    }

    /// `phase 1 (old + new root, old intermediate)`.
    pub fn describe(self) -> &'static str {
        match self {
            RootPhase::OldRoot => "phase 0 (old root, old intermediate)",
            RootPhase::BothRoots => "phase 1 (old + new root, old intermediate)",
            RootPhase::NewIntermediates => "phase 2 (old + new root, new intermediate)",
            RootPhase::NewRootOnly => "phase 3 (new root only, new intermediate)",
            RootPhase::Aborting => "abort-1 (old + new root, old intermediate again)",
        }
    }
}

impl std::fmt::Display for RootPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// One cluster as the run found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPhase {
    /// The cluster.
    pub cluster: String,
    /// Its phase, when it could be read and agrees with the CA directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<RootPhase>,
    /// When it reached the phase (the `cacerts` annotation).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub since: Option<OffsetDateTime>,
    /// Why it has no phase: down, no `cacerts`, a bundle the rotation did not write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The gates between phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    /// Before a step that changes a root bundle: multi-root istiod and XDS-agent proxies.
    Prerequisites,
    /// Gate 1: every cluster's `cacerts` holds both roots and istiod published them.
    Published,
    /// Gate 2: `min_phase_age` since phase 2 completed everywhere.
    MinPhaseAge,
    /// Back from abort-1: `min_phase_age` since abort-1 completed everywhere.
    AbortMinPhaseAge,
}

/// Whether a gate is open, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateStatus {
    /// The gate.
    pub gate: Gate,
    /// True when the step behind it may run.
    pub open: bool,
    /// One line per cluster that keeps it closed (or what was checked).
    pub detail: Vec<String>,
    /// When a time gate opens.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub opens_at: Option<OffsetDateTime>,
}

/// One step taken: every cluster to `to`.
#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    /// The phase every cluster goes to.
    pub to: RootPhase,
    /// True when the step finished one an earlier run started (no gate is asked again).
    pub finishing: bool,
    /// Clusters that got an intermediate signed by the new root in this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issued: Vec<String>,
    /// The `cacerts` writes, as `apply` reports them.
    pub report: Report,
}

/// What the next step writes to one cluster (the dry run's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedWrite {
    /// The cluster.
    pub cluster: String,
    /// Its `root-cert.pem`.
    pub root_cert: Trust,
    /// The root that signs its intermediate.
    pub intermediate: Signer,
    /// True when its intermediate is new in this step.
    pub new_intermediate: bool,
}

/// The step the run would take (or took last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextStep {
    /// The phase every cluster goes to.
    pub to: RootPhase,
    /// True when it finishes a step an earlier run started.
    pub finishing: bool,
    /// Per cluster.
    pub writes: Vec<PlannedWrite>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootOutcome {
    /// Every cluster is in phase 3; the rotation folder was retired.
    Completed,
    /// Every cluster is back on the old root; the rotation folder was retired.
    Aborted,
    /// Steps were taken; a gate is closed now (run again later).
    Advanced,
    /// Nothing could be taken: a gate is closed.
    Waiting,
    /// A cluster is down or disagrees, a prerequisite is missing, or a write failed.
    Blocked,
    /// Dry run: the step in [`RootReport::next`] would be taken.
    WouldAdvance,
}

/// The result of [`rotate_root_with`]. Serialises to the `-o json` output.
#[derive(Debug, Clone, Serialize)]
pub struct RootReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// `forward` or `abort`.
    pub mode: &'static str,
    /// How it ended.
    pub outcome: RootOutcome,
    /// False when blocked (exit code 1).
    pub succeeded: bool,
    /// SHA-256 of the root being replaced.
    pub old_root: String,
    /// SHA-256 of the root replacing it.
    pub new_root: String,
    /// Every cluster, in mesh-file order, as last read.
    pub clusters: Vec<ClusterPhase>,
    /// The steps taken, in order.
    pub steps: Vec<StepRun>,
    /// The step that would come next (dry run), or that waits behind [`gate`](Self::gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextStep>,
    /// The gate before the next step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateStatus>,
    /// What keeps the rotation from advancing, one line per cluster or problem.
    pub blocked: Vec<String>,
    /// The exact change to make, when a prerequisite is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Where the rotation folder went when the rotation ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
    /// Things to know (e.g. update `ca.root` in the mesh file).
    pub notices: Vec<String>,
}

/// [`rotate_root_with`] connecting through the kubeconfigs of the mesh file.
pub async fn rotate_root(
    spec: &MeshSpec,
    request: &RootRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<RootReport, RotateError> {
    let clients = crate::execute::connect_with(spec, &options.connector()).await;
    rotate_root_with(spec, clients, request, options, on_event).await
}

/// Runs the root rotation as far as its gates allow (see the module docs).
pub async fn rotate_root_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    request: &RootRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<RootReport, RotateError> {
    let ca = CaDir::open(&spec.ca.dir);
    let names = spec.cluster_names();
    let clients: BTreeMap<String, Result<C, ClusterError>> = clients.into_iter().collect();
    let opts = spec.ca_options();
    let started_at = tokio::time::Instant::now();
    let mut steps: Vec<StepRun> = Vec::new();
    let mut rotation = match ca.root_rotation()? {
        Some(r) => {
            if let Some(NewRoot::Files { cert, .. }) = &request.new_root {
                check_same_new_root(&r, cert)?;
            }
            Some(r)
        }
        None => None,
    };
    if rotation.is_none() && !request.abort && request.new_root.is_none() {
        return Err(RotateError::Conflict(format!(
            "no root rotation is under way in {} (no {} folder); start one with --new-root generate (or --new-root CERT,KEY to bring the new root)",
            spec.ca.dir.display(),
            pki::ROTATION_DIR
        )));
    }
    if request.abort && rotation.is_none() {
        return Err(RotateError::Conflict(format!(
            "no root rotation is under way in {} (no {} folder): nothing to abort",
            spec.ca.dir.display(),
            pki::ROTATION_DIR
        )));
    }
    loop {
        let views = observe_all(spec, &clients, &names, true, options.concurrency).await;
        let now = OffsetDateTime::now_utc();
        // Before the rotation folder exists every cluster must be plainly on the mesh root.
        let (old_fp, new_fp) = match &rotation {
            Some(r) => (
                r.old.fingerprint().to_string(),
                Some(r.new.fingerprint().to_string()),
            ),
            None => (mesh_root_fingerprint(&ca)?, None),
        };
        let phases: Vec<ClusterPhase> = names
            .iter()
            .map(|c| match views.get(*c) {
                Some(Ok(view)) => classify(c, view, &old_fp, new_fp.as_deref()),
                Some(Err(why)) => ClusterPhase {
                    cluster: c.to_string(),
                    phase: None,
                    since: None,
                    problem: Some(format!("cannot be read: {why}")),
                },
                None => ClusterPhase {
                    cluster: c.to_string(),
                    phase: None,
                    since: None,
                    problem: Some("not read".into()),
                },
            })
            .collect();
        let published = published_status(&views, &old_fp, new_fp.as_deref());
        let decision = decide(
            &phases,
            request.abort,
            &published,
            now,
            request.min_phase_age,
        );
        let mut report = RootReport {
            dry_run: options.dry_run,
            mode: if request.abort { "abort" } else { "forward" },
            outcome: RootOutcome::Waiting,
            succeeded: true,
            old_root: old_fp.clone(),
            new_root: new_fp.clone().unwrap_or_default(),
            clusters: phases.clone(),
            steps: std::mem::take(&mut steps),
            next: None,
            gate: None,
            blocked: Vec::new(),
            fix: None,
            retired: None,
            notices: Vec::new(),
        };
        match decision {
            Decision::Blocked(lines) => {
                report.outcome = RootOutcome::Blocked;
                report.succeeded = false;
                report.blocked = lines;
                return Ok(report);
            }
            Decision::Done => {
                report.outcome = if request.abort {
                    RootOutcome::Aborted
                } else {
                    RootOutcome::Completed
                };
                if let Some(r) = &rotation {
                    report.new_root = r.new.fingerprint().to_string();
                    if r.on_disk && !options.dry_run {
                        let outcome = if request.abort {
                            "aborted"
                        } else {
                            "completed"
                        };
                        let to = blocking(ca.clone(), move |ca| ca.retire_root_rotation(outcome))
                            .await?;
                        report.retired = Some(to.display().to_string());
                    }
                } else if !request.abort {
                    // Nothing was under way and nothing was started: the dry run of a start
                    // gets here only when every cluster is already plain; say what a real run
                    // would do instead of "completed".
                    report.outcome = RootOutcome::Waiting;
                }
                if spec.ca.root.is_some() && report.outcome == RootOutcome::Completed {
                    report.notices.push(format!(
                        "the mesh file's ca.root still names the old root: point it at the new root's files ({} and {} in {}) before the next `meshboot apply`",
                        pki::ROOT_CERT_FILE,
                        pki::ROOT_KEY_FILE,
                        spec.ca.dir.display()
                    ));
                }
                return Ok(report);
            }
            Decision::Wait(gate) => {
                let can_wait = gate.gate == Gate::Published
                    && !options.dry_run
                    && started_at.elapsed() < options.timeout;
                if can_wait {
                    steps = report.steps;
                    tokio::time::sleep(options.poll).await;
                    continue;
                }
                report.outcome = if report.steps.is_empty() {
                    RootOutcome::Waiting
                } else {
                    RootOutcome::Advanced
                };
                report.next = Some(next_step(
                    &names,
                    &phases,
                    next_after(&phases, request.abort),
                    false,
                ));
                report.gate = Some(gate);
                return Ok(report);
            }
            Decision::Step {
                to,
                finishing,
                gate,
            } => {
                // A step that changes a bundle needs istiod to accept it.
                let changes_trust = phases
                    .iter()
                    .any(|p| p.phase.is_some_and(|ph| ph.trust() != to.trust()));
                if changes_trust {
                    let missing = prerequisites(spec, &views);
                    if !missing.is_empty() {
                        report.outcome = RootOutcome::Blocked;
                        report.succeeded = false;
                        report.blocked = missing;
                        report.fix = Some(prerequisite_fix(spec));
                        report.gate = Some(GateStatus {
                            gate: Gate::Prerequisites,
                            open: false,
                            detail: report.blocked.clone(),
                            opens_at: None,
                        });
                        report.next = Some(next_step(&names, &phases, to, finishing));
                        return Ok(report);
                    }
                }
                if rotation.is_none() {
                    let brought = match &request.new_root {
                        Some(NewRoot::Files { cert, key }) => Some((cert.clone(), key.clone())),
                        _ => None,
                    };
                    let clusters: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                    let dry_run = options.dry_run;
                    let opts = opts.clone();
                    rotation = Some(
                        blocking(ca.clone(), move |ca| {
                            let files = brought.as_ref().map(|(c, k)| RootFiles {
                                cert: c.as_path(),
                                key: k.as_path(),
                            });
                            let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
                            ca.start_root_rotation(files, &opts, &names, dry_run)
                        })
                        .await?,
                    );
                    // The same run continues with the two roots known.
                    if !options.dry_run {
                        steps = report.steps;
                        continue;
                    }
                }
                let issued = if to.signer() == Signer::New {
                    issue_new_intermediates(&ca, &mut rotation, &names, &opts, options.dry_run)
                        .await?
                } else {
                    Vec::new()
                };
                let Some(rot) = rotation.as_ref() else {
                    continue;
                };
                report.new_root = rot.new.fingerprint().to_string();
                let next = next_step(&names, &phases, to, finishing);
                report.gate = gate;
                if options.dry_run {
                    report.outcome = RootOutcome::WouldAdvance;
                    report.next = Some(next);
                    return Ok(report);
                }
                // Every transition must be a byte-wise superset or subset of what istiod has.
                let mut bundles = BTreeMap::new();
                for c in &names {
                    bundles.insert(c.to_string(), rot.bundle(c, to.trust(), to.signer())?);
                }
                let nesting = nesting_problems(&views, &bundles);
                if !nesting.is_empty() {
                    report.outcome = RootOutcome::Blocked;
                    report.succeeded = false;
                    report.blocked = nesting;
                    report.next = Some(next);
                    return Ok(report);
                }
                project(&ca, rot, &names, to)?;
                let run = write_step(
                    spec, &clients, &views, rot, &bundles, to, now, options, on_event,
                )
                .await?;
                let ok = run.succeeded;
                report.steps.push(StepRun {
                    to,
                    finishing,
                    issued,
                    report: run,
                });
                if !ok {
                    report.outcome = RootOutcome::Blocked;
                    report.succeeded = false;
                    report.blocked = vec![format!(
                        "writing {} failed on some clusters (see the steps); nothing advances until every cluster has it: re-run `meshboot rotate root`",
                        to.describe()
                    )];
                    return Ok(report);
                }
                steps = report.steps;
            }
        }
    }
}

/// What [`decide`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Every cluster goes to `to`; `gate` is the (open) gate in front of it.
    Step {
        to: RootPhase,
        finishing: bool,
        gate: Option<GateStatus>,
    },
    /// A gate is closed.
    Wait(GateStatus),
    /// Nothing left to do.
    Done,
    /// Down, disagreeing or inconsistent clusters.
    Blocked(Vec<String>),
}

/// The state machine, as a pure function of what was read: `published` is gate 1's answer per
/// cluster (empty when every cluster published both roots).
pub(crate) fn decide(
    phases: &[ClusterPhase],
    abort: bool,
    published: &[String],
    now: OffsetDateTime,
    min_age: Duration,
) -> Decision {
    let problems: Vec<String> = phases
        .iter()
        .filter_map(|p| {
            p.problem
                .as_ref()
                .map(|why| format!("{}: {why}", p.cluster))
        })
        .collect();
    if !problems.is_empty() {
        return Decision::Blocked(problems);
    }
    let set: BTreeSet<RootPhase> = phases.iter().filter_map(|p| p.phase).collect();
    let at = |phase: RootPhase| -> Vec<&str> {
        phases
            .iter()
            .filter(|p| p.phase == Some(phase))
            .map(|p| p.cluster.as_str())
            .collect()
    };
    let spread = || {
        set.iter()
            .map(|p| format!("{} in {}", at(*p).join(", "), p.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let step = |to, finishing, gate| Decision::Step {
        to,
        finishing,
        gate,
    };
    if abort {
        if set.contains(&RootPhase::NewRootOnly) {
            return Decision::Blocked(vec![format!(
                "phase 3 has started ({} trust the new root only): an abort would leave their workloads' certificates untrusted; finish the rotation with `meshboot rotate root` instead",
                at(RootPhase::NewRootOnly).join(", ")
            )]);
        }
        let back_from_two =
            set.contains(&RootPhase::NewIntermediates) || set.contains(&RootPhase::Aborting);
        if set.contains(&RootPhase::OldRoot) && set.contains(&RootPhase::NewIntermediates) {
            return Decision::Blocked(vec![format!(
                "clusters are more than one step apart: {}",
                spread()
            )]);
        }
        if set.len() == 1 && set.contains(&RootPhase::OldRoot) {
            return Decision::Done;
        }
        if set.contains(&RootPhase::OldRoot) {
            // A step back to the old root was under way: its gate was open then.
            return step(RootPhase::OldRoot, true, None);
        }
        if back_from_two {
            if set.len() == 1 && set.contains(&RootPhase::Aborting) {
                let gate = age_gate(phases, Gate::AbortMinPhaseAge, now, min_age);
                return if gate.open {
                    step(RootPhase::OldRoot, false, Some(gate))
                } else {
                    Decision::Wait(gate)
                };
            }
            return step(
                RootPhase::Aborting,
                set.contains(&RootPhase::Aborting),
                None,
            );
        }
        return step(RootPhase::OldRoot, false, None);
    }
    if set.contains(&RootPhase::Aborting) {
        return Decision::Blocked(vec![format!(
            "an abort is under way ({} went back to the old intermediates): continue it with `meshboot rotate root --abort`",
            at(RootPhase::Aborting).join(", ")
        )]);
    }
    let (Some(lo), Some(hi)) = (set.first().copied(), set.last().copied()) else {
        return Decision::Done;
    };
    if rank(hi) > rank(lo) + 1 {
        return Decision::Blocked(vec![format!(
            "clusters are more than one phase apart: {}",
            spread()
        )]);
    }
    if lo != hi {
        return step(hi, true, None);
    }
    match lo {
        RootPhase::OldRoot => step(RootPhase::BothRoots, false, None),
        RootPhase::BothRoots => {
            let gate = GateStatus {
                gate: Gate::Published,
                open: published.is_empty(),
                detail: if published.is_empty() {
                    vec!["every cluster's cacerts holds old + new root and istiod published both in every istio-ca-root-cert".into()]
                } else {
                    published.to_vec()
                },
                opens_at: None,
            };
            if gate.open {
                step(RootPhase::NewIntermediates, false, Some(gate))
            } else {
                Decision::Wait(gate)
            }
        }
        RootPhase::NewIntermediates => {
            let gate = age_gate(phases, Gate::MinPhaseAge, now, min_age);
            if gate.open {
                step(RootPhase::NewRootOnly, false, Some(gate))
            } else {
                Decision::Wait(gate)
            }
        }
        RootPhase::NewRootOnly | RootPhase::Aborting => Decision::Done,
    }
}

fn rank(p: RootPhase) -> u8 {
    match p {
        RootPhase::OldRoot => 0,
        RootPhase::BothRoots | RootPhase::Aborting => 1,
        RootPhase::NewIntermediates => 2,
        RootPhase::NewRootOnly => 3,
    }
}

/// The phase the waiting step goes to.
fn next_after(phases: &[ClusterPhase], abort: bool) -> RootPhase {
    let lo = phases.iter().filter_map(|p| p.phase).min();
    match (abort, lo) {
        (true, _) => RootPhase::OldRoot,
        (false, Some(RootPhase::BothRoots)) => RootPhase::NewIntermediates,
        (false, Some(RootPhase::NewIntermediates)) => RootPhase::NewRootOnly,
        (false, _) => RootPhase::BothRoots,
    }
}

/// `min_age` since the last cluster reached its phase (a cluster without the annotation counts
/// as reaching it now: waiting longer is safe, shorter is not).
fn age_gate(
    phases: &[ClusterPhase],
    gate: Gate,
    now: OffsetDateTime,
    min_age: Duration,
) -> GateStatus {
    let last = phases
        .iter()
        .map(|p| p.since.unwrap_or(now))
        .max()
        .unwrap_or(now);
    let age = time::Duration::try_from(min_age).unwrap_or(time::Duration::MAX);
    let opens_at = last.checked_add(age).unwrap_or(OffsetDateTime::now_utc());
    let open = now >= opens_at;
    let latest: Vec<&str> = phases
        .iter()
        .filter(|p| p.since.unwrap_or(now) == last)
        .map(|p| p.cluster.as_str())
        .collect();
    GateStatus {
        gate,
        open,
        detail: vec![format!(
            "the last cluster ({}) reached its phase at {}; --min-phase-age {} {}",
            latest.join(", "),
            last.format(&Rfc3339).unwrap_or_default(),
            describe(min_age),
            if open {
                "has passed".to_string()
            } else {
                format!(
                    "opens the gate at {}",
                    opens_at.format(&Rfc3339).unwrap_or_default()
                )
            }
        )],
        opens_at: (!open).then_some(opens_at),
    }
}

/// The phase of one cluster, from its live `cacerts` against the rotation's two roots (or,
/// before one exists, the mesh root alone).
fn classify(cluster: &str, view: &ClusterView, old: &str, new: Option<&str>) -> ClusterPhase {
    let mut out = ClusterPhase {
        cluster: cluster.to_string(),
        phase: None,
        since: None,
        problem: None,
    };
    match phase_of(view, old, new) {
        Ok(phase) => {
            let notes = view.annotations();
            let same_rotation = notes.get(OLD_ROOT).map(String::as_str) == Some(old)
                && notes.get(NEW_ROOT).map(String::as_str) == new;
            let noted = notes.get(PHASE).and_then(|p| RootPhase::parse(p));
            // A bundle in phase 1 reached going back is abort-1: the annotation is the only
            // thing telling the two apart.
            let phase = if phase == RootPhase::BothRoots
                && same_rotation
                && noted == Some(RootPhase::Aborting)
            {
                RootPhase::Aborting
            } else {
                phase
            };
            out.phase = Some(phase);
            if same_rotation && noted == Some(phase) {
                out.since = notes
                    .get(SINCE)
                    .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
            }
        }
        Err(why) => out.problem = Some(why),
    }
    out
}

fn phase_of(view: &ClusterView, old: &str, new: Option<&str>) -> Result<RootPhase, String> {
    let files = match view.cacerts_files() {
        None => return Err("has no cacerts: run `meshboot apply` first".into()),
        Some(Err(why)) => return Err(format!("Secret cacerts: {why}")),
        Some(Ok(files)) => files,
    };
    let bundle: Vec<String> = match files.root_cert.as_deref().map(pki::root_fingerprints) {
        Some(Ok(fps)) => fps,
        Some(Err(e)) => return Err(format!("its root bundle cannot be read: {e}")),
        None => return Err("its cacerts has no root bundle".into()),
    };
    let Some(complete) = files.bundle("") else {
        return Err(format!("its cacerts lacks {}", files.missing().join(", ")));
    };
    let signer = pki::verify_bundle(&complete)
        .map_err(|e| format!("its cacerts does not verify: {e}"))?
        .root_fingerprint;
    let short = |fp: &str| fp.chars().take(23).collect::<String>();
    let name = |fp: &str| {
        if fp == old {
            "old".to_string()
        } else if Some(fp) == new {
            "new".to_string()
        } else {
            short(fp)
        }
    };
    let shape: Vec<String> = bundle.iter().map(|f| name(f)).collect();
    let signed = name(&signer);
    let shape: Vec<&str> = shape.iter().map(String::as_str).collect();
    match (shape.as_slice(), signed.as_str()) {
        (["old"], "old") => Ok(RootPhase::OldRoot),
        (["old", "new"], "old") => Ok(RootPhase::BothRoots),
        (["old", "new"], "new") => Ok(RootPhase::NewIntermediates),
        (["new"], "new") => Ok(RootPhase::NewRootOnly),
        (["new", "old"], _) => Err(
            "its bundle holds the new root before the old one: istiod 1.20–1.30 compare bundles byte for byte, so meshboot writes old then new; re-run from the CA directory that started this rotation".into(),
        ),
        _ if new.is_none() => Err(format!(
            "its bundle holds [{}] with an intermediate signed by {signed}, not just the mesh root {}: a root rotation started elsewhere? Use the CA directory that started it (its rotation/ folder holds both roots)",
            shape.join(", "),
            short(old)
        )),
        _ => Err(format!(
            "its bundle holds [{}] with an intermediate signed by {signed}: not a state this rotation writes",
            shape.join(", ")
        )),
    }
}

/// Gate 1, per cluster: the clusters whose published root bundles lack a root (empty when
/// the gate is open). Only meaningful once a new root exists.
fn published_status(
    views: &BTreeMap<String, Result<ClusterView, String>>,
    old: &str,
    new: Option<&str>,
) -> Vec<String> {
    let Some(new) = new else {
        return vec!["no new root yet".into()];
    };
    let mut out = Vec::new();
    for (cluster, view) in views {
        let Ok(view) = view else {
            continue;
        };
        let Some(maps) = &view.root_configmaps else {
            out.push(format!(
                "{cluster}: the published root ConfigMaps were not read"
            ));
            continue;
        };
        let lacking: Vec<&str> = maps
            .iter()
            .filter(|(_, pem)| {
                let fps = pki::root_fingerprints(pem).unwrap_or_default();
                !(fps.iter().any(|f| f == old) && fps.iter().any(|f| f == new))
            })
            .map(|(ns, _)| ns.as_str())
            .collect();
        let has_istio_ns = maps.iter().any(|(ns, _)| ns == "istio-system");
        if !has_istio_ns {
            out.push(format!(
                "{cluster}: istiod has not published {ROOT_CONFIGMAP} in istio-system yet"
            ));
        } else if !lacking.is_empty() {
            out.push(format!(
                "{cluster}: {ROOT_CONFIGMAP} does not hold both roots yet in {}",
                lacking.join(", ")
            ));
        }
    }
    out
}

/// Multi-root istiod and XDS-agent proxies, per cluster (`reference/istio.md` §2).
fn prerequisites(
    spec: &MeshSpec,
    views: &BTreeMap<String, Result<ClusterView, String>>,
) -> Vec<String> {
    let ns = &spec.istio_namespace;
    let mut out = Vec::new();
    for cluster in &spec.clusters {
        let Some(Ok(view)) = views.get(&cluster.name) else {
            continue;
        };
        let c = &cluster.name;
        let runs_istiod = cluster.role == Role::Primary || view.istiod.present;
        if runs_istiod {
            if !view.istiod.present {
                out.push(format!(
                    "{c}: no istiod runs (Deployment {ns}/istiod not found); a root rotation needs istiod to load and publish the new bundle"
                ));
                continue;
            }
            match view.istiod.version() {
                Some(v) if v < (1, 20) => out.push(format!(
                    "{c}: istiod {} cannot take a new root without a restart (1.20+ can); upgrade Istio first",
                    view.istiod.version_text()
                )),
                _ => {}
            }
            if !view.istiod.env_true("ISTIO_MULTIROOT_MESH") {
                out.push(format!(
                    "{c}: istiod {} runs without ISTIO_MULTIROOT_MESH=true, so it would refuse the new root (\"Multi root is disabled, updating new ROOT-CA not supported\")",
                    view.istiod.version_text()
                ));
            }
        }
        match view.xds_agent {
            Some(true) => {}
            Some(false) => out.push(format!(
                "{c}: the mesh config (ConfigMap {ns}/istio, key mesh) lacks defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT: \"true\", so proxies would not receive the new bundle until restarted"
            )),
            None if runs_istiod => out.push(format!(
                "{c}: no mesh config found (ConfigMap {ns}/istio, key mesh) to tell whether proxies get PROXY_CONFIG_XDS_AGENT=true"
            )),
            None => {}
        }
    }
    out
}

/// The exact change that makes the prerequisites hold.
fn prerequisite_fix(spec: &MeshSpec) -> String {
    let ns = &spec.istio_namespace;
    let contexts: Vec<&str> = spec
        .clusters
        .iter()
        .filter(|c| c.role == Role::Primary)
        .map(|c| c.context.as_str())
        .collect();
    let helm: Vec<String> = contexts
        .iter()
        .map(|ctx| {
            format!(
                "helm upgrade istiod istio/istiod -n {ns} --kube-context {ctx} --reuse-values --set pilot.env.ISTIO_MULTIROOT_MESH=true --set-string meshConfig.defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT=true"
            )
        })
        .collect();
    format!(
        "set `ca: {{multiRoot: true}}` in the mesh file and run `meshboot apply` (with controlPlane.install: helm it upgrades istiod; with install: none apply the rendered Helm values yourself), or run:\n  {}\nthen restart the workloads (`kubectl rollout restart deployment -n <namespace>`) so their proxies start with PROXY_CONFIG_XDS_AGENT, and run `meshboot rotate root` again",
        helm.join("\n  ")
    )
}

fn next_step(names: &[&str], phases: &[ClusterPhase], to: RootPhase, finishing: bool) -> NextStep {
    NextStep {
        to,
        finishing,
        writes: names
            .iter()
            .map(|c| {
                let current = phases
                    .iter()
                    .find(|p| p.cluster == *c)
                    .and_then(|p| p.phase);
                PlannedWrite {
                    cluster: c.to_string(),
                    root_cert: to.trust(),
                    intermediate: to.signer(),
                    new_intermediate: current.map(RootPhase::signer) != Some(to.signer()),
                }
            })
            .collect(),
    }
}

/// Clusters whose live `root-cert.pem` and the one the step writes are not nested byte-wise.
fn nesting_problems(
    views: &BTreeMap<String, Result<ClusterView, String>>,
    bundles: &BTreeMap<String, pki::ClusterBundle>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (cluster, bundle) in bundles {
        let Some(Ok(view)) = views.get(cluster) else {
            continue;
        };
        let Some(Ok(files)) = view.cacerts_files() else {
            continue;
        };
        let live = files.root_cert.unwrap_or_default();
        let desired = &bundle.root_cert_pem;
        if !(live == *desired || live.contains(desired.as_str()) || desired.contains(live.as_str()))
        {
            out.push(format!(
                "{cluster}: its live root-cert.pem is not byte-for-byte part of the bundle this step writes (nor the other way round); istiod 1.20–1.30 would refuse it. Was cacerts written by another tool?"
            ));
        }
    }
    out
}

async fn issue_new_intermediates(
    ca: &CaDir,
    rotation: &mut Option<RootRotation>,
    names: &[&str],
    opts: &pki::CaOptions,
    dry_run: bool,
) -> Result<Vec<String>, RotateError> {
    let Some(taken) = rotation.take() else {
        return Ok(Vec::new());
    };
    if taken.has_new_intermediates(names) {
        *rotation = Some(taken);
        return Ok(Vec::new());
    }
    // Key generation is the slow part: it runs on the blocking pool, the rotation moved
    // there and back.
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let opts = opts.clone();
    let (back, issued) = blocking(ca.clone(), move |ca| {
        let mut r = taken;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let issued = ca.issue_rotation_intermediates(&mut r, &refs, &opts, dry_run)?;
        Ok((r, issued))
    })
    .await?;
    *rotation = Some(back);
    Ok(issued)
}

fn project(
    ca: &CaDir,
    rotation: &RootRotation,
    names: &[&str],
    to: RootPhase,
) -> Result<(), RotateError> {
    ca.project_root_rotation(rotation, names, to.trust(), to.signer())
        .map_err(RotateError::from)
}

#[allow(clippy::too_many_arguments)]
async fn write_step<C: ClusterOps>(
    spec: &MeshSpec,
    clients: &BTreeMap<String, Result<C, ClusterError>>,
    views: &BTreeMap<String, Result<ClusterView, String>>,
    rotation: &RootRotation,
    bundles: &BTreeMap<String, pki::ClusterBundle>,
    to: RootPhase,
    now: OffsetDateTime,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<Report, RotateError> {
    let mut steps = Vec::new();
    for cluster in &spec.clusters {
        let Some(bundle) = bundles.get(&cluster.name) else {
            continue;
        };
        let mut object = crate::render::cacerts::cacerts(spec, cluster, bundle)
            .map_err(|e| RotateError::Execute(e.into()))?;
        let live = views
            .get(&cluster.name)
            .and_then(|v| v.as_ref().ok())
            .and_then(|v| v.cacerts.as_ref());
        annotations::set(
            &mut object,
            &phase_annotations(live, rotation, bundle, to, now),
        );
        steps.push(cacerts_step(steps.len(), spec, &cluster.name, object));
    }
    let plan = Plan {
        clusters: spec.cluster_names().into_iter().map(String::from).collect(),
        steps,
        reader_tokens: BTreeMap::new(),
        bound_readers: BTreeMap::new(),
        istio_namespace: spec.istio_namespace.clone(),
    };
    let usable: BTreeMap<String, C> = clients
        .iter()
        .filter_map(|(n, c)| c.as_ref().ok().map(|c| (n.clone(), c.clone())))
        .collect();
    let ca_report = CaReport {
        dir: spec.ca.dir.display().to_string(),
        root: format!("rotation: {}", to.describe()),
        intermediates: spec
            .clusters
            .iter()
            .map(|c| {
                let word = match to.signer() {
                    Signer::Old => "old intermediate",
                    Signer::New => "new intermediate",
                };
                (c.name.clone(), word.to_string())
            })
            .collect(),
    };
    Ok(crate::execute::run_plan(
        spec,
        &plan,
        usable,
        BTreeMap::new(),
        &options.execute(),
        ca_report,
        on_event,
    )
    .await)
}

/// The rotation annotations a cluster gets for `to`: the time it reached the phase is kept
/// when its live Secret is already there (same bundle, same annotation), else now.
fn phase_annotations(
    live: Option<&Value>,
    rotation: &RootRotation,
    bundle: &pki::ClusterBundle,
    to: RootPhase,
    now: OffsetDateTime,
) -> BTreeMap<String, String> {
    let old = rotation.old.fingerprint().to_string();
    let new = rotation.new.fingerprint().to_string();
    let kept_since = live.and_then(|secret| {
        let notes = annotations::of(secret);
        let same = notes.get(PHASE).map(String::as_str) == Some(to.as_str())
            && notes.get(OLD_ROOT) == Some(&old)
            && notes.get(NEW_ROOT) == Some(&new);
        let files = CacertsSecret::read(secret).ok()?;
        let same_bundle = files.root_cert.as_deref() == Some(bundle.root_cert_pem.as_str())
            && files.ca_cert.as_deref() == Some(bundle.ca_cert_pem.as_str());
        (same && same_bundle)
            .then(|| notes.get(SINCE).cloned())
            .flatten()
    });
    BTreeMap::from([
        (PHASE.to_string(), to.as_str().to_string()),
        (
            SINCE.to_string(),
            kept_since.unwrap_or_else(|| now.format(&Rfc3339).unwrap_or_default()),
        ),
        (OLD_ROOT.to_string(), old),
        (NEW_ROOT.to_string(), new),
    ])
}

fn mesh_root_fingerprint(ca: &CaDir) -> Result<String, RotateError> {
    let info = ca.root_info()?;
    Ok(info.fingerprint_sha256)
}

fn check_same_new_root(rotation: &RootRotation, cert: &std::path::Path) -> Result<(), RotateError> {
    let pem = std::fs::read_to_string(cert).map_err(|e| {
        RotateError::Pki(pki::PkiError::Io {
            path: cert.to_path_buf(),
            source: e,
        })
    })?;
    let fps = pki::root_fingerprints(&pem)?;
    if fps.first().map(String::as_str) != Some(rotation.new.fingerprint()) {
        return Err(RotateError::Conflict(format!(
            "a root rotation to another new root ({}) is under way; --new-root {} does not match it. Finish or abort that rotation first",
            rotation.new.fingerprint(),
            cert.display()
        )));
    }
    Ok(())
}

/// Verify's view of a rotation under way: one finding naming each cluster's phase, so a mesh
/// mid-rotation reads as such rather than as mismatched roots. Empty when the CA directory
/// holds no rotation.
pub(crate) fn verify_findings(
    spec: &MeshSpec,
    cacerts: &BTreeMap<String, Option<Value>>,
) -> Vec<Finding> {
    let ca = CaDir::open(&spec.ca.dir);
    let Ok(Some(rotation)) = ca.root_rotation() else {
        return Vec::new();
    };
    let (old, new) = (rotation.old.fingerprint(), rotation.new.fingerprint());
    let mut by_phase: BTreeMap<RootPhase, Vec<&str>> = BTreeMap::new();
    let mut findings = Vec::new();
    for cluster in &spec.clusters {
        let Some(secret) = cacerts.get(&cluster.name) else {
            continue;
        };
        let view = ClusterView {
            cacerts: secret.clone(),
            ..ClusterView::default()
        };
        let p = classify(&cluster.name, &view, old, Some(new));
        match (p.phase, p.problem) {
            (Some(phase), _) => by_phase
                .entry(phase)
                .or_default()
                .push(cluster.name.as_str()),
            (None, Some(problem)) => findings.push(Finding {
                severity: Severity::Error,
                cluster: Some(cluster.name.clone()),
                check: Check::Rotation,
                message: format!("root rotation under way, but this cluster {problem}"),
                hint: None,
            }),
            (None, None) => {}
        }
    }
    let short = |fp: &str| fp.chars().take(23).collect::<String>();
    let spread: Vec<String> = by_phase
        .iter()
        .map(|(phase, clusters)| format!("{} in {}", clusters.join(", "), phase.describe()))
        .collect();
    findings.insert(
        0,
        Finding {
            severity: Severity::Warning,
            cluster: None,
            check: Check::Rotation,
            message: format!(
                "root rotation under way (old root {} → new root {}): {}",
                short(old),
                short(new),
                spread.join("; ")
            ),
            hint: Some(
                "continue with `meshboot rotate root` (see --dry-run for the gates), or undo it with `meshboot rotate root --abort`".into(),
            ),
        },
    );
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cluster: &str, phase: RootPhase, since: Option<OffsetDateTime>) -> ClusterPhase {
        ClusterPhase {
            cluster: cluster.into(),
            phase: Some(phase),
            since,
            problem: None,
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn forward_steps_wait_for_every_cluster_and_each_gate() {
        let now = OffsetDateTime::now_utc();
        let zero = [
            at("eu", RootPhase::OldRoot, None),
            at("us", RootPhase::OldRoot, None),
        ];
        assert!(matches!(
            decide(&zero, false, &[], now, DAY),
            Decision::Step {
                to: RootPhase::BothRoots,
                finishing: false,
                ..
            }
        ));
        // One cluster through, one not: the step is finished, no gate asked.
        let split = [
            at("eu", RootPhase::BothRoots, None),
            at("us", RootPhase::OldRoot, None),
        ];
        assert!(matches!(
            decide(&split, false, &["us: not published".into()], now, DAY),
            Decision::Step {
                to: RootPhase::BothRoots,
                finishing: true,
                ..
            }
        ));
        let one = [
            at("eu", RootPhase::BothRoots, None),
            at("us", RootPhase::BothRoots, None),
        ];
        let Decision::Wait(gate) = decide(&one, false, &["us: not yet".into()], now, DAY) else {
            panic!("gate 1 must hold while us has not published");
        };
        assert_eq!((gate.gate, gate.open), (Gate::Published, false));
        assert!(matches!(
            decide(&one, false, &[], now, DAY),
            Decision::Step {
                to: RootPhase::NewIntermediates,
                ..
            }
        ));
        let hour_ago = now - time::Duration::hours(1);
        let two = [
            at(
                "eu",
                RootPhase::NewIntermediates,
                Some(now - time::Duration::days(3)),
            ),
            at("us", RootPhase::NewIntermediates, Some(hour_ago)),
        ];
        let Decision::Wait(gate) = decide(&two, false, &[], now, DAY) else {
            panic!("gate 2 counts from the last cluster");
        };
        assert_eq!(gate.opens_at, Some(hour_ago + time::Duration::days(1)));
        assert!(gate.detail[0].contains("us"), "{:?}", gate.detail);
        assert!(matches!(
            decide(&two, false, &[], now, Duration::ZERO),
            Decision::Step {
                to: RootPhase::NewRootOnly,
                ..
            }
        ));
        let three = [
            at("eu", RootPhase::NewRootOnly, None),
            at("us", RootPhase::NewRootOnly, None),
        ];
        assert_eq!(decide(&three, false, &[], now, DAY), Decision::Done);
    }

    #[test]
    fn a_down_or_distant_cluster_blocks_everyone() {
        let now = OffsetDateTime::now_utc();
        let down = [
            at("eu", RootPhase::BothRoots, None),
            ClusterPhase {
                cluster: "us".into(),
                phase: None,
                since: None,
                problem: Some("cannot be read: connection refused".into()),
            },
        ];
        let Decision::Blocked(lines) = decide(&down, false, &[], now, Duration::ZERO) else {
            panic!("a down cluster stops the advance");
        };
        assert_eq!(lines, ["us: cannot be read: connection refused"]);
        let apart = [
            at("eu", RootPhase::OldRoot, None),
            at("us", RootPhase::NewIntermediates, None),
        ];
        assert!(matches!(
            decide(&apart, false, &[], now, Duration::ZERO),
            Decision::Blocked(_)
        ));
    }

    #[test]
    fn abort_walks_back_through_abort_1_with_the_age_gate() {
        let now = OffsetDateTime::now_utc();
        let one = [at("eu", RootPhase::BothRoots, None)];
        assert!(matches!(
            decide(&one, true, &[], now, DAY),
            Decision::Step {
                to: RootPhase::OldRoot,
                ..
            }
        ));
        let two = [
            at("eu", RootPhase::NewIntermediates, None),
            at("us", RootPhase::BothRoots, None),
        ];
        assert!(matches!(
            decide(&two, true, &[], now, DAY),
            Decision::Step {
                to: RootPhase::Aborting,
                ..
            }
        ));
        let back = [
            at("eu", RootPhase::Aborting, Some(now)),
            at("us", RootPhase::Aborting, Some(now)),
        ];
        assert!(matches!(
            decide(&back, true, &[], now, DAY),
            Decision::Wait(_)
        ));
        assert!(matches!(
            decide(&back, true, &[], now, Duration::ZERO),
            Decision::Step {
                to: RootPhase::OldRoot,
                ..
            }
        ));
        let three = [at("eu", RootPhase::NewRootOnly, None)];
        assert!(matches!(
            decide(&three, true, &[], now, DAY),
            Decision::Blocked(_)
        ));
        // Forward while an abort is under way is refused.
        assert!(matches!(
            decide(&back, false, &[], now, DAY),
            Decision::Blocked(_)
        ));
        let done = [at("eu", RootPhase::OldRoot, None)];
        assert_eq!(decide(&done, true, &[], now, DAY), Decision::Done);
    }
}
