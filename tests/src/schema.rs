//! Objects of CRD-served kinds are pruned, defaulted and validated against their CRD's
//! `openAPIV3Schema` the way apiextensions-apiserver does it on every write:
//!
//! 1. **Pruning**: fields the schema does not declare are dropped, except under
//!    `x-kubernetes-preserve-unknown-fields: true` or `additionalProperties`; `apiVersion`, `kind`
//!    and `metadata` are always kept at the root (and in `x-kubernetes-embedded-resource`s).
//!    `fieldValidation` decides what the client hears about them: `Ignore` nothing, `Warn` (the
//!    server's default) a `Warning: 299 - "unknown field \"spec.foo\""` header per field,
//!    `Strict` a 400 (`<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding
//!    error: unknown field "spec.foo"`; for server-side apply `failed to create typed patch
//!    object (...): .spec.foo: field not declared in schema`).
//! 2. **Defaulting**: a missing property with a `default` gets it; `null` in a property that is
//!    not `nullable` is dropped.
//! 3. **Validation**: `type`, `x-kubernetes-int-or-string`, `required`, `enum`, `pattern`,
//!    `minimum`/`maximum` (and exclusive), `minLength`/`maxLength`, `minItems`/`maxItems`,
//!    `minProperties`/`maxProperties`, `oneOf`/`anyOf`/`allOf`/`not`, `items`,
//!    `additionalProperties`, with kube-openapi's wording turned into field errors
//!    (`Widget.example.com "w" is invalid: spec.size: Invalid value: "string": spec.size in
//!    body must be of type integer: "string"`), all of them in one 422.
//!
//! Not emulated: CEL rules (`x-kubernetes-validations`), `format` checks, list-type uniqueness
//! (`x-kubernetes-list-type: set|map`), ratcheting of unchanged invalid values on update.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::cluster::Inner;
use crate::resources::ResourceDef;
use crate::status::{ApiError, ApiResult, FieldCause};
use crate::store::Key;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them and warn (the API server's default since 1.23).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter; an unknown value is a 400 as on a real server.
    pub fn parse(v: Option<&str>) -> ApiResult<FieldValidation> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// Warnings a write produced, sent as `Warning` headers with the answer.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn push(&self, w: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(w);
    }

    /// The warnings so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The `openAPIV3Schema` of `def`'s version when `def` is served by a CRD that has one.
fn schema_of<'a>(inner: &'a Inner, def: &ResourceDef) -> Option<&'a Value> {
    let crd = inner.store.get(&Key::new(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        None,
        &format!("{}.{}", def.plural, def.group),
    ))?;
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == def.version.as_str())
        .map(|v| &v["schema"]["openAPIV3Schema"])
        .filter(|s| s.is_object())
}

/// Prunes, defaults and validates `obj` (a custom resource) in place; a no-op for built-in kinds.
pub(crate) fn check(
    inner: &Inner,
    def: &ResourceDef,
    obj: &mut Value,
    mode: FieldValidation,
    warnings: &Warnings,
    apply: bool,
) -> ApiResult<()> {
    let Some(schema) = schema_of(inner, def) else {
        return Ok(());
    };
    let mut w = Walk {
        unknown: Vec::new(),
        errors: Vec::new(),
        regexes: HashMap::new(),
    };
    w.object(schema, obj, "", true);
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if !w.unknown.is_empty() {
        match mode {
            FieldValidation::Ignore => {}
            FieldValidation::Warn => {
                for u in &w.unknown {
                    warnings.push(format!("unknown field \"{u}\""));
                }
            }
            FieldValidation::Strict if apply => {
                let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
                let fields: Vec<String> = w
                    .unknown
                    .iter()
                    .map(|u| format!(".{u}: field not declared in schema"))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "failed to create typed patch object ({ns}/{name}; {}, Kind={}): {}",
                    def.api_version(),
                    def.kind,
                    fields.join(", ")
                )));
            }
            FieldValidation::Strict => {
                let fields: Vec<String> = w
                    .unknown
                    .iter()
                    .map(|u| format!("unknown field \"{u}\""))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                    fields.join(", "),
                    kind = def.kind,
                    v = def.version,
                )));
            }
        }
    }
    if w.errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, &def.group, name, w.errors))
    }
}

