//! `meshboot apply`: bring every cluster of the mesh file to a working multicluster
//! configuration. Parsing and printing only; the work is `mesh_core::execute::apply_mesh`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use mesh_core::execute::{self, ExecuteOptions};

use crate::args::{ConcurrencyArg, DryRunArg, MeshFileArg, OutputArg};
use crate::exit::Exit;
use crate::output::{self, Progress};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    file: MeshFileArg,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    concurrency: ConcurrencyArg,
    /// Go on without clusters that cannot be reached (their steps are reported as skipped;
    /// re-run apply once they are back).
    #[arg(long)]
    skip_unreachable: bool,
    /// Accept a loopback API server (127.0.0.1, localhost) in remote secrets: only for local
    /// test clusters such as kind, whose API servers the other clusters can reach that way.
    #[arg(long)]
    allow_loopback: bool,
    /// Take over fields that another field manager (kubectl, helm) owns instead of failing
    /// on the conflict. Never replaces a cacerts of a different root.
    #[arg(long)]
    force: bool,
    /// -o text: progress, then a summary; json/yaml: one report at the end (progress bars on
    /// stderr when it is a terminal).
    #[command(flatten)]
    output: OutputArg,
    /// How long to wait for a gateway's external address, a reader token, or a Helm release
    /// (istiod available), e.g. 90s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    timeout: Duration,
    /// The helm binary (v3.14+ or v4) for controlPlane.install: helm; default: helm on PATH.
    #[arg(long, value_name = "PATH")]
    helm: Option<std::path::PathBuf>,
    /// Apply only part of the plan. `secrets`: cacerts, the reader tokens and the remote
    /// secrets, and the steps they need (namespace, reader identity, with install: helm
    /// istio/base), for fleets whose other objects come from Karmada
    /// (`render --format karmada`).
    #[arg(long, value_enum, value_name = "PART")]
    only: Option<OnlyArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnlyArg {
    /// cacerts, reader tokens, remote secrets, and what they need.
    Secrets,
}

pub async fn run(args: ApplyArgs) -> anyhow::Result<Exit> {
    let spec = match args.file.load().await {
        Ok(spec) => spec,
        Err(exit) => return Ok(exit),
    };
    let dry_run = args.dry_run.dry_run;
    let format = args.output.output;
    let options = ExecuteOptions {
        dry_run,
        concurrency: args
            .concurrency
            .concurrency
            .unwrap_or(ExecuteOptions::default().concurrency),
        cluster_concurrency: args
            .concurrency
            .cluster_concurrency
            .unwrap_or(ExecuteOptions::default().cluster_concurrency),
        skip_unreachable: args.skip_unreachable,
        allow_loopback: args.allow_loopback,
        force: args.force,
        timeout: args.timeout,
        helm: args.helm,
        only: args.only.map(|o| match o {
            OnlyArg::Secrets => mesh_core::plan::Only::Secrets,
        }),
    };
    let started = Instant::now();
    let progress = Progress::new(
        format,
        std::io::stdout().is_terminal(),
        std::io::stderr().is_terminal(),
        dry_run,
    );
    let on_event = |event: &execute::Event<'_>| progress.event(event);
    let result = execute::apply_mesh(&spec, &options, &on_event).await;
    progress.finish();
    let file = args.file.display();
    let mut report = result.with_context(|| format!("apply -f {file}"))?;
    report.hints = output::hints(&report, &spec, &file, &options);

    let elapsed = started.elapsed();
    let only = options.only;
    crate::args::emit(format, &report, |report, out| {
        output::summary(out, report, &spec, elapsed)?;
        if only == Some(mesh_core::plan::Only::Secrets) {
            writeln!(
                out,
                "only secrets: cacerts, the reader tokens and the remote secrets, with the steps they need; \
                 the exposure Gateways and the namespace labels are Karmada's to deliver (`meshboot render --format karmada`)"
            )?;
        }
        Ok(())
    })?;
    Ok(Exit::ok_if(report.succeeded))
}

/// `90s`, `2m`, `1m30s`, `500ms`, `1h`, or a plain number of seconds
/// ([`mesh_core::duration::parse`], as every duration flag), and more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let total = mesh_core::duration::parse(text)?;
    if total.is_zero() {
        return Err(format!(
            "{:?}: the timeout must be more than zero",
            text.trim()
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kubectl_timeouts() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("2 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
