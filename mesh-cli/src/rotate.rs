//! `meshboot rotate intermediate` and `meshboot rotate root`: argument parsing and printing;
//! the work is `mesh_core::rotate`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use mesh_core::execute::Event;
use mesh_core::rotate::{
    self, IntermediateOutcome, IntermediateReport, IntermediateRequest, NewRoot, RootOutcome,
    RootReport, RootRequest, RotateError, RotateOptions,
};
use mesh_core::spec::MeshSpec;

use crate::args::{ConcurrencyArg, DryRunArg, MeshFileArg, OutputArg};
use crate::exit::{Exit, Usage};
use crate::output::Progress;

#[derive(Debug, clap::Subcommand)]
pub enum RotateCommand {
    /// Issue new intermediates from the same root for some clusters and push them as cacerts.
    #[command(after_help = INTERMEDIATE_HELP)]
    Intermediate(IntermediateArgs),
    /// Replace the mesh root in three gated phases over every cluster.
    #[command(after_help = ROOT_HELP)]
    Root(RootArgs),
    /// Give the remote secrets whose bound token expires soon a new one (readerToken.ttl).
    #[command(after_help = TOKENS_HELP)]
    Tokens(TokensArgs),
}

const TOKENS_HELP: &str = "\
Reads every destination's remote secrets (the JWT exp of each token, never the token) and
mints a new bound token for each pair whose token expires within --expiring-within (default
readerToken.refreshBefore). A destination is written only when its remote secret changes, so a
second run writes nothing. istiod swaps its client for the source when a remote secret changes;
releases before 1.30.4 / 1.31.0 drop that cluster's endpoints for a moment (istio/istio#61043):
the report warns where a destination runs one.";

const INTERMEDIATE_HELP: &str = "\
Choose clusters with --cluster (repeatable), or every cluster whose intermediate (in the CA
directory or live in the cluster, whichever ends first) expires within --expiring-within; both
together rotate those of the named clusters that expire. The previous intermediate is kept in
<ca.dir>/<cluster>/previous/; go back to it with:
  meshboot rotate intermediate -f mesh.yaml --rollback --cluster NAME";

const ROOT_HELP: &str = "\
Phases, each completed on every cluster before the next starts anywhere:
  1  root-cert.pem = old + new root; intermediates unchanged
     gate: every cacerts holds both, and istiod published both in istio-ca-root-cert
  2  new intermediates signed by the new root; bundle still old + new
     gate: --min-phase-age since the last cluster reached phase 2
  3  root-cert.pem = new root only
Start with --new-root; afterwards just run it again (after a crash too, or from another
machine with the same CA directory): the phase is read from the clusters.";

#[derive(Debug, clap::Args)]
pub struct IntermediateArgs {
    #[command(flatten)]
    file: MeshFileArg,
    /// A cluster to rotate (repeat for several).
    #[arg(long = "cluster", value_name = "NAME")]
    clusters: Vec<String>,
    /// Rotate every intermediate that expires within this, e.g. 30d, 12h.
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    expiring_within: Option<Duration>,
    /// Go back to the previous intermediate of the --cluster clusters.
    #[arg(long)]
    rollback: bool,
    #[command(flatten)]
    ca_secret: CaSecretArg,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: OutputArg,
    #[command(flatten)]
    concurrency: ConcurrencyArg,
}

#[derive(Debug, clap::Args)]
pub struct RootArgs {
    #[command(flatten)]
    file: MeshFileArg,
    /// Start a rotation: `generate` a new root with the mesh file's ca settings, or bring one
    /// as CERT,KEY (two PEM files). A rotation under way keeps its own root.
    #[arg(long, value_name = "generate|CERT,KEY", value_parser = parse_new_root)]
    new_root: Option<NewRoot>,
    /// Gate 2: how long after the last cluster reached phase 2 the new root may go alone
    /// (every workload certificate re-issued by then), e.g. 24h, 0s.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_span)]
    min_phase_age: Duration,
    /// Return every cluster to the old root and old intermediates (before phase 3 only).
    #[arg(long)]
    abort: bool,
    /// How long to wait for istiod to publish the new bundle (gate 1) before stopping.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_span)]
    timeout: Duration,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: OutputArg,
    #[command(flatten)]
    concurrency: ConcurrencyArg,
}

#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    #[command(flatten)]
    file: MeshFileArg,
    /// Refresh every token that expires within this, e.g. 240h, 10d (default:
    /// readerToken.refreshBefore).
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    expiring_within: Option<Duration>,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: OutputArg,
}

