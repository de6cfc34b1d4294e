//! What rotation reads from a cluster before it decides anything: `cacerts` (which roots its
//! bundle holds, which root signed its intermediate, the rotation annotations), the running
//! istiod (version from its image tag, its environment), the mesh config the proxies get, and
//! the `istio-ca-root-cert` ConfigMaps istiod publishes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::cluster::{ClusterError, ClusterOps, ObjectRef};
use crate::pki::{self, CertInfo};
use crate::verify::cacerts::CacertsSecret;

/// The ConfigMap istiod publishes the root bundle in, in every namespace.
pub const ROOT_CONFIGMAP: &str = "istio-ca-root-cert";
/// The label istiod's namespace controller puts on [`ROOT_CONFIGMAP`] (and selects it by).
pub const ROOT_CONFIGMAP_SELECTOR: &str = "istio.io/config=true";
/// The istiod Deployment.
pub const ISTIOD: &str = "istiod";
/// The mesh config ConfigMap of the default revision (key `mesh`), rendered from the
/// `istio/istiod` chart's `meshConfig`.
pub const MESH_CONFIGMAP: &str = "istio";

/// The istiod a cluster runs, as read from its Deployment.
///
/// ```
/// use mesh_core::rotate::IstiodInfo;
/// let i = IstiodInfo { image: Some("docker.io/istio/pilot:1.17.3".into()), ..IstiodInfo::default() };
/// assert_eq!(i.version(), Some((1, 17)));
/// assert!(!i.reloads_plugged_certs()); // 1.18+ does, or 1.12+ with AUTO_RELOAD_PLUGIN_CERTS
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IstiodInfo {
    /// True when Deployment `istiod` exists in the Istio namespace.
    pub present: bool,
    /// The image of its `discovery` container (`docker.io/istio/pilot:1.28.2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Literal environment values of that container (values from `valueFrom` are not read).
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
}

impl IstiodInfo {
    /// `major.minor` from the image tag (`…:1.30.0-distroless` → 1.30).
    pub fn version(&self) -> Option<(u32, u32)> {
        let tag = self.image.as_deref()?.rsplit_once(':')?.1;
        let mut parts = tag.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }

    /// The image tag as written, for messages.
    pub fn version_text(&self) -> String {
        self.image
            .as_deref()
            .and_then(|i| i.rsplit_once(':'))
            .map(|(_, tag)| tag.to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    /// True when an environment variable is the string `true`.
    pub fn env_true(&self, name: &str) -> bool {
        self.env.get(name).is_some_and(|v| v == "true")
    }

    /// True when istiod reloads a changed `cacerts` without a restart
    /// (`reference/istio.md` §0, §1.2): on by default from 1.18, opt-in with
    /// `AUTO_RELOAD_PLUGIN_CERTS=true` from 1.12.
    pub fn reloads_plugged_certs(&self) -> bool {
        match self.version() {
            Some(v) if v >= (1, 18) => true,
            Some(v) if v >= (1, 12) => self.env_true("AUTO_RELOAD_PLUGIN_CERTS"),
            _ => false,
        }
    }
}

/// Everything rotation reads from one cluster.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterView {
    /// The `cacerts` Secret as stored, if any.
    pub cacerts: Option<Value>,
    pub istiod: IstiodInfo,
    /// `defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT` of the mesh config: `None` when
    /// the ConfigMap (or its `mesh` key) is missing.
    pub xds_agent: Option<bool>,
    /// `(namespace, root-cert.pem)` of every published root ConfigMap; `None` when not read.
    pub root_configmaps: Option<Vec<(String, String)>>,
}

impl ClusterView {
    /// The `cacerts` files, decoded.
    pub fn cacerts_files(&self) -> Option<Result<CacertsSecret, String>> {
        self.cacerts.as_ref().map(CacertsSecret::read)
    }

