//! The exact `helm` command lines: where a chart comes from ([`ChartRef`]), the
//! `upgrade --install`, `list` and `get values` invocations, and Helm's error text reduced to
//! one line. Pure: the same release gives the same arguments, so PLAN.md prints what the runner
//! executes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Release, Target};
use crate::spec::ChartSource;

/// Where `helm` takes a chart from.
///
/// ```
/// use mesh_core::{helm::ChartRef, spec::ChartSource};
/// let r = ChartRef::resolve(&ChartSource::default(), "istiod", "1.28.2");
/// assert_eq!(r.args(), ["istiod", "--repo", "https://istio-release.storage.googleapis.com/charts"]);
/// let oci = ChartRef::resolve(&ChartSource::Repo("oci://registry.example.com/istio".into()), "base", "1.28.2");
/// assert_eq!(oci.args(), ["oci://registry.example.com/istio/base"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartRef {
    /// A bare chart name with `--repo URL`: no `helm repo add`, so no global Helm state.
    Repo {
        /// The repository URL.
        url: String,
        /// The chart name in it.
        chart: String,
    },
    /// An OCI reference, `oci://<registry path>/<chart>`.
    Oci(String),
    /// A chart folder or packaged `.tgz` on disk (`controlPlane.chartDir`).
    Path(PathBuf),
}

impl ChartRef {
    /// The reference for `chart` at `version` from `source`. For a chart folder this is
    /// `<dir>/<chart>-<version>.tgz` when that file exists, else `<dir>/<chart>` (checked by
    /// [`super::check_chart_dir`] before anything runs); this existence check is the only file
    /// system access.
    pub fn resolve(source: &ChartSource, chart: &str, version: &str) -> ChartRef {
        match source {
            ChartSource::Repo(url) if url.starts_with("oci://") => {
                ChartRef::Oci(format!("{}/{chart}", url.trim_end_matches('/')))
            }
            ChartSource::Repo(url) => ChartRef::Repo {
                url: url.clone(),
                chart: chart.to_string(),
            },
            ChartSource::Dir(dir) => {
                let tgz = packaged(dir, chart, version);
                if tgz.is_file() {
                    ChartRef::Path(tgz)
                } else {
                    ChartRef::Path(dir.join(chart))
                }
            }
        }
    }

    /// The chart arguments of `helm upgrade --install RELEASE <these>`.
    pub fn args(&self) -> Vec<String> {
        match self {
            ChartRef::Repo { url, chart } => vec![chart.clone(), "--repo".into(), url.clone()],
            ChartRef::Oci(r) => vec![r.clone()],
            ChartRef::Path(p) => vec![p.display().to_string()],
        }
    }
}

/// `<dir>/<chart>-<version>.tgz`, the name `helm package` gives a chart.
pub(super) fn packaged(dir: &Path, chart: &str, version: &str) -> PathBuf {
    dir.join(format!("{chart}-{version}.tgz"))
}

/// `-n NS --kube-context C [--kubeconfig K]`.
fn target_args(target: &Target) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "-n".into(),
        target.namespace.clone().into(),
        "--kube-context".into(),
        target.context.clone().into(),
    ];
    if let Some(k) = &target.kubeconfig {
        a.push("--kubeconfig".into());
        a.push(k.clone().into());
    }
    a
}

/// How long Helm may wait for the release's workloads (`--wait --timeout`).
///
/// ```
/// let w = mesh_core::helm::Wait::for_at_most(std::time::Duration::from_secs(300));
/// assert_eq!(w.timeout_arg(), "300s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl Wait {
    /// Wait until the release is ready, at most `d`.
    pub fn for_at_most(d: Duration) -> Wait {
        Wait(d)
    }

    /// `--timeout` in whole seconds (at least one).
    pub fn timeout_arg(self) -> String {
        format!("{}s", self.0.as_secs().max(1))
    }
}

/// `helm upgrade --install RELEASE CHART -n NS --kube-context C [--kubeconfig K] --version V
/// -f VALUES [--wait --timeout T]`.
///
/// ```
/// use std::path::Path;
/// use mesh_core::helm::{ChartRef, Release, Target, upgrade_args};
/// let release = Release {
///     name: "istiod".into(),
///     chart: "istiod".into(),
///     chart_ref: ChartRef::Path("charts/istiod".into()),
///     version: "1.28.2".into(),
///     values: serde_json::json!({}),
///     target: Target { context: "eu".into(), kubeconfig: None, namespace: "istio-system".into() },
/// };
/// let args: Vec<_> = upgrade_args(&release, Path::new("/tmp/v.json"), None)
///     .into_iter().map(|a| a.into_string().unwrap()).collect();
/// assert_eq!(args.join(" "), "upgrade --install istiod charts/istiod -n istio-system --kube-context eu --version 1.28.2 -f /tmp/v.json");
/// ```
pub fn upgrade_args(release: &Release, values_file: &Path, wait: Option<Wait>) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "upgrade".into(),
        "--install".into(),
        release.name.clone().into(),
    ];
    a.extend(release.chart_ref.args().into_iter().map(OsString::from));
    a.extend(target_args(&release.target));
    a.push("--version".into());
    a.push(release.version.clone().into());
    a.push("-f".into());
    a.push(values_file.into());
    if let Some(w) = wait {
        a.push("--wait".into());
        a.push("--timeout".into());
        a.push(w.timeout_arg().into());
    }
    a
}

