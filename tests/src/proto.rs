//! The few Kubernetes protobuf bodies real clients send for the kinds they only ever send as
//! protobuf (kubectl's typed clients: `create token`, `auth can-i`): the `k8s\0` envelope
//! (`runtime.Unknown`) and the TokenRequest / SelfSubjectAccessReview messages, decoded into the
//! same JSON the rest of the server handles.

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
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::unsupported_media_type(&format!("application/vnd.kubernetes.protobuf ({kind})"))
    })?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
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
}
