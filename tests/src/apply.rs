//! Field ownership: server-side apply (per-manager field sets, conflicts, force, removal of fields a
//! manager stops applying) and the ownership bookkeeping of ordinary updates, recorded in
//! `metadata.managedFields` in the real `FieldsV1` format.

use serde_json::{Value, json};

use crate::fields::{self, FieldSet};
use crate::store::now_rfc3339;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the fields were written with.
    pub api_version: String,
    /// When the entry last changed.
    pub time: String,
    /// `status` for status-subresource writes.
    pub subresource: Option<String>,
    /// Owned leaf fields.
    pub fields: FieldSet,
}

impl Entry {
    fn same_slot(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

/// The `managedFields` of an object.
pub fn read_managed(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(Entry {
                manager: e["manager"].as_str()?.to_string(),
                operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                time: e["time"].as_str().unwrap_or_default().to_string(),
                subresource: e["subresource"].as_str().map(str::to_string),
                fields: fields::from_fields_v1(&e["fieldsV1"]),
            })
        })
        .collect()
}

/// Writes `entries` into `metadata.managedFields` (dropping entries that own nothing).
pub fn write_managed(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields::to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// A field owned by another manager whose value the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, spelled `.data.key`.
    pub field: String,
    /// How the other manager wrote it: `Apply` or `Update`.
    pub operation: String,
    /// The apiVersion the other manager wrote it with.
    pub api_version: String,
    /// The subresource the other manager wrote through (`status`), if any.
    pub subresource: Option<String>,
}

impl Conflict {
    /// The other manager as the API server names it in conflict messages: `"helm"` for an
    /// applier; `"kubectl-client-side-apply" using apps/v1` for an updater (the manager identifier
    /// carries no time, so no `at <time>`); `with subresource "status"` when it wrote one.
    pub fn owner(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// Result of a server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The object to store (or the unchanged live object).
    pub object: Value,
    /// False when the apply changed neither content nor ownership: nothing must be written.
    pub changed: bool,
}

/// Options of one apply request.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// `fieldManager`.
    pub manager: &'a str,
    /// `force=true`.
    pub force: bool,
    /// apiVersion of the applied object.
    pub api_version: &'a str,
    /// Whether `status` is a subresource (then it is ignored on the main resource).
    pub ignore_status: bool,
}

fn strip_for_merge(applied: &Value, ignore_status: bool) -> Value {
    let mut a = applied.clone();
    if let Some(m) = a.as_object_mut() {
        if ignore_status {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "managedFields",
                "selfLink",
            ] {
                meta.remove(k);
            }
        }
    }
    a
}

fn without_managed(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    o
}

