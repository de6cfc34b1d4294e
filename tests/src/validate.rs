//! The validation kube-apiserver performs for the kinds we serve: decoding errors (400), field
//! validation (422) with the real messages, immutable fields, and the Secret normalisation
//! (`stringData` folded into base64 `data`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;
use crate::status::{ApiError, ApiResult, FieldCause};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// Whether `s` is a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters).
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Whether `s` is a DNS-1123 subdomain (dot-separated labels, at most 253 characters).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s)
}

/// Checks a label or annotation key (`[prefix/]name`); returns the detail message on failure.
fn qualified_name_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if !is_dns_subdomain(p) {
            return Some(format!("prefix part {SUBDOMAIN_MSG}"));
        }
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 characters".into());
    }
    if !is_qualified_name_part(name) {
        return Some(QUALIFIED_NAME_MSG.into());
    }
    None
}

/// The decoder's 400 for a value of the wrong JSON type.
fn decode_error(def: &ResourceDef, got: &Value, go_field: &str, go_type: &str) -> ApiError {
    let json_type = match got {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
        Value::String(_) => "string",
    };
    ApiError::bad_request(format!(
        "{kind} in version \"{v}\" cannot be handled as a {kind}: json: cannot unmarshal {json_type} into Go struct field {go_field} of type {go_type}",
        kind = def.kind,
        v = def.version
    ))
}

/// Type checks the decoder would fail on (400 BadRequest): string maps that hold non-strings, a
/// non-string name, undecodable base64 in Secret `data`.
pub fn decode_checks(def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    let Some(map) = obj.as_object() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    };
    let meta = &map.get("metadata").cloned().unwrap_or(Value::Null);
    if !meta.is_null() && !meta.is_object() {
        return Err(decode_error(
            def,
            meta,
            &format!("{}.metadata", def.kind),
            "v1.ObjectMeta",
        ));
    }
    // Every served kind has object-typed spec/status; the typed maps and lists below are what
    // the server (and its controllers) index into.
    for f in ["spec", "status"] {
        if let Some(v) = map.get(f).filter(|v| !v.is_object() && !v.is_null()) {
            return Err(decode_error(def, v, &format!("{}.{f}", def.kind), "object"));
        }
    }
    if def.group.is_empty() && matches!(def.plural.as_str(), "secrets" | "configmaps") {
        for f in ["data", "stringData", "binaryData"] {
            if let Some(v) = map.get(f).filter(|v| !v.is_object() && !v.is_null()) {
                return Err(decode_error(
                    def,
                    v,
                    &format!("{}.{f}", def.kind),
                    "map[string]string",
                ));
            }
        }
    }
    if def.group.is_empty() && def.plural == "services" {
        let ports = &obj["spec"]["ports"];
        let bad = match ports {
            Value::Null => None,
            Value::Array(items) => items.iter().find(|p| !p.is_object()),
            other => Some(other),
        };
        if let Some(v) = bad {
            return Err(decode_error(def, v, "Service.spec.ports", "v1.ServicePort"));
        }
    }
    for f in ["name", "namespace", "generateName"] {
        if let Some(v) = meta.get(f).filter(|v| !v.is_string() && !v.is_null()) {
            return Err(decode_error(
                def,
                v,
                &format!("ObjectMeta.metadata.{f}"),
                "string",
            ));
        }
    }
    for f in ["labels", "annotations"] {
        match meta.get(f) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                if let Some(bad) = m.values().find(|v| !v.is_string()) {
                    return Err(decode_error(
                        def,
                        bad,
                        &format!("ObjectMeta.metadata.{f}"),
                        "string",
                    ));
                }
            }
            Some(other) => {
                return Err(decode_error(
                    def,
                    other,
                    &format!("ObjectMeta.metadata.{f}"),
                    "map[string]string",
                ));
            }
        }
    }
    if def.group.is_empty() && matches!(def.plural.as_str(), "secrets" | "configmaps") {
        for f in ["data", "stringData", "binaryData"] {
            let Some(m) = map.get(f).and_then(Value::as_object) else {
                continue;
            };
            for (k, v) in m {
                let Some(s) = v.as_str() else {
                    return Err(decode_error(def, v, &format!("{}.{f}", def.kind), "string"));
                };
                let base64_field = (def.plural == "secrets" && f == "data") || f == "binaryData";
                if base64_field && let Err(e) = STANDARD.decode(s) {
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"v1\" cannot be handled as a {kind}: illegal base64 data at input byte {pos} (key {k:?})",
                        kind = def.kind,
                        pos = base64_error_offset(&e)
                    )));
                }
            }
        }
    }
    Ok(())
}

fn base64_error_offset(e: &base64::DecodeError) -> usize {
    match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => *i,
        _ => 0,
    }
}

