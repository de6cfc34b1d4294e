//! Where the external tools the tests drive are: `helm` and `kubectl`. One lookup for every
//! crate's tests, so a missing tool is always reported the same way and never passes silently.
//!
//! A tool is found from its environment variable (`MESHBOOT_HELM`, `MESHBOOT_KUBECTL`: an
//! absolute path to the binary), else on `PATH`. CI installs helm (see `.ci/run`); the image ships
//! kubectl. A test that needs one starts with [`require_helm!`](crate::require_helm) or
//! [`require_kubectl!`](crate::require_kubectl), which print
//! `skipping <test>: helm not found (CI installs it: see .ci/run)` and return when it is absent.
//!
//! ```
//! fn installs_a_chart() -> anyhow::Result<()> {
//!     let helm = mesh_tests::require_helm!();
//!     let out = std::process::Command::new(&helm).arg("version").output()?;
//!     assert!(out.status.success());
//!     Ok(())
//! }
//! installs_a_chart()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tool the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The `helm` binary (v3.14+ or v4).
    Helm,
    /// The `kubectl` binary.
    Kubectl,
}

impl Tool {
    /// The binary's name on `PATH`.
    pub fn binary(self) -> &'static str {
        match self {
            Tool::Helm => "helm",
            Tool::Kubectl => "kubectl",
        }
    }

    /// The environment variable that names the binary's path.
    pub fn env_var(self) -> &'static str {
        match self {
            Tool::Helm => "MESHBOOT_HELM",
            Tool::Kubectl => "MESHBOOT_KUBECTL",
        }
    }

    /// Why a test skips when the tool is missing.
    pub fn missing_reason(self) -> &'static str {
        match self {
            Tool::Helm => "helm not found (CI installs it: see .ci/run)",
            Tool::Kubectl => {
                "kubectl not found (the CI image ships it; set MESHBOOT_KUBECTL or PATH)"
            }
        }
    }

    /// The binary: the environment variable when it names an existing file, else the first
    /// match on `PATH`.
    pub fn find(self) -> Option<PathBuf> {
        let from_env = std::env::var_os(self.env_var()).filter(|v| !v.is_empty());
        find_with(
            from_env.as_deref(),
            std::env::var_os("PATH").as_deref(),
            self.binary(),
        )
    }
}

