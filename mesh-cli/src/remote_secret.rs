//! `meshboot remote-secret` (being built).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RemoteSecretArgs {}

pub async fn run(_args: RemoteSecretArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("meshboot remote-secret is not built yet")
}
