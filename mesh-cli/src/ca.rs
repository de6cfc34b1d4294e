//! `meshboot ca init|import|intermediate|inspect`: the mesh certificate authority on disk.
//! Argument parsing and printing only; the work is in `mesh_core::pki`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mesh_core::pki::{
    CaDir, CaOptions, CaReport, CertInfo, InspectedCert, IntermediateStatus, KeyAlgorithm,
};
use serde::Serialize;

use crate::args::{DryRunArg, OutputArg};
use crate::exit::Exit;

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create a new root CA (root-cert.pem, root-key.pem) in DIR.
    Init(InitArgs),
    /// Bring your own root: check an existing root certificate and key and copy them into DIR.
    Import(ImportArgs),
    /// Create the intermediate CA of each cluster, signed by DIR's root (idempotent).
    Intermediate(IntermediateArgs),
    /// Show every certificate in DIR with its chain status and days left.
    Inspect(InspectArgs),
    /// Fetch the CA directory the rotation job keeps in a Secret into DIR.
    Pull(PullArgs),
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The Secret: CONTEXT/NAMESPACE/NAME, through a context of $KUBECONFIG.
    #[arg(long, value_name = "CONTEXT/NAMESPACE/NAME")]
    from: mesh_core::rotate::CaSecretRef,
    /// The CA directory to write (must be empty or missing unless --force).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Overwrite the files of a non-empty DIR with the Secret's (files the Secret does not
    /// hold, such as history/, are left in place).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    dry_run: DryRunArg,
}

const KEY_HELP: &str = "Key algorithm: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256 or ecdsa-p384";

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// CA directory (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    #[arg(long, value_name = "ALG", default_value = "rsa-4096", value_parser = parse_key, help = KEY_HELP)]
    key: KeyAlgorithm,
    /// Root validity in days.
    #[arg(long, value_name = "N", default_value_t = 3650)]
    days: u32,
    /// Organisation (O=) of the root.
    #[arg(long, value_name = "O", default_value = "Istio")]
    org: String,
    /// Replace an existing root (every intermediate it signed stops verifying).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// CA directory (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Root certificate, PEM (one self-signed CA certificate).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Root private key, PEM (PKCS#8, PKCS#1 RSA or SEC1 EC; not encrypted).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Debug, clap::Args)]