pub async fn run(cmd: RotateCommand) -> anyhow::Result<Exit> {
    match cmd {
        RotateCommand::Intermediate(args) => intermediate(args).await,
        RotateCommand::Root(args) => root(args).await,
        RotateCommand::Tokens(args) => tokens(args).await,
    }
}

async fn tokens(args: TokensArgs) -> anyhow::Result<Exit> {
    let spec = match args.file.load().await {
        Ok(spec) => spec,
        Err(exit) => return Ok(exit),
    };
    let request = mesh_core::tokens::RefreshRequest {
        expiring_within: args.expiring_within,
    };
    let options = RotateOptions {
        dry_run: args.dry_run.dry_run,
        ..RotateOptions::default()
    };
    let format = args.output.output;
    let progress = Progress::on_this_terminal(format, options.dry_run);
    let on_event = |event: &Event<'_>| progress.event(event);
    let result = mesh_core::tokens::rotate_tokens(&spec, &request, &options, &on_event).await;
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => return Err(usage_or(e, &args.file)),
    };
    let file = args.file.display();
    crate::args::emit(format, &report, |r, out| print_tokens(r, &file, out))?;
    Ok(Exit::ok_if(report.succeeded))
}

fn print_tokens(
    r: &mesh_core::tokens::TokensReport,
    file: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    use mesh_core::tokens::PairAction;
    writeln!(
        out,
        "rotate tokens: tokens expiring within {}{}",
        r.within,
        if r.dry_run { " (dry run)" } else { "" }
    )?;
    for p in &r.pairs {
        let what = match (p.action, r.dry_run, p.outcome) {
            (PairAction::Refresh, _, Some(o)) if !o.is_success() => o.to_string(),
            (PairAction::Refresh, true, _) => "would refresh".to_string(),
            (PairAction::Refresh, false, Some(mesh_core::execute::Outcome::Unchanged)) => {
                "unchanged".to_string()
            }
            (PairAction::Refresh, false, _) => "refreshed".to_string(),
            (PairAction::Fresh, _, _) => "fresh".to_string(),
            (PairAction::LongLived, _, _) => "long-lived".to_string(),
            (PairAction::Missing, _, _) => "missing".to_string(),
            (PairAction::Skipped, _, _) => "skipped".to_string(),
        };
        writeln!(
            out,
            "  {} → {}: {what}: {}{}",
            p.source,
            p.destination,
            p.reason,
            p.detail
                .as_deref()
                .map(|d| format!("; {d}"))
                .unwrap_or_default()
        )?;
    }
    for notice in &r.run.notices {
        writeln!(out, "warning: {}", notice.message)?;
    }
    let refreshed = r.refreshed().count();
    let written = r.run.totals.written();
    writeln!(
        out,
        "{refreshed} of {} pairs {}; {} written",
        r.pairs.len(),
        if r.dry_run {
            "would get a new token"
        } else {
            "due for a new token"
        },
        if r.dry_run {
            "nothing".to_string()
        } else {
            format!("{written} remote secret(s)")
        }
    )?;
    if r.pairs
        .iter()
        .any(|p| matches!(p.action, PairAction::Missing | PairAction::LongLived))
    {
        writeln!(
            out,
            "pairs marked missing or long-lived are apply's to fix: meshboot apply -f {file}"
        )?;
    }
    if !r.succeeded {
        writeln!(
            out,
            "rotate tokens: not every pair could be read or refreshed; re-run the same command once the clusters above are reachable"
        )?;
    }
    Ok(())
}

async fn intermediate(args: IntermediateArgs) -> anyhow::Result<Exit> {
    let mut spec = match args.file.load().await {
        Ok(spec) => spec,
        Err(exit) => return Ok(exit),
    };
    let ca = match &args.ca_secret.ca_secret {
        Some(at) => Some(SecretCa::open(&mut spec, at).await?),
        None => None,
    };
    let request = IntermediateRequest {
        clusters: args.clusters.clone(),
        expiring_within: args.expiring_within,
        rollback: args.rollback,
    };
    let options = RotateOptions {
        dry_run: args.dry_run.dry_run,
        ..rotate_options(args.concurrency)
    };
    let format = args.output.output;
    let progress = Progress::on_this_terminal(format, options.dry_run);
    let on_event = |event: &Event<'_>| progress.event(event);
    let result = rotate::rotate_intermediates(&spec, &request, &options, &on_event).await;
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => return Err(usage_or(e, &args.file)),
    };
    if let Some(ca) = &ca
        && !options.dry_run
    {
        ca.save().await?;
    }
    let file = args.file.display();
    crate::args::emit(format, &report, |r, out| {
        print_intermediate(r, &spec, &file, out)
    })?;
    Ok(Exit::ok_if(report.succeeded))
}

