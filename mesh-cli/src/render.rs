//! `meshboot render` and `meshboot validate`: argument parsing and printing only; the work is in
//! `mesh_core::spec`, `mesh_core::pki` and `mesh_core::render`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mesh_core::pki::CaDir;
use mesh_core::render::{self, output};
use mesh_core::spec::{MeshSpec, SpecError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// DIR/<cluster>/NN-<what>.yaml, applied in name order.
    Files,
    /// The same files plus a kustomization.yaml per cluster.
    Kustomize,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The mesh file.
    #[arg(short = 'f', long = "file", value_name = "MESH_YAML")]
    file: PathBuf,
    /// Output folder (created if missing; only files render owns are written).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Output layout.
    #[arg(long, value_enum, default_value = "files")]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The mesh file.
    #[arg(short = 'f', long = "file", value_name = "MESH_YAML")]
    file: PathBuf,
}

/// Loads the mesh file, printing every problem on its own stderr line.
fn load(file: &Path) -> Result<MeshSpec, ExitCode> {
    MeshSpec::from_file(file).map_err(|err: SpecError| {
        for line in err.lines() {
            eprintln!("error: {line}");
        }
        ExitCode::FAILURE
    })
}

pub async fn run_render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let spec = match load(&args.file) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    // Generating RSA keys takes seconds; keep it off the async runtime's worker.
    let bundles = tokio::task::spawn_blocking({
        let spec = spec.clone();
        move || ensure_ca(&spec)
    })
    .await
    .context("the CA task stopped")??;

    let renders = render::render_mesh(&spec, &bundles)?;
    let format = match args.format {
        Format::Files => output::Format::Files,
        Format::Kustomize => output::Format::Kustomize,
    };
    let ctx = output::PlanContext {
        mesh_file: args.file.display().to_string(),
        out_dir: args.out.display().to_string(),
    };
    let files = output::files(&spec, &renders, format, &ctx)?;
    let report = output::write(&args.out, &files)?;

    println!(
        "rendered {} cluster(s) of mesh {} into {}: {} file(s) written, {} unchanged",
        renders.len(),
        spec.mesh_id,
        args.out.display(),
        report.written.len(),
        report.unchanged.len()
    );
    for path in &report.stale {
        eprintln!(
            "warn: {} is from an earlier render and no longer part of this mesh; left in place, delete it if it is not needed",
            path.display()
        );
    }
    println!(
        "next: follow {} (or run `meshboot apply -f {}`)",
        args.out.join("PLAN.md").display(),
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The CA at `ca.dir`: a brought root imported first (a no-op when already there), then the root
/// (if still missing) and every cluster's intermediate created idempotently.
fn ensure_ca(spec: &MeshSpec) -> anyhow::Result<BTreeMap<String, mesh_core::pki::ClusterBundle>> {
    let ca = CaDir::open(&spec.ca.dir);
    if let Some(root) = &spec.ca.root {
        ca.import(&root.cert, &root.key).with_context(|| {
            format!(
                "importing the root from ca.root ({}, {}) into {}",
                root.cert.display(),
                root.key.display(),
                spec.ca.dir.display()
            )
        })?;
    }
    let bundles = ca
        .ensure(&spec.ca_options(), &spec.cluster_names())
        .with_context(|| format!("preparing the CA in {}", spec.ca.dir.display()))?;
    Ok(bundles
        .into_iter()
        .map(|b| (b.cluster.clone(), b))
        .collect())
}

pub async fn run_validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let spec = match load(&args.file) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    println!(
        "ok: {}: mesh {}, {} cluster(s), {}, {}, {} network(s)",
        args.file.display(),
        spec.mesh_id,
        spec.clusters.len(),
        spec.model,
        spec.dataplane,
        spec.networks().len()
    );
    Ok(ExitCode::SUCCESS)
}
