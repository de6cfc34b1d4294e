//! `meshboot`: the command line over mesh-core. Parsing and printing only; the work is in
//! mesh-core. Results go to stdout (the text for a person, or one JSON/YAML document with
//! `-o`), progress, warnings, logs and errors to stderr, so artifacts compose with pipes.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::exit::Exit;

mod apply;
mod args;
mod ca;
mod check_expiry;
mod docs;
mod exit;
mod logging;
mod output;
mod remote_secret;
mod render;
mod revoke;
mod rotate;
mod rotation_job;
mod verify;

/// Bootstrap an Istio multicluster mesh: CA, manifests, remote secrets, verification.
#[derive(Debug, Parser)]
#[command(name = "meshboot", version)]
pub struct Cli {
    /// More detail on stderr: -v decisions, -vv every request and retry, -vvv everything.
    /// RUST_LOG, when set, replaces this (tracing env-filter syntax).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
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
    /// Validate a mesh file (with `karmada:`, print the fleet the hub gives); exit 0 when valid, 1 otherwise.
    Validate(render::ValidateArgs),
    /// Bring every cluster of the mesh file to a working multicluster configuration.
    Apply(apply::ApplyArgs),
    /// Print an istioctl-compatible remote secret for one cluster.
    RemoteSecret(remote_secret::RemoteSecretArgs),
    /// Check every cluster of the mesh against the mesh file.
    Verify(verify::VerifyArgs),
    /// Rotate intermediates, or the mesh root in gated phases.
    #[command(subcommand)]
    Rotate(rotate::RotateCommand),
    /// Remove one remote secret and invalidate the credential it held.
    Revoke(revoke::RevokeArgs),
    /// Check the expiry of every certificate and token (exit 0 ok, 1 warning, 2 critical, 3 unknown).
    CheckExpiry(check_expiry::CheckExpiryArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell).
    Completion(docs::CompletionArgs),
    /// Print the man page, or write one page per command into a folder.
    Man(docs::ManArgs),
}

/// The clap definition the parser, completions and man pages all use: every command's
/// `--help` ends with the exit codes.
pub fn command() -> clap::Command {
    fn with_exit_codes(cmd: clap::Command) -> clap::Command {
        let cmd = cmd.mut_subcommands(with_exit_codes);
        if exit::MONITORING_COMMANDS.contains(&cmd.get_name()) {
            // Its own codes are its after_help already.
            return cmd;
        }
        match cmd.get_after_help() {
            Some(own) => {
                let text = format!("{own}\n\n{}", exit::EXIT_CODES);
                cmd.after_help(text)
            }
            None => cmd.after_help(exit::EXIT_CODES),
        }
    }
    with_exit_codes(Cli::command())
}

#[tokio::main]
async fn main() -> ExitCode {
    // One crypto provider for rustls (kube-rs builds its TLS config with the process default).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let parsed = command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // A bad command line of a monitoring command is "unknown" (3), never "critical" (2).
        Err(e) if e.use_stderr() && exit::is_monitoring(std::env::args_os()) => {
            let _ = e.print();
            return Exit::Unknown.into();
        }
        Err(e) => e.exit(),
    };
    logging::init(cli.verbose);
    let result = match cli.command {
        Command::Ca(cmd) => ca::run(cmd).await,
        Command::Render(args) => render::run_render(args).await,
        Command::Validate(args) => render::run_validate(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::RemoteSecret(args) => remote_secret::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Rotate(cmd) => rotate::run(cmd).await,
        Command::Revoke(args) => revoke::run(args).await,
        Command::CheckExpiry(args) => check_expiry::run(args).await,
        Command::Completion(args) => docs::completion(args),
        Command::Man(args) => docs::man(args),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            // One line a person can act on; the chain of causes follows on the same line.
            eprintln!("error: {err:#}");
            exit::of_error(&err).into()
        }
    }
}
