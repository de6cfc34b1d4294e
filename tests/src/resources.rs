//! The resource table: which kinds each emulated cluster serves, and the discovery documents
//! (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`) generated from it.

use serde_json::{Value, json};

/// How the server treats objects of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Stored objects (get/list/create/update/patch/delete).
    Stored,
    /// Create-only review kinds answered on the spot and never stored (SSAR, TokenReview).
    Review,
}

/// One served resource (a row of an `APIResourceList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, "" for core.
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Plural resource name used in paths (`secrets`).
    pub plural: String,
    /// Singular name (`secret`).
    pub singular: String,
    /// Kind (`Secret`).
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl (`svc`, `sa`, ...).
    pub short_names: Vec<String>,
    /// Whether the resource has a `status` subresource (status is ignored on main-resource writes).
    pub has_status: bool,
    /// Stored or review.
    pub behaviour: Behaviour,
}

const STORED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    fn stored(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        short: &[&str],
        has_status: bool,
    ) -> Self {
        ResourceDef {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.to_string(),
            namespaced,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            has_status,
            behaviour: Behaviour::Stored,
        }
    }

    fn review(group: &str, plural: &str, kind: &str) -> Self {
        ResourceDef {
            behaviour: Behaviour::Review,
            ..Self::stored(group, "v1", plural, kind, false, &[], false)
        }
    }

    /// `apiVersion` string of this resource's objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The categories a kind belongs to (`kubectl get all` lists the `all` ones).
    pub fn categories(&self) -> &'static [&'static str] {
        match (self.group.as_str(), self.plural.as_str()) {
            ("", "pods" | "services" | "replicationcontrollers")
            | ("apps", "deployments" | "replicasets" | "daemonsets" | "statefulsets")
            | ("autoscaling", "horizontalpodautoscalers")
            | ("batch", "jobs" | "cronjobs") => &["all"],
            ("apiextensions.k8s.io", "customresourcedefinitions") => &["api-extensions"],
            (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations" | "validatingwebhookconfigurations",
            ) => &["api-extensions"],
            _ => &[],
        }
    }

    fn verbs(&self) -> Vec<&'static str> {
        match self.behaviour {
            Behaviour::Stored => STORED_VERBS.to_vec(),
            Behaviour::Review => vec!["create"],
        }
    }

    /// This kind as an `APIResourceDiscovery` of aggregated discovery (`apidiscovery.k8s.io/v2`).
    fn aggregated_entry(&self) -> Value {
        let kind = |group: &str, version: &str, kind: &str| json!({"group": group, "version": version, "kind": kind});
        let mut e = json!({
            "resource": self.plural,
            "responseKind": kind(&self.group, &self.version, &self.kind),
            "scope": if self.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": self.singular,
            "verbs": self.verbs(),
        });
        if !self.short_names.is_empty() {
            e["shortNames"] = json!(self.short_names);
        }
        if !self.categories().is_empty() {
            e["categories"] = json!(self.categories());
        }
        let mut subs = Vec::new();
        if self.has_status {
            subs.push(json!({"subresource": "status",
                "responseKind": kind(&self.group, &self.version, &self.kind),
                "verbs": ["get", "patch", "update"]}));
        }
        if self.group.is_empty() && self.plural == "serviceaccounts" {
            subs.push(json!({"subresource": "token",
                "responseKind": kind("authentication.k8s.io", "v1", "TokenRequest"),
                "verbs": ["create"]}));
        }
        if !subs.is_empty() {
            e["subresources"] = json!(subs);
        }
        e
    }

    fn discovery_entries(&self) -> Vec<Value> {
        let verbs: Vec<&str> = match self.behaviour {
            Behaviour::Stored => STORED_VERBS.to_vec(),
            Behaviour::Review => vec!["create"],
        };
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories().is_empty() {
            main["categories"] = json!(self.categories());
        }
        let mut out = vec![main];
        if self.has_status {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.group.is_empty() && self.plural == "serviceaccounts" {
            out.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
        out
    }
}

/// Every kind the emulator serves at start, as a fresh cluster does: built-in kinds only, no
/// Istio or Gateway-API kinds until their CustomResourceDefinitions are applied.
pub fn builtin() -> Vec<ResourceDef> {
    let s = ResourceDef::stored;
    vec![
        s("", "v1", "namespaces", "Namespace", false, &["ns"], true),
        s("", "v1", "secrets", "Secret", true, &[], false),
        s("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
        s("", "v1", "services", "Service", true, &["svc"], true),
        s(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
        ),
        s("", "v1", "endpoints", "Endpoints", true, &["ep"], false),
        s("", "v1", "pods", "Pod", true, &["po"], true),
        s("", "v1", "nodes", "Node", false, &["no"], true),
        s(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
        ),
        s(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            true,
        ),
        s("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true),
        s(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            true,
        ),
        s(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
            &["hpa"],
            true,
        ),
        // The rotation job's kinds (`meshboot render rotation-job`).
        s("batch", "v1", "jobs", "Job", true, &[], true),
        s("batch", "v1", "cronjobs", "CronJob", true, &["cj"], true),
        s(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
        ),
        s(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
            &[],
            false,
        ),
        s(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            false,
            &[],
            false,
        ),
        s(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            false,
        ),
        s(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            false,
        ),
        s(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            false,
        ),
        s(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
        ),
        s(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            true,
            &[],
            false,
        ),
        ResourceDef::review(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
        ),
        ResourceDef::review(
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
        ),
        ResourceDef::review(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
        ),
        ResourceDef::review("authentication.k8s.io", "tokenreviews", "TokenReview"),
        s(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
        ),
    ]
}

/// The resources of one cluster; grows when a CustomResourceDefinition is stored.
#[derive(Debug, Clone)]
pub struct Registry {
    defs: Vec<ResourceDef>,
    /// The first `builtin` defs are built in (never removed); CRDs append after them.
    builtin: usize,
}

impl Default for Registry {
    fn default() -> Self {
        let defs = builtin();
        Registry {
            builtin: defs.len(),
            defs,
        }
    }
}

impl Registry {
    /// The resource served at `/<group>/<version>/<plural>`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
    }

    /// The resource for an object's `apiVersion` + `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceDef> {
        let (group, version) = split_api_version(api_version);
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
    }

    /// Registers the kinds a CRD object serves; returns whether anything was added.
    pub fn register_crd(&mut self, crd: &Value) -> bool {
        let spec = &crd["spec"];
        let (Some(group), Some(plural), Some(kind)) = (
            spec["group"].as_str(),
            spec["names"]["plural"].as_str(),
            spec["names"]["kind"].as_str(),
        ) else {
            return false;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let singular = spec["names"]["singular"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_ascii_lowercase());
        let short: Vec<String> = spec["names"]["shortNames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut added = false;
        for v in spec["versions"].as_array().into_iter().flatten() {
            let Some(version) = v["name"].as_str() else {
                continue;
            };
            if v["served"].as_bool() == Some(false)
                || self.by_plural(group, version, plural).is_some()
            {
                continue;
            }
            self.defs.push(ResourceDef {
                group: group.to_string(),
                version: version.to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                kind: kind.to_string(),
                namespaced,
                short_names: short.clone(),
                has_status: v["subresources"].get("status").is_some(),
                behaviour: Behaviour::Stored,
            });
            added = true;
        }
        added
    }

    /// Stops serving the kinds of a deleted CRD.
    pub fn unregister_crd(&mut self, group: &str, plural: &str) {
        let builtin = self.builtin;
        let mut i = 0;
        self.defs.retain(|d| {
            i += 1;
            i <= builtin || !(d.group == group && d.plural == plural)
        });
    }

    /// `GET /api`.
    pub fn api_versions(&self) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        })
    }

    fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for d in self.defs.iter().filter(|d| !d.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == d.group) {
                Some((_, versions)) => {
                    if !versions.contains(&d.version) {
                        versions.push(d.version.clone());
                    }
                }
                None => out.push((d.group.clone(), vec![d.version.clone()])),
            }
        }
        out
    }

    fn group_json(group: &str, versions: &[String]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "name": group,
            "versions": vs,
            "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `GET /apis`.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, v)| Self::group_json(g, v))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/<group>`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        self.groups()
            .iter()
            .find(|(g, _)| g == group)
            .map(|(g, v)| {
                let mut j = Self::group_json(g, v);
                j["kind"] = json!("APIGroup");
                j["apiVersion"] = json!("v1");
                j
            })
    }

    /// `GET /api/v1` or `GET /apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let resources: Vec<Value> = self
            .defs
            .iter()
            .filter(|d| d.group == group && d.version == version)
            .flat_map(ResourceDef::discovery_entries)
            .collect();
        if resources.is_empty() {
            return None;
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`): the core group
    /// for `GET /api` (`core`), every other group for `GET /apis`, each with all its versions
    /// and resources, so a client learns everything in one request instead of one per
    /// group-version.
    pub fn aggregated(&self, core: bool) -> Value {
        let mut items = Vec::new();
        let groups: Vec<(String, Vec<String>)> = if core {
            vec![(String::new(), vec!["v1".to_string()])]
        } else {
            self.groups()
        };
        for (group, versions) in groups {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = self
                        .defs
                        .iter()
                        .filter(|d| d.group == group && &d.version == v)
                        .map(ResourceDef::aggregated_entry)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if group.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": group, "creationTimestamp": null})
            };
            items.push(json!({"metadata": metadata, "versions": versions}));
        }
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
               "metadata": {}, "items": items})
    }

    /// All stored kinds (for the OpenAPI stub).
    pub fn defs(&self) -> &[ResourceDef] {
        &self.defs
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_includes_token_subresource_and_short_names() {
        let r = Registry::default();
        let list = r.resource_list("", "v1").unwrap_or_default();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"serviceaccounts/token"));
        assert!(names.contains(&"services/status"));
        assert!(r.resource_list("", "v2").is_none());
    }

    #[test]
    fn crd_registration_serves_the_new_kind() {
        let mut r = Registry::default();
        let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
        assert!(r.register_crd(&crd));
        assert!(!r.register_crd(&crd));
        assert_eq!(
            r.by_kind("example.com/v1", "Widget")
                .map(|d| d.plural.as_str()),
            Some("widgets")
        );
        assert!(r.api_group("example.com").is_some());
    }
}
