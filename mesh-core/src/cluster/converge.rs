//! Is a live object already what meshboot would make it? Judged as the API server stores
//! objects, so that a converged cluster sees no write, and so that a field meshboot stops
//! setting is noticed and removed.
//!
//! Two questions, both answered from the one `get` apply makes anyway (no dry-run request):
//!
//! 1. **Does the live object hold every desired value?** ([`holds`]) Compared semantically
//!    where the server normalises: resource quantities by value (`2000m` is stored as `2`),
//!    fields the server fills in or drops (defaults, `omitempty` zero values), int-or-string
//!    fields, map order, and keyed lists (`containers`, `env`, `ports`, ...) matched by key so
//!    that items other managers added do not count against us.
//! 2. **Does meshboot own only fields it still desires?** ([`owns_only_desired`]) The
//!    server-side apply entry of field manager [`FIELD_MANAGER`] in `metadata.managedFields`
//!    lists every field meshboot applied last time; one that the desired object no longer has
//!    is removed by the server on the next apply, so it must be applied.
//!
//! [`FIELD_MANAGER`]: super::FIELD_MANAGER

use serde_json::{Map, Value};

use super::FIELD_MANAGER;
use super::quantity::same_quantity;

/// True when server-side applying `desired` (field manager `meshboot`) would leave `live` as
/// it is: `live` [`holds`] every desired value and meshboot [`owns_only_desired`] fields.
///
/// ```
/// use mesh_core::cluster::is_converged;
/// use serde_json::json;
/// let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "1"}});
/// // What the server returns after meshboot applied {a: 1, b: 2}: b is still meshboot's.
/// let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "c", "namespace": "n", "managedFields": [{
///         "manager": "meshboot", "operation": "Apply", "apiVersion": "v1",
///         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}}}]},
///     "data": {"a": "1", "b": "2"}});
/// assert!(!is_converged(&desired, &live), "b must be removed by an apply");
/// ```
pub fn is_converged(desired: &Value, live: &Value) -> bool {
    holds(desired, live) && owns_only_desired(desired, live)
}

/// True when every field of `desired` is in `live` with the same value, as the API server
/// stores it. The live object may have more: status, defaults, metadata the server keeps,
/// list items other managers own.
///
/// - objects compare key by key; map order never matters;
/// - a desired `null` means "absent"; a desired zero value (`false`, `0`, `[]`, or an object
///   of those) also matches an absent field, as Go's `omitempty` drops those when the server
///   stores them (an empty string does not: labels and data keep it);
/// - numbers compare by value (`1` and `1.0` agree);
/// - resource quantities compare by value ([`same_quantity`]) at fields that are quantities
///   (`resources.requests`/`limits`, `sizeLimit`, `overhead`, `hard`, HPA targets), never
///   elsewhere;
/// - int-or-string fields (`targetPort`, probe `port`, `maxSurge`, `maxUnavailable`,
///   `minAvailable`) match `15443` with `"15443"`;
/// - keyed lists of built-in kinds (`containers`, `env`, `volumes`, `volumeMounts`,
///   `ports`, ...) match each desired item to the live item with the same key (the server fills
///   a missing `protocol` with `TCP`), whatever the order, ignoring items others added; every
///   other list must match item by item.
///
/// ```
/// use mesh_core::cluster::holds;
/// use serde_json::json;
/// let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
///     "containers": [{"name": "istio-proxy", "resources": {"requests": {"cpu": "2000m", "memory": "1024Mi"}}}]}}}});
/// let stored = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1, "template": {"spec": {
///     "containers": [{"name": "istio-proxy", "imagePullPolicy": "Always",
///                     "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]}}}});
/// assert!(holds(&desired, &stored));
/// ```
pub fn holds(desired: &Value, live: &Value) -> bool {
    let builtin = desired
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(is_builtin_api);
    holds_at(desired, live, &Place::root(builtin))
}