/// `--ca-secret CONTEXT/NAMESPACE/NAME`.
#[derive(Debug, Clone, clap::Args)]
pub struct CaSecretArg {
    /// Use the CA directory kept in this Secret (the rotation job's), read through a context
    /// of $KUBECONFIG, instead of the mesh file's ca.dir; a rotation writes it back.
    #[arg(long, value_name = "CONTEXT/NAMESPACE/NAME")]
    pub ca_secret: Option<mesh_core::rotate::CaSecretRef>,
}

/// A CA directory read from a Secret into a private temp folder, the mesh file pointed at it.
pub struct SecretCa {
    dir: tempfile::TempDir,
    client: mesh_core::cluster::ClusterClient,
    at: mesh_core::rotate::CaSecretRef,
    keys: bool,
}

impl SecretCa {
    /// Reads the Secret and makes `spec.ca.dir` the folder it was restored into.
    pub async fn open(
        spec: &mut MeshSpec,
        at: &mesh_core::rotate::CaSecretRef,
    ) -> anyhow::Result<SecretCa> {
        use mesh_core::cluster::Connector;
        let client = mesh_core::cluster::KubeConnector::default()
            .connect(&at.context, None, &at.context)
            .await
            .with_context(|| format!("--ca-secret {at}"))?;
        let dir = tempfile::Builder::new()
            .prefix("meshboot-ca-")
            .tempdir()
            .context("making a private folder for the CA directory")?;
        mesh_core::rotate::load_ca_secret(&client, at, dir.path())
            .await
            .with_context(|| format!("--ca-secret {at}"))?;
        let keys = dir.path().join(mesh_core::pki::ROOT_KEY_FILE).exists();
        // A mesh file's brought root is the CA directory's already; its paths mean nothing here.
        spec.ca.root = None;
        spec.ca.dir = dir.path().to_path_buf();
        Ok(SecretCa {
            dir,
            client,
            at: at.clone(),
            keys,
        })
    }

    /// Writes the folder back into the Secret.
    pub async fn save(&self) -> anyhow::Result<()> {
        let outcome =
            mesh_core::rotate::store_ca_secret(&self.client, &self.at, self.dir.path(), self.keys)
                .await
                .with_context(|| format!("writing the CA directory back into {}", self.at))?;
        tracing::info!(secret = %self.at, %outcome, "CA Secret written back");
        Ok(())
    }
}

pub(crate) fn usage_or(e: RotateError, file: &MeshFileArg) -> anyhow::Error {
    match e {
        RotateError::NothingChosen
        | RotateError::UnknownCluster { .. }
        | RotateError::Conflict(_) => anyhow::Error::new(Usage(e.to_string())),
        other => anyhow::Error::new(other).context(format!("rotate -f {}", file.display())),
    }
}