/// Field validation of a complete object about to be stored (422 Invalid).
pub fn validate_object(def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(FieldCause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        });
    } else if let Some(detail) = name_error(def, name) {
        causes.push(FieldCause::invalid("metadata.name", name, &detail));
    }
    for f in ["labels", "annotations"] {
        for (k, v) in obj["metadata"][f].as_object().into_iter().flatten() {
            if let Some(detail) = qualified_name_error(k) {
                causes.push(FieldCause::invalid(format!("metadata.{f}"), k, &detail));
            }
            let value = v.as_str().unwrap_or_default();
            if f == "labels" {
                if value.len() > 63 {
                    causes.push(FieldCause::invalid(
                        "metadata.labels".to_string(),
                        value,
                        "must be no more than 63 characters",
                    ));
                } else if !is_label_value(value) {
                    causes.push(FieldCause::invalid(
                        "metadata.labels",
                        value,
                        LABEL_VALUE_MSG,
                    ));
                }
            }
        }
    }
    let annotations_size: usize = obj["metadata"]["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or(0);
    if annotations_size > 256 * 1024 {
        causes.push(FieldCause {
            reason: "FieldValueTooLong",
            field: "metadata.annotations".into(),
            message: "Too long: must have at most 262144 bytes".into(),
        });
    }
    if def.group.is_empty() && def.plural == "secrets" {
        for k in obj["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            {
                causes.push(FieldCause::invalid(
                    format!("data[{k}]"),
                    k,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
        if obj["type"].as_str() == Some("kubernetes.io/service-account-token")
            && obj["metadata"]["annotations"]["kubernetes.io/service-account.name"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            causes.push(FieldCause::required(
                "metadata.annotations[kubernetes.io/service-account.name]",
            ));
        }
    }
    if def.group.is_empty() && def.plural == "services" {
        let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
        if !matches!(
            ty,
            "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
        ) {
            causes.push(FieldCause {
                reason: "FieldValueNotSupported",
                field: "spec.type".into(),
                message: format!("Unsupported value: {ty:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
            });
        }
        let ports = obj["spec"]["ports"].as_array().map_or(0, Vec::len);
        if ports == 0 && ty != "ExternalName" && obj["spec"]["clusterIP"].as_str() != Some("None") {
            causes.push(FieldCause::required("spec.ports"));
        }
        for (i, p) in obj["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let port = p["port"].as_i64().unwrap_or(0);
            if !(1..=65535).contains(&port) {
                causes.push(FieldCause::invalid_number(
                    format!("spec.ports[{i}].port"),
                    port,
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
    if def.group == "rbac.authorization.k8s.io"
        && def.plural.ends_with("bindings")
        && obj["roleRef"]["name"].as_str().is_none_or(str::is_empty)
    {
        causes.push(FieldCause::required("roleRef.name"));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, &def.group, name, causes))
    }
}

fn name_error(def: &ResourceDef, name: &str) -> Option<String> {
    let rbac = def.group == "rbac.authorization.k8s.io";
    let label_kinds =
        def.group.is_empty() && matches!(def.plural.as_str(), "namespaces" | "services");
    if rbac {
        // RBAC objects only need to be valid path segments (`system:controller:x` is legal).
        if name == "." || name == ".." || name.contains('/') || name.contains('%') {
            return Some("may not contain '/' or '%', and may not be '.' or '..'".into());
        }
        None
    } else if label_kinds {
        (!is_dns_label(name)).then(|| LABEL_MSG.to_string())
    } else {
        (!is_dns_subdomain(name)).then(|| SUBDOMAIN_MSG.to_string())
    }
}

/// Rules that compare the stored object with its replacement (422 on immutable fields).
pub fn validate_update(def: &ResourceDef, old: &Value, new: &Value) -> ApiResult<()> {
    let name = old["metadata"]["name"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    for f in ["name", "namespace"] {
        if old["metadata"][f] != new["metadata"][f] {
            let v = new["metadata"][f].as_str().unwrap_or_default();
            causes.push(FieldCause::invalid(
                format!("metadata.{f}"),
                v,
                "field is immutable",
            ));
        }
    }
    if def.group.is_empty() && def.plural == "secrets" {
        let old_ty = old["type"].as_str().unwrap_or("Opaque");
        let new_ty = new["type"].as_str().unwrap_or("Opaque");
        if old_ty != new_ty {
            causes.push(FieldCause::invalid("type", new_ty, "field is immutable"));
        }
    }
    if def.group.is_empty()
        && matches!(def.plural.as_str(), "secrets" | "configmaps")
        && old["immutable"] == json!(true)
    {
        for f in ["data", "stringData", "binaryData"] {
            if old[f] != new[f] && !(f == "stringData" && new[f].is_null()) {
                causes.push(FieldCause {
                    reason: "FieldValueForbidden",
                    field: f.into(),
                    message: "Forbidden: field is immutable when `immutable` is set".to_string(),
                });
            }
        }
    }
    if def.group == "rbac.authorization.k8s.io"
        && def.plural.ends_with("bindings")
        && old["roleRef"] != new["roleRef"]
    {
        causes.push(FieldCause::invalid(
            "roleRef",
            &new["roleRef"].to_string(),
            "cannot change roleRef",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, &def.group, name, causes))
    }
}

/// Resource quantities of built-in kinds in the canonical form the API server stores (see
/// [`crate::quantity`]); an unreadable quantity is the decoder's 400.
pub fn canonicalize_quantities(def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    crate::quantity::canonicalize(&def.group, &def.plural, obj).map_err(|(field, e)| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {field}: {e}",
            def.kind, def.version, def.kind
        ))
    })
}

/// What the API server does to every written object of a kind before storing it: Secret
/// `stringData` merged into `data` (base64) and removed, Secret `type` defaulted to `Opaque`.
pub fn normalize(def: &ResourceDef, obj: &mut Value) {
    if !(def.group.is_empty() && def.plural == "secrets") {
        return;
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Some(d) = data.as_object_mut() {
            for (k, v) in string_data {
                d.insert(k, json!(STANDARD.encode(v.as_str().unwrap_or_default())));
            }
        }
    }
    if map.get("type").is_none_or(Value::is_null) {
        map.insert("type".into(), json!("Opaque"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn def(plural: &str) -> ResourceDef {
        Registry::default()
            .by_plural("", "v1", plural)
            .cloned()
            .unwrap_or_else(|| panic!("{plural}"))
    }

    #[test]
    fn label_value_must_be_a_string() {
        let obj = json!({"metadata": {"name": "x", "labels": {"on": true}}});
        let e = decode_checks(&def("configmaps"), &obj).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(400));
        assert!(e.is_some_and(|e| e.message.contains("cannot unmarshal bool")));
    }

    #[test]
    fn wrongly_typed_structures_are_decode_errors() {
        for (plural, obj) in [
            ("services", json!({"metadata": {"name": "s"}, "spec": "x"})),
            (
                "services",
                json!({"metadata": {"name": "s"}, "spec": {"ports": [80]}}),
            ),
            ("secrets", json!({"metadata": {"name": "s"}, "data": "x"})),
            (
                "namespaces",
                json!({"metadata": {"name": "n"}, "status": []}),
            ),
        ] {
            let e = decode_checks(&def(plural), &obj).err();
            assert_eq!(e.map(|e| e.code), Some(400), "{obj}");
        }
    }

    #[test]
    fn names_and_label_syntax() {
        assert!(
            validate_object(&def("configmaps"), &json!({"metadata": {"name": "a.b-c"}})).is_ok()
        );
        let e = validate_object(&def("namespaces"), &json!({"metadata": {"name": "a.b"}})).err();
        assert_eq!(e.map(|e| e.code), Some(422));
        let e = validate_object(
            &def("configmaps"),
            &json!({"metadata": {"name": "ok", "labels": {"bad key": "v"}}}),
        )
        .err();
        assert!(e.is_some_and(|e| {
            e.message
                .contains("metadata.labels: Invalid value: \"bad key\"")
        }));
        let long = "a".repeat(64);
        assert!(
            validate_object(
                &def("configmaps"),
                &json!({"metadata": {"name": "ok", "labels": {"k": long}}})
            )
            .is_err()
        );
    }

    #[test]
    fn secret_string_data_becomes_base64_data_and_bad_base64_is_rejected() {
        let mut s =
            json!({"metadata": {"name": "s"}, "stringData": {"k": "hello"}, "data": {"j": "aGk="}});
        normalize(&def("secrets"), &mut s);
        assert_eq!(s["data"], json!({"j": "aGk=", "k": "aGVsbG8="}));
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
        let e = decode_checks(
            &def("secrets"),
            &json!({"metadata": {"name": "s"}, "data": {"k": "%%%"}}),
        )
        .err();
        assert_eq!(e.map(|e| e.code), Some(400));
    }

    #[test]
    fn secret_type_is_immutable() {
        let old = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        let new = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        let e = validate_update(&def("secrets"), &old, &new).err();
        assert!(e.is_some_and(|e| {
            e.code == 422
                && e.message
                    .contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable")
        }));
    }

    #[test]
    fn a_port_out_of_range_is_printed_as_the_number_it_is() {
        let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 70000}]}});
        let e = validate_object(&def("services"), &svc).err();
        assert_eq!(
            e.map(|e| e.message),
            Some(
                "Service \"s\" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
                    .to_string()
            )
        );
    }
}