/// True when the fields the `meshboot` server-side apply entry of `live` owns are all in
/// `desired`. An object meshboot never applied (no such entry) owns nothing, so this holds.
/// An entry for another apiVersion than `desired`'s cannot be compared and does not hold: one
/// apply records the fields at the current version.
///
/// ```
/// use mesh_core::cluster::owns_only_desired;
/// use serde_json::json;
/// let live = json!({"metadata": {"managedFields": [{"manager": "meshboot", "operation": "Apply",
///     "apiVersion": "v1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}]}});
/// let with_a = json!({"apiVersion": "v1", "metadata": {"labels": {"a": "x"}}});
/// let without = json!({"apiVersion": "v1", "metadata": {"labels": {"b": "x"}}});
/// assert!(owns_only_desired(&with_a, &live));
/// assert!(!owns_only_desired(&without, &live));
/// ```
pub fn owns_only_desired(desired: &Value, live: &Value) -> bool {
    let Some(entry) = meshboot_entry(live) else {
        return true;
    };
    let version = desired.get("apiVersion").and_then(Value::as_str);
    if entry.get("apiVersion").and_then(Value::as_str) != version {
        return false;
    }
    let kind = desired
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match entry.get("fieldsV1") {
        Some(fields) => fields_within(fields, desired, live, kind),
        None => true,
    }
}

/// The `managedFields` entry of meshboot's server-side applies (not of status writes).
pub(crate) fn meshboot_entry(live: &Value) -> Option<&Value> {
    live.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|entry| {
            entry.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
                && entry.get("operation").and_then(Value::as_str) == Some("Apply")
                && entry
                    .get("subresource")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
        })
}

/// Where in an object a value sits: enough to know which comparison rules apply.
#[derive(Clone, Copy)]
struct Place<'a> {
    /// A kind the Kubernetes API defines (its list and quantity fields are known); CRD kinds
    /// are compared as plain JSON.
    builtin: bool,
    /// The field name of this value (`""` at the root and for list items).
    key: &'a str,
    /// The field name of the enclosing object's value.
    parent: &'a str,
    /// The field name two levels up.
    grandparent: &'a str,
}

impl<'a> Place<'a> {
    fn root(builtin: bool) -> Place<'static> {
        Place {
            builtin,
            key: "",
            parent: "",
            grandparent: "",
        }
    }

    fn child(&self, key: &'a str) -> Place<'a> {
        Place {
            builtin: self.builtin,
            key,
            parent: self.key,
            grandparent: self.parent,
        }
    }

    fn is_quantity(&self) -> bool {
        self.builtin
            && (matches!(self.parent, "requests" | "limits") && self.grandparent == "resources"
                || matches!(self.key, "sizeLimit")
                || matches!(self.parent, "overhead" | "hard")
                || matches!(self.key, "averageValue" | "value") && self.parent == "target")
    }

    fn is_int_or_string(&self) -> bool {
        self.builtin
            && (matches!(
                self.key,
                "targetPort" | "maxSurge" | "maxUnavailable" | "minAvailable"
            ) || self.key == "port" && matches!(self.parent, "httpGet" | "tcpSocket"))
    }

    /// The keys of a keyed ("associative") list, as the built-in types declare them.
    fn list_keys(&self, items: &[Value]) -> Option<&'static [&'static str]> {
        if !self.builtin {
            return None;
        }
        Some(match self.key {
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "env"
            | "volumes"
            | "imagePullSecrets" => &["name"],
            "volumeMounts" => &["mountPath"],
            "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => {
                &["containerPort", "protocol"]
            }
            "ports" => &["port", "protocol"],
            _ => return None,
        })
    }
}

/// Values the server fills in for a list key the client left out.
fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::String("TCP".into()))
}

fn holds_at(desired: &Value, live: &Value, place: &Place<'_>) -> bool {
    if place.is_quantity()
        && let Some(same) = same_quantity(desired, live)
    {
        return same;
    }
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(key, dv)| match l.get(key) {
            Some(lv) => holds_at(dv, lv, &place.child(key)),
            None => is_absent(dv),
        }),
        (Value::Array(d), Value::Array(l)) => match place.list_keys(d) {
            Some(keys) => d.iter().all(|item| {
                l.iter()
                    .find(|candidate| same_list_key(item, candidate, keys))
                    .is_some_and(|found| holds_at(item, found, &place.child("")))
            }),
            None => {
                d.len() == l.len()
                    && d.iter()
                        .zip(l)
                        .all(|(dv, lv)| holds_at(dv, lv, &place.child("")))
            }
        },
        (Value::Number(d), Value::Number(l)) => same_number(d, l),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s))
            if place.is_int_or_string() =>
        {
            s.parse::<i64>().ok() == n.as_i64()
        }
        (d, l) => d == l,
    }
}

