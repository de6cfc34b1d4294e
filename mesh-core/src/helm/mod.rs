//! Istio's Helm charts installed with the real `helm` binary (v3.14+ or v4), the way the Istio
//! docs install them, and idempotently:
//!
//! - [`Helm::locate`] finds the binary (an explicit path, else `helm` on `PATH`) and checks its
//!   version; a missing or too old helm is a [`HelmError`] for preflight, before anything is
//!   written.
//! - [`Release::for_chart`] turns a chart's rendered values into a release: the documented
//!   release name ([`crate::render::helm::release_name`]), the chart from `controlPlane.repo`
//!   (`--repo URL`, so no `helm repo add` and no global Helm state) or `controlPlane.chartDir`,
//!   the exact `controlPlane.version`.
//! - [`Helm::ensure`] reads what is deployed (`helm list`, `helm get values`), [`decide`]s
//!   install / upgrade / unchanged, and runs `helm upgrade --install ... -f <values>` only when
//!   needed, so a converged re-run makes no new revision and no API write. With
//!   [`EnsureOptions::dry_run`] it only reports the decision and why.
//!
//! Values go to a private temp file (mode 0600, removed afterwards) as JSON, which Helm reads
//! as YAML without any of YAML 1.1's surprises (`on`, `no`, `1.10`). They never hold secrets:
//! meshboot's values are identity and topology only. Helm's own error text is kept, reduced to
//! one line ([`one_line`]).
//!
//! ```no_run
//! # async fn demo(spec: &mesh_core::spec::MeshSpec, renders: &[mesh_core::render::ClusterRender]) -> Result<(), mesh_core::helm::HelmError> {
//! use mesh_core::helm::{EnsureOptions, Helm, Release};
//! let helm = Helm::locate(None).await?;
//! for r in renders {
//!     let cluster = spec.cluster(&r.cluster).expect("rendered from the spec");
//!     for values in &r.helm_values {
//!         let release = Release::for_chart(spec, cluster, values)?;
//!         let report = helm.ensure(&release, &EnsureOptions::default()).await?;
//!         println!("{}: {} {} ({})", r.cluster, report.decision.as_str(), release.name, report.reason);
//!     }
//! }
//! # Ok(()) }
//! ```

mod command;
mod run;
mod state;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use command::{ChartRef, Wait, get_values_args, list_args, one_line, upgrade_args};
pub use run::{EnsureOptions, ReleaseReport};
pub use state::{Decision, Deployed, decide};

use crate::render::HelmValues;
use crate::spec::{ChartSource, ClusterSpec, MeshSpec};

/// The oldest Helm meshboot drives: `upgrade --install` with `--repo` and JSON output as used
/// here, and the chart API of Istio's current charts.
pub const MIN_VERSION: (u64, u64) = (3, 14);

/// A Helm version as `helm version --short` prints it (`v4.1.4+g05fa379`).
///
/// ```
/// use mesh_core::helm::HelmVersion;
/// let v = HelmVersion::parse("v3.14.2+gc309b6f").unwrap();
/// assert_eq!((v.major, v.minor, v.patch), (3, 14, 2));
/// assert!(v.is_supported());
/// assert!(!HelmVersion::parse("v3.13.3+g1").unwrap().is_supported());
/// assert_eq!(HelmVersion::parse("helm"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmVersion {
    /// Major version (3 or 4).
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
    /// The version as printed, e.g. `v4.1.4`.
    pub text: String,
}

impl HelmVersion {
    /// Parse the first `vX.Y.Z` of `helm version --short` output.
    pub fn parse(output: &str) -> Option<HelmVersion> {
        let word = output.split_whitespace().find(|w| w.starts_with('v'))?;
        let core = word
            .trim_start_matches('v')
            .split(['+', '-'])
            .next()
            .unwrap_or("");
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        Some(HelmVersion {
            major,
            minor,
            patch,
            text: format!("v{major}.{minor}.{patch}"),
        })
    }

    /// v3.14 or newer.
    pub fn is_supported(&self) -> bool {
        (self.major, self.minor) >= MIN_VERSION
    }
}