pub struct IntermediateArgs {
    /// CA directory holding the root.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Cluster name (a DNS-1123 label); repeat for several clusters.
    #[arg(long = "cluster", value_name = "NAME", required = true)]
    clusters: Vec<String>,
    #[arg(long, value_name = "ALG", default_value = "rsa-4096", value_parser = parse_key, help = KEY_HELP)]
    key: KeyAlgorithm,
    /// Intermediate validity in days (capped at the root's expiry).
    #[arg(long, value_name = "N", default_value_t = 730)]
    days: u32,
    /// Organisation (O=) of new intermediates [default: the root's O=, as render and apply
    /// use].
    #[arg(long, value_name = "O")]
    org: Option<String>,
    /// Replace intermediates that are foreign, expired or broken instead of refusing.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Debug, clap::Args)]
#[command(after_help = INSPECT_HELP)]
pub struct InspectArgs {
    /// CA directory.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Judge expiry like `check-expiry` (for this directory alone): warn when less than this
    /// is left, e.g. 30d. Given (or --critical), the exit code follows the monitoring
    /// convention below.
    #[arg(long, value_name = "DURATION", value_parser = crate::rotate::parse_span)]
    warn: Option<std::time::Duration>,
    /// Critical when less than this is left (or expired), e.g. 7d; see --warn.
    #[arg(long, value_name = "DURATION", value_parser = crate::rotate::parse_span)]
    critical: Option<std::time::Duration>,
    #[command(flatten)]
    output: OutputArg,
}

const INSPECT_HELP: &str = "\
With --warn or --critical (the other defaults to 30d / 7d) the exit code follows the
monitoring-plugin convention of check-expiry: 0 ok, 1 warning, 2 critical (within --critical,
expired, or a chain that fails to verify), 3 unknown (unreadable files, --critical longer
than --warn).";

/// What `ca inspect --warn/--critical` reports: the directory, and the expiry verdicts.
#[derive(Debug, Serialize)]
struct InspectWithExpiry {
    #[serde(flatten)]
    ca: CaReport,
    expiry: mesh_core::rotate::ExpiryReport,
}

/// What `ca init` and `ca import` report.
#[derive(Debug, Serialize)]
struct RootResult {
    /// `created`, `replaced`, `imported` or `unchanged` (the same root imported again); with
    /// `--dry-run` `would create`, `would replace`, `would import`.
    action: &'static str,
    /// True when nothing was written.
    dry_run: bool,
    cert_file: PathBuf,
    key_file: PathBuf,
    root: CertInfo,
}

/// What `ca intermediate` reports.
#[derive(Debug, Serialize)]
struct IntermediatesResult {
    /// True when nothing was written (`action` says what a real run would do).
    dry_run: bool,
    dir: PathBuf,
    intermediates: Vec<IntermediateStatus>,
}

fn parse_key(s: &str) -> Result<KeyAlgorithm, String> {
    s.parse()
        .map_err(|e: mesh_core::pki::PkiError| e.to_string())
}

pub async fn run(cmd: CaCommand) -> anyhow::Result<Exit> {
    if let CaCommand::Pull(args) = cmd {
        return pull(args).await;
    }
    // Key generation and file I/O are blocking; keep them off the async runtime's threads.
    tokio::task::spawn_blocking(move || run_blocking(cmd))
        .await
        .context("the CA task stopped unexpectedly")?
}

fn run_blocking(cmd: CaCommand) -> anyhow::Result<Exit> {
    match cmd {
        CaCommand::Init(args) => init(args),
        CaCommand::Import(args) => import(args),
        CaCommand::Intermediate(args) => intermediate(args),
        CaCommand::Inspect(args) => inspect(args),
        CaCommand::Pull(args) => anyhow::bail!("ca pull {} runs on the async path", args.from),
    }
}

fn init(args: InitArgs) -> anyhow::Result<Exit> {
    let opts = CaOptions {
        key: args.key,
        root_days: args.days,
        org: args.org,
        ..CaOptions::default()
    };
    let ca = CaDir::open(&args.dir);
    let replaced = args.force && ca.has_root();
    let dry_run = args.dry_run.dry_run;
    let root = ca.init_with(&opts, args.force, dry_run)?;
    let action = match (dry_run, replaced) {
        (false, true) => "replaced",
        (false, false) => "created",
        (true, true) => "would replace",
        (true, false) => "would create",
    };
    emit_root(args.output.output, &ca, action, dry_run, root)?;
    if replaced && !dry_run {
        eprintln!(
            "warn: intermediates signed by the old root no longer verify; re-issue them with `meshboot ca intermediate --dir {} --cluster NAME --force`",
            args.dir.display()
        );
    }
    Ok(Exit::Done)
}

fn import(args: ImportArgs) -> anyhow::Result<Exit> {
    let ca = CaDir::open(&args.dir);
    // A second import of the same root is a no-op (a different one is refused below).
    let had_root = ca.has_root();
    let dry_run = args.dry_run.dry_run;
    let root = ca.import_with(&args.cert, &args.key, dry_run)?;
    let action = match (had_root, dry_run) {
        (true, _) => "unchanged",
        (false, false) => "imported",
        (false, true) => "would import",
    };
    emit_root(args.output.output, &ca, action, dry_run, root)?;
    Ok(Exit::Done)
}

fn emit_root(
    format: crate::args::OutputFormat,
    ca: &CaDir,
    action: &'static str,
    dry_run: bool,
    root: CertInfo,
) -> anyhow::Result<()> {
    let result = RootResult {
        action,
        dry_run,
        cert_file: ca.root_cert_path(),
        key_file: ca.root_key_path(),
        root,
    };
    crate::args::emit(format, &result, print_root)
}

fn print_root(result: &RootResult, out: &mut dyn Write) -> std::io::Result<()> {
    match result.action {
        "imported" | "unchanged" | "would import" => writeln!(
            out,
            "{} root CA {} (key {}, mode 0600)",
            result.action,
            result.cert_file.display(),
            result.key_file.display()
        )?,
        action => writeln!(out, "{action} root CA {}", result.cert_file.display())?,
    }
    if result.dry_run {
        writeln!(out, "dry run: nothing was written")?;
    }
    print_cert_summary(out, &result.root)
}

fn intermediate(args: IntermediateArgs) -> anyhow::Result<Exit> {
    let ca = CaDir::open(&args.dir);
    let opts = CaOptions {
        key: args.key,
        intermediate_days: args.days,
        intermediate_org: args.org,
        ..CaOptions::default()
    };
    let clusters: Vec<&str> = args.clusters.iter().map(String::as_str).collect();
    let dry_run = args.dry_run.dry_run;
    let result = IntermediatesResult {
        dry_run,
        intermediates: ca.ensure_intermediates_with(&clusters, &opts, args.force, dry_run)?,
        dir: args.dir,
    };
    crate::args::emit(args.output.output, &result, |result, out| {
        let width = result
            .intermediates
            .iter()
            .map(|s| s.cluster.len())
            .max()
            .unwrap_or(0);
        let action_width = if result.dry_run { 13 } else { 9 };
        for s in &result.intermediates {
            writeln!(
                out,
                "{:<width$}  {:<action_width$}  {}",
                s.cluster,
                s.action.describe(result.dry_run),
                s.dir.display()
            )?;
        }
        if result.dry_run {
            writeln!(out, "dry run: nothing was written")?;
        }
        Ok(())
    })?;
    Ok(Exit::Done)
}

fn inspect(args: InspectArgs) -> anyhow::Result<Exit> {
    if args.warn.is_some() || args.critical.is_some() {
        return inspect_expiry(&args);
    }
    let ca = CaDir::open(&args.dir);
    if !args.dir.is_dir() {
        anyhow::bail!("{} is not a directory", args.dir.display());
    }
    let report = ca.inspect()?;
    crate::args::emit(args.output.output, &report, print_table)?;
    if report.root.is_none() && report.intermediates.is_empty() {
        eprintln!(
            "error: {} holds no CA files; create them with `meshboot ca init --dir {}`",
            args.dir.display(),
            args.dir.display()
        );
        return Ok(Exit::Failed);
    }
    let failed = report
        .root
        .iter()
        .chain(&report.intermediates)
        .filter(|c| !c.chain_ok)
        .count();
    if failed > 0 {
        eprintln!("error: {failed} certificate(s) failed verification");
        return Ok(Exit::Failed);
    }
    Ok(Exit::Done)
}

/// `ca inspect` with thresholds: the table, the expiry lines, monitoring exit codes.
fn inspect_expiry(args: &InspectArgs) -> anyhow::Result<Exit> {
    let limits = crate::check_expiry::ThresholdArgs {
        warn: args
            .warn
            .unwrap_or(std::time::Duration::from_secs(30 * 86_400)),
        critical: args
            .critical
            .unwrap_or(std::time::Duration::from_secs(7 * 86_400)),
    };
    let thresholds = match limits.thresholds() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Unknown);
        }
    };
    if !args.dir.is_dir() {
        eprintln!("error: {} is not a directory", args.dir.display());
        return Ok(Exit::Unknown);
    }
    let ca = match CaDir::open(&args.dir).inspect() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Unknown);
        }
    };
    let expiry = mesh_core::rotate::ExpiryReport::new(
        mesh_core::rotate::check_local(&args.dir, &thresholds),
        &thresholds,
    );
    let broken = !ca.all_ok();
    let value = InspectWithExpiry { ca, expiry };
    crate::args::emit(args.output.output, &value, |v, out| {
        print_table(&v.ca, out)?;
        crate::check_expiry::print(&v.expiry, out)
    })?;
    let status = if broken {
        mesh_core::rotate::ExpiryStatus::Critical
    } else {
        value.expiry.status
    };
    Ok(Exit::of_expiry(status))
}

