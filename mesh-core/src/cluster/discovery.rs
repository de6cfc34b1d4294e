//! Where a kind lives on the API server: its plural resource name and scope, from a table of
//! the built-in kinds meshboot uses or, for CRD kinds, from discovery (cached per client).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{ClusterClient, ClusterError, ObjectRef};

/// kind → (plural, namespaced) for one apiVersion.
pub(super) type KindTable = HashMap<String, (String, bool)>;

impl ClusterClient {
    /// The URL path of the collection holding `object`.
    pub(super) async fn collection_of(
        &self,
        object: &ObjectRef,
        what: &str,
    ) -> Result<String, ClusterError> {
        self.collection(
            &object.api_version,
            &object.kind,
            object.namespace.as_deref(),
            what,
        )
        .await
    }

    /// The URL path of the collection holding `kind`, checking the scope against `namespace`.
    pub(super) async fn collection(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        what: &str,
    ) -> Result<String, ClusterError> {
        let (plural, namespaced) = self.resource(api_version, kind).await?;
        match (namespaced, namespace) {
            (true, None) => Err(self.invalid_object(
                what,
                &format!("{kind} is namespaced but metadata.namespace is not set"),
            )),
            (false, Some(_)) => Ok(collection_path(api_version, &plural, None)),
            (true, Some(ns)) => Ok(collection_path(api_version, &plural, Some(ns))),
            (false, None) => Ok(collection_path(api_version, &plural, None)),
        }
    }

    /// Like [`collection`](Self::collection), but a namespaced kind without namespace means
    /// "all namespaces" (lists only).
    pub(super) async fn collection_any_scope(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<String, ClusterError> {
        let (plural, namespaced) = self.resource(api_version, kind).await?;
        let ns = if namespaced { namespace } else { None };
        Ok(collection_path(api_version, &plural, ns))
    }

    /// Plural name and scope of a kind: built-in table first, then discovery (cached).
    pub(super) async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(String, bool), ClusterError> {
        if let Some((plural, namespaced)) = builtin_resource(api_version, kind) {
            return Ok((plural.to_string(), namespaced));
        }
        let cached = self
            .inner
            .discovery
            .lock()
            .ok()
            .and_then(|cache| cache.get(api_version).cloned());
        if let Some(found) = cached.as_ref().and_then(|kinds| kinds.get(kind)) {
            return Ok(found.clone());
        }
        // A kind the cache does not know is asked for again rather than trusted: CRDs appear
        // while meshboot runs (istio/base installs Istio's), and a group that was not served at
        // preflight must be seen once the chart made it.
        let kinds = Arc::new(self.discover(api_version).await?);
        if let Ok(mut cache) = self.inner.discovery.lock() {
            cache.insert(api_version.to_string(), kinds.clone());
        }
        kinds
            .get(kind)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownKind {
                cluster: self.name().to_string(),
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })
    }

    async fn discover(&self, api_version: &str) -> Result<KindTable, ClusterError> {
        let what = format!("discover {api_version}");
        let path = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let raw = self
            .send(&what, || {
                http::Request::get(path.as_str())
                    .header(http::header::ACCEPT, "application/json")
                    .body(Vec::new())
                    .map_err(kube::core::request::Error::BuildRequest)
            })
            .await?;
        if raw.code == 404 {
            // The whole group/version is not served: every kind in it is unknown.
            return Ok(HashMap::new());
        }
        self.check(&what, &raw)?;
        let list = self.json(&what, &raw)?;
        let mut kinds = HashMap::new();
        for resource in list
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(kind)) = (
                resource.get("name").and_then(Value::as_str),
                resource.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            if name.contains('/') {
                continue; // a subresource such as secrets/status
            }
            let namespaced = resource
                .get("namespaced")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            kinds.insert(kind.to_string(), (name.to_string(), namespaced));
        }
        Ok(kinds)
    }
}

/// Plural resource name and scope of the built-in kinds meshboot reads and writes. They are
/// fixed by Kubernetes, so looking them up saves a discovery round trip per cluster; other
/// kinds (Istio and Gateway API CRDs) go through discovery.
pub(crate) fn builtin_resource(api_version: &str, kind: &str) -> Option<(&'static str, bool)> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => ("namespaces", false),
        ("v1", "Secret") => ("secrets", true),
        ("v1", "ConfigMap") => ("configmaps", true),
        ("v1", "ServiceAccount") => ("serviceaccounts", true),
        ("v1", "Service") => ("services", true),
        ("v1", "Pod") => ("pods", true),
        ("v1", "Endpoints") => ("endpoints", true),
        ("v1", "Node") => ("nodes", false),
        ("apps/v1", "Deployment") => ("deployments", true),
        ("policy/v1", "PodDisruptionBudget") => ("poddisruptionbudgets", true),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => ("horizontalpodautoscalers", true),
        ("rbac.authorization.k8s.io/v1", "Role") => ("roles", true),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => ("rolebindings", true),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => ("clusterroles", false),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => ("clusterrolebindings", false),
        ("discovery.k8s.io/v1", "EndpointSlice") => ("endpointslices", true),
        _ => return None,
    })
}

/// The URL path of a collection: `/api/v1/namespaces/ns/secrets`, `/apis/g/v/clusterroles`.
pub(crate) fn collection_path(api_version: &str, plural: &str, namespace: Option<&str>) -> String {
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    match namespace {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}"),
        None => format!("{prefix}/{plural}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_for_core_and_group_kinds() {
        assert_eq!(
            collection_path("v1", "secrets", Some("istio-system")),
            "/api/v1/namespaces/istio-system/secrets"
        );
        assert_eq!(
            collection_path("rbac.authorization.k8s.io/v1", "clusterroles", None),
            "/apis/rbac.authorization.k8s.io/v1/clusterroles"
        );
    }
}
