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

/// The east-west gateway's Service as `helm install istio-eastwestgateway` of our `gateway`
/// chart makes it with `name=istio-eastwestgateway` and `networkGateway=<network>`: Helm's
/// ownership metadata, the network label, the four network-gateway ports, a `LoadBalancer` (the
/// emulator's load-balancer controller gives it an address). For tests that need a cluster's
/// gateway to be there (with `controlPlane.install: none` it is the user's to install) without
/// running Helm; tests of Helm itself install the chart.
///
/// ```
/// let svc = mesh_tests::charts::eastwest_gateway_service("istio-system", "network1");
/// assert_eq!(svc["metadata"]["labels"]["topology.istio.io/network"], "network1");
/// assert_eq!(svc["metadata"]["annotations"]["meta.helm.sh/release-name"], "istio-eastwestgateway");
/// ```
pub fn eastwest_gateway_service(namespace: &str, network: &str) -> serde_json::Value {
    let name = "istio-eastwestgateway";
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app": name,
                "istio": "eastwestgateway",
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/instance": name,
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/part-of": "istio",
                "app.kubernetes.io/version": VERSION,
                "helm.sh/chart": format!("gateway-{VERSION}"),
                "topology.istio.io/network": network,
            },
            "annotations": {
                "meta.helm.sh/release-name": name,
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {"name": "status-port", "port": 15021, "targetPort": 15021},
                {"name": "tls", "port": 15443, "targetPort": 15443},
                {"name": "tls-istiod", "port": 15012, "targetPort": 15012},
                {"name": "tls-webhook", "port": 15017, "targetPort": 15017},
            ],
            "selector": {"app": name, "istio": "eastwestgateway"},
        },
    })
}

/// Stores [`eastwest_gateway_service`] in `cluster`, creating the namespace first when it is
/// missing (as `helm install --create-namespace` would; a real API server refuses objects in a
/// namespace that does not exist). The load-balancer controller then gives it an address.
pub fn install_eastwest_gateway(
    cluster: &crate::EmulatedCluster,
    namespace: &str,
    network: &str,
) -> anyhow::Result<()> {
    if cluster.object("v1", "Namespace", None, namespace).is_none() {
        cluster.insert_object(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace},
        }))?;
    }
    cluster.insert_object(eastwest_gateway_service(namespace, network))?;
    Ok(())
}
