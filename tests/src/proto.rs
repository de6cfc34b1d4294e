//! The Kubernetes protobuf bodies kubectl's typed clients send (`create token`, `auth can-i`,
//! `create serviceaccount|namespace|secret|configmap|role|rolebinding|...`): the `k8s\0`
//! envelope (`runtime.Unknown`) and those kinds' messages, decoded into the same JSON the rest of
//! the server handles. Other kinds get 415, as from a server that does not speak protobuf.

use serde_json::{Map, Value, json};

use crate::status::{ApiError, ApiResult};

const MAGIC: &[u8] = b"k8s\0";

/// One decoded protobuf field.
#[derive(Debug, Clone, PartialEq)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

/// Splits a message into (field number, value) pairs; `None` on malformed input.
fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (num, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => out.push((num, Field::Varint(varint(buf, &mut pos)?))),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                out.push((num, Field::Bytes(buf.get(pos..end)?)));
                pos = end;
            }
            1 => pos = pos.checked_add(8)?,
            5 => pos = pos.checked_add(4)?,
            _ => return None,
        }
    }
    Some(out)
}

fn string_fields(buf: &[u8], names: &[(u64, &str)]) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    for (num, f) in fields(buf)? {
        if let (Some((_, name)), Field::Bytes(b)) = (names.iter().find(|(n, _)| *n == num), f) {
            m.insert((*name).to_string(), json!(String::from_utf8_lossy(b)));
        }
    }
    Some(m)
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf body could not be decoded")
}

/// Decodes a protobuf request body into JSON, for the kinds that arrive that way.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let inner = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (num, f) in fields(inner).ok_or_else(malformed)? {
        match (num, f) {
            (1, Field::Bytes(tm)) => {
                let m =
                    string_fields(tm, &[(1, "apiVersion"), (2, "kind")]).ok_or_else(malformed)?;
                api_version = m
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                kind = m
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let mut obj = match kind.as_str() {
        "TokenRequest" => token_request(raw),
        "SelfSubjectAccessReview" | "SubjectAccessReview" => access_review(raw),
        "SelfSubjectRulesReview" => message(raw, RULES_REVIEW),
        "ServiceAccount" => message(raw, SERVICE_ACCOUNT),
        "Namespace" => message(raw, NAMESPACE),
        "Secret" => message(raw, SECRET),
        "ConfigMap" => message(raw, CONFIG_MAP),
        "Role" | "ClusterRole" => message(raw, ROLE),
        "RoleBinding" | "ClusterRoleBinding" => message(raw, BINDING),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::unsupported_media_type(&format!("application/vnd.kubernetes.protobuf ({kind})"))
    })?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

/// How one protobuf field maps to JSON.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Msg(&'static [(u64, &'static str, Ty)]),
    RepStr,
    RepMsg(&'static [(u64, &'static str, Ty)]),
    MapStr,
    /// `map<string, bytes>`, rendered base64 as the JSON API does.
    MapBytes,
}

