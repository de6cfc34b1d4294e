//! `meshboot verify`: check every cluster of the mesh file, one finding per line (or one JSON
//! report), exit 1 on any error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mesh_core::spec::MeshSpec;
use mesh_core::verify::{Severity, VerifyOptions, verify_mesh};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One line per finding, then a summary.
    Text,
    /// One JSON object: every finding and the totals.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The mesh file.
    #[arg(short = 'f', long = "file", default_value = "mesh.yaml")]
    file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Accept remote secrets that point at a loopback API server (kind, the emulator).
    #[arg(long)]
    allow_loopback: bool,
    /// Do not try each remote secret's token against its source cluster.
    #[arg(long)]
    skip_token_check: bool,
    /// Show only warnings and errors.
    #[arg(short = 'q', long)]
    quiet: bool,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let spec = MeshSpec::from_file(&args.file)
        .with_context(|| format!("reading mesh file {}", args.file.display()))?;
    let options = VerifyOptions {
        allow_loopback: args.allow_loopback,
        check_tokens: !args.skip_token_check,
        ..VerifyOptions::default()
    };
    let report = verify_mesh(&spec, &options).await;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            for finding in &report.findings {
                if args.quiet && finding.severity == Severity::Ok {
                    continue;
                }
                println!("{finding}");
            }
            let checks = report.findings.len();
            if report.is_ok() {
                println!(
                    "verify: {checks} checks, {} warning(s), no errors",
                    report.warnings
                );
            } else {
                println!(
                    "verify: {checks} checks, {} error(s), {} warning(s)",
                    report.errors, report.warnings
                );
            }
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
