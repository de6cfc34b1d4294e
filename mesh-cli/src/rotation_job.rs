//! `meshboot render rotation-job`: the management cluster's CronJob and what each mesh cluster
//! grants it. Parsing and printing; the objects are `mesh_core::render::rotation_job`, the
//! credentials `mesh_core::rotate::mint_job_credentials_with`.

use std::path::PathBuf;

use anyhow::Context;
use mesh_core::execute::Event;
use mesh_core::render::{output, rotation_job};
use mesh_core::rotate::RotateOptions;
use serde::Serialize;

use crate::args::{DryRunArg, FolderOutputArg, MeshFileArg, OutDirArg};
use crate::exit::Exit;
use crate::output::Progress;

#[derive(Debug, clap::Args)]
pub struct RotationJobArgs {
    #[command(flatten)]
    file: MeshFileArg,
    #[command(flatten)]
    out_dir: OutDirArg,
    /// Apply each mesh cluster's narrow identity (mesh-clusters/<cluster>.yaml) and mint its
    /// token, to write the kubeconfig Secret; without it nothing is sent to any cluster and the
    /// kubeconfig Secret is not written.
    #[arg(long)]
    credentials: bool,
    /// Check only: no private key in the CA Secret, read-only rights, no rotation step.
    #[arg(long)]
    alert_only: bool,
    /// The CronJob schedule.
    #[arg(long, value_name = "CRON", default_value = "17 3 * * *")]
    schedule: String,
    /// The meshboot image the job runs (see the Containerfile).
    #[arg(long, value_name = "IMAGE", default_value = rotation_job::DEFAULT_IMAGE)]
    image: String,
    /// The management cluster's namespace for the job.
    #[arg(long, value_name = "NAMESPACE", default_value = rotation_job::JOB_NAME)]
    namespace: String,
    /// Rotate intermediates (and warn) this many days before they expire.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    expiring_within_days: u32,
    /// Say which files would be written (and, with --credentials, which clusters would get
    /// the identity and a token) without writing a file or contacting a cluster.
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: FolderOutputArg,
}

#[derive(Debug, Serialize)]
struct JobResult {
    /// True when nothing was written or sent: `written` lists what would be.
    dry_run: bool,
    out_dir: PathBuf,
    alert_only: bool,
    written: Vec<PathBuf>,
    unchanged: Vec<PathBuf>,
    /// True when the kubeconfig Secret was written (credentials minted).
    kubeconfig: bool,
    /// Clusters whose credentials could not be minted, with why.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    failed: std::collections::BTreeMap<String, String>,
}

pub async fn run(args: RotationJobArgs) -> anyhow::Result<Exit> {
    let spec = match args.file.load().await {
        Ok(spec) => spec,
        Err(exit) => return Ok(exit),
    };
    let job = rotation_job::JobOptions {
        namespace: args.namespace.clone(),
        schedule: args.schedule.clone(),
        image: args.image.clone(),
        expiring_within_days: args.expiring_within_days,
        alert_only: args.alert_only,
        ..rotation_job::JobOptions::default()
    };
    let ca_dir = spec.ca.dir.clone();
    if !mesh_core::pki::CaDir::open(&ca_dir).has_root() {
        anyhow::bail!(
            "{} holds no root: run `meshboot apply -f {}` (or `meshboot render`) first, so the job has a CA to rotate from",
            ca_dir.display(),
            args.file.display()
        );
    }
    let ca_secret = mesh_core::rotate::ca_dir_secret(
        &ca_dir,
        &job.namespace,
        rotation_job::CA_SECRET,
        !job.alert_only,
    )
    .with_context(|| format!("reading {}", ca_dir.display()))?;
    let dry_run = args.dry_run.dry_run;
    let mut failed = std::collections::BTreeMap::new();
    let kubeconfig = if args.credentials && !dry_run {
        let format = args.output.output;
        let progress = Progress::on_this_terminal(format, false);
        let on_event = |event: &Event<'_>| progress.event(event);
        let clients = mesh_core::execute::connect(&spec).await;
        let minted = mesh_core::rotate::mint_job_credentials_with(
            &spec,
            clients,
            &job,
            &RotateOptions::default(),
            &on_event,
        )
        .await?;
        progress.finish();
        failed = minted.failed;
        if failed.is_empty() {
            Some(rotation_job::kubeconfig_secret(&job, &minted.clusters)?)
        } else {
            None
        }
    } else {
        None
    };
    let files = rotation_job::files(&spec, &job, &ca_secret, kubeconfig.as_ref())?;
    let out_dir = args.out_dir.out_dir.clone();
    let written = if dry_run {
        output::preview(&out_dir, &files)?
    } else {
        output::write(&out_dir, &files)?
    };
    drop(files);
    let result = JobResult {
        dry_run,
        out_dir,
        alert_only: job.alert_only,
        written: written.written,
        unchanged: written.unchanged,
        kubeconfig: kubeconfig.is_some(),
        failed,
    };
    let credentials = args.credentials;
    let clusters = spec.cluster_names().join(", ");
    crate::args::emit(args.output.output, &result, |r, out| {
        let kind = if r.alert_only {
            "alert-only"
        } else {
            "rotating"
        };
        let (lead, rendered, written) = if r.dry_run {
            ("dry run: would render", "to write", " (nothing written)")
        } else {
            ("rendered", "written", "")
        };
        writeln!(
            out,
            "{lead} the {kind} rotation job into {}: {} file(s) {rendered}, {} unchanged{written}",
            r.out_dir.display(),
            r.written.len(),
            r.unchanged.len()
        )?;
        if r.dry_run {
            for path in &r.written {
                writeln!(out, "  would write {}", path.display())?;
            }
            if credentials {
                writeln!(
                    out,
                    "with --credentials: would apply mesh-clusters/<cluster>.yaml and mint a token in {clusters}, then write the kubeconfig Secret"
                )?;
            }
            return Ok(());
        }
        for (cluster, why) in &r.failed {
            writeln!(out, "{cluster}: no credentials: {why}")?;
        }
        if !r.kubeconfig {
            writeln!(
                out,
                "the kubeconfig Secret was not written: {}",
                if r.failed.is_empty() {
                    "run again with --credentials to apply mesh-clusters/*.yaml and mint the tokens"
                } else {
                    "a mesh cluster has no credentials (above)"
                }
            )?;
        }
        writeln!(
            out,
            "next: see {} for what to apply where",
            r.out_dir.join("README.md").display()
        )
    })?;
    Ok(Exit::ok_if(result.failed.is_empty()))
}
