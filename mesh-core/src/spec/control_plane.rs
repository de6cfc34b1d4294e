//! `controlPlane`: whether meshboot installs Istio's Helm charts, which chart version, where
//! the charts come from, and the values a user adds to what meshboot renders.
//!
//! ```yaml
//! controlPlane:
//!   install: helm          # helm | none (default none: Istio is installed by you)
//!   version: 1.28.2        # the exact chart version; required with install: helm
//!   repo: https://istio-release.storage.googleapis.com/charts   # the default
//!   # chartDir: ./charts   # air-gapped instead of repo: <dir>/<chart>/ or <dir>/<chart>-<version>.tgz
//!   values:                # per chart, merged over what meshboot renders
//!     istiod: {pilot: {resources: {requests: {cpu: 200m}}}}
//! clusters:
//!   - name: eu
//!     controlPlane:
//!       values:            # this cluster only, merged over controlPlane.values
//!         gateway: {service: {type: NodePort}}
//! ```
//!
//! The rules:
//! - `version` is an exact chart version (`1.28.2`, `1.24.0-alpha.0`): never `latest`, never a
//!   range, so two runs install the same thing. With `install: none` it is optional and only
//!   pins the commands PLAN.md and the hints print.
//! - `repo` (an `https://`, `http://` or `oci://` URL) and `chartDir` are exclusive.
//! - `values` has one entry per chart (`base`, `istiod`, `gateway` for sidecar; `cni`,
//!   `ztunnel` for ambient), each a mapping. Maps merge key by key; a scalar or a list replaces.
//! - A key meshboot sets itself (the mesh identity, the multicluster and east-west gateway keys:
//!   [`crate::render::helm::OWNED_VALUES`]) is an error naming the key and the mesh-file field
//!   that sets it, wherever it is written: the value meshboot computes and the one the user
//!   wrote would otherwise silently disagree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::file::{ChartValuesFile, ControlPlaneFile, Node, S, Scalar};
use super::load::resolve;
use super::validate::{Issues, Pos};
use super::{Dataplane, Install};
use crate::render::helm::OWNED_VALUES;

/// Istio's Helm repository, used when `controlPlane` names neither `repo` nor `chartDir`.
pub const DEFAULT_CHART_REPO: &str = "https://istio-release.storage.googleapis.com/charts";

/// The validated `controlPlane` section.
///
/// ```
/// use mesh_core::spec::{ChartSource, Install, MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\ncontrolPlane: {install: helm, version: 1.28.2}\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// assert_eq!(spec.control_plane.install, Install::Helm);
/// assert_eq!(spec.control_plane.version.as_deref(), Some("1.28.2"));
/// assert_eq!(spec.control_plane.source, ChartSource::Repo(mesh_core::spec::DEFAULT_CHART_REPO.into()));
/// # Ok::<(), mesh_core::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlPlaneSpec {
    /// `install` (default `none`).
    pub install: Install,
    /// `version`: the exact chart version (always set with [`Install::Helm`]).
    pub version: Option<String>,
    /// `repo` or `chartDir`.
    pub source: ChartSource,
    /// `values`, keyed by chart name (`base`, `istiod`, `gateway`, `cni`, `ztunnel`); each a
    /// JSON object.
    pub values: BTreeMap<String, Value>,
}

/// Where the charts come from.
///
/// ```
/// use mesh_core::spec::ChartSource;
/// assert_eq!(ChartSource::default(), ChartSource::Repo("https://istio-release.storage.googleapis.com/charts".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartSource {
    /// A chart repository URL (`controlPlane.repo`, or [`DEFAULT_CHART_REPO`]); `oci://` URLs
    /// name the registry path the charts sit under.
    Repo(String),
    /// `controlPlane.chartDir`, resolved relative to the mesh file: `<dir>/<chart>/` or
    /// `<dir>/<chart>-<version>.tgz`.
    Dir(PathBuf),
}

impl Default for ChartSource {
    fn default() -> Self {
        ChartSource::Repo(DEFAULT_CHART_REPO.to_string())
    }
}

/// The chart names a `values` section may name, and the data plane each needs (`None`: both).
const CHARTS: [(&str, Option<Dataplane>); 5] = [
    ("base", None),
    ("istiod", None),
    ("gateway", Some(Dataplane::Sidecar)),
    ("cni", Some(Dataplane::Ambient)),
    ("ztunnel", Some(Dataplane::Ambient)),
];

