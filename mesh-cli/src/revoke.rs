//! `meshboot revoke --from SRC --in DST`: argument parsing and printing; the work is
//! `mesh_core::tokens::revoke`.

use std::io::Write;

use mesh_core::execute::Event;
use mesh_core::rotate::RotateOptions;
use mesh_core::tokens::{RevokeReport, RevokeRequest, RevokedKind};

use crate::args::{DryRunArg, MeshFileArg, OutputArg};
use crate::exit::Exit;
use crate::output::Progress;

const HELP: &str = "\
Removes istio-remote-secret-SRC from DST and invalidates the credential it held:
  bound token (readerToken.ttl): deletes the pair's own bound object, meshboot-reader-for-DST,
    in SRC; no other pair is touched. The API server refuses the token once its token cache
    (about 10 s) forgets it.
  long-lived token: deletes and recreates SRC's token Secret (revoking the token every
    destination of SRC shared), then re-issues the remote secret of SRC in every other
    destination with the new token.
The report lists every destination that received a new secret. The pair stays in the mesh
file: the next `meshboot apply` gives DST a new credential for SRC.";

#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct RevokeArgs {
    #[command(flatten)]
    file: MeshFileArg,
    /// The cluster whose credential is revoked (the remote secret's source).
    #[arg(long = "from", value_name = "SRC")]
    from: String,
    /// The cluster holding the remote secret to remove.
    #[arg(long = "in", value_name = "DST")]
    in_: String,
    #[command(flatten)]
    dry_run: DryRunArg,
    #[command(flatten)]
    output: OutputArg,
}

pub async fn run(args: RevokeArgs) -> anyhow::Result<Exit> {
    let spec = match args.file.load().await {
        Ok(spec) => spec,
        Err(exit) => return Ok(exit),
    };
    let request = RevokeRequest {
        source: args.from.clone(),
        destination: args.in_.clone(),
    };
    let options = RotateOptions {
        dry_run: args.dry_run.dry_run,
        ..RotateOptions::default()
    };
    let format = args.output.output;
    let progress = Progress::on_this_terminal(format, options.dry_run);
    let on_event = |event: &Event<'_>| progress.event(event);
    let result = mesh_core::tokens::revoke(&spec, &request, &options, &on_event).await;
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => return Err(crate::rotate::usage_or(e, &args.file)),
    };
    crate::args::emit(format, &report, print)?;
    Ok(Exit::ok_if(report.succeeded))
}

fn print(r: &RevokeReport, out: &mut dyn Write) -> std::io::Result<()> {
    let kind = match r.kind {
        RevokedKind::Bound => "a bound token of its own",
        RevokedKind::LongLived => "the long-lived token its source shares",
        RevokedKind::Absent => "nothing",
    };
    writeln!(
        out,
        "revoke {} in {}{}: the remote secret held {kind}",
        r.source,
        r.destination,
        if r.dry_run { " (dry run)" } else { "" }
    )?;
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for removal in &r.removed {
        writeln!(
            out,
            "  {verb} {} from {}: {}",
            removal.object, removal.cluster, removal.reason
        )?;
    }
    if r.kind == RevokedKind::LongLived {
        let verb = if r.dry_run {
            "would re-issue"
        } else {
            "re-issued"
        };
        if r.reissued.is_empty() {
            writeln!(out, "  {verb}: no other destination")?;
        } else {
            writeln!(
                out,
                "  {verb} the remote secret of {} in: {}",
                r.source,
                r.reissued.join(", ")
            )?;
        }
    }
    for problem in &r.problems {
        writeln!(out, "  problem: {problem}")?;
    }
    for note in &r.notes {
        writeln!(out, "  {note}")?;
    }
    if !r.succeeded {
        writeln!(
            out,
            "revoke: not complete; fix the above and run the same command again"
        )?;
    }
    Ok(())
}