/// Server-side apply of `applied` onto `live` (None: create-on-apply).
///
/// Conflicts are fields in the applied configuration that another manager owns with a different
/// value; with `force` the applier takes them over instead. Fields the manager applied before and
/// omits now are removed unless another manager still owns them.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    req: ApplyRequest<'_>,
) -> Result<Applied, Vec<Conflict>> {
    let applied = strip_for_merge(applied, req.ignore_status);
    let applied_set = fields::leaves(&applied);
    let mut entries = live.map(read_managed).unwrap_or_default();
    let base = live.cloned().unwrap_or_else(|| json!({}));
    let mut result = base.clone();
    fields::merge_applied(&mut result, &applied);

    // Conflicts: another manager owns an overlapping field whose value the apply changes.
    let mut conflicts = Vec::new();
    for e in entries
        .iter_mut()
        .filter(|e| !e.same_slot(req.manager, "Apply", None))
    {
        let overlapping: Vec<fields::Path> = e
            .fields
            .iter()
            .filter(|q| applied_set.iter().any(|p| fields::overlaps(p, q)))
            .cloned()
            .collect();
        for q in overlapping {
            if fields::get(&base, &q) == fields::get(&result, &q) {
                continue;
            }
            if req.force {
                e.fields.remove(&q);
            } else {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    field: fields::display(&q),
                    operation: e.operation.clone(),
                    api_version: e.api_version.clone(),
                    subresource: e.subresource.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort_by(|a, b| (a.owner(), &a.field).cmp(&(b.owner(), &b.field)));
        conflicts.dedup();
        return Err(conflicts);
    }

    // Fields this manager stopped applying go away unless someone else still owns them.
    let previous = entries
        .iter()
        .find(|e| e.same_slot(req.manager, "Apply", None))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for gone in previous.difference(&applied_set) {
        // Owning a parent map does not protect its entries; owning the field, something
        // below it, or an enclosing atomic value (a list or scalar) does.
        let protects = |q: &fields::Path| {
            q.starts_with(gone)
                || (gone.starts_with(q) && fields::get(&result, q).is_some_and(|v| !v.is_object()))
        };
        let still_owned = entries
            .iter()
            .filter(|e| !e.same_slot(req.manager, "Apply", None))
            .any(|e| e.fields.iter().any(protects));
        if !still_owned && !applied_set.iter().any(|p| p.starts_with(gone)) {
            fields::remove(&mut result, gone);
        }
    }

    let content_changed = without_managed(&result) != without_managed(&base);
    let ownership_changed = previous != applied_set || read_managed(&base) != entries;
    match entries
        .iter_mut()
        .find(|e| e.same_slot(req.manager, "Apply", None))
    {
        Some(e) => {
            if e.fields != applied_set || content_changed {
                e.fields = applied_set;
                e.api_version = req.api_version.to_string();
                e.time = now_rfc3339();
            }
        }
        None => entries.push(Entry {
            manager: req.manager.to_string(),
            operation: "Apply".into(),
            api_version: req.api_version.to_string(),
            time: now_rfc3339(),
            subresource: None,
            fields: applied_set,
        }),
    }
    if live.is_some() && !content_changed && !ownership_changed {
        return Ok(Applied {
            object: base,
            changed: false,
        });
    }
    write_managed(&mut result, &entries);
    Ok(Applied {
        object: result,
        changed: true,
    })
}

/// Records an ordinary write (create/update/patch) by `manager`: it takes ownership of every field
/// it added or changed; fields it removed are owned by nobody any more.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let empty = json!({});
    let old_obj = old.unwrap_or(&empty);
    let new_set = fields::leaves(new);
    let old_set = fields::leaves(old_obj);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| fields::get(old_obj, p) != fields::get(new, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    let mut entries = old.map(read_managed).unwrap_or_default();
    for e in entries.iter_mut() {
        e.fields.retain(|q| {
            !removed.iter().any(|r| fields::overlaps(q, r))
                && !changed.iter().any(|c| fields::overlaps(q, c))
        });
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.same_slot(manager, "Update", subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now_rfc3339();
                e.api_version = api_version.to_string();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now_rfc3339(),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    write_managed(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager,
            force,
            api_version: "v1",
            ignore_status: false,
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": data})
    }

    #[test]
    fn reapplying_the_same_config_is_a_no_op() {
        let first =
            server_side_apply(None, &cm(json!({"a": "1"})), req("m", false)).map(|a| a.object);
        let first = first.unwrap_or_default();
        let again = server_side_apply(Some(&first), &cm(json!({"a": "1"})), req("m", false));
        assert_eq!(again.map(|a| a.changed), Ok(false));
    }

    #[test]
    fn another_managers_field_conflicts_unless_forced_or_equal() {
        let live = server_side_apply(None, &cm(json!({"a": "1"})), req("one", false))
            .map(|a| a.object)
            .unwrap_or_default();
        let err = server_side_apply(Some(&live), &cm(json!({"a": "2"})), req("two", false));
        assert_eq!(
            err.map(|_| ()),
            Err(vec![Conflict {
                manager: "one".into(),
                field: ".data.a".into(),
                operation: "Apply".into(),
                api_version: "v1".into(),
                subresource: None,
            }])
        );
        let same = server_side_apply(Some(&live), &cm(json!({"a": "1"})), req("two", false));
        assert!(same.is_ok(), "equal values are shared, not conflicts");
        let forced = server_side_apply(Some(&live), &cm(json!({"a": "2"})), req("two", true))
            .map(|a| a.object)
            .unwrap_or_default();
        assert_eq!(forced["data"]["a"], "2");
        let owners: Vec<String> = read_managed(&forced)
            .into_iter()
            .map(|e| e.manager)
            .collect();
        assert_eq!(owners, vec!["two".to_string()]);
    }

    #[test]
    fn omitted_fields_are_removed_only_when_nobody_else_owns_them() {
        let live = server_side_apply(None, &cm(json!({"a": "1", "b": "2"})), req("m", false))
            .map(|a| a.object)
            .unwrap_or_default();
        let shared = server_side_apply(Some(&live), &cm(json!({"b": "2"})), req("other", false))
            .map(|a| a.object)
            .unwrap_or_default();
        let after = server_side_apply(Some(&shared), &cm(json!({})), req("m", false))
            .map(|a| a.object)
            .unwrap_or_default();
        assert_eq!(after["data"], json!({"b": "2"}));
    }

    #[test]
    fn updates_take_ownership_of_changed_fields() {
        let live = server_side_apply(None, &cm(json!({"a": "1"})), req("applier", false))
            .map(|a| a.object)
            .unwrap_or_default();
        let mut edited = live.clone();
        edited["data"]["a"] = json!("9");
        record_update(Some(&live), &mut edited, "kubectl-edit", "v1", None);
        let entries = read_managed(&edited);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manager, "kubectl-edit");
        let conflict =
            server_side_apply(Some(&edited), &cm(json!({"a": "1"})), req("applier", false));
        assert!(conflict.is_err());
    }
}