struct Walk {
    unknown: Vec<String>,
    errors: Vec<FieldCause>,
    regexes: HashMap<String, Option<regex::Regex>>,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The JSON type name kube-openapi reports for a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Go's `field.Error` prints it (strings quoted, the rest as JSON).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema[key].as_bool() == Some(true)
}

impl Walk {
    fn invalid(&mut self, path: &str, value: String, detail: String) {
        self.errors.push(FieldCause {
            reason: "FieldValueInvalid",
            field: path.to_string(),
            message: format!("Invalid value: {value}: {detail}"),
        });
    }

    /// `field.TooMany` when `n` exceeds `schema[key]`.
    fn too_many(&mut self, schema: &Value, key: &str, n: u64, path: &str) {
        if let Some(max) = schema[key].as_u64().filter(|m| n > *m) {
            self.errors.push(FieldCause {
                reason: "FieldValueTooMany",
                field: path.to_string(),
                message: format!("Too many: {n}: must have at most {max} items"),
            });
        }
    }

    fn body(path: &str) -> String {
        if path.is_empty() {
            "body".to_string()
        } else {
            format!("{path} in body")
        }
    }

    /// Prunes, defaults and validates one value; `root` marks the object's top level.
    fn object(&mut self, schema: &Value, v: &mut Value, path: &str, root: bool) {
        if !self.type_ok(schema, v, path) {
            return;
        }
        if let Value::Object(map) = v {
            self.properties(schema, map, path, root);
        }
        if let (Value::Array(items), Some(item_schema)) = (&mut *v, schema.get("items")) {
            for (i, item) in items.iter_mut().enumerate() {
                self.object(item_schema, item, &format!("{path}[{i}]"), false);
            }
        }
        self.constraints(schema, v, path);
    }

    fn type_ok(&mut self, schema: &Value, v: &Value, path: &str) -> bool {
        let actual = type_name(v);
        if flag(schema, "x-kubernetes-int-or-string") {
            if matches!(actual, "integer" | "string") {
                return true;
            }
            self.invalid(
                path,
                format!("{actual:?}"),
                format!(
                    "{} must be of type integer-or-string: {actual:?}",
                    Self::body(path)
                ),
            );
            return false;
        }
        let Some(expected) = schema["type"].as_str() else {
            return true;
        };
        let ok = match expected {
            "number" => matches!(actual, "integer" | "number"),
            e => e == actual,
        };
        if !ok {
            self.errors.push(FieldCause {
                reason: "FieldValueTypeInvalid",
                field: path.to_string(),
                message: format!(
                    "Invalid value: {actual:?}: {} must be of type {expected}: {actual:?}",
                    Self::body(path)
                ),
            });
        }
        ok
    }

