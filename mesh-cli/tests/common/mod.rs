//! Helpers shared by the `meshboot` end-to-end tests: running the real binary, reading its
//! output as text, finding fixtures and `kubectl`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `meshboot` binary cargo built for these tests.
pub const MESHBOOT: &str = env!("CARGO_BIN_EXE_meshboot");

/// A `Command` for the `meshboot` binary.
pub fn meshboot_cmd() -> Command {
    Command::new(MESHBOOT)
}

/// Runs `meshboot args` and returns its output.
pub fn run_meshboot(args: &[&str]) -> Output {
    meshboot_cmd().args(args).output().expect("run meshboot")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output of a command as text.
pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

/// Standard error of a command as text.
pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// The workspace's `fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Where `kubectl` is (`MESHBOOT_KUBECTL`, else PATH), if anywhere: the tests' one lookup.
pub fn which_kubectl() -> Option<PathBuf> {
    mesh_tests::tools::kubectl()
}
