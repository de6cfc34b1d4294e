//! `meshboot apply` (being built).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {}

pub async fn run(_args: ApplyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("meshboot apply is not built yet")
}
