//! `meshboot render` and `meshboot validate`: argument parsing and printing only; the work is in
//! `mesh_core::spec`, `mesh_core::execute::prepare_mesh_ca` (the CA, as apply makes it) and
//! `mesh_core::render`.

use std::path::PathBuf;

use anyhow::Context;
use mesh_core::pki::{IntermediateStatus, PreparedCa, RootAction};
use mesh_core::render::{self, output};
use mesh_core::spec::MeshSpec;
use serde::Serialize;

use crate::args::{DryRunArg, FolderOutputArg, MeshFileArg, OutDirArg, OutputArg, OutputFormat};
use crate::exit::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// DIR/<cluster>/NN-<what>.yaml, applied in name order.
    Files,
    /// The same files plus a kustomization.yaml per cluster.
    Kustomize,
    /// For a Karmada API server: resource templates and (Cluster)PropagationPolicies and
    /// OverridePolicies for everything that holds no secret; the secrets go to the members
    /// with `meshboot apply --only secrets` (PLAN.md says why). Makes no CA.
    Karmada,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RenderArgs {
    /// Render something other than the mesh's manifests.
    #[command(subcommand)]
    what: Option<RenderWhat>,
    #[command(flatten)]
    file: MeshFileArg,
    /// Output folder (created if missing; only files this command owns are written).
    // `OutDirArg`'s spelling, but optional to the parser: a subcommand (`render rotation-job`)
    // takes its own, and clap only lifts `required` for a field that may be absent.
    #[arg(long = "out-dir", value_name = "DIR", required = true)]
    out_dir: Option<PathBuf>,
    /// Layout of the files in --out-dir.
    #[arg(long, value_enum, default_value = "files")]
    format: Format,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: FolderOutputArg,
}

/// What `render` renders besides the mesh's manifests.
#[derive(Debug, clap::Subcommand)]
pub enum RenderWhat {
    /// What a management cluster needs to run rotation as a CronJob, and the identity each
    /// mesh cluster gives it.
    RotationJob(crate::rotation_job::RotationJobArgs),
    /// The reference workload check: `hello` (podinfo) and `sleep` in every cluster, the
    /// commands that show which cluster answers, and the replica split Karmada makes.
    Demo(DemoArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    file: MeshFileArg,
    #[command(flatten)]
    out: OutDirArg,
    /// Templates and policies for the Karmada API server (hello divided by a static weight
    /// list) instead of one folder per cluster.
    #[arg(long)]
    karmada: bool,
    /// Static weights of hello's replicas, e.g. eu=2,us=2,ap=1 (default: 1 for every cluster;
    /// a cluster left out gets none).
    #[arg(long, value_name = "CLUSTER=WEIGHT,...", value_parser = parse_weights)]
    weights: Option<Weights>,
    /// hello's replicas in all.
    #[arg(long, value_name = "N", default_value_t = 3)]
    replicas: u32,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: FolderOutputArg,
}

/// `--weights eu=2,us=2,ap=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights(Vec<(String, u64)>);

fn parse_weights(text: &str) -> Result<Weights, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: write CLUSTER=WEIGHT, e.g. eu=2"))?;
        let weight: u64 = weight
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: the weight must be a whole number, e.g. eu=2"))?;
        out.push((name.trim().to_string(), weight));
    }
    if out.is_empty() {
        return Err("give at least one CLUSTER=WEIGHT, e.g. eu=2,us=2,ap=1".into());
    }
    Ok(Weights(out))
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    file: MeshFileArg,
    #[command(flatten)]
    output: OutputArg,
}

/// What `render` reports.
#[derive(Debug, Serialize)]
struct RenderResult {
    /// True when nothing was written: `written` and `ca_root`/`intermediates` say what a real
    /// run would do.
    dry_run: bool,
    mesh_id: String,
    clusters: Vec<String>,
    out_dir: PathBuf,
    /// PLAN.md: what to run, in which order.
    plan: PathBuf,
    /// The CA directory's root: `created`, `imported` or `unchanged`.
    ca_root: RootAction,
    intermediates: Vec<IntermediateStatus>,
    /// Files created or changed.
    written: Vec<PathBuf>,
    /// Files that already had these contents.
    unchanged: Vec<PathBuf>,
    /// Files of an earlier render that this mesh no longer has (left in place).
    stale: Vec<PathBuf>,
}