/// Errors from finding or running `helm`. Every variant names what a user must look at: the
/// binary, the cluster's context, the release.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// No `helm` at the given path or on `PATH`.
    #[error(
        "helm not found{}: install Helm v3.14+ or v4 (https://helm.sh/docs/intro/install/), or pass its path with --helm PATH",
        match explicit { Some(p) => format!(" at {}", p.display()), None => " on PATH".to_string() }
    )]
    NotFound {
        /// The path given, when one was.
        explicit: Option<PathBuf>,
    },
    /// `helm version` ran but printed no version.
    #[error("{}: `helm version --short` printed no version ({output:?}); is this Helm?", path.display())]
    UnknownVersion {
        /// The binary.
        path: PathBuf,
        /// What it printed (first line).
        output: String,
    },
    /// Helm older than v3.14.
    #[error("{}: Helm {found} is too old; meshboot needs Helm v3.14+ or v4", path.display())]
    TooOld {
        /// The binary.
        path: PathBuf,
        /// The version it reports.
        found: String,
    },
    /// The binary could not be started.
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `controlPlane.version` is needed to name the chart version (install: helm always has it).
    #[error(
        "cluster {cluster}: controlPlane.version is not set: meshboot installs only an exact chart version"
    )]
    NoVersion {
        /// The cluster.
        cluster: String,
    },
    /// A chart is missing from `controlPlane.chartDir`, or has another version there.
    #[error("{chart} chart {version} not found in {}: {reason}", dir.display())]
    ChartDir {
        /// The chart name.
        chart: String,
        /// The version wanted.
        version: String,
        /// `controlPlane.chartDir`.
        dir: PathBuf,
        /// What is there instead.
        reason: String,
    },
    /// Helm failed; `message` is its error output reduced to one line.
    #[error("context {context}: helm {action} {release}: {message}")]
    Failed {
        /// The kubeconfig context.
        context: String,
        /// `upgrade --install`, `list`, `get values`.
        action: &'static str,
        /// The release.
        release: String,
        /// Helm's message.
        message: String,
    },
    /// Helm did not finish in time.
    #[error("context {context}: helm {action} {release} did not finish within {seconds}s")]
    Timeout {
        /// The kubeconfig context.
        context: String,
        /// What was running.
        action: &'static str,
        /// The release.
        release: String,
        /// The limit.
        seconds: u64,
    },
    /// Helm's JSON output was not what Helm prints.
    #[error("context {context}: release {release}: {message}")]
    Output {
        /// The kubeconfig context.
        context: String,
        /// The release.
        release: String,
        /// What was wrong.
        message: String,
    },
    /// The release is mid-operation; see [`Decision::Blocked`].
    #[error("context {context}: {reason}")]
    Blocked {
        /// The kubeconfig context.
        context: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Writing the values file.
    #[error("cannot write the values file for release {release}: {source}")]
    ValuesFile {
        /// The release.
        release: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where a release goes: the cluster's kubeconfig context (and file) and the Istio namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `--kube-context`.
    pub context: String,
    /// `--kubeconfig`, when the mesh file names one (else Helm reads `$KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
    /// `-n`: the Istio namespace, which meshboot creates (with its network label) first.
    pub namespace: String,
}

impl Target {
    /// The target of `cluster`'s releases.
    ///
    /// ```
    /// use mesh_core::{helm::Target, spec::MeshSpec};
    /// let spec = MeshSpec::from_yaml(
    ///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: ctx-a, kubeconfig: /k/a}]\n",
    ///     std::path::Path::new("."), "m.yaml").unwrap();
    /// let t = Target::of(&spec, &spec.clusters[0]);
    /// assert_eq!((t.context.as_str(), t.namespace.as_str()), ("ctx-a", "istio-system"));
    /// assert_eq!(t.kubeconfig.as_deref(), Some(std::path::Path::new("/k/a")));
    /// ```
    pub fn of(spec: &MeshSpec, cluster: &ClusterSpec) -> Target {
        Target {
            context: cluster.context_for_commands(),
            kubeconfig: cluster.kubeconfig.clone(),
            namespace: spec.istio_namespace.clone(),
        }
    }
}

/// One Helm release meshboot manages.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The release name (`istio-base`, `istiod`, `istio-eastwestgateway`, `istio-cni`,
    /// `ztunnel`).
    pub name: String,
    /// The chart name (`base`, `istiod`, `gateway`, `cni`, `ztunnel`): with the version, what
    /// `helm list` shows as `<chart>-<version>`.
    pub chart: String,
    /// Where the chart comes from.
    pub chart_ref: ChartRef,
    /// The exact chart version.
    pub version: String,
    /// The values, as rendered and merged with the mesh file's.
    pub values: Value,
    /// The cluster.
    pub target: Target,
}

