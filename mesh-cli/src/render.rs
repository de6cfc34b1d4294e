//! `meshboot render` and `meshboot validate` (being built).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RenderArgs {}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {}

pub async fn run_render(_args: RenderArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("meshboot render is not built yet")
}

pub async fn run_validate(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("meshboot validate is not built yet")
}