pub(super) fn validate_control_plane(
    cp: Option<&S<ControlPlaneFile>>,
    dataplane: Dataplane,
    base_dir: &Path,
    issues: &mut Issues,
) -> ControlPlaneSpec {
    let Some(cp) = cp else {
        return ControlPlaneSpec::default();
    };
    let f = &cp.value;
    let install = match &f.install {
        None => Install::default(),
        Some(v) => v.value.parse().unwrap_or_else(|e: super::UnknownKeyword| {
            issues.at("controlPlane.install", v.referenced, e.to_string());
            Install::default()
        }),
    };
    let version = match &f.version {
        None => {
            if install == Install::Helm {
                issues.at(
                    "controlPlane.version",
                    cp.referenced,
                    "required with install: helm: the exact Istio chart version, e.g. version: 1.28.2 (meshboot never installs the latest implicitly)",
                );
            }
            None
        }
        Some(v) => match chart_version(&v.value) {
            Ok(s) => Some(s),
            Err(why) => {
                issues.at("controlPlane.version", v.referenced, why);
                None
            }
        },
    };
    let source = match (&f.repo, &f.chart_dir) {
        (Some(_), Some(dir)) => {
            issues.at(
                "controlPlane.chartDir",
                dir.referenced,
                "repo and chartDir are exclusive: the charts come either from a repository or from a folder",
            );
            ChartSource::default()
        }
        (Some(repo), None) => match repo_url(&repo.value) {
            Ok(url) => ChartSource::Repo(url),
            Err(why) => {
                issues.at("controlPlane.repo", repo.referenced, why);
                ChartSource::default()
            }
        },
        (None, Some(dir)) if dir.value.trim().is_empty() => {
            issues.at(
                "controlPlane.chartDir",
                dir.referenced,
                "must not be empty (leave it out to use the repository)",
            );
            ChartSource::default()
        }
        (None, Some(dir)) => ChartSource::Dir(resolve(base_dir, &dir.value)),
        (None, None) => ChartSource::default(),
    };
    let values = f
        .values
        .as_ref()
        .map(|v| chart_values("controlPlane.values", v, dataplane, issues))
        .unwrap_or_default();
    ControlPlaneSpec {
        install,
        version,
        source,
        values,
    }
}

/// `clusters[i].controlPlane.values`.
pub(super) fn cluster_values(
    path: &str,
    values: Option<&S<ChartValuesFile>>,
    dataplane: Dataplane,
    issues: &mut Issues,
) -> BTreeMap<String, Value> {
    values
        .map(|v| chart_values(path, v, dataplane, issues))
        .unwrap_or_default()
}

fn chart_values(
    path: &str,
    file: &S<ChartValuesFile>,
    dataplane: Dataplane,
    issues: &mut Issues,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (chart, node) in file.value.charts() {
        let here = format!("{path}.{chart}");
        if let Some((_, Some(needs))) = CHARTS.iter().find(|(c, _)| *c == chart)
            && *needs != dataplane
        {
            issues.at(
                &here,
                node.referenced,
                format!(
                    "the {chart} chart is not installed with dataplane: {dataplane} ({})",
                    match dataplane {
                        Dataplane::Ambient =>
                            "the ambient east-west gateway is a Gateway API Gateway, not the istio/gateway chart",
                        Dataplane::Sidecar => "cni and ztunnel are the ambient data plane",
                    }
                ),
            );
            continue;
        }
        match &node.value {
            Node::Null => {}
            Node::Map(_) => {
                owned_keys(chart, &here, node, &mut Vec::new(), issues);
                out.insert(chart.to_string(), node.value.to_json());
            }
            _ => issues.at(
                &here,
                node.referenced,
                format!("expected a mapping of Helm values for the {chart} chart"),
            ),
        }
    }
    out
}

/// Reports every key of `node` that would change a value meshboot sets: the key itself, or a
/// non-mapping written where meshboot's keys sit below (it would replace them).
fn owned_keys<'a>(
    chart: &str,
    path: &str,
    node: &'a S<Node>,
    at: &mut Vec<&'a str>,
    issues: &mut Issues,
) {
    let Node::Map(entries) = &node.value else {
        return;
    };
    for (key, value) in entries {
        at.push(&key.value);
        let hit = OWNED_VALUES.iter().filter(|o| o.chart == chart).find(|o| {
            o.path == at.as_slice()
                || (!matches!(value.value, Node::Map(_))
                    && o.path.len() > at.len()
                    && o.path[..at.len()] == at[..])
        });
        match hit {
            Some(owned) => {
                let message = if owned.path == at.as_slice() {
                    format!("meshboot sets this value ({}); leave it out", owned.why)
                } else {
                    format!(
                        "{} here would replace {}, which meshboot sets ({}); write a mapping without it",
                        kind(&value.value),
                        display_path(owned.path),
                        owned.why
                    )
                };
                issues.at(
                    format!("{path}.{}", display_path(at)),
                    Pos::from(key.referenced),
                    message,
                );
            }
            None => owned_keys(chart, path, value, at, issues),
        }
        at.pop();
    }
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::Null => "null",
        Node::Seq(_) => "a list",
        Node::Map(_) => "a mapping",
        _ => "a scalar",
    }
}