/// What `validate` reports.
#[derive(Debug, Serialize)]
struct ValidateResult {
    file: PathBuf,
    valid: bool,
    /// Every problem, one per entry, naming the field; empty when valid.
    errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mesh: Option<MeshSummary>,
    /// With `karmada:`: the fleet the hub gave, member by member.
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet: Option<FleetSummary>,
}

#[derive(Debug, Serialize)]
struct FleetSummary {
    hub: mesh_core::karmada::Hub,
    members: Vec<mesh_core::karmada::FleetMember>,
    skipped: Vec<mesh_core::karmada::SkippedMember>,
}

#[derive(Debug, Serialize)]
struct MeshSummary {
    mesh_id: String,
    model: String,
    dataplane: String,
    clusters: Vec<String>,
    networks: usize,
}

pub async fn run_render(args: RenderArgs) -> anyhow::Result<Exit> {
    match args.what {
        Some(RenderWhat::RotationJob(job)) => return crate::rotation_job::run(job).await,
        Some(RenderWhat::Demo(demo)) => return run_demo(demo).await,
        None => {}
    }
    let spec = match args.file.load().await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let Some(out_dir) = args.out_dir else {
        return Err(anyhow::Error::new(crate::exit::Usage(
            "render needs --out-dir DIR".into(),
        )));
    };
    let dry_run = args.dry_run.dry_run;
    if args.format == Format::Karmada {
        return run_karmada(&spec, &args.file, out_dir, args.output.output, dry_run);
    }
    // Generating RSA keys takes seconds; keep it off the async runtime's worker. A dry run
    // makes what is missing in memory only (no CA file, no temp file).
    let prepared = tokio::task::spawn_blocking({
        let spec = spec.clone();
        move || mesh_core::execute::prepare_mesh_ca(&spec, dry_run)
    })
    .await
    .context("the CA task stopped")?
    .with_context(|| format!("preparing the CA in {}", spec.ca.dir.display()))?;
    let PreparedCa {
        root,
        intermediates,
        bundles,
        ..
    } = prepared;
    let bundles = bundles
        .into_iter()
        .map(|b| (b.cluster.clone(), b))
        .collect();

    let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?;
    drop(bundles);
    let format = match args.format {
        Format::Kustomize => output::Format::Kustomize,
        // Karmada returned above, before any CA work.
        Format::Files | Format::Karmada => output::Format::Files,
    };
    let ctx = output::PlanContext {
        mesh_file: args.file.display(),
        out_dir: out_dir.display().to_string(),
    };
    let files = output::files(&spec, &renders, format, &ctx)?;
    let written = if dry_run {
        output::preview(&out_dir, &files)?
    } else {
        output::write(&out_dir, &files)?
    };
    drop(files);

    let result = RenderResult {
        dry_run,
        mesh_id: spec.mesh_id.clone(),
        clusters: renders.iter().map(|r| r.cluster.clone()).collect(),
        plan: out_dir.join("PLAN.md"),
        out_dir,
        ca_root: root,
        intermediates,
        written: written.written,
        unchanged: written.unchanged,
        stale: written.stale,
    };
    let file = args.file.display();
    let ca_dir = spec.ca.dir.display();
    crate::args::emit(args.output.output, &result, |r, out| {
        let (lead, rendered, written) = if r.dry_run {
            ("dry run: would render", "to write", " (nothing written)")
        } else {
            ("rendered", "written", "")
        };
        writeln!(
            out,
            "{lead} {} cluster(s) of mesh {} into {}: {} file(s) {rendered}, {} unchanged{written}",
            r.clusters.len(),
            r.mesh_id,
            r.out_dir.display(),
            r.written.len(),
            r.unchanged.len()
        )?;
        if !r.dry_run {
            return writeln!(
                out,
                "next: follow {} (or run `meshboot apply -f {file}`)",
                r.plan.display()
            );
        }
        writeln!(out, "CA in {ca_dir}: root {}", r.ca_root.describe(true))?;
        for s in &r.intermediates {
            let action = s.action.describe(true);
            writeln!(out, "  intermediate of {}: {action}", s.cluster)?;
        }
        for path in &r.written {
            writeln!(out, "  would write {}", path.display())?;
        }
        Ok(())
    })?;
    for path in &result.stale {
        eprintln!(
            "warn: {} is from an earlier render and no longer part of this mesh; left in place, delete it if it is not needed",
            path.display()
        );
    }
    Ok(Exit::Done)
}

