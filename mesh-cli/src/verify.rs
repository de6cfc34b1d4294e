//! `meshboot verify` (being built).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {}

pub async fn run(_args: VerifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("meshboot verify is not built yet")
}
