//! Request paths of the Kubernetes API, parsed into what they address.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`
    Version,
    /// `/api`
    Api,
    /// `/apis`
    Apis,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    ResourceList {
        /// "" for core.
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v3`
    OpenApiRoot,
    /// `/openapi/v3/<gv path>`, e.g. `api/v1` or `apis/apps/v1`.
    OpenApiGroupVersion(String),
    /// `/healthz`, `/livez`, `/readyz`
    Health,
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
}

/// `/api/v1/namespaces/<ns>/<plural>/<name>/<sub>` and its shorter forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// "" for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace segment, when present.
    pub namespace: Option<String>,
    /// Resource plural.
    pub plural: String,
    /// Object name, when present.
    pub name: Option<String>,
    /// Subresource (`status`, `token`), when present.
    pub subresource: Option<String>,
}

/// Parses a request path; `None` when it is not part of the API.
pub fn parse(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Some(Route::Version),
        ["healthz"] | ["livez"] | ["readyz"] => Some(Route::Health),
        ["openapi", "v3"] => Some(Route::OpenApiRoot),
        ["openapi", "v3", rest @ ..] => Some(Route::OpenApiGroupVersion(rest.join("/"))),
        ["api"] => Some(Route::Api),
        ["apis"] => Some(Route::Apis),
        ["apis", group] => Some(Route::Group(group.to_string())),
        ["api", version] => Some(Route::ResourceList {
            group: String::new(),
            version: version.to_string(),
        }),
        ["apis", group, version] => Some(Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        }),
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => None,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let mk = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Some(Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            plural: plural.to_string(),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        }))
    };
    match rest {
        // `/api/v1/namespaces/<ns>` is the Namespace object itself, and
        // `/api/v1/namespaces/<ns>/status` its status subresource.
        ["namespaces", ns, "status"] if group.is_empty() => {
            mk(None, "namespaces", Some(ns), Some("status"))
        }
        ["namespaces", ns, "finalize"] if group.is_empty() => {
            mk(None, "namespaces", Some(ns), Some("finalize"))
        }
        ["namespaces", ns, plural] => mk(Some(ns), plural, None, None),
        ["namespaces", ns, plural, name] => mk(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => mk(Some(ns), plural, Some(name), Some(sub)),
        [plural] => mk(None, plural, None, None),
        [plural, name] => mk(None, plural, Some(name), None),
        [plural, name, sub] => mk(None, plural, Some(name), Some(sub)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_object_with_subresource() {
        let r = res("/api/v1/namespaces/istio-system/serviceaccounts/reader/token");
        assert_eq!(r.namespace.as_deref(), Some("istio-system"));
        assert_eq!(r.plural, "serviceaccounts");
        assert_eq!(r.name.as_deref(), Some("reader"));
        assert_eq!(r.subresource.as_deref(), Some("token"));
    }

    #[test]
    fn namespace_object_is_cluster_scoped() {
        let r = res("/api/v1/namespaces/istio-system");
        assert_eq!(
            (r.namespace, r.plural.as_str(), r.name.as_deref()),
            (None, "namespaces", Some("istio-system"))
        );
        let all = res("/api/v1/namespaces");
        assert_eq!(all.name, None);
    }

    #[test]
    fn grouped_cluster_scoped_and_discovery_paths() {
        let r = res("/apis/rbac.authorization.k8s.io/v1/clusterroles/reader");
        assert_eq!(r.group, "rbac.authorization.k8s.io");
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1"),
            Some(Route::OpenApiGroupVersion("apis/apps/v1".into()))
        );
        assert_eq!(parse("/nonsense/x"), None);
    }
}
