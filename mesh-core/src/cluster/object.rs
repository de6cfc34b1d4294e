//! Naming objects, and the form of a Secret the API server stores.

use base64::Engine as _;
use serde_json::{Map, Value};

/// Identifies one Kubernetes object.
///
/// ```
/// use mesh_core::cluster::ObjectRef;
/// let secret = ObjectRef::namespaced("v1", "Secret", "istio-system", "cacerts");
/// assert_eq!(secret.to_string(), "Secret istio-system/cacerts");
/// let ns = ObjectRef::cluster_scoped("v1", "Namespace", "istio-system");
/// assert_eq!(ns.to_string(), "Namespace istio-system");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `apiVersion`, e.g. `v1` or `rbac.authorization.k8s.io/v1`.
    pub api_version: String,
    /// `kind`, e.g. `Secret`.
    pub kind: String,
    /// `metadata.namespace`; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// A namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A cluster-scoped object.
    pub fn cluster_scoped(api_version: &str, kind: &str, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    /// Reads apiVersion, kind, metadata.name and metadata.namespace from an object.
    /// Returns what is missing as the error.
    ///
    /// ```
    /// use mesh_core::cluster::ObjectRef;
    /// let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
    ///                              "metadata": {"name": "istio-system"}});
    /// assert_eq!(ObjectRef::from_object(&obj).unwrap().to_string(), "Namespace istio-system");
    /// assert!(ObjectRef::from_object(&serde_json::json!({"kind": "Secret"})).is_err());
    /// ```
    pub fn from_object(object: &Value) -> Result<ObjectRef, String> {
        let field = |v: Option<&Value>, what: &str| -> Result<String, String> {
            match v.and_then(Value::as_str) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(format!("{what} is missing or not a string")),
            }
        };
        let metadata = object.get("metadata");
        Ok(ObjectRef {
            api_version: field(object.get("apiVersion"), "apiVersion")?,
            kind: field(object.get("kind"), "kind")?,
            name: field(metadata.and_then(|m| m.get("name")), "metadata.name")?,
            namespace: metadata
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Rewrites a Secret's `stringData` into `data` (base64), the form the API server stores and
/// returns, so that comparing the desired object with the live one is exact and a re-apply of
/// the same content is seen as unchanged. Other kinds are returned as they are.
///
/// ```
/// use mesh_core::cluster::normalize_secret;
/// let desired = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
///     "metadata": {"name": "s"}, "stringData": {"k": "v"}});
/// let sent = normalize_secret(desired);
/// assert_eq!(sent["data"]["k"], "dg==");
/// assert!(sent.get("stringData").is_none());
/// ```
pub fn normalize_secret(mut object: Value) -> Value {
    let is_secret = object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && object.get("kind").and_then(Value::as_str) == Some("Secret");
    if !is_secret {
        return object;
    }
    let Some(map) = object.as_object_mut() else {
        return object;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return object;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Value::Object(data) = data {
        // Kubernetes lets stringData win over data for the same key.
        for (key, value) in string_data {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            data.insert(
                key,
                Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_string_data_compares_equal_to_stored_data() {
        let desired = normalize_secret(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "istio-remote-secret-eu", "namespace": "istio-system"},
            "stringData": {"eu": "apiVersion: v1\n"}
        }));
        let live = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "istio-remote-secret-eu", "namespace": "istio-system",
                         "uid": "1", "resourceVersion": "7"},
            "data": {"eu": "YXBpVmVyc2lvbjogdjEK"},
            "type": "Opaque"
        });
        assert!(crate::cluster::holds(&desired, &live));
        let changed = normalize_secret(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "istio-remote-secret-eu"},
            "stringData": {"eu": "apiVersion: v2\n"}
        }));
        assert!(!crate::cluster::holds(&changed, &live));
    }

    #[test]
    fn string_data_wins_over_data_for_the_same_key() {
        let sent = normalize_secret(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"a": "z"}
        }));
        assert_eq!(sent["data"], json!({"a": "eg==", "b": "eQ=="}));
    }
}
