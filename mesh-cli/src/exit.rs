//! Exit codes, in one place: the `--help` epilogue prints [`EXIT_CODES`], the README quotes it
//! (a test keeps the two equal), and `main` maps every result through [`Exit`].

use std::process::ExitCode;

/// The exit codes of every command, as `--help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done: what was asked for is in place (verify, ca inspect: no errors found)
  1  failed: a file, a cluster or a check failed; the message says which and what to do
  2  usage: unknown command or flag, or a flag value that cannot be used";

/// The exit codes of `check-expiry` (and `ca inspect --warn/--critical`), as `--help` shows
/// them: the monitoring-plugin convention.
pub const MONITORING_EXIT_CODES: &str = "\
Exit codes (monitoring-plugin convention):
  0  ok: nothing expires within --warn
  1  warning: something expires within --warn
  2  critical: something expires within --critical, or has expired
  3  unknown: something could not be checked (unreachable cluster, unreadable file), or the
     command line is wrong (2 would read as critical)";

/// The commands whose exit codes follow the monitoring convention.
pub const MONITORING_COMMANDS: &[&str] = &["check-expiry"];

/// How a command ended. Monitoring commands (`check-expiry`) have their own variants (0 ok,
/// 1 warning, 2 critical, 3 unknown, usage errors included in 3) next to these, so every exit
/// still goes through one mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0.
    Done,
    /// 1.
    Failed,
    /// 2: what clap itself exits with for a bad command line.
    Usage,
    /// 1, monitoring: something is within the warning threshold.
    Warning,
    /// 2, monitoring: something is within the critical threshold or expired.
    Critical,
    /// 3, monitoring: something could not be checked, or a usage error.
    Unknown,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Done => 0,
            Exit::Failed | Exit::Warning => 1,
            Exit::Usage | Exit::Critical => 2,
            Exit::Unknown => 3,
        })
    }
}

impl Exit {
    /// The monitoring exit of an expiry verdict.
    pub fn of_expiry(status: mesh_core::rotate::ExpiryStatus) -> Exit {
        use mesh_core::rotate::ExpiryStatus;
        match status {
            ExpiryStatus::Ok => Exit::Done,
            ExpiryStatus::Warning => Exit::Warning,
            ExpiryStatus::Critical => Exit::Critical,
            ExpiryStatus::Unknown => Exit::Unknown,
        }
    }

    /// Done when `ok`, else failed.
    pub fn ok_if(ok: bool) -> Exit {
        if ok { Exit::Done } else { Exit::Failed }
    }
}

/// An error in the command line that clap's parser cannot see (flags that conflict in
/// meaning): printed like any error, exits 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The exit code for an error that reached `main`.
pub fn of_error(err: &anyhow::Error) -> Exit {
    if err.downcast_ref::<Usage>().is_some() {
        Exit::Usage
    } else {
        Exit::Failed
    }
}

/// True when the command line names a monitoring command (the first word that is not a
/// flag), whose usage errors exit 3 instead of clap's 2.
pub fn is_monitoring(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-'))
        .is_some_and(|first| MONITORING_COMMANDS.contains(&first.as_str()))
}