/// What an absent live field can stand for: nothing, or a zero value the server dropped. An
/// empty string is not one of them: it is a value in a map (a label, a data key), which the
/// server keeps.
fn is_absent(desired: &Value) -> bool {
    match desired {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(_) => false,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_absent),
    }
}

fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// True when two items of a keyed list have the same key; a key field the item leaves out
/// counts as the value the server would default it to.
fn same_list_key(a: &Value, b: &Value, keys: &[&str]) -> bool {
    keys.iter().all(|key| {
        let value = |item: &Value| item.get(*key).cloned().or_else(|| key_default(key));
        match (value(a), value(b)) {
            (Some(Value::Number(x)), Some(Value::Number(y))) => same_number(&x, &y),
            (x, y) => x == y,
        }
    })
}

/// True when every field of a `fieldsV1` set is present in `desired` (`live` alongside, to
/// read what an owned field holds): `f:<name>` a field, `k:<json>` the keyed list item with
/// those key values, `v:<json>` a set item, `i:<n>` a list index, and `.` the value itself.
///
/// An owned leaf that `desired` leaves out but whose live value is what the server defaults it
/// to is not a difference: dropping it from an apply would reset it to that same value.
fn fields_within(fields: &Value, desired: &Value, live: &Value, kind: &str) -> bool {
    let Some(fields) = fields.as_object() else {
        return true;
    };
    fields.iter().all(|(path, child)| {
        if path == "." {
            return true;
        }
        if let Some(name) = path.strip_prefix("f:") {
            let live_child = live.get(name).unwrap_or(&Value::Null);
            return match desired.get(name) {
                Some(value) if !value.is_null() => fields_within(child, value, live_child, kind),
                _ => {
                    is_leaf(child)
                        && server_default(kind, name, live)
                            .is_some_and(|default| holds_value(&default, live_child))
                }
            };
        }
        let items = desired.as_array().map(Vec::as_slice).unwrap_or_default();
        let live_items = live.as_array().map(Vec::as_slice).unwrap_or_default();
        let find = |items: &'_ [Value]| -> Option<usize> {
            if let Some(key) = path.strip_prefix("k:") {
                let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key) else {
                    return None;
                };
                items.iter().position(|item| has_key_values(item, &key))
            } else if let Some(value) = path.strip_prefix("v:") {
                let value = serde_json::from_str::<Value>(value).ok()?;
                items.iter().position(|item| *item == value)
            } else if let Some(index) = path.strip_prefix("i:") {
                index.parse::<usize>().ok().filter(|i| *i < items.len())
            } else {
                None
            }
        };
        let Some(found) = find(items) else {
            return false;
        };
        let live_item = find(live_items)
            .and_then(|i| live_items.get(i))
            .unwrap_or(&Value::Null);
        fields_within(child, &items[found], live_item, kind)
    })
}

/// A `fieldsV1` node with nothing below it but `.`.
fn is_leaf(fields: &Value) -> bool {
    fields
        .as_object()
        .is_none_or(|f| f.keys().all(|k| k == "."))
}

fn holds_value(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        (a, b) => a == b,
    }
}

/// What the API server sets a field of a built-in kind to when the applied object leaves it
/// out (`pkg/apis/core/v1/defaults.go`), for the fields meshboot's objects leave to it.
/// `parent` is the live object holding the field.
fn server_default(kind: &str, field: &str, parent: &Value) -> Option<Value> {
    Some(match (kind, field) {
        (_, "protocol") => Value::String("TCP".into()),
        ("Secret", "type") => Value::String("Opaque".into()),
        ("Service", "type") => Value::String("ClusterIP".into()),
        ("Service", "sessionAffinity") => Value::String("None".into()),
        ("Service", "internalTrafficPolicy" | "externalTrafficPolicy") => {
            Value::String("Cluster".into())
        }
        // A Service port's targetPort defaults to its port.
        ("Service", "targetPort") => parent.get("port")?.clone(),
        _ => return None,
    })
}

fn has_key_values(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(
        |(name, want)| match item.get(name).cloned().or_else(|| key_default(name)) {
            Some(Value::Number(have)) => want.as_number().is_some_and(|w| same_number(&have, w)),
            have => have.as_ref() == Some(want),
        },
    )
}