const OBJECT_META: &[(u64, &str, Ty)] = &[
    (1, "name", Ty::Str),
    (2, "generateName", Ty::Str),
    (3, "namespace", Ty::Str),
    (11, "labels", Ty::MapStr),
    (12, "annotations", Ty::MapStr),
    (14, "finalizers", Ty::RepStr),
];
const POLICY_RULE: &[(u64, &str, Ty)] = &[
    (1, "verbs", Ty::RepStr),
    (2, "apiGroups", Ty::RepStr),
    (3, "resources", Ty::RepStr),
    (4, "resourceNames", Ty::RepStr),
    (5, "nonResourceURLs", Ty::RepStr),
];
const SUBJECT: &[(u64, &str, Ty)] = &[
    (1, "kind", Ty::Str),
    (2, "apiGroup", Ty::Str),
    (3, "name", Ty::Str),
    (4, "namespace", Ty::Str),
];
const ROLE_REF: &[(u64, &str, Ty)] = &[
    (1, "apiGroup", Ty::Str),
    (2, "kind", Ty::Str),
    (3, "name", Ty::Str),
];
const LOCAL_REF: &[(u64, &str, Ty)] = &[(1, "name", Ty::Str)];
const SERVICE_ACCOUNT: &[(u64, &str, Ty)] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (3, "imagePullSecrets", Ty::RepMsg(LOCAL_REF)),
    (4, "automountServiceAccountToken", Ty::Bool),
];
const NAMESPACE: &[(u64, &str, Ty)] = &[(1, "metadata", Ty::Msg(OBJECT_META))];
const SECRET: &[(u64, &str, Ty)] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapBytes),
    (3, "type", Ty::Str),
    (4, "stringData", Ty::MapStr),
    (5, "immutable", Ty::Bool),
];
const CONFIG_MAP: &[(u64, &str, Ty)] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapStr),
    (3, "binaryData", Ty::MapBytes),
    (4, "immutable", Ty::Bool),
];
const RULES_REVIEW_SPEC: &[(u64, &str, Ty)] = &[(1, "namespace", Ty::Str)];
const RULES_REVIEW: &[(u64, &str, Ty)] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(RULES_REVIEW_SPEC)),
];
const ROLE: &[(u64, &str, Ty)] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "rules", Ty::RepMsg(POLICY_RULE)),
];
const BINDING: &[(u64, &str, Ty)] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "subjects", Ty::RepMsg(SUBJECT)),
    (3, "roleRef", Ty::Msg(ROLE_REF)),
];

fn text(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}

fn map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut key = String::new();
    let mut value = json!("");
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, Field::Bytes(v)) if bytes_value => {
                value = json!(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    v
                ))
            }
            (2, Field::Bytes(v)) => value = text(v),
            _ => {}
        }
    }
    Some((key, value))
}

/// Decodes a message by its field table; unknown fields are skipped.
fn message(buf: &[u8], schema: &[(u64, &str, Ty)]) -> Option<Value> {
    let mut out = Map::new();
    for (num, f) in fields(buf)? {
        let Some((_, name, ty)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = (*name).to_string();
        match (ty, f) {
            (Ty::Str, Field::Bytes(b)) => {
                out.insert(name, text(b));
            }
            (Ty::Bool, Field::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Ty::Msg(s), Field::Bytes(b)) => {
                out.insert(name, message(b, s)?);
            }
            (Ty::RepStr, Field::Bytes(b)) => push(&mut out, name, text(b)),
            (Ty::RepMsg(s), Field::Bytes(b)) => push(&mut out, name, message(b, s)?),
            (Ty::MapStr | Ty::MapBytes, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(ty, Ty::MapBytes))?;
                if let Some(m) = out.entry(name).or_insert_with(|| json!({})).as_object_mut() {
                    m.insert(k, v);
                }
            }
            _ => return None,
        }
    }
    Some(Value::Object(out))
}

fn push(out: &mut Map<String, Value>, name: String, v: Value) {
    if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
        a.push(v);
    }
}

fn metadata(buf: &[u8]) -> Option<Map<String, Value>> {
    string_fields(buf, &[(1, "name"), (2, "generateName"), (3, "namespace")])
}

fn token_request(raw: &[u8]) -> Option<Value> {
    let mut obj = json!({"metadata": {}, "spec": {}});
    for (num, f) in fields(raw)? {
        match (num, f) {
            (1, Field::Bytes(b)) => obj["metadata"] = Value::Object(metadata(b)?),
            (2, Field::Bytes(spec)) => {
                let mut audiences = Vec::new();
                for (n, sf) in fields(spec)? {
                    match (n, sf) {
                        (1, Field::Bytes(a)) => audiences.push(json!(String::from_utf8_lossy(a))),
                        (4, Field::Varint(v)) => obj["spec"]["expirationSeconds"] = json!(v),
                        (3, Field::Bytes(r)) => {
                            obj["spec"]["boundObjectRef"] = Value::Object(string_fields(
                                r,
                                &[(1, "kind"), (2, "apiVersion"), (3, "name"), (4, "uid")],
                            )?);
                        }
                        _ => {}
                    }
                }
                if !audiences.is_empty() {
                    obj["spec"]["audiences"] = Value::Array(audiences);
                }
            }
            _ => {}
        }
    }
    Some(obj)
}

