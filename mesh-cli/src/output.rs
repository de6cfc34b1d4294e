//! How `meshboot apply` shows a run: progress bars on a terminal, one plain line per event
//! otherwise, and a summary (or the JSON report) from the same `Report` at the end.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mesh_core::execute::{
    ClusterStatus, Event, ExecuteOptions, Outcome, Problem, Report, StepReport,
};
use mesh_core::plan::{Action, Phase, Step};
use mesh_core::spec::MeshSpec;

use crate::args::OutputFormat;

/// More clusters than this get one overall bar instead of one bar each.
const MAX_CLUSTER_BARS: usize = 12;

/// Renders the events of a run; shared with the executor's callback, hence the lock.
pub struct Progress {
    dry_run: bool,
    mode: Mutex<Mode>,
}

enum Mode {
    /// Nothing while running (JSON to a pipe).
    Quiet,
    /// One line per event on stdout (not a terminal, or a dry run: the plan is the output).
    Lines,
    /// indicatif bars: one overall, and one per cluster when there are few.
    Bars {
        multi: MultiProgress,
        overall: Option<ProgressBar>,
        clusters: BTreeMap<String, ProgressBar>,
    },
}

impl Progress {
    /// Progress for this process's own stdout and stderr: bars where they are terminals,
    /// lines or nothing where they are pipes (the one place every command decides that).
    pub fn on_this_terminal(format: OutputFormat, dry_run: bool) -> Progress {
        use std::io::IsTerminal;
        Progress::new(
            format,
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
            dry_run,
        )
    }

    pub fn new(
        format: OutputFormat,
        stdout_tty: bool,
        stderr_tty: bool,
        dry_run: bool,
    ) -> Progress {
        let mode = match format {
            OutputFormat::Text if dry_run || !stdout_tty => Mode::Lines,
            OutputFormat::Text => Mode::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                overall: None,
                clusters: BTreeMap::new(),
            },
            OutputFormat::Json | OutputFormat::Yaml if stderr_tty => Mode::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                overall: None,
                clusters: BTreeMap::new(),
            },
            OutputFormat::Json | OutputFormat::Yaml => Mode::Quiet,
        };
        Progress {
            dry_run,
            mode: Mutex::new(mode),
        }
    }

    pub fn event(&self, event: &Event<'_>) {
        let mut mode = self
            .mode
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut *mode {
            Mode::Quiet => {}
            Mode::Lines => {
                if let Some(line) = self.line(event) {
                    // A closed stdout (`| head`) must not abort the run half-way.
                    let _ = writeln!(io::stdout().lock(), "{line}");
                }
            }
            Mode::Bars {
                multi,
                overall,
                clusters,
            } => bars(multi, overall, clusters, event),
        }
    }

    pub fn finish(&self) {
        let mode = self
            .mode
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Mode::Bars {
            overall, clusters, ..
        } = &*mode
        {
            // A bar abandoned on a failure keeps its error; the others say they are done.
            for bar in clusters.values().chain(overall.iter()) {
                if !bar.is_finished() {
                    bar.finish_with_message("done");
                }
            }
        }
    }

    fn line(&self, event: &Event<'_>) -> Option<String> {
        Some(match event {
            Event::Preflight {
                cluster,
                error: None,
                detected,
                ..
            } => {
                let mut line = format!("{:<14} {cluster:<14} ok", "preflight");
                if let Some(d) = detected {
                    line.push_str(&format!(
                        " (istiod: {}",
                        d.istiod.as_deref().unwrap_or("not installed")
                    ));
                    if d.self_signed_ca {
                        line.push_str(", on its self-signed CA");
                    }
                    if let Some(reader) = &d.reader {
                        line.push_str(&format!(
                            "; reader {}: {}",
                            reader.service_account, reader.why
                        ));
                    }
                    line.push(')');
                }
                line
            }
            Event::Preflight {
                cluster,
                error: Some(error),
                ..
            } => format!("{:<14} {cluster:<14} FAILED  {error}", "preflight"),
            Event::Ca { report } => {
                let mut line = format!("{:<14} {:<14} root {}", "ca", "(local)", report.root);
                let mut by_action: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for (cluster, action) in &report.intermediates {
                    by_action.entry(action).or_default().push(cluster);
                }
                for (action, clusters) in by_action {
                    line.push_str(&format!(
                        "; intermediates {action}: {}",
                        clusters.join(", ")
                    ));
                }
                line
            }
            // Remote secrets are pipelined with the readers (a pair starts once its source's
            // token exists), so their lines interleave; say so rather than look out of order.
            Event::PhaseStarted {
                phase: phase @ Phase::RemoteSecrets,
                steps,
            } => format!(
                "== {phase} ({steps} steps, each as soon as its source cluster's reader token is ready)"
            ),
            Event::PhaseStarted { phase, steps } => format!("== {phase} ({steps} steps)"),
            Event::StepDone {
                step,
                outcome,
                error,
                detail,
            } => {
                let mut line = format!(
                    "{:<14} {:<14} {:<62} {}",
                    step.phase.as_str(),
                    step.cluster,
                    describe(step),
                    self.outcome_word(step, *outcome)
                );
                if let Some(error) = error {
                    line.push_str(&format!(": {error}"));
                } else if let Some(detail) = detail {
                    line.push_str(&format!(" ({detail})"));
                }
                line
            }
            Event::Notice { notice } => format!("notice: {}", notice.message),
            _ => return None,
        })
    }

    fn outcome_word(&self, step: &Step, outcome: Outcome) -> &'static str {
        let release = matches!(step.action, Action::Helm(_));
        match (self.dry_run, release, outcome) {
            (true, true, Outcome::Created) => "would install",
            (true, true, Outcome::Updated) => "would upgrade",
            (false, true, Outcome::Created) => "installed",
            (false, true, Outcome::Updated) => "upgraded",
            (true, false, Outcome::Created) => "would create",
            (true, false, Outcome::Updated) => "would update",
            (_, _, other) => other.as_str(),
        }
    }
}

