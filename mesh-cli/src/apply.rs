//! `meshboot apply`: bring every cluster of the mesh file to a working multicluster
//! configuration. Parsing and printing only; the work is `mesh_core::execute::apply_mesh`.

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
    /// Remove what meshboot made for clusters no longer in the mesh file: their remote secrets
    /// in every cluster of the mesh (only meshboot's, found by its field manager; never one
    /// made by hand or by istioctl) and, with bound tokens, the objects their tokens are bound
    /// to. Without it, apply lists them as notices.
    #[arg(long)]
    prune: bool,
    /// A cluster that left the mesh and is still reachable, through CONTEXT of $KUBECONFIG:
    /// --prune also removes its reader token Secret, bound objects and remote secrets (repeat
    /// for several).
    #[arg(long = "prune-context", value_name = "NAME=CONTEXT", value_parser = parse_prune_context)]
    prune_contexts: Vec<(String, String)>,
}

fn parse_prune_context(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, context)) if !name.is_empty() && !context.is_empty() => {
            Ok((name.to_string(), context.to_string()))
        }
        _ => Err(format!(
            "{text:?}: use NAME=CONTEXT (the cluster that left the mesh, and its kubeconfig context)"
        )),
    }
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
    if !args.prune_contexts.is_empty() && !args.prune {
        return Err(anyhow::Error::new(crate::exit::Usage(
            "--prune-context names a cluster to clean up with --prune: add --prune".into(),
        )));
    }
    if let Some((name, _)) = args
        .prune_contexts
        .iter()
        .find(|(name, _)| spec.cluster(name).is_some())
    {
        return Err(anyhow::Error::new(crate::exit::Usage(format!(
            "--prune-context {name}=...: {name} is in the mesh file; --prune-context is for a cluster that left it"
        ))));
    }
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
        prune: args.prune,
    };
    let started = Instant::now();
    let progress = Progress::on_this_terminal(format, dry_run);
    let on_event = |event: &execute::Event<'_>| progress.event(event);
    let result = execute::apply_mesh(&spec, &options, &on_event).await;
    progress.finish();
    let file = args.file.display();
    let mut report = result.with_context(|| format!("apply -f {file}"))?;
    if report.stopped.is_none() {
        for (name, context) in &args.prune_contexts {
            prune_departed(&mut report, &spec, name, context, dry_run).await;
        }
    }
    for notice in &mut report.notices {
        if let Some(hint) = &mut notice.hint {
            *hint = hint.replace("-f mesh.yaml", &format!("-f {file}"));
        }
    }
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

/// `--prune-context NAME=CONTEXT`: what meshboot made in a cluster that left the mesh.
async fn prune_departed(
    report: &mut execute::Report,
    spec: &mesh_core::spec::MeshSpec,
    name: &str,
    context: &str,
    dry_run: bool,
) {
    use mesh_core::cluster::Connector;
    let connected = mesh_core::cluster::KubeConnector::default()
        .connect(name, None, context)
        .await;
    let client = match connected {
        Ok(client) => client,
        Err(e) => {
            report.succeeded = false;
            report.notices.push(execute::Notice {
                cluster: name.to_string(),
                message: format!("--prune-context {name}={context}: {e}"),
                hint: None,
            });
            return;
        }
    };
    let (removed, errors) =
        mesh_core::tokens::prune_departed(&client, &spec.istio_namespace, dry_run).await;
    report.removed.extend(removed);
    for error in errors {
        report.succeeded = false;
        report.notices.push(execute::Notice {
            cluster: name.to_string(),
            message: format!("pruning {name}: {error}"),
            hint: None,
        });
    }
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
