//! Field paths and field sets in the `fieldsV1` format (`f:<name>`, `k:{<merge keys>}`), plus the
//! merge rules server-side apply and strategic merge patch share: lists with a known merge key are
//! merged item by item, every other list is atomic.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// One path element in `fieldsV1` spelling: `f:name` or `k:{"name":"x"}`.
pub type Elem = String;
/// A path from the object root to a field.
pub type Path = Vec<Elem>;
/// A set of owned fields.
pub type FieldSet = BTreeSet<Path>;

/// Server-owned top-level metadata that no manager ever owns.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Merge keys of the associative lists of the kinds we serve, by field name. `parent_is_item` tells
/// container `ports` (inside a list item) from Service `spec.ports`.
pub fn merge_keys(field: &str, parent_is_item: bool) -> Option<&'static [&'static str]> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some(&["name"]),
        "volumeMounts" => Some(&["mountPath"]),
        "webhooks" => Some(&["name"]),
        "conditions" => Some(&["type"]),
        "ports" if parent_is_item => Some(&["containerPort", "protocol"]),
        "ports" => Some(&["port", "protocol"]),
        _ => None,
    }
}

/// The key of a list item, when it is an object carrying at least one merge-key field.
fn item_key(item: &Value, keys: &[&str]) -> Option<Map<String, Value>> {
    let obj = item.as_object()?;
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = obj.get(*k) {
            m.insert((*k).to_string(), v.clone());
        }
    }
    (!m.is_empty()).then_some(m)
}

/// Keys of every item of `list`, or `None` when the list must be treated as atomic.
fn keyed_items(list: &[Value], keys: &[&str]) -> Option<Vec<Map<String, Value>>> {
    list.iter().map(|i| item_key(i, keys)).collect()
}

fn key_elem(key: &Map<String, Value>) -> Elem {
    // Map preserves insertion order; sort so the same key always spells the same element.
    let sorted: std::collections::BTreeMap<&String, &Value> = key.iter().collect();
    format!("k:{}", serde_json::to_string(&sorted).unwrap_or_default())
}

fn parse_key_elem(elem: &str) -> Option<Map<String, Value>> {
    serde_json::from_str(elem.strip_prefix("k:")?).ok()
}

fn matches_key(item: &Value, key: &Map<String, Value>) -> bool {
    item.as_object()
        .is_some_and(|o| key.iter().all(|(k, v)| o.get(k) == Some(v)))
}

/// The fields a (partial) object sets, as leaf paths. Server-owned metadata, `apiVersion` and
/// `kind` are excluded.
pub fn leaves(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if !SERVER_META.contains(&mk.as_str()) {
                            walk(
                                mv,
                                vec!["f:metadata".into(), format!("f:{mk}")],
                                mk,
                                false,
                                &mut out,
                            );
                        }
                    }
                }
            }
            _ => walk(v, vec![format!("f:{k}")], k, false, &mut out),
        }
    }
    out
}