    /// The annotations of `cacerts`.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.cacerts
            .as_ref()
            .and_then(|c| c.pointer("/metadata/annotations"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the live intermediate (`ca-cert.pem`) says.
    pub fn intermediate(&self) -> Option<CertInfo> {
        let files = self.cacerts_files()?.ok()?;
        pki::cert_info(files.ca_cert.as_deref()?).ok()
    }
}

/// Reads `cacerts`, istiod and (when asked) the mesh config and published root ConfigMaps.
pub(crate) async fn observe<C: ClusterOps>(
    client: &C,
    namespace: &str,
    full: bool,
) -> Result<ClusterView, ClusterError> {
    let cacerts = client
        .get(&ObjectRef::namespaced("v1", "Secret", namespace, "cacerts"))
        .await?;
    let deployment = client
        .get(&ObjectRef::namespaced(
            "apps/v1",
            "Deployment",
            namespace,
            ISTIOD,
        ))
        .await?;
    let mut view = ClusterView {
        cacerts,
        istiod: deployment.as_ref().map(istiod_info).unwrap_or_default(),
        ..ClusterView::default()
    };
    if full {
        let mesh = client
            .get(&ObjectRef::namespaced(
                "v1",
                "ConfigMap",
                namespace,
                MESH_CONFIGMAP,
            ))
            .await?;
        view.xds_agent = mesh.as_ref().and_then(xds_agent);
        view.root_configmaps = Some(root_configmaps(client).await?);
    }
    Ok(view)
}

/// The published root bundles, `(namespace, root-cert.pem)`.
pub(crate) async fn root_configmaps<C: ClusterOps>(
    client: &C,
) -> Result<Vec<(String, String)>, ClusterError> {
    let items = client
        .list("v1", "ConfigMap", None, Some(ROOT_CONFIGMAP_SELECTOR))
        .await?;
    Ok(items
        .iter()
        .filter(|cm| cm.pointer("/metadata/name").and_then(Value::as_str) == Some(ROOT_CONFIGMAP))
        .filter_map(|cm| {
            let ns = cm.pointer("/metadata/namespace")?.as_str()?.to_string();
            let pem = cm
                .pointer("/data/root-cert.pem")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Some((ns, pem))
        })
        .collect())
}

fn istiod_info(deployment: &Value) -> IstiodInfo {
    let containers = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    let container = containers.and_then(|cs| {
        cs.iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))
            .or_else(|| cs.first())
    });
    let env = container
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .filter_map(|e| {
                    Some((
                        e.get("name")?.as_str()?.to_string(),
                        e.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    IstiodInfo {
        present: true,
        image: container
            .and_then(|c| c.get("image"))
            .and_then(Value::as_str)
            .map(str::to_string),
        env,
    }
}

/// `defaultConfig.proxyMetadata.PROXY_CONFIG_XDS_AGENT` of a mesh config ConfigMap.
fn xds_agent(configmap: &Value) -> Option<bool> {
    let mesh = configmap.pointer("/data/mesh")?.as_str()?;
    let parsed: Value = serde_saphyr::from_str(mesh).ok()?;
    let value = parsed.pointer("/defaultConfig/proxyMetadata/PROXY_CONFIG_XDS_AGENT");
    Some(match value {
        Some(Value::String(s)) => s == "true",
        Some(Value::Bool(b)) => *b,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn istiod_version_and_env_come_from_the_discovery_container() {
        let d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "x:9.9"},
            {"name": "discovery", "image": "docker.io/istio/pilot:1.17.8",
             "env": [{"name": "AUTO_RELOAD_PLUGIN_CERTS", "value": "true"},
                     {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}}});
        let i = istiod_info(&d);
        assert_eq!(i.version(), Some((1, 17)));
        assert!(i.reloads_plugged_certs());
        assert!(!i.env.contains_key("POD_NAME"));
        let old = IstiodInfo {
            image: Some("pilot:1.11.0".into()),
            ..i.clone()
        };
        assert!(!old.reloads_plugged_certs());
    }

    #[test]
    fn the_xds_agent_flag_is_read_from_the_mesh_config() {
        let cm = |mesh: &str| json!({"data": {"mesh": mesh}});
        assert_eq!(
            xds_agent(&cm(
                "defaultConfig:\n  proxyMetadata:\n    PROXY_CONFIG_XDS_AGENT: \"true\"\n"
            )),
            Some(true)
        );
        assert_eq!(
            xds_agent(&cm("defaultConfig:\n  discoveryAddress: istiod:15012\n")),
            Some(false)
        );
        assert_eq!(xds_agent(&json!({"data": {}})), None);
    }
}
