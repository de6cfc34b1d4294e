//! The render output tree and how it is written:
//!
//! ```text
//! DIR/PLAN.md                              cross-cluster order, Helm commands, what remains (plan_doc)
//! DIR/<cluster>/NN-<what>.yaml             objects in apply order (02-cacerts.yaml: mode 0600)
//! DIR/<cluster>/helm/<chart>-values.yaml   Helm values
//! DIR/<cluster>/kustomization.yaml         with Format::Kustomize
//! ```
//!
//! Every file is written atomically (temp file in the same folder, then rename), so a reader
//! never sees half a file and an interrupted run leaves the previous version. Files this module
//! did not produce are never touched; files a previous render produced that the current one does
//! not (a removed cluster, a gateway no longer needed) are reported as stale, not deleted.

use crate::files::{Access, write_atomic};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use super::plan_doc::PlanContext;
use super::{ClusterRender, RenderError, plan_doc, yaml};
use crate::spec::MeshSpec;

/// How the per-cluster folders are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Plain files, applied in name order.
    #[default]
    Files,
    /// Plain files plus a `kustomization.yaml` per cluster listing them in apply order.
    Kustomize,
}

/// One file of the output tree.
#[derive(Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path relative to the output folder, `/`-separated.
    pub path: String,
    /// The file's bytes.
    pub contents: String,
    /// Holds private key material: written with mode 0600.
    pub sensitive: bool,
}

// Hand-written so the cacerts manifest's contents never reach a log.
impl std::fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

/// Every file of the output tree, in a stable order.
///
/// ```
/// use std::collections::BTreeMap;
/// use mesh_core::{pki::ClusterBundle, render::{self, output}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n1, context: a}, {name: b, network: n2, context: b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let bundles: BTreeMap<_, _> = ["a", "b"].map(|c| (c.to_string(), ClusterBundle {
///     cluster: c.into(), ca_cert_pem: "c".into(), ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() })).into();
/// let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?;
/// let ctx = output::PlanContext { mesh_file: "m.yaml".into(), out_dir: "out".into() };
/// let files = output::files(&spec, &renders, output::Format::Kustomize, &ctx)?;
/// let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
/// assert!(paths.contains(&"a/02-cacerts.yaml") && paths.contains(&"b/kustomization.yaml"));
/// assert!(files.iter().find(|f| f.path == "a/02-cacerts.yaml").unwrap().sensitive);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn files(
    spec: &MeshSpec,
    renders: &[ClusterRender],
    format: Format,
    ctx: &PlanContext,
) -> Result<Vec<OutputFile>, RenderError> {
    let mut out = Vec::new();
    for r in renders {
        let mut stems: Vec<&str> = Vec::new();
        for o in &r.objects {
            if stems.last() != Some(&o.file_stem.as_str()) {
                stems.push(&o.file_stem);
            }
        }
        for stem in &stems {
            let objs: Vec<_> = r.objects.iter().filter(|o| o.file_stem == *stem).collect();
            out.push(OutputFile {
                path: format!("{}/{stem}.yaml", r.cluster),
                contents: yaml::to_yaml_documents(objs.iter().map(|o| &o.object))?,
                sensitive: objs.iter().any(|o| o.is_sensitive()),
            });
        }
        for h in &r.helm_values {
            out.push(OutputFile {
                path: format!("{}/helm/{}-values.yaml", r.cluster, h.chart),
                contents: yaml::to_yaml(&h.values)?,
                sensitive: false,
            });
        }
        if format == Format::Kustomize {
            let k = serde_json::json!({
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": stems.iter().map(|s| format!("{s}.yaml")).collect::<Vec<_>>(),
            });
            out.push(OutputFile {
                path: format!("{}/kustomization.yaml", r.cluster),
                contents: yaml::to_yaml(&k)?,
                sensitive: false,
            });
        }
    }
    out.push(OutputFile {
        path: "PLAN.md".into(),
        contents: plan_doc::plan_markdown(spec, renders, ctx),
        sensitive: false,
    });
    Ok(out)
}

/// What [`write()`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files created or whose contents changed.
    pub written: Vec<PathBuf>,
    /// Files that already had exactly these contents.
    pub unchanged: Vec<PathBuf>,
    /// Files an earlier render produced that this one does not: left in place, reported.
    pub stale: Vec<PathBuf>,
}