fn walk(v: &Value, path: Path, field: &str, parent_is_item: bool, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(child, p, k, false, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let keyed = merge_keys(field, parent_is_item).and_then(|keys| keyed_items(items, keys));
            match keyed {
                Some(keys) => {
                    for (item, key) in items.iter().zip(keys) {
                        let mut p = path.clone();
                        p.push(key_elem(&key));
                        match item.as_object() {
                            Some(m) if !m.is_empty() => {
                                for (k, child) in m {
                                    let mut cp = p.clone();
                                    cp.push(format!("f:{k}"));
                                    walk(child, cp, k, true, out);
                                }
                            }
                            _ => {
                                out.insert(p);
                            }
                        }
                    }
                }
                None => {
                    out.insert(path);
                }
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// The value at `path`, if present.
pub fn get<'a>(obj: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut cur = obj;
    for e in path {
        cur = if let Some(f) = e.strip_prefix("f:") {
            cur.as_object()?.get(f)?
        } else {
            let key = parse_key_elem(e)?;
            cur.as_array()?.iter().find(|i| matches_key(i, &key))?
        };
    }
    Some(cur)
}

/// Removes the field at `path`, then prunes maps, list items and lists the removal left empty
/// (a keyed item counts as empty when only its key fields remain).
pub fn remove(obj: &mut Value, path: &[Elem]) {
    remove_rec(obj, path, None);
}

fn remove_rec(cur: &mut Value, path: &[Elem], item_keys: Option<&Map<String, Value>>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if let Some(f) = first.strip_prefix("f:") {
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if rest.is_empty() {
            // Key fields stay while the item has other content; the item goes when it is bare.
            if item_keys.is_some_and(|k| k.contains_key(f)) {
                return;
            }
            map.remove(f);
            return;
        }
        let Some(child) = map.get_mut(f) else { return };
        remove_rec(child, rest, None);
        if is_empty_container(child) {
            map.remove(f);
        }
    } else if let Some(key) = parse_key_elem(first) {
        let Some(items) = cur.as_array_mut() else {
            return;
        };
        let Some(idx) = items.iter().position(|i| matches_key(i, &key)) else {
            return;
        };
        if rest.is_empty() {
            items.remove(idx);
            return;
        }
        remove_rec(&mut items[idx], rest, Some(&key));
        let bare = items[idx]
            .as_object()
            .is_none_or(|o| o.keys().all(|k| key.contains_key(k)));
        if bare {
            items.remove(idx);
        }
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Whether one path is a prefix of the other (they address overlapping data).
pub fn overlaps(a: &[Elem], b: &[Elem]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// The set as a `fieldsV1` object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for (i, e) in path.iter().enumerate() {
            let entry = cur.entry(e.clone()).or_insert_with(|| json!({}));
            let Some(m) = entry.as_object_mut() else {
                break;
            };
            if e.starts_with("k:") && i + 1 < path.len() {
                m.entry(".").or_insert_with(|| json!({}));
            }
            cur = m;
        }
    }
    Value::Object(root)
}

/// Reads a `fieldsV1` object back into leaf paths.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect_v1(v, &mut Vec::new(), &mut out);
    out
}

fn collect_v1(v: &Value, path: &mut Path, out: &mut FieldSet) {
    let children: Vec<(&String, &Value)> = v
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.as_str() != ".").collect())
        .unwrap_or_default();
    if children.is_empty() {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    for (k, child) in children {
        path.push(k.clone());
        collect_v1(child, path, out);
        path.pop();
    }
}