impl Release {
    /// The release of one chart's rendered values for `cluster`.
    ///
    /// ```
    /// use mesh_core::{helm::{ChartRef, Release}, render::HelmValues, spec::MeshSpec};
    /// let spec = MeshSpec::from_yaml(
    ///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\ncontrolPlane: {install: helm, version: 1.28.2}\nclusters: [{name: a, network: n, context: a}]\n",
    ///     std::path::Path::new("."), "m.yaml")?;
    /// let values = HelmValues { chart: "base".into(), values: serde_json::json!({}) };
    /// let r = Release::for_chart(&spec, &spec.clusters[0], &values)?;
    /// assert_eq!((r.name.as_str(), r.version.as_str()), ("istio-base", "1.28.2"));
    /// assert!(matches!(r.chart_ref, ChartRef::Repo { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_chart(
        spec: &MeshSpec,
        cluster: &ClusterSpec,
        values: &HelmValues,
    ) -> Result<Release, HelmError> {
        let version = spec
            .control_plane
            .version
            .clone()
            .ok_or_else(|| HelmError::NoVersion {
                cluster: cluster.name.clone(),
            })?;
        Ok(Release {
            name: crate::render::helm::release_name(&values.chart).to_string(),
            chart: values.chart.clone(),
            chart_ref: ChartRef::resolve(&spec.control_plane.source, &values.chart, &version),
            version,
            values: values.values.clone(),
            target: Target::of(spec, cluster),
        })
    }
}

/// The `helm` binary, located and version-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helm {
    path: PathBuf,
    version: HelmVersion,
}

impl Helm {
    /// Find `helm` (the `explicit` path, else `helm` on `PATH`) and check it is v3.14+ or v4.
    ///
    /// ```no_run
    /// # async fn f() {
    /// match mesh_core::helm::Helm::locate(None).await {
    ///     Ok(helm) => println!("using {} {}", helm.path().display(), helm.version().text),
    ///     Err(e) => eprintln!("error: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn locate(explicit: Option<&Path>) -> Result<Helm, HelmError> {
        let path = find_binary(explicit, std::env::var_os("PATH").as_deref())?;
        let version = run::version(&path).await?;
        if !version.is_supported() {
            return Err(HelmError::TooOld {
                path,
                found: version.text,
            });
        }
        Ok(Helm { path, version })
    }

    /// The binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its version.
    pub fn version(&self) -> &HelmVersion {
        &self.version
    }
}

