//! `meshboot verify`: check every cluster of the mesh file, one finding per line (or one JSON
//! report), exit 1 on any error.

use mesh_core::verify::{Severity, VerifyOptions, verify_mesh};

use crate::args::{ConcurrencyArg, MeshFileArg, OutputArg};
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    file: MeshFileArg,
    /// -o text: one line per finding, then a summary; json/yaml: every finding and the
    /// totals.
    #[command(flatten)]
    output: OutputArg,
    /// Accept remote secrets that point at a loopback API server (kind, the emulator).
    #[arg(long)]
    allow_loopback: bool,
    /// Do not try each remote secret's token against its source cluster.
    #[arg(long)]
    skip_token_check: bool,
    /// Show only warnings and errors.
    #[arg(short = 'q', long)]
    quiet: bool,
    #[command(flatten)]
    concurrency: ConcurrencyArg,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<Exit> {
    let spec = match args.file.load().await {
        Ok(spec) => spec,
        Err(exit) => return Ok(exit),
    };
    let options = VerifyOptions {
        allow_loopback: args.allow_loopback,
        check_tokens: !args.skip_token_check,
        concurrency: args
            .concurrency
            .concurrency
            .unwrap_or(VerifyOptions::default().concurrency),
        cluster_concurrency: args
            .concurrency
            .cluster_concurrency
            .unwrap_or(VerifyOptions::default().cluster_concurrency),
    };
    let report = verify_mesh(&spec, &options).await;
    let quiet = args.quiet;
    crate::args::emit(args.output.output, &report, |report, out| {
        for finding in &report.findings {
            if quiet && finding.severity == Severity::Ok {
                continue;
            }
            writeln!(out, "{finding}")?;
        }
        let checks = report.findings.len();
        if report.is_ok() {
            writeln!(
                out,
                "verify: {checks} checks, {} warning(s), no errors",
                report.warnings
            )
        } else {
            writeln!(
                out,
                "verify: {checks} checks, {} error(s), {} warning(s)",
                report.errors, report.warnings
            )
        }
    })?;
    Ok(Exit::ok_if(report.is_ok()))
}
