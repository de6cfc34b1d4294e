//! Our test charts (`fixtures/charts/`): small charts of our own that create the objects Istio's
//! charts own, with the same names, kinds, labels and Helm ownership, so tests reproduce how
//! meshboot and Helm meet on a cluster. See `fixtures/charts/README.md`.
//!
//! They are directories `<chart>/` at version [`VERSION`] (the `<dir>/<chart>/` layout of a mesh
//! file's `controlPlane.chartDir`); [`package_all`] makes the `<dir>/<chart>-<version>.tgz` layout.
//!
//! ```
//! let gateway = mesh_tests::charts::chart("gateway");
//! assert!(gateway.join("Chart.yaml").is_file());
//! assert_eq!(mesh_tests::charts::NAMES, ["base", "istiod", "gateway", "cni", "ztunnel"]);
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::tools::Helm;

/// The charts, in install order for sidecar (`base`, `istiod`, `gateway`) then ambient.
pub const NAMES: [&str; 5] = ["base", "istiod", "gateway", "cni", "ztunnel"];

/// The version every chart directory declares (the Istio release they stand in for).
pub const VERSION: &str = "1.28.2";

/// `fixtures/charts`: the chart directory to give as `controlPlane.chartDir`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/charts")
}

/// One chart's directory.
pub fn chart(name: &str) -> PathBuf {
    dir().join(name)
}

/// Packages every chart into `out` as `<chart>-<version>.tgz` (the archive layout of a
/// `chartDir`); `version` overrides the charts' own. Returns the archives, in [`NAMES`] order.
pub fn package_all(helm: &Helm, out: &Path, version: &str) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut archives = Vec::new();
    for name in NAMES {
        let status = helm
            .command()
            .arg("package")
            .arg(chart(name))
            .args([
                "--version",
                version,
                "--app-version",
                version,
                "--destination",
            ])
            .arg(out)
            .output()
            .with_context(|| format!("running helm package {name}"))?;
        anyhow::ensure!(
            status.status.success(),
            "helm package {name}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let archive = out.join(format!("{name}-{version}.tgz"));
        anyhow::ensure!(
            archive.is_file(),
            "helm package made no {}",
            archive.display()
        );
        archives.push(archive);
    }
    Ok(archives)
}
