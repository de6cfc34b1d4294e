//! Running `helm`: one child process per call (`tokio::process`, killed if the caller gives up),
//! its output parsed, its failures reduced to one line.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::command::{Wait, get_values_args, list_args, one_line, upgrade_args};
use super::state::{Decision, Deployed, decide, parse_list};
use super::{Helm, HelmError, HelmVersion, Release, Target};

/// How [`Helm::ensure`] handles one release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnsureOptions {
    /// Only read what is deployed and report the decision; run no `helm upgrade`.
    pub dry_run: bool,
    /// Let Helm wait until the release's workloads are ready (`--wait`), e.g. istiod's
    /// Deployment before the gateway that needs its injector.
    pub wait: bool,
    /// The limit for each helm call (passed as `--timeout` when waiting).
    pub timeout: Duration,
}

impl Default for EnsureOptions {
    fn default() -> Self {
        EnsureOptions {
            dry_run: false,
            wait: false,
            timeout: Duration::from_secs(300),
        }
    }
}

/// What [`Helm::ensure`] decided and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseReport {
    /// The release.
    pub release: String,
    /// Install, upgrade, unchanged ([`Decision::Blocked`] is returned as an error).
    pub decision: Decision,
    /// Why, in words (`values differ at global.network`, `release istiod is not installed`).
    pub reason: String,
    /// True when `helm upgrade --install` ran (never with `dry_run`, never when unchanged).
    pub applied: bool,
}

/// The grace Helm gets beyond its own `--timeout` to report before it is stopped.
const GRACE: Duration = Duration::from_secs(30);

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs helm to completion and collects its output. A spawn refused with "Text file busy"
/// (ETXTBSY) is tried again a few times: Linux refuses to exec a file that some process still
/// has open for writing, which is the case for a moment while a package manager replaces the
/// binary, or while any process forked in that moment (e.g. a sibling thread spawning another
/// child) still holds a copy of the writer's descriptor before its own exec closes it.
async fn output(path: &Path, args: &[OsString]) -> std::io::Result<std::process::Output> {
    let mut pause = Duration::from_millis(10);
    let mut tries = 0;
    loop {
        let run = Command::new(path)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await;
        match run {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 6 => {
                tries += 1;
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
}

async fn exec(
    path: &Path,
    args: Vec<OsString>,
    limit: Duration,
    what: (&Target, &'static str, &str),
) -> Result<Output, HelmError> {
    let (target, action, release) = what;
    let child = output(path, &args);
    let out = match tokio::time::timeout(limit, child).await {
        Err(_) => {
            return Err(HelmError::Timeout {
                context: target.context.clone(),
                action,
                release: release.to_string(),
                seconds: limit.as_secs(),
            });
        }
        Ok(Err(source)) => {
            return Err(HelmError::Spawn {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(Ok(out)) => out,
    };
    Ok(Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `helm version --short`, parsed.
pub(super) async fn version(path: &Path) -> Result<HelmVersion, HelmError> {
    let args = [OsString::from("version"), OsString::from("--short")];
    let out = output(path, &args);
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .map_err(|_| HelmError::Spawn {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "`helm version` did not answer within 30s",
            ),
        })?
        .map_err(|source| HelmError::Spawn {
            path: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    HelmVersion::parse(&text).ok_or_else(|| HelmError::UnknownVersion {
        path: path.to_path_buf(),
        output: text
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect(),
    })
}

impl Helm {
    /// What is deployed as `release` in `target`: `None` when it is not installed.
    ///
    /// ```no_run
    /// # async fn f(helm: &mesh_core::helm::Helm, t: &mesh_core::helm::Target) -> Result<(), mesh_core::helm::HelmError> {
    /// if let Some(d) = helm.deployed(t, "istiod").await? {
    ///     println!("istiod: {} revision {} ({})", d.chart, d.revision, d.status);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn deployed(
        &self,
        target: &Target,
        release: &str,
    ) -> Result<Option<Deployed>, HelmError> {
        let limit = Duration::from_secs(120);
        let output_err = |message: String| HelmError::Output {
            context: target.context.clone(),
            release: release.to_string(),
            message,
        };
        let list = exec(
            &self.path,
            list_args(target, release, self.version.major),
            limit,
            (target, "list", release),
        )
        .await?;
        if !list.ok {
            return Err(failed(target, "list", release, &list.stderr));
        }
        let Some(listed) = parse_list(&list.stdout).map_err(output_err)? else {
            return Ok(None);
        };
        let values = exec(
            &self.path,
            get_values_args(target, release),
            limit,
            (target, "get values", release),
        )
        .await?;
        if !values.ok {
            return Err(failed(target, "get values", release, &values.stderr));
        }
        Deployed::of(listed, &values.stdout)
            .map(Some)
            .map_err(output_err)
    }

    /// Install or upgrade `release` unless it is already deployed with this chart version and
    /// these values. A release mid-operation is [`HelmError::Blocked`].
    ///
    /// ```no_run
    /// # async fn f(helm: &mesh_core::helm::Helm, r: &mesh_core::helm::Release) -> Result<(), mesh_core::helm::HelmError> {
    /// use mesh_core::helm::EnsureOptions;
    /// let plan = helm.ensure(r, &EnsureOptions { dry_run: true, ..EnsureOptions::default() }).await?;
    /// println!("would {} {}: {}", plan.decision.as_str(), plan.release, plan.reason);
    /// # Ok(()) }
    /// ```
    pub async fn ensure(
        &self,
        release: &Release,
        options: &EnsureOptions,
    ) -> Result<ReleaseReport, HelmError> {
        let deployed = self.deployed(&release.target, &release.name).await?;
        let (decision, reason) = decide(release, deployed.as_ref());
        let report = |applied: bool| ReleaseReport {
            release: release.name.clone(),
            decision,
            reason: reason.clone(),
            applied,
        };
        match decision {
            Decision::Blocked => {
                return Err(HelmError::Blocked {
                    context: release.target.context.clone(),
                    reason,
                });
            }
            Decision::Unchanged => return Ok(report(false)),
            Decision::Install | Decision::Upgrade if options.dry_run => return Ok(report(false)),
            Decision::Install | Decision::Upgrade => {}
        }
        let file = values_file(release)?;
        let wait = options.wait.then(|| Wait::for_at_most(options.timeout));
        let out = exec(
            &self.path,
            upgrade_args(release, file.path(), wait),
            options.timeout + GRACE,
            (&release.target, "upgrade --install", &release.name),
        )
        .await?;
        drop(file);
        if !out.ok {
            return Err(failed(
                &release.target,
                "upgrade --install",
                &release.name,
                &out.stderr,
            ));
        }
        Ok(report(true))
    }
}

fn failed(target: &Target, action: &'static str, release: &str, stderr: &str) -> HelmError {
    HelmError::Failed {
        context: target.context.clone(),
        action,
        release: release.to_string(),
        message: one_line(stderr),
    }
}

/// The values as JSON in a private temp file (created 0600 by `tempfile`), removed on drop.
fn values_file(release: &Release) -> Result<tempfile::NamedTempFile, HelmError> {
    let io = |source| HelmError::ValuesFile {
        release: release.name.clone(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix(&format!("meshboot-{}-", release.name))
        .suffix(".json")
        .tempfile()
        .map_err(io)?;
    let text =
        serde_json::to_string_pretty(&release.values).map_err(|e| io(std::io::Error::other(e)))?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(file)
}
