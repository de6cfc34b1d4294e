//! Exit codes, in one place: the `--help` epilogue prints [`EXIT_CODES`], the README quotes it
//! (a test keeps the two equal), and `main` maps every result through [`Exit`].

use std::process::ExitCode;

/// The exit codes of every command, as `--help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done: what was asked for is in place (verify, ca inspect: no errors found)
  1  failed: a file, a cluster or a check failed; the message says which and what to do
  2  usage: unknown command or flag, or a flag value that cannot be used";

/// How a command ended. Monitoring commands (`check-expiry`) will add their own variants
/// (0 ok, 1 warning, 2 critical, 3 unknown, usage errors included in 3) here, next to these,
/// so every exit still goes through one mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0.
    Done,
    /// 1.
    Failed,
    /// 2: what clap itself exits with for a bad command line.
    Usage,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
        })
    }
}

impl Exit {
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