/// What `render --format karmada` reports.
#[derive(Debug, Serialize)]
struct KarmadaRenderResult {
    /// Nothing was written: `written` lists what would be.
    dry_run: bool,
    mesh_id: String,
    format: &'static str,
    out_dir: PathBuf,
    plan: PathBuf,
    /// Each resource template for the hub, with the members it is placed on.
    templates: Vec<TemplateSummary>,
    written: Vec<PathBuf>,
    unchanged: Vec<PathBuf>,
    stale: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
struct TemplateSummary {
    object: String,
    clusters: Vec<String>,
    /// The members whose copy differs (an OverridePolicy rule each).
    overridden: Vec<String>,
}

fn run_karmada(
    spec: &MeshSpec,
    file: &MeshFileArg,
    out_dir: PathBuf,
    format: OutputFormat,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    let ctx = output::PlanContext {
        mesh_file: file.display(),
        out_dir: out_dir.display().to_string(),
    };
    let templates = render::karmada::templates(spec)?;
    let files = render::karmada::files(spec, &ctx)?;
    let written = if dry_run {
        output::preview(&out_dir, &files)?
    } else {
        output::write(&out_dir, &files)?
    };
    let result = KarmadaRenderResult {
        dry_run,
        mesh_id: spec.mesh_id.clone(),
        format: "karmada",
        plan: out_dir.join("PLAN.md"),
        out_dir,
        templates: templates
            .iter()
            .map(|t| TemplateSummary {
                object: mesh_core::cluster::ObjectRef::from_object(&t.object)
                    .map(|o| o.to_string())
                    .unwrap_or_default(),
                clusters: t.clusters.clone(),
                overridden: t.overrides.iter().map(|(c, _)| c.clone()).collect(),
            })
            .collect(),
        written: written.written,
        unchanged: written.unchanged,
        stale: written.stale,
    };
    let mesh_file = file.display();
    crate::args::emit(format, &result, |r, out| {
        if r.dry_run {
            writeln!(
                out,
                "dry run: would render {} template(s) of mesh {} for Karmada into {}: {} file(s) to write, {} unchanged (nothing written)",
                r.templates.len(),
                r.mesh_id,
                r.out_dir.display(),
                r.written.len(),
                r.unchanged.len()
            )?;
            for path in &r.written {
                writeln!(out, "  would write {}", path.display())?;
            }
            return Ok(());
        }
        writeln!(
            out,
            "rendered {} template(s) of mesh {} for Karmada into {}: {} file(s) written, {} unchanged; no Secret among them",
            r.templates.len(),
            r.mesh_id,
            r.out_dir.display(),
            r.written.len(),
            r.unchanged.len()
        )?;
        for t in &r.templates {
            writeln!(out, "  {} -> {}", t.object, t.clusters.join(", "))?;
        }
        writeln!(
            out,
            "next: follow {}; the secrets go to the members with `meshboot apply --only secrets -f {mesh_file}`",
            r.plan.display()
        )
    })?;
    Ok(Exit::Done)
}

/// What `render demo` reports.
#[derive(Debug, Serialize)]
struct DemoResult {
    /// Nothing was written: `written` lists what would be.
    dry_run: bool,
    mesh_id: String,
    karmada: bool,
    out_dir: PathBuf,
    /// DEMO.md: the split, the apply and curl commands.
    guide: PathBuf,
    replicas: u32,
    split: Vec<mesh_core::render::webster::Share>,
    /// Why a share reads "4 or 3", when a tie decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    tie: Option<String>,
    written: Vec<PathBuf>,
    unchanged: Vec<PathBuf>,
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<Exit> {
    let spec = match args.file.load().await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let out_dir = args.out.out_dir;
    let options = render::demo::DemoOptions {
        weights: args.weights.map(|w| w.0).unwrap_or_default(),
        replicas: args.replicas,
        karmada: args.karmada,
    };
    let (files, split) = match render::demo::files(&spec, &options, &out_dir.display().to_string())
    {
        Ok(x) => x,
        Err(render::demo::DemoError::Render(e)) => return Err(e.into()),
        Err(e) => return Err(anyhow::Error::new(crate::exit::Usage(e.to_string()))),
    };
    let dry_run = args.dry_run.dry_run;
    let written = if dry_run {
        output::preview(&out_dir, &files)?
    } else {
        output::write(&out_dir, &files)?
    };
    let result = DemoResult {
        dry_run,
        mesh_id: spec.mesh_id.clone(),
        karmada: args.karmada,
        guide: out_dir.join("DEMO.md"),
        out_dir,
        replicas: split.replicas,
        tie: render::demo::tie_note(&split),
        split: split.shares.clone(),
        written: written.written,
        unchanged: written.unchanged,
    };
    crate::args::emit(args.output.output, &result, |r, out| {
        writeln!(
            out,
            "{} the hello/sleep check of mesh {} into {}{}",
            if r.dry_run {
                "dry run (nothing written): would render"
            } else {
                "rendered"
            },
            r.mesh_id,
            r.out_dir.display(),
            if r.karmada {
                " (for the Karmada API server)"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "hello's {} replica(s): {}",
            r.replicas,
            split.describe()
        )?;
        if let Some(tie) = &r.tie {
            writeln!(out, "{tie}")?;
        }
        if !r.dry_run {
            writeln!(out, "next: follow {}", r.guide.display())?;
        }
        Ok(())
    })?;
    Ok(Exit::Done)
}

pub async fn run_validate(args: ValidateArgs) -> anyhow::Result<Exit> {
    let format = args.output.output;
    let file = &args.file.file;
    let invalid = |errors: Vec<String>| ValidateResult {
        file: file.clone(),
        valid: false,
        errors,
        mesh: None,
        fleet: None,
    };
    let result = match MeshSpec::from_file(file) {
        Err(err) => invalid(err.lines()),
        // With karmada the file is only valid with the fleet the hub gives it.
        Ok(spec) => match args.file.resolve(&spec).await {
            Err(err) => invalid(err.lines()),
            Ok(fleet) => ValidateResult {
                file: file.clone(),
                valid: true,
                errors: Vec::new(),
                mesh: Some(MeshSummary {
                    mesh_id: fleet.spec.mesh_id.clone(),
                    model: fleet.spec.model.to_string(),
                    dataplane: fleet.spec.dataplane.to_string(),
                    clusters: fleet
                        .spec
                        .cluster_names()
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                    networks: fleet.spec.networks().len(),
                }),
                fleet: fleet.hub.clone().map(|hub| FleetSummary {
                    hub,
                    members: fleet.members.clone(),
                    skipped: fleet.skipped.clone(),
                }),
            },
        },
    };
    if format == OutputFormat::Text {
        // Problems are errors, so they go to stderr; the "ok" line is the result.
        for line in &result.errors {
            eprintln!("error: {line}");
        }
    }
    crate::args::emit(format, &result, |r, out| {
        let Some(m) = &r.mesh else { return Ok(()) };
        writeln!(
            out,
            "ok: {}: mesh {}, {} cluster(s), {}, {}, {} network(s)",
            r.file.display(),
            m.mesh_id,
            m.clusters.len(),
            m.model,
            m.dataplane,
            m.networks
        )?;
        match &r.fleet {
            Some(f) => print_fleet(f, out),
            None => Ok(()),
        }
    })?;
    Ok(Exit::ok_if(result.valid))
}

/// The fleet as Karmada gave it: one row per member, then the skipped ones.
fn print_fleet(f: &FleetSummary, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let selector = f.hub.cluster_selector.as_deref().unwrap_or("every Cluster");
    writeln!(
        out,
        "fleet from the Karmada API server {} (context {}; {selector}; network from {}):",
        f.hub.server, f.hub.context, f.hub.network
    )?;
    let rows: Vec<[String; 5]> = f
        .members
        .iter()
        .map(|m| {
            [
                m.name.clone(),
                format!("{} ({})", m.network, m.network_from),
                m.api_server.clone(),
                m.sync_mode.map(|s| s.to_string()).unwrap_or_default(),
                m.reached_by.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "NETWORK", "API SERVER", "MODE", "REACHED WITH"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5], out: &mut dyn std::io::Write| {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            text.push_str(&format!("  {cell:<w$}"));
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(header, out)?;
    for row in &rows {
        line(row.each_ref().map(String::as_str), out)?;
    }
    for s in &f.skipped {
        writeln!(out, "skipped: {}", crate::args::skipped_line(s))?;
    }
    Ok(())
}