async fn pull(args: PullArgs) -> anyhow::Result<Exit> {
    use mesh_core::cluster::Connector;
    let non_empty = std::fs::read_dir(&args.dir).is_ok_and(|mut d| d.next().is_some());
    if non_empty && !args.force {
        return Err(anyhow::Error::new(crate::exit::Usage(format!(
            "{} is not empty: pull into a new folder, or pass --force to overwrite its files with the Secret's",
            args.dir.display()
        ))));
    }
    let client = mesh_core::cluster::KubeConnector::default()
        .connect(&args.from.context, None, &args.from.context)
        .await
        .with_context(|| format!("ca pull --from {}", args.from))?;
    let dry_run = args.dry_run.dry_run;
    let files = mesh_core::rotate::load_ca_secret_with(&client, &args.from, &args.dir, dry_run)
        .await
        .with_context(|| format!("ca pull --from {}", args.from))?;
    if dry_run {
        for file in &files {
            println!("would write {}", file.display());
        }
        println!(
            "dry run: CA directory {} would be written from Secret {} ({} files); nothing was written",
            args.dir.display(),
            args.from,
            files.len()
        );
    } else {
        println!(
            "CA directory {} written from Secret {}",
            args.dir.display(),
            args.from
        );
    }
    Ok(Exit::Done)
}

