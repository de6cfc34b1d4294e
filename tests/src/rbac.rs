//! RBAC evaluation for service-account identities from Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings, with the real matching rules (`*`, subresources, resourceNames).

use serde_json::Value;

use crate::auth::Identity;
use crate::store::{Key, Store};

const RBAC: &str = "rbac.authorization.k8s.io";

/// What a request wants to do.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// RBAC verb (`get`, `list`, `create`, ...).
    pub verb: &'a str,
    /// API group ("" for core).
    pub group: &'a str,
    /// Resource plural.
    pub resource: &'a str,
    /// Subresource (`token`, `status`).
    pub subresource: Option<&'a str>,
    /// Object name, for requests that address one object.
    pub name: Option<&'a str>,
    /// Namespace of the request, None for cluster scope.
    pub namespace: Option<&'a str>,
}

/// Whether `who` may perform `attrs`.
pub fn allowed(store: &Store, who: &Identity, attrs: &Attributes<'_>) -> bool {
    if *who == Identity::Admin {
        return true;
    }
    // system:basic-user: every authenticated user may ask what it can do.
    if attrs.verb == "create"
        && matches!(
            (attrs.group, attrs.resource),
            (
                "authorization.k8s.io",
                "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
            )
        )
    {
        return true;
    }
    let user = who.username();
    let groups = who.groups();
    let binds = |b: &Value| subjects_match(b, who, &user, &groups);
    let cluster_wide = store
        .list(RBAC, "clusterrolebindings", None)
        .filter(|b| binds(b))
        .any(|b| role_allows(store, b, None, attrs));
    if cluster_wide {
        return true;
    }
    let Some(ns) = attrs.namespace else {
        return false;
    };
    store
        .list(RBAC, "rolebindings", Some(ns))
        .filter(|b| binds(b))
        .any(|b| role_allows(store, b, Some(ns), attrs))
}

/// The rules that apply to `who` in `namespace` (cluster-wide bindings included), as
/// SelfSubjectRulesReview reports them.
pub fn rules_for(store: &Store, who: &Identity, namespace: &str) -> Vec<Value> {
    if *who == Identity::Admin {
        return vec![serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})];
    }
    let user = who.username();
    let groups = who.groups();
    let mut out = vec![serde_json::json!({
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    })];
    let bindings = store
        .list(RBAC, "clusterrolebindings", None)
        .map(|b| (b, None))
        .chain(
            store
                .list(RBAC, "rolebindings", Some(namespace))
                .map(|b| (b, Some(namespace))),
        );
    for (b, ns) in bindings {
        if !subjects_match(b, who, &user, &groups) {
            continue;
        }
        if let Some(role) = bound_role(store, b, ns) {
            out.extend(
                role["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r.get("nonResourceURLs").is_none())
                    .cloned(),
            );
        }
    }
    out
}

fn subjects_match(binding: &Value, who: &Identity, user: &str, groups: &[String]) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            let name = s["name"].as_str().unwrap_or_default();
            match s["kind"].as_str() {
                Some("ServiceAccount") => match who {
                    Identity::ServiceAccount {
                        namespace,
                        name: sa,
                        ..
                    } => {
                        let ns = s["namespace"]
                            .as_str()
                            .or_else(|| binding["metadata"]["namespace"].as_str())
                            .unwrap_or_default();
                        sa == name && namespace == ns
                    }
                    Identity::Admin => false,
                },
                Some("User") => name == user,
                Some("Group") => groups.iter().any(|g| g == name),
                _ => false,
            }
        })
}

fn bound_role<'a>(
    store: &'a Store,
    binding: &Value,
    binding_ns: Option<&str>,
) -> Option<&'a Value> {
    let role_ref = &binding["roleRef"];
    let name = role_ref["name"].as_str().unwrap_or_default();
    match (role_ref["kind"].as_str(), binding_ns) {
        (Some("ClusterRole"), _) => store.get(&Key::new(RBAC, "clusterroles", None, name)),
        (Some("Role"), Some(ns)) => store.get(&Key::new(RBAC, "roles", Some(ns), name)),
        _ => None,
    }
}

fn role_allows(
    store: &Store,
    binding: &Value,
    binding_ns: Option<&str>,
    attrs: &Attributes<'_>,
) -> bool {
    bound_role(store, binding, binding_ns).is_some_and(|r| {
        r["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| rule_allows(rule, attrs))
    })
}

fn contains(list: &Value, want: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|v| v == "*" || v == want)
}

/// Whether one PolicyRule covers the request.
pub fn rule_allows(rule: &Value, attrs: &Attributes<'_>) -> bool {
    if !contains(&rule["verbs"], attrs.verb) || !contains(&rule["apiGroups"], attrs.group) {
        return false;
    }
    let resource_ok = rule["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| match attrs.subresource {
            None => r == "*" || r == attrs.resource,
            Some(sub) => {
                r == "*" || r == format!("{}/{sub}", attrs.resource) || r == format!("*/{sub}")
            }
        });
    if !resource_ok {
        return false;
    }
    match rule["resourceNames"].as_array().filter(|a| !a.is_empty()) {
        None => true,
        Some(names) => attrs
            .name
            .is_some_and(|n| names.iter().any(|v| v.as_str() == Some(n))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(
        verb: &'a str,
        resource: &'a str,
        name: Option<&'a str>,
        ns: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group: "",
            resource,
            subresource: None,
            name,
            namespace: ns,
        }
    }

    fn sa() -> Identity {
        Identity::ServiceAccount {
            namespace: "istio-system".into(),
            name: "reader".into(),
            uid: "u".into(),
        }
    }

    #[test]
    fn role_binding_grants_only_its_namespace_and_names() {
        let mut s = Store::default();
        s.put(Key::new(RBAC, "roles", Some("a"), "r"), json!({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["cacerts"]}]}));
        s.put(Key::new(RBAC, "rolebindings", Some("a"), "b"), json!({"metadata": {"namespace": "a"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "istio-system"}]}));
        assert!(allowed(
            &s,
            &sa(),
            &attrs("get", "secrets", Some("cacerts"), Some("a"))
        ));
        assert!(!allowed(
            &s,
            &sa(),
            &attrs("get", "secrets", Some("other"), Some("a"))
        ));
        assert!(!allowed(
            &s,
            &sa(),
            &attrs("list", "secrets", None, Some("a"))
        ));
        assert!(!allowed(
            &s,
            &sa(),
            &attrs("get", "secrets", Some("cacerts"), Some("b"))
        ));
    }

    #[test]
    fn cluster_role_binding_with_wildcards_and_subresources() {
        let mut s = Store::default();
        s.put(
            Key::new(RBAC, "clusterroles", None, "c"),
            json!({"rules": [
            {"apiGroups": ["*"], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["*"], "verbs": ["list"]}]}),
        );
        s.put(
            Key::new(RBAC, "clusterrolebindings", None, "cb"),
            json!({"roleRef": {"kind": "ClusterRole", "name": "c"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:istio-system"}]}),
        );
        let mut token = attrs("create", "serviceaccounts", Some("x"), Some("n"));
        token.subresource = Some("token");
        assert!(allowed(&s, &sa(), &token));
        assert!(!allowed(
            &s,
            &sa(),
            &attrs("create", "serviceaccounts", None, Some("n"))
        ));
        assert!(allowed(&s, &sa(), &attrs("list", "configmaps", None, None)));
    }
}