/// `helm list -n NS --kube-context C [--kubeconfig K] -o json --filter ^RELEASE$`, plus
/// `--all` on Helm 3, which otherwise hides pending releases (Helm 4 lists every status and
/// has no `--all`).
///
/// ```
/// use mesh_core::helm::{Target, list_args};
/// let t = Target { context: "eu".into(), kubeconfig: Some("k.yaml".into()), namespace: "istio-system".into() };
/// let args: Vec<_> = list_args(&t, "istiod", 4).into_iter().map(|a| a.into_string().unwrap()).collect();
/// assert_eq!(args.join(" "), "list -n istio-system --kube-context eu --kubeconfig k.yaml -o json --filter ^istiod$");
/// ```
pub fn list_args(target: &Target, release: &str, helm_major: u64) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["list".into()];
    a.extend(target_args(target));
    a.extend(["-o".into(), "json".into(), "--filter".into()]);
    a.push(format!("^{release}$").into());
    if helm_major < 4 {
        a.push("--all".into());
    }
    a
}

/// `helm get values RELEASE -n NS --kube-context C [--kubeconfig K] -o json`: the values the
/// release was installed with (not the chart's defaults).
pub fn get_values_args(target: &Target, release: &str) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["get".into(), "values".into(), release.into()];
    a.extend(target_args(target));
    a.extend(["-o".into(), "json".into()]);
    a
}

/// Helm's error output reduced to one line for a report: the `Error:` line and whatever
/// detail follows it (Helm lists one problem per line), without warnings or the `Error:`
/// prefix, whitespace collapsed, at most 400 characters.
///
/// ```
/// let stderr = "WARNING: Kubernetes configuration file is group-readable.\nError: UPGRADE FAILED: 1 error occurred:\n\t* Deployment.apps \"istiod\" is invalid: spec.replicas: Invalid value: -1\n\n";
/// assert_eq!(
///     mesh_core::helm::one_line(stderr),
///     "UPGRADE FAILED: 1 error occurred: * Deployment.apps \"istiod\" is invalid: spec.replicas: Invalid value: -1"
/// );
/// ```
pub fn one_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("WARNING:"))
        .collect();
    let from = lines
        .iter()
        .position(|l| l.starts_with("Error:"))
        .unwrap_or(lines.len().saturating_sub(1));
    let joined = lines
        .get(from..)
        .unwrap_or_default()
        .iter()
        .map(|l| l.strip_prefix("Error:").map(str::trim).unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ");
    let collapsed = joined.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "helm failed without a message".to_string();
    }
    const MAX: usize = 400;
    if collapsed.chars().count() > MAX {
        let cut: String = collapsed.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        collapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn release(chart_ref: ChartRef) -> Release {
        Release {
            name: "istio-eastwestgateway".into(),
            chart: "gateway".into(),
            chart_ref,
            version: "1.28.2".into(),
            values: serde_json::json!({"name": "istio-eastwestgateway"}),
            target: Target {
                context: "kind-eu".into(),
                kubeconfig: Some("/home/u/.kube/eu".into()),
                namespace: "istio-system".into(),
            },
        }
    }

    #[test]
    fn upgrade_with_the_repository_flag_and_a_wait() {
        let r = release(ChartRef::Repo {
            url: "https://charts.example.com".into(),
            chart: "gateway".into(),
        });
        let a = strings(upgrade_args(
            &r,
            Path::new("/tmp/x.json"),
            Some(Wait::for_at_most(Duration::from_millis(1500))),
        ));
        assert_eq!(
            a.join(" "),
            "upgrade --install istio-eastwestgateway gateway --repo https://charts.example.com -n istio-system --kube-context kind-eu --kubeconfig /home/u/.kube/eu --version 1.28.2 -f /tmp/x.json --wait --timeout 1s"
        );
    }

    #[test]
    fn a_chart_dir_prefers_the_packaged_chart_of_that_version() {
        let dir = tempfile::tempdir().unwrap();
        let source = ChartSource::Dir(dir.path().to_path_buf());
        assert_eq!(
            ChartRef::resolve(&source, "istiod", "1.28.2"),
            ChartRef::Path(dir.path().join("istiod"))
        );
        std::fs::write(dir.path().join("istiod-1.28.2.tgz"), b"x").unwrap();
        assert_eq!(
            ChartRef::resolve(&source, "istiod", "1.28.2"),
            ChartRef::Path(dir.path().join("istiod-1.28.2.tgz"))
        );
        assert_eq!(
            ChartRef::resolve(&source, "istiod", "1.29.0"),
            ChartRef::Path(dir.path().join("istiod")),
            "another version's package is not used"
        );
    }

    #[test]
    fn helm_3_lists_every_status_with_all() {
        let t = release(ChartRef::Oci("oci://r/istiod".into())).target;
        let a = strings(list_args(&t, "istiod", 3));
        assert_eq!(a.last().map(String::as_str), Some("--all"));
        let g = strings(get_values_args(&t, "istiod"));
        assert_eq!(
            g.join(" "),
            "get values istiod -n istio-system --kube-context kind-eu --kubeconfig /home/u/.kube/eu -o json"
        );
    }

    #[test]
    fn one_line_messages() {
        assert_eq!(
            one_line("Error: release: not found\n"),
            "release: not found"
        );
        assert_eq!(
            one_line("something odd happened\nlast words\n"),
            "last words"
        );
        assert_eq!(one_line("\n\n"), "helm failed without a message");
        let long = format!("Error: {}", "x".repeat(1000));
        assert_eq!(one_line(&long).chars().count(), 401);
    }
}