/// Human spelling of a path in conflict messages: `.spec.ports[port=80,protocol="TCP"].name`.
pub fn display(path: &[Elem]) -> String {
    let mut s = String::new();
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(key) = parse_key_elem(e) {
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    s
}

/// Overlays an applied configuration onto a live object: maps merge, keyed lists merge item by item
/// (applied order first, then remaining live items), everything else is replaced.
pub fn merge_applied(live: &mut Value, applied: &Value) {
    merge_value(live, applied, "", false, false);
}

/// Applies a strategic merge patch (merge semantics plus keyed lists, `$patch: delete|replace`,
/// `null` deletes; other `$` directives are ignored).
pub fn strategic_merge(live: &mut Value, patch: &Value) {
    merge_value(live, patch, "", false, true);
}

fn merge_value(live: &mut Value, patch: &Value, field: &str, parent_is_item: bool, smp: bool) {
    match patch {
        Value::Object(pm) => {
            if smp && pm.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replaced = pm.clone();
                replaced.remove("$patch");
                *live = Value::Object(replaced);
                return;
            }
            if !live.is_object() {
                *live = json!({});
            }
            let Some(lm) = live.as_object_mut() else {
                return;
            };
            for (k, pv) in pm {
                if k.starts_with('$') {
                    continue;
                }
                if pv.is_null() {
                    if smp {
                        lm.remove(k);
                    }
                    continue;
                }
                let entry = lm.entry(k.clone()).or_insert(Value::Null);
                merge_value(entry, pv, k, parent_is_item, smp);
            }
        }
        Value::Array(pitems) => {
            let keys = merge_keys(field, parent_is_item);
            let live_items = live.as_array().cloned().unwrap_or_default();
            let keyed = keys.and_then(|keys| {
                let pk = pitems
                    .iter()
                    .filter(|i| !is_delete_directive(i, smp))
                    .map(|i| item_key(i, keys))
                    .collect::<Option<Vec<_>>>()?;
                keyed_items(&live_items, keys)?;
                Some((keys, pk))
            });
            let Some((keys, _)) = keyed else {
                *live = Value::Array(
                    pitems
                        .iter()
                        .filter(|i| !is_delete_directive(i, smp))
                        .cloned()
                        .collect(),
                );
                return;
            };
            let mut remaining = live_items;
            let mut out = Vec::new();
            for pi in pitems {
                let Some(key) = item_key(pi, keys) else {
                    continue;
                };
                let pos = remaining.iter().position(|i| matches_key(i, &key));
                if is_delete_directive(pi, smp) {
                    if let Some(p) = pos {
                        remaining.remove(p);
                    }
                    continue;
                }
                let mut item = match pos {
                    Some(p) => remaining.remove(p),
                    None => json!({}),
                };
                merge_value(&mut item, pi, "", true, smp);
                out.push(item);
            }
            out.extend(remaining);
            *live = Value::Array(out);
        }
        _ => *live = patch.clone(),
    }
}

fn is_delete_directive(item: &Value, smp: bool) -> bool {
    smp && item.get("$patch").and_then(Value::as_str) == Some("delete")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(elems: &[&str]) -> Path {
        elems.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn leaves_use_merge_keys_for_service_ports_and_skip_server_metadata() {
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "gw", "namespace": "x", "labels": {"app": "gw"}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 15443, "name": "tls"}], "selector": {}}});
        let l = leaves(&svc);
        assert!(l.contains(&p(&["f:metadata", "f:labels", "f:app"])));
        assert!(l.contains(&p(&["f:spec", "f:ports", "k:{\"port\":15443}", "f:name"])));
        assert!(l.contains(&p(&["f:spec", "f:selector"])));
        assert!(
            !l.iter()
                .any(|x| x.contains(&"f:name".to_string()) && x.len() == 2)
        );
    }

    #[test]
    fn fields_v1_round_trips() {
        let obj = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}, "data": {"k": "v"}});
        let set = leaves(&obj);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."],
            json!({})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn remove_prunes_emptied_maps_and_bare_items() {
        let mut obj = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d"}]}});
        remove(&mut obj, &p(&["f:metadata", "f:labels", "f:a"]));
        assert!(
            obj.get("metadata").is_none(),
            "emptied maps are pruned: {obj}"
        );
        remove(
            &mut obj,
            &p(&["f:spec", "f:containers", "k:{\"name\":\"c\"}", "f:image"]),
        );
        assert_eq!(obj["spec"]["containers"], json!([{"name": "d"}]));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_honours_directives() {
        let mut live = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}], "x": 1}});
        strategic_merge(
            &mut live,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "a", "image": "3"}, {"name": "b", "$patch": "delete"}], "x": null}}),
        );
        assert_eq!(
            live,
            json!({"spec": {"containers": [{"name": "a", "image": "3"}]}})
        );
    }

    #[test]
    fn unkeyed_lists_are_atomic() {
        let mut live = json!({"rules": [{"verbs": ["get"]}, {"verbs": ["list"]}]});
        merge_applied(&mut live, &json!({"rules": [{"verbs": ["watch"]}]}));
        assert_eq!(live["rules"], json!([{"verbs": ["watch"]}]));
        assert_eq!(
            display(&p(&["f:spec", "f:ports", "k:{\"port\":80}", "f:name"])),
            ".spec.ports[port=80].name"
        );
    }
}