fn describe(step: &Step) -> String {
    match &step.source {
        Some(source) => format!("{} (from {source})", step.object),
        None => step.object.to_string(),
    }
}

fn bars(
    multi: &MultiProgress,
    overall: &mut Option<ProgressBar>,
    clusters: &mut BTreeMap<String, ProgressBar>,
    event: &Event<'_>,
) {
    match event {
        Event::Planned { plan } => {
            let style = ProgressStyle::with_template(
                "{prefix:<14} [{bar:32}] {pos:>5}/{len:<5} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            if plan.clusters.len() <= MAX_CLUSTER_BARS {
                let mut per_cluster: BTreeMap<&str, u64> = BTreeMap::new();
                for step in &plan.steps {
                    *per_cluster.entry(step.cluster.as_str()).or_default() += 1;
                }
                for name in &plan.clusters {
                    let bar = multi.add(ProgressBar::new(
                        per_cluster.get(name.as_str()).copied().unwrap_or_default(),
                    ));
                    bar.set_style(style.clone());
                    bar.set_prefix(name.clone());
                    clusters.insert(name.clone(), bar);
                }
            } else {
                let bar = multi.add(ProgressBar::new(plan.steps.len() as u64));
                bar.set_style(style);
                bar.set_prefix(format!("{} clusters", plan.clusters.len()));
                *overall = Some(bar);
            }
        }
        Event::PhaseStarted { phase, .. } => {
            if let Some(bar) = overall {
                bar.set_message(phase.to_string());
            }
        }
        Event::StepStarted { step } => {
            if let Some(bar) = clusters.get(&step.cluster) {
                bar.set_message(format!("{} {}", step.phase, step.object));
            }
        }
        Event::StepDone {
            step,
            outcome,
            error,
            ..
        } => {
            if let Some(bar) = overall {
                bar.inc(1);
            }
            if let Some(bar) = clusters.get(&step.cluster) {
                bar.inc(1);
                if *outcome == Outcome::Failed {
                    bar.set_message(format!(
                        "FAILED {}: {}",
                        step.object,
                        error.unwrap_or_default()
                    ));
                    bar.abandon();
                }
            }
        }
        Event::Preflight {
            cluster,
            error: Some(error),
            ..
        } => {
            let _ = multi.println(format!("preflight {cluster}: {error}"));
        }
        Event::Notice { notice } => {
            let _ = multi.println(format!("notice: {}", notice.message));
        }
        _ => {}
    }
}