/// Write `files` under `out_dir`, atomically, 0600 for sensitive files. Existing files with the
/// same contents are left alone (their modification time too) unless their mode is wrong.
///
/// ```no_run
/// # let files: Vec<mesh_core::render::output::OutputFile> = vec![];
/// let report = mesh_core::render::output::write(std::path::Path::new("out"), &files)?;
/// for f in &report.stale { eprintln!("stale: {}", f.display()); }
/// # Ok::<(), mesh_core::render::RenderError>(())
/// ```
pub fn write(out_dir: &Path, files: &[OutputFile]) -> Result<WriteReport, RenderError> {
    write_or_preview(out_dir, files, false)
}

/// What [`write()`] would do, decided the same way, with nothing written (`render --dry-run`):
/// `written` lists the files that would be created or changed.
///
/// ```
/// use mesh_core::render::output::{OutputFile, preview};
/// let tmp = tempfile::tempdir().unwrap();
/// let files = vec![OutputFile { path: "eu/01-namespace.yaml".into(), contents: "x\n".into(), sensitive: false }];
/// let report = preview(&tmp.path().join("out"), &files).unwrap();
/// assert_eq!(report.written, [tmp.path().join("out/eu/01-namespace.yaml")]);
/// assert!(!tmp.path().join("out").exists());
/// ```
pub fn preview(out_dir: &Path, files: &[OutputFile]) -> Result<WriteReport, RenderError> {
    write_or_preview(out_dir, files, true)
}

fn write_or_preview(
    out_dir: &Path,
    files: &[OutputFile],
    dry_run: bool,
) -> Result<WriteReport, RenderError> {
    let mut report = WriteReport::default();
    for f in files {
        let path = out_dir.join(&f.path);
        if unchanged(&path, f)? {
            report.unchanged.push(path);
            continue;
        }
        if dry_run {
            report.written.push(path);
            continue;
        }
        let access = if f.sensitive {
            Access::Private
        } else {
            Access::Shared
        };
        write_atomic(&path, f.contents.as_bytes(), access).map_err(io_err(&path))?;
        report.written.push(path);
    }
    report.stale = stale_files(out_dir, files)?;
    Ok(report)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn unchanged(path: &Path, f: &OutputFile) -> Result<bool, RenderError> {
    let Ok(existing) = std::fs::read(path) else {
        return Ok(false);
    };
    if existing != f.contents.as_bytes() {
        return Ok(false);
    }
    Ok(mode_ok(path, f.sensitive))
}

#[cfg(unix)]
fn mode_ok(path: &Path, sensitive: bool) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) => !sensitive || m.permissions().mode() & 0o077 == 0,
        Err(_) => false,
    }
}

#[cfg(not(unix))]
fn mode_ok(_path: &Path, _sensitive: bool) -> bool {
    true
}

/// True for names render produces inside a cluster folder.
fn is_render_name(rel: &str) -> bool {
    let (dir, name) = match rel.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", rel),
    };
    if dir == "helm" {
        return name.ends_with("-values.yaml");
    }
    if !dir.is_empty() {
        return false;
    }
    if name == "kustomization.yaml" {
        return true;
    }
    let b = name.as_bytes();
    b.len() > 8
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b'-'
        && name.ends_with(".yaml")
}

/// Render-named files under `out_dir` that `files` does not contain. A folder counts as a
/// previous render's only if it has `01-namespace.yaml`, so unrelated folders are not reported.
fn stale_files(out_dir: &Path, files: &[OutputFile]) -> Result<Vec<PathBuf>, RenderError> {
    let current: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut stale = Vec::new();
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return Ok(stale);
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("01-namespace.yaml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Some(cluster) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        for sub in ["", "helm"] {
            let d = if sub.is_empty() {
                dir.clone()
            } else {
                dir.join(sub)
            };
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect();
            names.sort();
            for name in names {
                let rel = if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                };
                if is_render_name(&rel) && !current.contains(format!("{cluster}/{rel}").as_str()) {
                    stale.push(dir.join(&rel));
                }
            }
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names() {
        for ok in [
            "01-namespace.yaml",
            "helm/istiod-values.yaml",
            "kustomization.yaml",
        ] {
            assert!(is_render_name(ok), "{ok}");
        }
        for no in [
            "README.md",
            "notes.yaml",
            "helm/notes.txt",
            "x/01-a.yaml",
            "1-a.yaml",
        ] {
            assert!(!is_render_name(no), "{no}");
        }
    }
}