/// True for the API groups Kubernetes itself serves (`v1`, `apps/v1`, `*.k8s.io/...`), whose
/// list and quantity fields this module knows; CRD groups (Istio, Gateway API) are not.
fn is_builtin_api(api_version: &str) -> bool {
    match api_version.split_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "d", "namespace": "n"},
               "spec": {"template": {"spec": {"containers": [container]}}}})
    }

    #[test]
    fn quantities_compare_by_value_only_where_they_are_quantities() {
        let sent = deployment(json!({"name": "c", "resources": {
            "requests": {"cpu": "2000m", "memory": "1024Mi"}, "limits": {"memory": "1000Mi"}}}));
        // What a real API server returns for that Deployment.
        let stored = deployment(json!({"name": "c", "resources": {
            "requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "1000Mi"}}}));
        assert!(holds(&sent, &stored));
        let other = deployment(json!({"name": "c", "resources": {
            "requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}));
        assert!(!holds(&sent, &other), "1000Mi is not 1Gi");
        // An annotation is text, even when it reads like a quantity.
        let annotated = |v: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"annotations": {"cpu": v}}})
        };
        assert!(!holds(&annotated("2000m"), &annotated("2")));
        // A CRD's fields are its own: no quantity rules there.
        let crd = |v: &str| {
            json!({"apiVersion": "networking.istio.io/v1", "kind": "X",
                                   "spec": {"resources": {"requests": {"cpu": v}}}})
        };
        assert!(!holds(&crd("2000m"), &crd("2")));
    }

    #[test]
    fn defaults_and_dropped_zero_values_are_not_differences() {
        let desired = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"labels": {}},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "tls", "port": 15443, "targetPort": 15443}],
                     "publishNotReadyAddresses": false}});
        let stored = json!({"apiVersion": "v1", "kind": "Service",
            "spec": {"type": "LoadBalancer", "sessionAffinity": "None", "clusterIP": "10.0.0.1",
                     "ports": [{"name": "tls", "port": 15443, "protocol": "TCP", "targetPort": 15443, "nodePort": 31000}]}});
        assert!(holds(&desired, &stored));
        let nodeport = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "NodePort"}});
        assert!(!holds(&nodeport, &stored));
    }

    #[test]
    fn an_empty_label_value_is_a_value() {
        let ns = |labels: Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"labels": labels}});
        assert!(!holds(&ns(json!({"istio-injection": ""})), &ns(json!({}))));
        assert!(holds(
            &ns(json!({"a": ""})),
            &ns(json!({"a": "", "b": "x"}))
        ));
        assert!(holds(&json!({"n": 1}), &json!({"n": 1.0})));
    }

    #[test]
    fn int_or_string_ports_agree_in_either_spelling() {
        let svc = |target: Value| {
            json!({"apiVersion": "v1", "kind": "Service",
            "spec": {"ports": [{"port": 15443, "targetPort": target}]}})
        };
        assert!(holds(&svc(json!(15443)), &svc(json!("15443"))));
        assert!(holds(&svc(json!("15443")), &svc(json!(15443))));
        assert!(!holds(&svc(json!("tls")), &svc(json!(15443))));
        // Elsewhere a string is not a number.
        let cm = |v: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"n": v}});
        assert!(!holds(&cm(json!("1")), &cm(json!(1))));
    }

    #[test]
    fn map_order_never_matters() {
        let a: Value =
            serde_json::from_str(r#"{"apiVersion": "v1", "data": {"a": "1", "b": "2"}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"data": {"b": "2", "a": "1"}, "apiVersion": "v1"}"#).unwrap();
        assert!(holds(&a, &b) && holds(&b, &a));
    }

    #[test]
    fn keyed_lists_match_by_key_and_ignore_items_of_others() {
        let desired = deployment(
            json!({"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}),
        );
        let live = deployment(json!({"name": "c", "env": [
            {"name": "INJECTED", "value": "x"}, {"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}));
        assert!(holds(&desired, &live));
        let changed = deployment(
            json!({"name": "c", "env": [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}]}),
        );
        assert!(!holds(&desired, &changed));
        // Lists without keys (RBAC rules) must match item by item.
        let role = |rules: Value| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "rules": rules});
        let r1 = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]});
        let r2 = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]});
        assert!(!holds(
            &role(json!([r1.clone()])),
            &role(json!([r1.clone(), r2.clone()]))
        ));
        assert!(!holds(
            &role(json!([r1.clone(), r2.clone()])),
            &role(json!([r2, r1]))
        ));
    }

    fn with_managed(mut live: Value, fields: Value) -> Value {
        live["metadata"]["managedFields"] = json!([
            {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:other": {}}}},
            {"manager": "meshboot", "operation": "Apply", "apiVersion": live["apiVersion"].clone(), "fieldsV1": fields},
        ]);
        live
    }

    #[test]
    fn a_field_meshboot_owns_but_no_longer_desires_is_a_change() {
        let desired = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": "n1"}}});
        let live = with_managed(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system",
                "labels": {"topology.istio.io/network": "n1", "old": "x", "kubernetes.io/metadata.name": "istio-system"}}}),
            json!({"f:metadata": {"f:labels": {".": {}, "f:old": {}, "f:topology.istio.io/network": {}}}}),
        );
        assert!(holds(&desired, &live));
        assert!(!is_converged(&desired, &live));
        // Once applied without `old`, the server's entry lists only what is desired.
        let live = with_managed(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system",
                "labels": {"topology.istio.io/network": "n1"}}}),
            json!({"f:metadata": {"f:labels": {"f:topology.istio.io/network": {}}}}),
        );
        assert!(is_converged(&desired, &live));
    }

    #[test]
    fn owned_keyed_items_are_found_by_their_key_with_server_defaults() {
        let desired = json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [
            {"name": "tls", "port": 15443}]}});
        let fields = |port: u16| {
            json!({"f:spec": {"f:ports": {
            format!(r#"k:{{"port":{port},"protocol":"TCP"}}"#): {".": {}, "f:name": {}, "f:port": {}}}}})
        };
        let live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {},
            "spec": {"ports": [{"name": "tls", "port": 15443, "protocol": "TCP"}]}});
        assert!(owns_only_desired(
            &desired,
            &with_managed(live.clone(), fields(15443))
        ));
        assert!(!owns_only_desired(
            &desired,
            &with_managed(live, fields(15012))
        ));
    }

    #[test]
    fn other_managers_and_other_versions() {
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}});
        // kubectl's fields are not meshboot's business.
        let live = with_managed(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {"a": "1", "other": "x"}}),
            json!({"f:data": {"f:a": {}}}),
        );
        assert!(is_converged(&desired, &live));
        // Never applied by meshboot: nothing owned.
        assert!(owns_only_desired(&desired, &json!({"metadata": {}})));
        // An entry at another version cannot be compared: one apply records the current one.
        let old = json!({"metadata": {"managedFields": [{"manager": "meshboot", "operation": "Apply",
            "apiVersion": "v1beta1", "fieldsV1": {"f:data": {"f:a": {}}}}]}});
        assert!(!owns_only_desired(&desired, &old));
    }

    #[test]
    fn an_owned_field_left_to_its_server_default_is_not_a_change() {
        // A Secret applied without `type`: the server stores `Opaque`; an apply without it
        // would reset it to `Opaque` again, so even an entry that lists it is converged.
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "eA=="}});
        let live = |ty: &str| {
            with_managed(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {}, "type": ty, "data": {"a": "eA=="}}),
                json!({"f:data": {"f:a": {}}, "f:type": {}}),
            )
        };
        assert!(is_converged(&desired, &live("Opaque")));
        assert!(!is_converged(&desired, &live("kubernetes.io/tls")));
        let svc =
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 15443}]}});
        let stored = with_managed(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {},
                   "spec": {"type": "ClusterIP", "ports": [{"port": 15443, "protocol": "TCP", "targetPort": 15443}]}}),
            json!({"f:spec": {"f:type": {}, "f:ports": {r#"k:{"port":15443,"protocol":"TCP"}"#: {
                ".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}}}),
        );
        assert!(is_converged(&svc, &stored));
    }

    #[test]
    fn set_and_index_paths() {
        let desired = json!({"apiVersion": "v1", "metadata": {"finalizers": ["a"]}, "x": [1, 2]});
        let live = |f: Value| {
            json!({"metadata": {"managedFields": [{"manager": "meshboot", "operation": "Apply",
            "apiVersion": "v1", "fieldsV1": f}]}})
        };
        assert!(owns_only_desired(
            &desired,
            &live(json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}}}))
        ));
        assert!(!owns_only_desired(
            &desired,
            &live(json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}}}}))
        ));
        assert!(owns_only_desired(
            &desired,
            &live(json!({"f:x": {"i:1": {}}}))
        ));
        assert!(!owns_only_desired(
            &desired,
            &live(json!({"f:x": {"i:2": {}}}))
        ));
    }
}
