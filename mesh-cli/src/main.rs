//! `meshboot`: the command line over mesh-core. Parsing and printing only; the work is in
//! mesh-core.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apply;
mod ca;
mod output;
mod remote_secret;
mod render;
mod verify;

/// Bootstrap an Istio multicluster mesh: CA, manifests, remote secrets, verification.
#[derive(Debug, Parser)]
#[command(name = "meshboot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, import and inspect the mesh certificate authority.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Render every manifest each cluster needs, offline, in apply order.
    Render(render::RenderArgs),
    /// Validate a mesh file; exit 0 when valid, 1 otherwise.
    Validate(render::ValidateArgs),
    /// Bring every cluster of the mesh file to a working multicluster configuration.
    Apply(apply::ApplyArgs),
    /// Print an istioctl-compatible remote secret for one cluster.
    RemoteSecret(remote_secret::RemoteSecretArgs),
    /// Check every cluster of the mesh against the mesh file.
    Verify(verify::VerifyArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    // One crypto provider for rustls (kube-rs builds its TLS config with the process default).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ca(cmd) => ca::run(cmd).await,
        Command::Render(args) => render::run_render(args).await,
        Command::Validate(args) => render::run_validate(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::RemoteSecret(args) => remote_secret::run(args).await,
        Command::Verify(args) => verify::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One line a person can act on; the chain of causes follows on the same line.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