/// The binary: `explicit` if it is a file, else the first `helm` in `path_var`'s folders.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let err = mesh_core::helm::find_binary(None, Some(dir.path().as_os_str())).unwrap_err();
/// assert!(err.to_string().starts_with("helm not found on PATH"), "{err}");
/// ```
pub fn find_binary(
    explicit: Option<&Path>,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, HelmError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(HelmError::NotFound {
                explicit: Some(p.to_path_buf()),
            })
        };
    }
    path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("helm"))
        .find(|candidate| is_executable(candidate))
        .ok_or(HelmError::NotFound { explicit: None })
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// For `controlPlane.chartDir`: the chart is there at `version`, as `<dir>/<chart>-<version>.tgz`
/// or as a folder `<dir>/<chart>/` whose `Chart.yaml` says `version` (Helm ignores `--version`
/// for a local chart, so this check is the only thing keeping the version honest).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("base")).unwrap();
/// std::fs::write(dir.path().join("base/Chart.yaml"), "apiVersion: v2\nname: base\nversion: 1.27.0\n").unwrap();
/// let err = mesh_core::helm::check_chart_dir(dir.path(), "base", "1.28.2").unwrap_err();
/// assert!(err.to_string().contains("its Chart.yaml says version 1.27.0"), "{err}");
/// assert!(mesh_core::helm::check_chart_dir(dir.path(), "base", "1.27.0").is_ok());
/// ```
pub fn check_chart_dir(dir: &Path, chart: &str, version: &str) -> Result<(), HelmError> {
    let err = |reason: String| HelmError::ChartDir {
        chart: chart.to_string(),
        version: version.to_string(),
        dir: dir.to_path_buf(),
        reason,
    };
    if command::packaged(dir, chart, version).is_file() {
        return Ok(());
    }
    let chart_yaml = dir.join(chart).join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).map_err(|e| {
        err(format!(
            "expected {chart}-{version}.tgz or {chart}/Chart.yaml ({}: {e})",
            chart_yaml.display()
        ))
    })?;
    #[derive(serde::Deserialize)]
    struct ChartYaml {
        name: Option<String>,
        version: Option<String>,
    }
    let meta: ChartYaml = serde_saphyr::from_str(&text)
        .map_err(|e| err(format!("{} is not a chart file: {e}", chart_yaml.display())))?;
    if meta.name.as_deref() != Some(chart) {
        return Err(err(format!(
            "{} names chart {:?}",
            chart_yaml.display(),
            meta.name.unwrap_or_default()
        )));
    }
    match meta.version.as_deref() {
        Some(v) if v == version => Ok(()),
        other => Err(err(format!(
            "{chart}/ is there, but its Chart.yaml says version {}",
            other.unwrap_or("(none)")
        ))),
    }
}

/// Every chart source problem for the mesh, before anything runs: for `chartDir`, each chart a
/// cluster installs must be there at `controlPlane.version`.
pub fn check_sources(spec: &MeshSpec, charts: &[&str]) -> Result<(), HelmError> {
    let (ChartSource::Dir(dir), Some(version)) =
        (&spec.control_plane.source, &spec.control_plane.version)
    else {
        return Ok(());
    };
    for chart in charts {
        check_chart_dir(dir, chart, version)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_versions() {
        for (out, ok) in [
            ("v4.1.4+g05fa379", true),
            ("v3.14.0+g3fc9f4b", true),
            ("v3.19.2+g8766e71", true),
            ("v3.13.3+gc8b9489", false),
            ("v2.17.0+ga690bad", false),
        ] {
            let v = HelmVersion::parse(out).unwrap();
            assert_eq!(v.is_supported(), ok, "{out}");
        }
        assert_eq!(HelmVersion::parse("").map(|v| v.text), None);
        assert_eq!(HelmVersion::parse("vX.1.2"), None);
    }

    #[test]
    fn an_explicit_path_must_exist_and_path_is_searched_in_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let err = find_binary(Some(&a.path().join("helm")), None).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "helm not found at {}",
                a.path().join("helm").display()
            )),
            "{err}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let fake = b.path().join("helm");
            std::fs::write(&fake, "#!/bin/sh\n").unwrap();
            // Not executable: skipped, as a shell would.
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o644)).unwrap();
            let path = std::env::join_paths([a.path(), b.path()]).unwrap();
            assert!(find_binary(None, Some(&path)).is_err());
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(find_binary(None, Some(&path)).unwrap(), fake);
        }
    }

    #[test]
    fn a_chart_folder_must_be_the_chart_it_is_named_after() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("istiod")).unwrap();
        std::fs::write(
            dir.path().join("istiod/Chart.yaml"),
            "apiVersion: v2\nname: base\nversion: 1.28.2\n",
        )
        .unwrap();
        let err = check_chart_dir(dir.path(), "istiod", "1.28.2").unwrap_err();
        assert!(err.to_string().contains("names chart \"base\""), "{err}");
        let err = check_chart_dir(dir.path(), "gateway", "1.28.2").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected gateway-1.28.2.tgz or gateway/Chart.yaml"),
            "{err}"
        );
        std::fs::write(dir.path().join("gateway-1.28.2.tgz"), b"x").unwrap();
        assert!(check_chart_dir(dir.path(), "gateway", "1.28.2").is_ok());
    }
}
