//! `meshboot ca ...` (being built).
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create a new root CA.
    Init,
}

pub async fn run(_cmd: CaCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("meshboot ca is not built yet")
}