fn print_intermediate(
    r: &IntermediateReport,
    spec: &MeshSpec,
    file: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let would = if r.dry_run { "would be " } else { "" };
    if r.clusters.is_empty() {
        writeln!(
            out,
            "rotate intermediate: no cluster needs a new intermediate"
        )?;
    }
    for c in &r.clusters {
        let date =
            |s: &rotate::CertSummary| format!("{} ({} days)", s.not_after.date(), s.days_left);
        match c.action {
            IntermediateOutcome::Issued => writeln!(
                out,
                "{}: new intermediate {would}issued from the same root ({}){}",
                c.cluster,
                c.reason,
                c.current
                    .as_ref()
                    .map(|s| format!(", valid until {}", date(s)))
                    .unwrap_or_default()
            )?,
            IntermediateOutcome::RolledBack => writeln!(
                out,
                "{}: {would}rolled back to the previous intermediate{}",
                c.cluster,
                c.current
                    .as_ref()
                    .map(|s| format!(" (serial {}, valid until {})", s.serial, date(s)))
                    .unwrap_or_default()
            )?,
            IntermediateOutcome::Pushed => writeln!(
                out,
                "{}: the CA directory's intermediate {would}pushed ({})",
                c.cluster, c.reason
            )?,
            IntermediateOutcome::Skipped => writeln!(out, "{}: {}", c.cluster, c.reason)?,
        }
        if let (Some(old), IntermediateOutcome::Issued) = (&c.replaced, c.action) {
            writeln!(
                out,
                "  previous intermediate (serial {}, valid until {}) kept in {}",
                old.serial,
                date(old),
                mesh_core::pki::CaDir::open(&spec.ca.dir)
                    .previous_dir(&c.cluster)
                    .display()
            )?;
        }
        if let Some(cluster) = r.run.cluster(&c.cluster) {
            for step in &cluster.steps {
                let outcome = if r.dry_run && step.outcome.is_success() {
                    format!("would be {}", step.outcome)
                } else {
                    step.outcome.to_string()
                };
                writeln!(
                    out,
                    "  Secret {}/cacerts: {outcome}{}",
                    spec.istio_namespace,
                    step.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )?;
            }
        }
        if let Some(istiod) = &c.istiod {
            writeln!(out, "  {}", istiod.message)?;
            if let Some(cmd) = &istiod.command {
                writeln!(out, "    {cmd}")?;
            }
        }
    }
    if r.clusters
        .iter()
        .any(|c| c.action != IntermediateOutcome::Skipped)
    {
        writeln!(out, "{}", r.workloads)?;
    }
    if !r.untouched.is_empty() {
        writeln!(out, "not touched: {}", r.untouched.join(", "))?;
    }
    let rotated: Vec<&str> = r
        .clusters
        .iter()
        .filter(|c| c.action == IntermediateOutcome::Issued)
        .map(|c| c.cluster.as_str())
        .collect();
    if !r.dry_run && !rotated.is_empty() {
        let flags: Vec<String> = rotated.iter().map(|c| format!("--cluster {c}")).collect();
        writeln!(
            out,
            "to roll back: meshboot rotate intermediate -f {file} --rollback {}",
            flags.join(" ")
        )?;
    }
    if !r.succeeded {
        writeln!(
            out,
            "rotate intermediate: not every cluster got its new cacerts; re-run the same command (or `meshboot apply -f {file}`) once it is reachable"
        )?;
    }
    Ok(())
}

async fn root(args: RootArgs) -> anyhow::Result<Exit> {
    let spec = match args.file.load().await {
        Ok(spec) => spec,
        Err(exit) => return Ok(exit),
    };
    let request = RootRequest {
        new_root: args.new_root.clone(),
        min_phase_age: args.min_phase_age,
        abort: args.abort,
    };
    let options = RotateOptions {
        dry_run: args.dry_run.dry_run,
        timeout: args.timeout,
        ..rotate_options(args.concurrency)
    };
    let format = args.output.output;
    let progress = Progress::on_this_terminal(format, options.dry_run);
    let on_event = |event: &Event<'_>| progress.event(event);
    let result = rotate::rotate_root(&spec, &request, &options, &on_event).await;
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => return Err(usage_or(e, &args.file)),
    };
    let file = args.file.display();
    crate::args::emit(format, &report, |r, out| print_root(r, &file, out))?;
    Ok(Exit::ok_if(report.succeeded))
}

