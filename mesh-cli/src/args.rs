//! Flags every command spells the same way: `-o` is always the output format, folders are
//! always `--out-dir`, `--dry-run` always writes nothing. Commands flatten these structs
//! instead of declaring their own, so a new command (rotate, check-expiry, render demo)
//! gets the same spelling and help text for free.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use mesh_core::cluster::KubeConnector;
use mesh_core::karmada::{Fleet, FleetOptions, KarmadaError, SkippedMember, resolve_fleet};
use mesh_core::spec::MeshSpec;
use serde::Serialize;

use crate::exit::Exit;

/// `-f, --file FILE`: the mesh file every mesh-wide command reads, and how a Karmada fleet in
/// it is taken.
#[derive(Debug, Clone, clap::Args)]
pub struct MeshFileArg {
    /// The mesh file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "MESH_YAML",
        default_value = "mesh.yaml"
    )]
    pub file: PathBuf,
    /// With `karmada:` in the mesh file: also use members whose Ready condition is not True
    /// (by default they are skipped, and listed on stderr).
    #[arg(long)]
    pub include_not_ready: bool,
}

impl MeshFileArg {
    /// Reads and validates the mesh file and, with `karmada:`, resolves the fleet from the hub,
    /// before anything is touched. Every problem is printed on its own `error:` line on stderr
    /// (the `Err` is the exit to return).
    pub async fn load(&self) -> Result<MeshSpec, Exit> {
        self.load_fleet().await.map(|fleet| fleet.spec)
    }

    /// [`load`](Self::load), keeping what the fleet came from (`validate` prints it).
    pub async fn load_fleet(&self) -> Result<Fleet, Exit> {
        let spec = MeshSpec::from_file(&self.file).map_err(|err| {
            for line in err.lines() {
                eprintln!("error: {line}");
            }
            Exit::Failed
        })?;
        let fleet = self.resolve(&spec).await.map_err(|err| {
            for line in err.lines() {
                eprintln!("error: {line}");
            }
            Exit::Failed
        })?;
        for skipped in &fleet.skipped {
            eprintln!("warn: {}", skipped_line(skipped));
        }
        tracing::debug!(file = %self.file.display(), clusters = fleet.spec.clusters.len(), "mesh file loaded");
        Ok(fleet)
    }

    /// The fleet of a validated mesh file: read from the Karmada hub when it has `karmada:`
    /// (nothing is read otherwise).
    pub async fn resolve(&self, spec: &MeshSpec) -> Result<Fleet, KarmadaError> {
        let options = FleetOptions {
            include_not_ready: self.include_not_ready,
        };
        resolve_fleet(spec, &KubeConnector::default(), &options).await
    }

    /// The file as the user spelled it, for hints (`meshboot apply -f FILE`).
    pub fn display(&self) -> String {
        self.file.display().to_string()
    }
}

/// The line that says a Karmada member is not used.
pub fn skipped_line(s: &SkippedMember) -> String {
    format!(
        "karmada member {} skipped: {}; --include-not-ready uses it anyway",
        s.name, s.reason
    )
}

/// What `-o` chooses: the report for a person, or the same report for a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// For a person: progress, tables, one line per finding.
    #[value(alias = "table")]
    Text,
    /// One JSON document on stdout.
    Json,
    /// The same document as YAML.
    Yaml,
}

/// `-o, --output text|json|yaml`.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArg {
    /// Output format: text for a person, json or yaml for a program (one document on stdout;
    /// progress, warnings and errors go to stderr).
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "text",
          value_parser = FormatParser { folder_hint: false })]
    pub output: OutputFormat,
}

/// `-o` for commands that also write a folder: a folder given to `-o` (the old spelling of
/// `render -o DIR`) gets an error that points at `--out-dir`.
#[derive(Debug, Clone, clap::Args)]
pub struct FolderOutputArg {
    /// Output format of the report: text, json or yaml. The files go to --out-dir.
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "text",
          value_parser = FormatParser { folder_hint: true })]
    pub output: OutputFormat,
}

/// `--out-dir DIR`: where commands that produce files put them.
#[derive(Debug, Clone, clap::Args)]
pub struct OutDirArg {
    /// Output folder (created if missing; only files this command owns are written).
    #[arg(long = "out-dir", value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// `--dry-run`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DryRunArg {
    /// Show what would be created, updated or left unchanged, as far as reading the clusters
    /// can tell; write nothing, anywhere (no CA files, no temp files, no cluster objects).
    #[arg(long)]
    pub dry_run: bool,
}

/// Parses `-o` like clap's enum parser (possible values in help and completions), with an
/// error that says what `-o` means.
#[derive(Debug, Clone, Copy)]
struct FormatParser {
    folder_hint: bool,
}

impl FormatParser {
    fn parse_text(self, text: &str) -> Result<OutputFormat, String> {
        <OutputFormat as clap::ValueEnum>::from_str(text, true).map_err(|_| {
            if self.folder_hint {
                format!(
                    "-o is the output format (text, json or yaml), not a folder: to write \
                     the files into {text:?} use `--out-dir {text}`"
                )
            } else {
                format!("-o is the output format: use text, json or yaml, not {text:?}")
            }
        })
    }
}

impl clap::builder::TypedValueParser for FormatParser {
    type Value = OutputFormat;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<OutputFormat, clap::Error> {
        self.parse_text(&value.to_string_lossy())
            .map_err(|message| {
                clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{message}\n"))
                    .with_cmd(cmd)
            })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        use clap::ValueEnum;
        Some(Box::new(
            OutputFormat::value_variants()
                .iter()
                .filter_map(OutputFormat::to_possible_value),
        ))
    }
}

/// Prints `value` on stdout as JSON or YAML, or calls `text` to print it for a person. One
/// value for all three, so the formats cannot drift apart.
pub fn emit<T: Serialize>(
    format: OutputFormat,
    value: &T,
    text: impl FnOnce(&T, &mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    // Stdout flushes at every newline; a 100-cluster report is 150,000 lines of JSON, so it
    // is buffered here and written in large blocks.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, value).context("writing JSON to stdout")?;
            writeln!(out)?;
        }
        OutputFormat::Yaml => {
            let yaml = serde_saphyr::to_string(value).context("writing YAML")?;
            out.write_all(yaml.as_bytes())?;
        }
        OutputFormat::Text => text(value, &mut out).context("writing to stdout")?,
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_given_to_o_points_at_out_dir() {
        let folder = FormatParser { folder_hint: true };
        let err = folder.parse_text("out/three-region").unwrap_err();
        assert!(err.contains("`--out-dir out/three-region`"), "{err}");
        assert_eq!(folder.parse_text("json"), Ok(OutputFormat::Json));
        let plain = FormatParser { folder_hint: false };
        assert_eq!(plain.parse_text("table"), Ok(OutputFormat::Text));
        assert_eq!(plain.parse_text("YAML"), Ok(OutputFormat::Yaml));
        assert!(
            plain
                .parse_text("xml")
                .unwrap_err()
                .contains("text, json or yaml")
        );
    }
}

/// `--concurrency N` and `--cluster-concurrency N`: requests in flight across the fleet and
/// to any one API server. Each command keeps its own defaults (`None` here).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ConcurrencyArg {
    /// Requests in flight across all clusters (sockets, memory), and clusters worked on at
    /// once [default: 512; verify: 16].
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub concurrency: Option<usize>,
    /// Requests in flight to any one API server; a server that answers 429 (too many
    /// requests) gets fewer for a while, and only that server [default: 16].
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub cluster_concurrency: Option<usize>,
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a concurrency: use a number from 1 to 4096"
        )),
    }
}