fn find_with(explicit: Option<&OsStr>, path: Option<&OsStr>, binary: &str) -> Option<PathBuf> {
    if let Some(p) = explicit {
        // An explicit path that does not exist is not silently replaced by PATH: the user asked
        // for that binary.
        let p = PathBuf::from(p);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `helm`: `MESHBOOT_HELM`, else `helm` on `PATH`.
pub fn helm() -> Option<PathBuf> {
    Tool::Helm.find()
}

/// `kubectl`: `MESHBOOT_KUBECTL`, else `kubectl` on `PATH`.
pub fn kubectl() -> Option<PathBuf> {
    Tool::Kubectl.find()
}

/// The tool, or `None` after printing `skipping <test>: <reason>` (the line `cargo test` shows
/// for a skipped test). The [`require_helm!`](crate::require_helm) macro wraps this.
pub fn require(tool: Tool, test: &str) -> Option<PathBuf> {
    let found = tool.find();
    if found.is_none() {
        eprintln!("skipping {test}: {}", tool.missing_reason());
    }
    found
}

/// `a::b::{{closure}}::here` → `a::b` (async tests put their body in a closure).
#[doc(hidden)]
pub fn test_name_from(path: &'static str) -> &'static str {
    let mut n = path.strip_suffix("::here").unwrap_or(path);
    while let Some(rest) = n.strip_suffix("::{{closure}}") {
        n = rest;
    }
    n
}

/// A file under the shared data directory beside the repository (`<repo>/../shared/data/<rel>`),
/// if it exists. CI has `../shared` beside the clone; files there are read, never committed.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    p.is_file().then_some(p)
}

/// The shared data file, or `None` after printing `skipping <test>: ../shared/data/<rel> not found`.
pub fn require_shared(rel: &str, test: &str) -> Option<PathBuf> {
    let found = shared_data(rel);
    if found.is_none() {
        eprintln!(
            "skipping {test}: ../shared/data/{rel} not found (CI has ../shared beside the clone)"
        );
    }
    found
}

/// What a skipped test returns: `()` or `Ok(())`.
pub trait Skipped {
    /// The value a skipped test returns.
    fn skipped() -> Self;
}

impl Skipped for () {
    fn skipped() -> Self {}
}

impl<E> Skipped for Result<(), E> {
    fn skipped() -> Self {
        Ok(())
    }
}

/// The enclosing function's path, for skip messages (`crate::module::test_name`).
#[doc(hidden)]
#[macro_export]
macro_rules! __test_name {
    () => {{
        fn here() {}
        fn name_of<T>(_: T) -> &'static str {
            ::std::any::type_name::<T>()
        }
        $crate::tools::test_name_from(name_of(here))
    }};
}

/// The helm binary, or return from the test after printing
/// `skipping <test>: helm not found (CI installs it: see .ci/run)`. Works in tests returning
/// `()` and `Result<(), E>`.
#[macro_export]
macro_rules! require_helm {
    () => {
        match $crate::tools::require($crate::tools::Tool::Helm, $crate::__test_name!()) {
            Some(p) => p,
            None => return $crate::tools::Skipped::skipped(),
        }
    };
}

/// The kubectl binary, or return from the test after printing why it skips.
#[macro_export]
macro_rules! require_kubectl {
    () => {
        match $crate::tools::require($crate::tools::Tool::Kubectl, $crate::__test_name!()) {
            Some(p) => p,
            None => return $crate::tools::Skipped::skipped(),
        }
    };
}

/// The path of a file under `../shared/data/` (e.g. `"istio/crd-all-1.30.3.gen.yaml"`), or return
/// from the test after printing why it skips.
#[macro_export]
macro_rules! require_shared_data {
    ($rel:expr) => {
        match $crate::tools::require_shared($rel, $crate::__test_name!()) {
            Some(p) => p,
            None => return $crate::tools::Skipped::skipped(),
        }
    };
}

/// Runs `helm` against a kubeconfig with its own cache/config/data directories, so parallel
/// tests never share Helm state (repositories, registry logins, plugins) with each other or with
/// the user's `~/.config/helm`.
#[derive(Debug)]
pub struct Helm {
    binary: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// A runner for `binary` using `kubeconfig`.
    pub fn new(
        binary: impl Into<PathBuf>,
        kubeconfig: impl Into<PathBuf>,
    ) -> std::io::Result<Helm> {
        Ok(Helm {
            binary: binary.into(),
            kubeconfig: kubeconfig.into(),
            home: tempfile::tempdir()?,
        })
    }

    /// A `helm` command with the kubeconfig and isolated Helm directories set; add the arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        let h = self.home.path();
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", h.join("cache"))
            .env("HELM_CONFIG_HOME", h.join("config"))
            .env("HELM_DATA_HOME", h.join("data"))
            // client-go caches discovery per host:port; emulator ports are reused with other
            // CRDs installed, so each runner keeps its own cache.
            .env("KUBECACHEDIR", h.join("kube-cache"))
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HELM_NAMESPACE");
        c
    }

    /// Runs `helm <args> --kube-context <context>`, requires success and returns standard output.
    pub fn ok<I, S>(&self, context: &str, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
        let out = self.run(context, &args)?;
        anyhow::ensure!(
            out.status.success(),
            "helm {} failed: {}{}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `helm <args> --kube-context <context>`, requires failure and returns standard error.
    pub fn fails<I, S>(&self, context: &str, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(context, args)?;
        anyhow::ensure!(
            !out.status.success(),
            "helm succeeded where it should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Runs `helm <args> --kube-context <context>` and returns its output.
    pub fn run<I, S>(&self, context: &str, args: I) -> std::io::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command()
            .args(args)
            .arg("--kube-context")
            .arg(context)
            .output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executable(dir: &Path, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap_or_default();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap_or_default();
        p
    }

    #[test]
    fn explicit_path_wins_and_a_missing_one_is_not_replaced_by_path() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let on_path = executable(dir.path(), "helm");
        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let explicit = executable(other.path(), "my-helm");
        let path = std::env::join_paths([dir.path()]).unwrap_or_default();
        assert_eq!(
            find_with(Some(explicit.as_os_str()), Some(&path), "helm"),
            Some(explicit)
        );
        assert_eq!(find_with(None, Some(&path), "helm"), Some(on_path));
        assert_eq!(
            find_with(Some(OsStr::new("/nonexistent/helm")), Some(&path), "helm"),
            None
        );
    }

    #[test]
    fn a_non_executable_file_on_path_is_not_the_tool() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("helm"), "not a program").unwrap_or_default();
        let path = std::env::join_paths([dir.path()]).unwrap_or_default();
        assert_eq!(find_with(None, Some(&path), "helm"), None);
    }

    #[test]
    fn the_test_name_is_the_enclosing_function() {
        let name = crate::__test_name!();
        assert!(
            name.ends_with("tools::tests::the_test_name_is_the_enclosing_function"),
            "{name}"
        );
    }

    #[tokio::test]
    async fn an_async_test_is_named_without_its_closure() {
        let name = crate::__test_name!();
        assert!(
            name.ends_with("tools::tests::an_async_test_is_named_without_its_closure"),
            "{name}"
        );
    }
}