fn print_root(r: &RootReport, file: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let short = |fp: &str| fp.chars().take(23).collect::<String>();
    writeln!(
        out,
        "root rotation{}: old root {} → new root {}",
        if r.mode == "abort" { " (abort)" } else { "" },
        short(&r.old_root),
        if r.new_root.is_empty() {
            "(not made yet)".to_string()
        } else {
            short(&r.new_root)
        }
    )?;
    for step in &r.steps {
        writeln!(
            out,
            "step: every cluster to {}{}: {} written, {} unchanged",
            step.to,
            if step.finishing {
                " (finishing the step an earlier run started)"
            } else {
                ""
            },
            step.report.totals.written(),
            step.report.totals.unchanged
        )?;
    }
    for c in &r.clusters {
        match (&c.phase, &c.problem) {
            (Some(phase), _) => writeln!(
                out,
                "  {}: {phase}{}",
                c.cluster,
                c.since
                    .map(|t| format!(
                        " since {}",
                        t.format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    ))
                    .unwrap_or_default()
            )?,
            (None, Some(problem)) => writeln!(out, "  {}: {problem}", c.cluster)?,
            (None, None) => {}
        }
    }
    if let Some(next) = &r.next {
        writeln!(
            out,
            "next step{}: every cluster to {}",
            if r.dry_run && r.outcome == RootOutcome::WouldAdvance {
                " (would run now)"
            } else {
                ""
            },
            next.to
        )?;
        for w in &next.writes {
            let trust = match w.root_cert {
                mesh_core::pki::Trust::Old => "old root",
                mesh_core::pki::Trust::Both => "old root, then new root",
                mesh_core::pki::Trust::New => "new root only",
            };
            let intermediate = match (w.intermediate, w.new_intermediate) {
                (mesh_core::pki::Signer::Old, false) => "intermediate unchanged (old root)",
                (mesh_core::pki::Signer::Old, true) => "back to the old intermediate",
                (mesh_core::pki::Signer::New, true) => "new intermediate signed by the new root",
                (mesh_core::pki::Signer::New, false) => "intermediate unchanged (new root)",
            };
            writeln!(
                out,
                "  {}: cacerts root-cert.pem = {trust}; {intermediate}",
                w.cluster
            )?;
        }
    }
    if let Some(gate) = &r.gate {
        let name = match gate.gate {
            rotate::Gate::Prerequisites => "prerequisites",
            rotate::Gate::Published => "gate 1 (bundle published)",
            rotate::Gate::MinPhaseAge => "gate 2 (--min-phase-age)",
            rotate::Gate::AbortMinPhaseAge => "abort gate (--min-phase-age)",
        };
        writeln!(out, "{name}: {}", if gate.open { "open" } else { "closed" })?;
        for line in &gate.detail {
            writeln!(out, "  {line}")?;
        }
    }
    if !r.blocked.is_empty()
        && r.gate
            .as_ref()
            .is_none_or(|g| g.gate != rotate::Gate::Prerequisites)
    {
        writeln!(
            out,
            "stopped: no cluster advances until these are resolved:"
        )?;
        for line in &r.blocked {
            writeln!(out, "  {line}")?;
        }
    }
    if let Some(fix) = &r.fix {
        writeln!(out, "to fix: {fix}")?;
    }
    for notice in &r.notices {
        writeln!(out, "notice: {notice}")?;
    }
    let abort = if r.mode == "abort" { " --abort" } else { "" };
    match r.outcome {
        RootOutcome::Completed => writeln!(
            out,
            "root rotation complete: every cluster trusts the new root only{}",
            r.retired
                .as_deref()
                .map(|d| format!("; the old root is kept in {d}"))
                .unwrap_or_default()
        )?,
        RootOutcome::Aborted => writeln!(
            out,
            "root rotation aborted: every cluster is back on the old root and intermediates{}",
            r.retired
                .as_deref()
                .map(|d| format!("; the unused new root is kept in {d}"))
                .unwrap_or_default()
        )?,
        RootOutcome::Advanced | RootOutcome::Waiting => writeln!(
            out,
            "waiting at the gate above: run `meshboot rotate root -f {file}{abort}` again later"
        )?,
        RootOutcome::WouldAdvance => writeln!(out, "dry run: nothing was written")?,
        RootOutcome::Blocked => writeln!(
            out,
            "root rotation stopped: fix the above, then run `meshboot rotate root -f {file}{abort}` again"
        )?,
    }
    Ok(())
}

/// `30d`, `24h`, `90m`, `45s`, `500ms`, combinations like `1h30m`, `0s`, or plain seconds:
/// [`mesh_core::duration::parse`], the one parser of every duration flag and field.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    mesh_core::duration::parse(text)
}

fn parse_new_root(text: &str) -> Result<NewRoot, String> {
    if text == "generate" {
        return Ok(NewRoot::Generate);
    }
    match text.split_once(',') {
        Some((cert, key)) if !cert.is_empty() && !key.is_empty() => Ok(NewRoot::Files {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        }),
        _ => Err(format!(
            "{text:?}: use `generate`, or CERT,KEY (the new root's certificate and key files)"
        )),
    }
}

/// The defaults, with the concurrency flags given.
fn rotate_options(flags: ConcurrencyArg) -> RotateOptions {
    let defaults = RotateOptions::default();
    RotateOptions {
        concurrency: flags.concurrency.unwrap_or(defaults.concurrency),
        cluster_concurrency: flags
            .cluster_concurrency
            .unwrap_or(defaults.cluster_concurrency),
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_take_days_and_zero() {
        assert_eq!(parse_span("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_span("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_span("0s"), Ok(Duration::ZERO));
        assert!(parse_span("soon").is_err());
        assert!(parse_span("").is_err());
        assert!(parse_span("3w").is_err());
    }

    #[test]
    fn new_root_is_generate_or_two_files() {
        assert_eq!(parse_new_root("generate"), Ok(NewRoot::Generate));
        assert_eq!(
            parse_new_root("r.pem,k.pem"),
            Ok(NewRoot::Files {
                cert: "r.pem".into(),
                key: "k.pem".into()
            })
        );
        assert!(parse_new_root("r.pem").is_err());
    }
}
