//! CustomResourceDefinitions a test installs into a fresh emulated cluster, as a user or Helm
//! would: our own small Istio set (the same CRDs `fixtures/charts/base` installs), the Gateway
//! API's standard CRDs, or any CRD file such as Istio's real
//! `../shared/data/istio/crd-all-1.30.3.gen.yaml`.
//!
//! They are server-side applied with field manager `kubectl` (what
//! `kubectl apply --server-side -f <file>` records), so a later `helm install` of a chart that
//! ships the same CRDs meets them exactly as on a real cluster: it refuses them for missing Helm
//! ownership metadata. The API server's CRD controllers then mark each one `NamesAccepted` and
//! `Established`, and its kinds are served.
//!
//! ```
//! use mesh_tests::TestClusters;
//!
//! let clusters = TestClusters::start(&["eu"])?;
//! let eu = clusters.cluster("eu");
//! assert!(eu.object("apiextensions.k8s.io/v1", "CustomResourceDefinition", None,
//!     "gateways.networking.istio.io").is_none(), "a fresh cluster has no Istio CRDs");
//! clusters.install_istio_crds()?;
//! assert!(eu.serves("networking.istio.io/v1", "Gateway"));
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cluster::ClusterState;
use crate::ops::{self, PatchKind, WriteOpts};
use crate::store::{Key, now_rfc3339};

/// Istio's CRDs as our test charts ship them (`fixtures/charts/base/files/crd-all.yaml`).
pub const ISTIO_CRDS: &str = include_str!("../../fixtures/charts/base/files/crd-all.yaml");

/// The Gateway API's standard CRDs (`fixtures/crds/gateway-api.yaml`).
pub const GATEWAY_API_CRDS: &str = include_str!("../../fixtures/crds/gateway-api.yaml");

/// The field manager CRDs are applied with (`kubectl apply --server-side`).
pub const CRD_MANAGER: &str = "kubectl";

/// The real Istio CRD file beside the repository (`../shared/data/istio/crd-all-1.30.3.gen.yaml`),
/// if present. CI has `../shared` beside the clone; elsewhere tests using it skip.
pub fn real_istio_crds() -> Option<PathBuf> {
    crate::tools::shared_data(REAL_ISTIO_CRDS)
}

/// Where Istio's real CRD file is, relative to the shared data directory.
pub const REAL_ISTIO_CRDS: &str = "istio/crd-all-1.30.3.gen.yaml";

/// The CustomResourceDefinition documents of a (multi-document) YAML text.
pub fn parse(text: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).context("reading CustomResourceDefinition YAML")?;
    let crds: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    if crds.is_empty() {
        anyhow::bail!("no CustomResourceDefinition in the YAML");
    }
    Ok(crds)
}

/// Server-side applies every CRD of `crds` to the cluster; returns how many were applied.
pub(crate) fn apply_all(st: &ClusterState, crds: &[Value]) -> anyhow::Result<usize> {
    let def = st
        .lock()
        .registry
        .by_plural("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .cloned()
        .context("the emulator serves no CustomResourceDefinitions")?;
    let opts = WriteOpts {
        dry_run: false,
        manager: CRD_MANAGER.into(),
        force: false,
        ..Default::default()
    };
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        ops::patch(st, &def, None, name, PatchKind::Apply, crd, &opts, None)
            .map_err(|e| anyhow::anyhow!("cluster {}: applying CRD {name}: {e}", st.name))?;
        establish(st, &Key::new(&def.group, &def.plural, None, name));
    }
    Ok(crds.len())
}

/// What the API server's naming and establishing controllers do to a new CRD: accept its names,
/// mark it `NamesAccepted` and `Established`, and record its storage version. Runs on every CRD
/// write (the controllers react to each change); a CRD already established is left alone.
pub(crate) fn establish(st: &ClusterState, key: &Key) {
    let mut inner = st.lock();
    let Some(def) = inner
        .registry
        .by_plural("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .cloned()
    else {
        return;
    };
    let Some(old) = inner.store.get(key).cloned() else {
        return;
    };
    let spec = &old["spec"];
    let mut accepted = json!({
        "kind": spec["names"]["kind"],
        "listKind": spec["names"]["listKind"].as_str().map_or_else(
            || json!(format!("{}List", spec["names"]["kind"].as_str().unwrap_or_default())),
            |l| json!(l)),
        "plural": spec["names"]["plural"],
        "singular": spec["names"]["singular"].as_str().map_or_else(
            || json!(spec["names"]["kind"].as_str().unwrap_or_default().to_ascii_lowercase()),
            |s| json!(s)),
    });
    for k in ["shortNames", "categories"] {
        if let Some(v) = spec["names"].get(k).filter(|v| !v.is_null()) {
            accepted[k] = v.clone();
        }
    }
    let storage: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == true)
        .map(|v| v["name"].clone())
        .collect();
    let status = &old["status"];
    let mut stored_versions: Vec<Value> = status["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for v in storage {
        if !stored_versions.contains(&v) {
            stored_versions.push(v);
        }
    }
    let kept_time = |ty: &str| {
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == ty && c["status"] == "True")
            .map(|c| c["lastTransitionTime"].clone())
    };
    let now = now_rfc3339();
    let condition = |ty: &str, reason: &str, message: &str| {
        json!({
            "type": ty, "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": kept_time(ty).unwrap_or_else(|| json!(now)),
        })
    };
    let new_status = json!({
        "acceptedNames": accepted,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored_versions,
    });
    ops::write_status(
        st,
        &mut inner,
        &def,
        &old,
        new_status,
        "kube-apiserver",
        "CRD establishing controller",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_istio_set_has_the_charts_crds_with_v1_as_storage() -> anyhow::Result<()> {
        let crds = parse(ISTIO_CRDS)?;
        let names: Vec<&str> = crds
            .iter()
            .filter_map(|c| c["metadata"]["name"].as_str())
            .collect();
        for n in [
            "gateways.networking.istio.io",
            "virtualservices.networking.istio.io",
            "destinationrules.networking.istio.io",
            "peerauthentications.security.istio.io",
            "telemetries.telemetry.istio.io",
            "wasmplugins.extensions.istio.io",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert_eq!(crds.len(), 14, "istio/base 1.28 ships 14 CRDs");
        let gw = crds
            .iter()
            .find(|c| c["metadata"]["name"] == "gateways.networking.istio.io")
            .cloned()
            .unwrap_or_default();
        assert_eq!(gw["spec"]["versions"][0]["name"], "v1");
        assert_eq!(gw["spec"]["versions"][0]["storage"], true);
        assert_eq!(
            gw["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
        Ok(())
    }

    #[test]
    fn gateway_api_set_is_parsed() -> anyhow::Result<()> {
        let crds = parse(GATEWAY_API_CRDS)?;
        assert!(
            crds.iter()
                .any(|c| c["metadata"]["name"] == "gateways.gateway.networking.k8s.io")
        );
        Ok(())
    }

    #[test]
    fn yaml_without_crds_is_an_error() {
        assert!(parse("apiVersion: v1\nkind: ConfigMap\n").is_err());
    }
}