fn print_cert_summary(out: &mut dyn Write, info: &CertInfo) -> std::io::Result<()> {
    writeln!(out, "  subject      {}", info.subject)?;
    writeln!(
        out,
        "  algorithm    {} ({})",
        info.algorithm, info.signature_algorithm
    )?;
    writeln!(
        out,
        "  valid until  {} ({} days)",
        date(info.not_after),
        info.days_left
    )?;
    writeln!(out, "  sha256       {}", info.fingerprint_sha256)
}

fn print_table(report: &CaReport, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<&InspectedCert> = report.root.iter().chain(&report.intermediates).collect();
    let header = [
        "FILE",
        "CLUSTER",
        "SUBJECT",
        "ALGORITHM",
        "CA",
        "NOT AFTER",
        "DAYS LEFT",
        "CHAIN",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|c| {
            let (subject, alg, ca, not_after, days) = match &c.info {
                Some(i) => (
                    i.subject.clone(),
                    i.algorithm.clone(),
                    match (i.is_ca, i.path_len) {
                        (true, Some(n)) => format!("pathlen:{n}"),
                        (true, None) => "yes".into(),
                        (false, _) => "no".into(),
                    },
                    date(i.not_after),
                    i.days_left.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
            };
            [
                relative(&c.file, &report.dir),
                c.cluster.clone().unwrap_or_else(|| "-".into()),
                subject,
                alg,
                ca,
                not_after,
                days,
                if c.chain_ok {
                    "ok".into()
                } else {
                    "FAILED".into()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |row: [&str; 8]| {
        let mut out = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out
    };
    writeln!(out, "CA directory {}", report.dir.display())?;
    writeln!(out, "{}", line(header))?;
    for row in &cells {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    for c in &rows {
        let file = relative(&c.file, &report.dir);
        if !c.chain_ok {
            writeln!(out, "{file}: chain FAILED: {}", c.chain)?;
        }
        for w in &c.warnings {
            writeln!(out, "{file}: warning: {w}")?;
        }
    }
    Ok(())
}

fn relative(file: &Path, dir: &Path) -> String {
    file.strip_prefix(dir).unwrap_or(file).display().to_string()
}

fn date(t: time::OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
