//! `meshboot check-expiry`: every certificate and token of the mesh against two thresholds,
//! one line each, exit codes of the monitoring-plugin convention (0 ok, 1 warning,
//! 2 critical, 3 unknown — a usage error is 3 too, since 2 would read as critical).

use std::io::Write;
use std::time::Duration;

use mesh_core::rotate::{self, ExpiryReport, ExpiryStatus, ExpiryThresholds};

use crate::args::{MeshFileArg, OutputArg};
use crate::exit::Exit;
use crate::rotate::parse_span;

#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::MONITORING_EXIT_CODES)]
pub struct CheckExpiryArgs {
    #[command(flatten)]
    file: MeshFileArg,
    #[command(flatten)]
    thresholds: ThresholdArgs,
    #[command(flatten)]
    ca_secret: crate::rotate::CaSecretArg,
    #[command(flatten)]
    output: OutputArg,
}

/// `--warn` and `--critical`, shared with `ca inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct ThresholdArgs {
    /// Warn when less than this is left, e.g. 30d.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_span)]
    pub warn: Duration,
    /// Critical when less than this is left (or expired), e.g. 7d.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_span)]
    pub critical: Duration,
}

impl ThresholdArgs {
    /// The thresholds, or the usage error when `--critical` is the longer one.
    pub fn thresholds(&self) -> Result<ExpiryThresholds, String> {
        if self.critical > self.warn {
            return Err(format!(
                "--critical ({}) must not be longer than --warn ({}): critical is the nearer threshold",
                days(self.critical),
                days(self.warn)
            ));
        }
        Ok(ExpiryThresholds {
            warn: self.warn,
            critical: self.critical,
        })
    }
}

fn days(d: Duration) -> String {
    format!("{}d", d.as_secs() / 86_400)
}

pub async fn run(args: CheckExpiryArgs) -> anyhow::Result<Exit> {
    let thresholds = match args.thresholds.thresholds() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Unknown);
        }
    };
    let mut spec = match args.file.load().await {
        Ok(spec) => spec,
        // A mesh file that cannot be read means nothing could be checked.
        Err(_) => return Ok(Exit::Unknown),
    };
    // Held until the check is done: the restored CA directory lives in it.
    let _ca = match &args.ca_secret.ca_secret {
        Some(at) => match crate::rotate::SecretCa::open(&mut spec, at).await {
            Ok(ca) => Some(ca),
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(Exit::Unknown);
            }
        },
        None => None,
    };
    let report = rotate::check_expiry(&spec, &thresholds).await;
    if let Err(e) = crate::args::emit(args.output.output, &report, print) {
        eprintln!("error: {e:#}");
        return Ok(Exit::Unknown);
    }
    Ok(Exit::of_expiry(report.status))
}

/// One line per item, then the verdict.
pub fn print(report: &ExpiryReport, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<[String; 5]> = report
        .items
        .iter()
        .map(|i| {
            [
                i.status.as_str().to_string(),
                i.cluster.clone().unwrap_or_else(|| "-".into()),
                i.what.clone(),
                i.not_after
                    .map(|t| t.date().to_string())
                    .unwrap_or_else(|| "-".into()),
                match (i.days_left, &i.error) {
                    (Some(d), _) => d.to_string(),
                    (None, Some(e)) => format!("- ({e})"),
                    (None, None) => "-".into(),
                },
            ]
        })
        .collect();
    let header = ["STATUS", "CLUSTER", "WHAT", "NOT AFTER", "DAYS LEFT"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    let count = |s: ExpiryStatus| report.items.iter().filter(|i| i.status == s).count();
    writeln!(
        out,
        "EXPIRY {}: {} critical, {} warning, {} unknown, {} ok (warn {}d, critical {}d)",
        report.status.as_str(),
        count(ExpiryStatus::Critical),
        count(ExpiryStatus::Warning),
        count(ExpiryStatus::Unknown),
        count(ExpiryStatus::Ok),
        report.warn_days,
        report.critical_days
    )
}