fn access_review(raw: &[u8]) -> Option<Value> {
    let mut obj = json!({"metadata": {}, "spec": {}});
    for (num, f) in fields(raw)? {
        match (num, f) {
            (1, Field::Bytes(b)) => obj["metadata"] = Value::Object(metadata(b)?),
            (2, Field::Bytes(spec)) => {
                for (n, sf) in fields(spec)? {
                    match (n, sf) {
                        (1, Field::Bytes(ra)) => {
                            obj["spec"]["resourceAttributes"] = Value::Object(string_fields(
                                ra,
                                &[
                                    (1, "namespace"),
                                    (2, "verb"),
                                    (3, "group"),
                                    (4, "version"),
                                    (5, "resource"),
                                    (6, "subresource"),
                                    (7, "name"),
                                ],
                            )?);
                        }
                        (2, Field::Bytes(nra)) => {
                            obj["spec"]["nonResourceAttributes"] =
                                Value::Object(string_fields(nra, &[(1, "path"), (2, "verb")])?);
                        }
                        // SubjectAccessReviewSpec: user = 3, groups = 4, uid = 6.
                        (3, Field::Bytes(u)) => {
                            obj["spec"]["user"] = json!(String::from_utf8_lossy(u))
                        }
                        (4, Field::Bytes(g)) => {
                            let groups = obj["spec"]["groups"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default();
                            let mut groups = groups;
                            groups.push(json!(String::from_utf8_lossy(g)));
                            obj["spec"]["groups"] = Value::Array(groups);
                        }
                        (6, Field::Bytes(u)) => {
                            obj["spec"]["uid"] = json!(String::from_utf8_lossy(u))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(num: u8, b: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3) | 2, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn decodes_a_token_request_envelope() {
        let type_meta = [
            bytes_field(1, b"authentication.k8s.io/v1"),
            bytes_field(2, b"TokenRequest"),
        ]
        .concat();
        // spec: audiences = ["api"], expirationSeconds (field 4, varint) = 3600.
        let spec = [bytes_field(1, b"api"), vec![4 << 3, 0x90, 0x1c]].concat();
        let raw = [
            bytes_field(1, &bytes_field(1, b"reader")),
            bytes_field(2, &spec),
        ]
        .concat();
        let body = [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, &raw),
        ]
        .concat();
        let v = decode(&body).unwrap_or_default();
        assert_eq!(v["kind"], "TokenRequest");
        assert_eq!(v["spec"]["expirationSeconds"], 3600);
        assert_eq!(v["spec"]["audiences"], json!(["api"]));
        assert_eq!(v["metadata"]["name"], "reader");
        assert!(decode(b"k8s\0\xff").is_err());
    }

    #[test]
    fn decodes_a_secret_with_labels_and_binary_data() {
        let type_meta = [bytes_field(1, b"v1"), bytes_field(2, b"Secret")].concat();
        let label = bytes_field(11, &[bytes_field(1, b"app"), bytes_field(2, b"x")].concat());
        let meta = [bytes_field(1, b"s"), label].concat();
        let data = bytes_field(
            2,
            &[bytes_field(1, b"k"), bytes_field(2, &[0xff, 0x00])].concat(),
        );
        let raw = [bytes_field(1, &meta), data, bytes_field(3, b"Opaque")].concat();
        let body = [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, &raw),
        ]
        .concat();
        let v = decode(&body).unwrap_or_default();
        assert_eq!(v["metadata"], json!({"name": "s", "labels": {"app": "x"}}));
        assert_eq!(v["data"], json!({"k": "/wA="}));
        assert_eq!(v["type"], "Opaque");
    }
}