/// What to run next, in the light of the report.
pub fn hints(
    report: &Report,
    spec: &MeshSpec,
    file: &str,
    options: &ExecuteOptions,
) -> Vec<String> {
    let mut again = format!("meshboot apply -f {file}");
    if options.allow_loopback {
        again.push_str(" --allow-loopback");
    }
    let ns = &spec.istio_namespace;
    let context = |cluster: &str| {
        spec.cluster(cluster)
            .map(|c| c.context.clone())
            .unwrap_or_else(|| cluster.to_string())
    };
    let mut hints = Vec::new();
    for cluster in &report.clusters {
        let ctx = context(&cluster.cluster);
        let name = &cluster.cluster;
        match cluster.problem {
            Some(Problem::Unreachable) if report.stopped.is_some() => hints.push(format!(
                "{name}: `kubectl --context {ctx} get namespace {ns}` shows what is wrong; or \
                 `{again} --skip-unreachable` bootstraps the other clusters now and {name} on a \
                 later run"
            )),
            Some(Problem::Unreachable) => hints.push(format!(
                "{name}: once it is reachable, `{again}` finishes it (what is done stays unchanged)"
            )),
            Some(Problem::Credentials) => hints.push(format!(
                "{name}: check the kubeconfig context with `kubectl --context {ctx} auth whoami`"
            )),
            Some(Problem::Forbidden) => hints.push(format!(
                "{name}: `kubectl --context {ctx} auth can-i --list -n {ns}` shows what these \
                 credentials may do; apply needs create and patch on what it writes"
            )),
            Some(Problem::CacertsConflict) => hints.push(format!(
                "{name}: `kubectl --context {ctx} -n {ns} get secret cacerts -o \
                 jsonpath='{{.data.root-cert\\.pem}}' | base64 -d | openssl x509 -noout -subject \
                 -fingerprint -sha256` shows the root it trusts"
            )),
            // These errors already say which field to set, which flag to pass or which
            // command to run; a hint would only repeat it.
            Some(Problem::LoopbackServer)
            | Some(Problem::IstioMissing)
            | Some(Problem::ControlPlaneConflict)
            | Some(Problem::Other)
            | None => {}
        }
    }
    if report.stopped.is_none() {
        let failed: Vec<&str> = report
            .clusters
            .iter()
            .filter(|c| c.status == ClusterStatus::Failed)
            .map(|c| c.cluster.as_str())
            .collect();
        if !failed.is_empty() {
            hints.push(format!(
                "fix what failed on {}, then run `{again}` again: what is done stays unchanged",
                failed.join(", ")
            ));
        }
    }
    if report.succeeded {
        hints.push(if report.dry_run {
            format!("apply it: `{again}`")
        } else {
            let loopback = if options.allow_loopback {
                " --allow-loopback"
            } else {
                ""
            };
            format!("check the mesh: `meshboot verify -f {file}{loopback}`")
        });
    }
    hints
}

/// The human summary printed after a run.
pub fn summary(
    out: &mut dyn Write,
    report: &Report,
    spec: &MeshSpec,
    elapsed: Duration,
) -> io::Result<()> {
    let t = &report.totals;
    let clusters = report.clusters.len();
    if let Some(stopped) = &report.stopped {
        writeln!(out, "apply stopped: {stopped}")?;
    } else if report.dry_run {
        writeln!(
            out,
            "dry run, {clusters} clusters, {} steps: would create {}, would update {}, {} unchanged \
             (nothing was written)",
            t.total(),
            t.created,
            t.updated,
            t.unchanged
        )?;
    } else if t.written() == 0 && report.succeeded {
        writeln!(
            out,
            "{clusters} clusters already converged: all {} objects unchanged, nothing written ({:.1}s)",
            t.total(),
            elapsed.as_secs_f64()
        )?;
    } else {
        writeln!(
            out,
            "{clusters} clusters, {} steps in {:.1}s: {} created, {} updated, {} unchanged, {} \
             failed, {} skipped",
            t.total(),
            elapsed.as_secs_f64(),
            t.created,
            t.updated,
            t.unchanged,
            t.failed,
            t.skipped
        )?;
    }
    let width = spec
        .clusters
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    writeln!(
        out,
        "  {:<width$}  {:<13}  {:>7}  {:>7}  {:>9}  {:>6}  {:>7}",
        "CLUSTER", "STATUS", "CREATED", "UPDATED", "UNCHANGED", "FAILED", "SKIPPED"
    )?;
    for c in &report.clusters {
        writeln!(
            out,
            "  {:<width$}  {:<13}  {:>7}  {:>7}  {:>9}  {:>6}  {:>7}",
            c.cluster,
            c.status.as_str(),
            c.totals.created,
            c.totals.updated,
            c.totals.unchanged,
            c.totals.failed,
            c.totals.skipped
        )?;
    }
    for c in &report.clusters {
        if let Some(error) = &c.error {
            writeln!(out, "error: {error}")?;
        }
        for step in c.steps.iter().filter(|s| s.outcome == Outcome::Failed) {
            writeln!(out, "error: {}", failure_line(&c.cluster, step))?;
        }
        let skipped = c
            .steps
            .iter()
            .filter(|s| s.outcome == Outcome::Skipped)
            .count();
        if skipped > 0 && c.error.is_none() {
            writeln!(out, "  {}: {skipped} steps not attempted", c.cluster)?;
        }
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for removal in &report.removed {
        writeln!(
            out,
            "{verb}: {} {}: {}",
            removal.cluster, removal.object, removal.reason
        )?;
    }
    for notice in &report.notices {
        writeln!(out, "notice: {}", notice.message)?;
        if let Some(hint) = &notice.hint {
            writeln!(out, "  run: {hint}")?;
        }
    }
    for hint in &report.hints {
        writeln!(out, "hint: {hint}")?;
    }
    Ok(())
}

fn failure_line(cluster: &str, step: &StepReport) -> String {
    format!(
        "{cluster} {} {}: {}",
        step.phase,
        step.object,
        step.error.as_deref().unwrap_or("failed")
    )
}