/// `global.meshID`; a key with a `.` or `/` in it (a label name) is quoted.
fn display_path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| {
            if s.contains(['.', '/', ' ']) {
                format!("\"{s}\"")
            } else {
                (*s).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// An exact chart version: three numeric parts, optionally `-prerelease` and `+build`, as Helm
/// chart versions are (SemVer 2).
fn chart_version(v: &Scalar) -> Result<String, String> {
    let s = match v {
        Scalar::Text(s) => s.trim(),
        Scalar::Number(n) => {
            return Err(format!(
                "{n} is not an exact chart version: write all three parts, e.g. version: {n}.0 (or the patch release you run)"
            ));
        }
        Scalar::Other => {
            return Err("expected the exact chart version as text, e.g. version: 1.28.2".into());
        }
    };
    if s.eq_ignore_ascii_case("latest") || s.is_empty() {
        return Err(format!(
            "{s:?} is not a version: name the exact chart version, e.g. 1.28.2 (meshboot never installs the latest implicitly)"
        ));
    }
    if s.starts_with(['^', '~', '>', '<', '=']) || s.contains(['*', ' ', ',', '|']) {
        return Err(format!(
            "{s:?} is a version range: name one exact chart version, e.g. 1.28.2, so every run installs the same charts"
        ));
    }
    let core_end = s.find(['-', '+']).unwrap_or(s.len());
    let (core, rest) = s.split_at(core_end);
    // `v1.28.2` is checked for shape first, then refused with the spelling to use instead.
    let core = core.strip_prefix('v').unwrap_or(core);
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let suffix_ok = rest.is_empty()
        || (rest.len() > 1
            && rest[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+')));
    if !numeric || !suffix_ok {
        return Err(format!(
            "{s:?} is not an exact chart version: expected MAJOR.MINOR.PATCH, e.g. 1.28.2 or 1.24.0-alpha.0"
        ));
    }
    if let Some(bare) = s.strip_prefix('v') {
        return Err(format!(
            "{s:?}: Istio's chart versions have no leading v; write {bare}"
        ));
    }
    Ok(s.to_string())
}

/// A repository URL Helm's `--repo` (or an `oci://` reference) accepts; a trailing `/` is
/// dropped so commands read the same however the URL was written.
fn repo_url(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    let ok = ["https://", "http://", "oci://"]
        .iter()
        .any(|scheme| t.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty()));
    if ok && !t.contains(char::is_whitespace) {
        Ok(t.to_string())
    } else {
        Err(format!(
            "{s:?} is not a chart repository URL: expected https://..., http://... or oci://..."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Scalar {
        Scalar::Text(s.to_string())
    }

    #[test]
    fn exact_versions_only() {
        for ok in ["1.28.2", "1.24.0-alpha.0", "1.30.0+build.1"] {
            assert_eq!(chart_version(&text(ok)).as_deref(), Ok(ok), "{ok}");
        }
        for (bad, frag) in [
            ("latest", "never installs the latest"),
            ("", "not a version"),
            ("^1.28", "range"),
            (">=1.28.0", "range"),
            ("1.28.x", "not an exact"),
            ("1.28", "not an exact"),
            ("v1.28.2", "no leading v; write 1.28.2"),
            ("1.28.2-", "not an exact"),
        ] {
            let err = chart_version(&text(bad)).unwrap_err();
            assert!(err.contains(frag), "{bad}: {err}");
        }
        let err = chart_version(&Scalar::Number("1.28".into())).unwrap_err();
        assert!(err.contains("write all three parts"), "{err}");
    }

    #[test]
    fn repository_urls() {
        assert_eq!(
            repo_url("https://charts.example.com/istio/").as_deref(),
            Ok("https://charts.example.com/istio")
        );
        assert!(repo_url("oci://registry.example.com/istio").is_ok());
        for bad in ["charts.example.com", "https://", "ftp://x", "https://a b"] {
            assert!(repo_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoted_label_keys_in_paths() {
        assert_eq!(
            display_path(&["labels", "topology.istio.io/network"]),
            "labels.\"topology.istio.io/network\""
        );
        assert_eq!(display_path(&["global", "meshID"]), "global.meshID");
    }
}