    fn properties(&mut self, schema: &Value, map: &mut Map<String, Value>, path: &str, root: bool) {
        let props = schema["properties"].as_object();
        let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
        let additional = &schema["additionalProperties"];
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let p = child(path, &key);
            if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(sub) = props.and_then(|ps| ps.get(&key)) {
                if map[&key].is_null() && !flag(sub, "nullable") {
                    map.remove(&key);
                    continue;
                }
                if let Some(value) = map.get_mut(&key)
                    && !value.is_null()
                {
                    self.object(sub, value, &p, false);
                }
            } else if additional.is_object() {
                if let Some(value) = map.get_mut(&key) {
                    self.object(additional, value, &p, false);
                }
            } else if additional.as_bool() == Some(true) || preserve {
                // Kept as sent.
            } else {
                map.remove(&key);
                self.unknown.push(p);
            }
        }
        if let Some(ps) = props {
            for (key, sub) in ps {
                if !map.contains_key(key)
                    && let Some(d) = sub.get("default")
                {
                    let mut d = d.clone();
                    self.object(sub, &mut d, &child(path, key), false);
                    map.insert(key.clone(), d);
                }
            }
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            if let Some(r) = r.as_str()
                && !map.contains_key(r)
            {
                self.errors.push(FieldCause::required(child(path, r)));
            }
        }
    }

    fn constraints(&mut self, schema: &Value, v: &Value, path: &str) {
        let body = Self::body(path);
        if let Some(values) = schema["enum"].as_array()
            && !values.contains(v)
        {
            let supported: Vec<String> = values.iter().map(shown).collect();
            self.errors.push(FieldCause {
                reason: "FieldValueNotSupported",
                field: path.to_string(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    shown(v),
                    supported.join(", ")
                ),
            });
        }
        match v {
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if let Some(max) = schema["maxLength"].as_u64().filter(|m| len > *m) {
                    self.errors.push(FieldCause {
                        reason: "FieldValueTooLong",
                        field: path.to_string(),
                        message: format!("Too long: may not be more than {max} bytes"),
                    });
                }
                if let Some(min) = schema["minLength"].as_u64().filter(|m| len < *m) {
                    self.invalid(
                        path,
                        shown(v),
                        format!("{body} should be at least {min} chars long"),
                    );
                }
                if let Some(p) = schema["pattern"].as_str()
                    && let Some(re) = self.regex(p)
                    && !re.is_match(s)
                {
                    self.invalid(path, shown(v), format!("{body} should match '{p}'"));
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                let excl_min = flag(schema, "exclusiveMinimum");
                let excl_max = flag(schema, "exclusiveMaximum");
                if let Some(min) = schema["minimum"].as_f64()
                    && (x < min || (excl_min && x == min))
                {
                    let rel = if excl_min {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    self.invalid(
                        path,
                        shown(v),
                        format!("{body} should be {rel} {}", schema["minimum"]),
                    );
                }
                if let Some(max) = schema["maximum"].as_f64()
                    && (x > max || (excl_max && x == max))
                {
                    let rel = if excl_max {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    self.invalid(
                        path,
                        shown(v),
                        format!("{body} should be {rel} {}", schema["maximum"]),
                    );
                }
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                self.too_many(schema, "maxItems", n, path);
                if let Some(min) = schema["minItems"].as_u64().filter(|m| n < *m) {
                    self.invalid(
                        path,
                        format!("{n}"),
                        format!("{body} should have at least {min} items"),
                    );
                }
            }
            Value::Object(m) => {
                let n = m.len() as u64;
                self.too_many(schema, "maxProperties", n, path);
                if let Some(min) = schema["minProperties"].as_u64().filter(|x| n < *x) {
                    self.invalid(
                        path,
                        format!("{n}"),
                        format!("{body} should have at least {min} properties"),
                    );
                }
            }
            _ => {}
        }
        self.combinators(schema, v, path);
    }

    /// `oneOf`/`anyOf`/`allOf`/`not`: structural schemas use them for value constraints only
    /// (e.g. "at most one of exact, prefix, regex"), so they validate without pruning.
    fn combinators(&mut self, schema: &Value, v: &Value, path: &str) {
        let body = Self::body(path);
        let value = format!("{:?}", type_name(v));
        if let Some(all) = schema["allOf"].as_array() {
            for s in all {
                if !self.valid(s, v) {
                    self.invalid(
                        path,
                        value.clone(),
                        format!("{body} must validate all the schemas (allOf)"),
                    );
                    break;
                }
            }
        }
        if let Some(any) = schema["anyOf"].as_array()
            && !any.iter().any(|s| self.valid(s, v))
        {
            self.invalid(
                path,
                value.clone(),
                format!("{body} must validate at least one schema (anyOf)"),
            );
        }
        if let Some(one) = schema["oneOf"].as_array() {
            let matching = one.iter().filter(|s| self.valid(s, v)).count();
            if matching != 1 {
                self.invalid(
                    path,
                    value.clone(),
                    format!("{body} must validate one and only one schema (oneOf)"),
                );
            }
        }
        if let Some(not) = schema.get("not")
            && self.valid(not, v)
        {
            self.invalid(
                path,
                value,
                format!("{body} must not validate the schema (not)"),
            );
        }
    }

    /// Whether `v` satisfies `schema` (no pruning, errors discarded).
    fn valid(&mut self, schema: &Value, v: &Value) -> bool {
        let mut sub = Walk {
            unknown: Vec::new(),
            errors: Vec::new(),
            regexes: std::mem::take(&mut self.regexes),
        };
        let mut copy = v.clone();
        // Value constraints only: a sub-schema without `properties` must not prune anything.
        let lenient = {
            let mut s = schema.clone();
            if s.get("properties").is_none()
                && let Some(m) = s.as_object_mut()
            {
                m.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            }
            s
        };
        sub.object(&lenient, &mut copy, "", false);
        self.regexes = sub.regexes;
        sub.errors.is_empty()
    }

    fn regex(&mut self, pattern: &str) -> Option<&regex::Regex> {
        self.regexes
            .entry(pattern.to_string())
            .or_insert_with(|| regex::Regex::new(pattern).ok())
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(schema: Value, mut obj: Value) -> (Value, Vec<String>, Vec<String>) {
        let mut w = Walk {
            unknown: Vec::new(),
            errors: Vec::new(),
            regexes: HashMap::new(),
        };
        w.object(&schema, &mut obj, "", true);
        let errs = w
            .errors
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        (obj, w.unknown, errs)
    }

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["Push", "Pull"], "default": "Push"},
                "port": {"x-kubernetes-int-or-string": true},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "maxItems": 2, "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
            }},
        }})
    }

    #[test]
    fn unknown_fields_are_pruned_except_where_preserved_and_defaults_fill_in() {
        let (obj, unknown, errs) = run(
            widget_schema(),
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
                "spec": {"size": 2, "foo": 1, "extra": {"any": {"thing": 1}},
                    "labels": {"a": "b"}, "items": [{"a": "x", "zzz": 1}]},
                "bogus": true}),
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(unknown, vec!["spec.foo", "spec.items[0].zzz", "bogus"]);
        assert_eq!(obj["spec"]["extra"], json!({"any": {"thing": 1}}));
        assert_eq!(obj["spec"]["mode"], "Push");
        assert!(obj.get("bogus").is_none() && obj["spec"].get("foo").is_none());
    }

    #[test]
    fn violations_use_kube_openapi_wording() {
        let (_, _, errs) = run(
            widget_schema(),
            json!({"spec": {"size": "three", "mode": "Both", "port": true, "name": "ABCDEFG",
                "labels": {"a": 1}, "items": [{}, {}, {}]}}),
        );
        assert_eq!(
            errs,
            vec![
                "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
                "spec.mode: Unsupported value: \"Both\": supported values: \"Push\", \"Pull\"",
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer-or-string: \"boolean\"",
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
                "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
                "spec.items: Too many: 3: must have at most 2 items",
            ]
        );
        let (_, _, errs) = run(widget_schema(), json!({"spec": {"size": 0}}));
        assert_eq!(
            errs,
            vec![
                "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
            ]
        );
        let (_, _, errs) = run(widget_schema(), json!({"spec": {}}));
        assert_eq!(errs, vec!["spec.size: Required value"]);
    }

    #[test]
    fn one_of_expresses_at_most_one_of_several_fields() {
        // Istio's StringMatch: exact | prefix | regex, at most one.
        let schema = json!({"type": "object", "properties": {"uri": {"type": "object",
        "properties": {"exact": {"type": "string"}, "prefix": {"type": "string"}},
        "oneOf": [
            {"not": {"anyOf": [{"required": ["exact"]}, {"required": ["prefix"]}]}},
            {"required": ["exact"]},
            {"required": ["prefix"]},
        ]}}});
        assert!(
            run(schema.clone(), json!({"uri": {"exact": "/"}}))
                .2
                .is_empty()
        );
        assert!(run(schema.clone(), json!({"uri": {}})).2.is_empty());
        assert_eq!(
            run(schema, json!({"uri": {"exact": "/", "prefix": "/a"}})).2,
            vec![
                "uri: Invalid value: \"object\": uri in body must validate one and only one schema (oneOf)"
            ]
        );
    }
}
