//! The Kubernetes protobuf bodies typed clients send (kubectl ≥ 1.32 uses them for `create`,
//! `create token`, `auth can-i`, ...): the `k8s\0` envelope (`runtime.Unknown`: `typeMeta` = 1,
//! `raw` = 2) and the messages of every built-in kind the emulator serves, decoded into the JSON
//! the Go server would hold after decoding the same bytes.
//!
//! The decoder is table-driven ([`kinds`]): one table per message, written from the field numbers
//! in Kubernetes' `generated.proto` files. How gogo-protobuf encodes and Go's `encoding/json`
//! prints the result decides the mapping:
//! - non-pointer scalars are always on the wire; zero values are dropped here (their JSON tags
//!   are `omitempty`), pointer scalars (`P*` types) keep an explicit zero or `false`;
//! - every message that is on the wire is kept, even empty (`resources: {}`, `emptyDir: {}`), as
//!   Go prints non-nil structs;
//! - embedded structs that JSON inlines (`Volume.volumeSource`, `Probe.handler`, the
//!   `localObjectReference` of key selectors) are merged into their parent;
//! - `Time` becomes RFC 3339 (zero = absent), `Quantity` its string, `IntOrString` a number or a
//!   string, `RawExtension`/`FieldsV1` the JSON they carry, `map<string,bytes>` base64.
//!
//! A field number missing from a table is answered with 400 naming the message and the number,
//! never dropped silently: a test that meets one shows where the table needs a row. Kinds without
//! a table (custom resources) get 415, as from a real server, which serves CRDs in JSON/YAML only.

mod kinds;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::status::{ApiError, ApiResult};

const MAGIC: &[u8] = b"k8s\0";

/// How one protobuf field maps to JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// `string`, dropped when empty.
    Str,
    /// `*string`: kept when empty.
    PStr,
    /// `int32`/`int64`, dropped when zero.
    Int,
    /// `*int32`/`*int64`: kept when zero.
    PInt,
    /// `bool`, dropped when false.
    Bool,
    /// `*bool`: kept when false.
    PBool,
    /// `bytes`, base64 in JSON.
    Bytes,
    /// `repeated string`.
    RepStr,
    /// `repeated int32/int64` (packed or not).
    RepInt,
    /// A nested message.
    Msg(&'static Message),
    /// `repeated` nested message.
    RepMsg(&'static Message),
    /// An embedded struct whose fields JSON inlines into the parent.
    Inline(&'static Message),
    /// `meta.v1.Time` / `MicroTime`.
    Time,
    /// `resource.Quantity`.
    Qty,
    /// `intstr.IntOrString`.
    IntStr,
    /// `runtime.RawExtension` / `meta.v1.FieldsV1`: bytes holding JSON.
    Raw,
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>` (base64 in JSON).
    MapBytes,
    /// `map<string, Quantity>`.
    MapQty,
    /// `map<string, ExtraValue>` (a list of strings per key).
    MapStrList,
    /// Read but not decoded (status of a created object: the server resets it anyway).
    Skip,
}

/// One message table: its name (for errors) and its fields by number.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [(u64, &'static str, Ty)],
}

/// One decoded protobuf field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
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
            1 => {
                pos = pos.checked_add(8)?;
                out.push((num, Field::Fixed));
            }
            5 => {
                pos = pos.checked_add(4)?;
                out.push((num, Field::Fixed));
            }
            _ => return None,
        }
    }
    (pos == buf.len()).then_some(out)
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf body could not be decoded")
}

/// The body's `apiVersion` and `kind` (from the envelope's TypeMeta) and its raw message.
fn envelope(body: &[u8]) -> ApiResult<(String, String, &[u8])> {
    let inner = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (num, f) in fields(inner).ok_or_else(malformed)? {
        match (num, f) {
            (1, Field::Bytes(tm)) => {
                for (n, tf) in fields(tm).ok_or_else(malformed)? {
                    match (n, tf) {
                        (1, Field::Bytes(v)) => api_version = text(v),
                        (2, Field::Bytes(k)) => kind = text(k),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

/// Decodes a protobuf request body into JSON, for every kind with a table.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let (api_version, kind, raw) = envelope(body)?;
    let Some(table) = kinds::table(&api_version, &kind) else {
        return Err(ApiError::unsupported_media_type(&format!(
            "application/vnd.kubernetes.protobuf ({api_version} {kind})"
        )));
    };
    let mut out = Map::new();
    message(raw, table, &mut out).map_err(|e| match e {
        DecodeError::Malformed => malformed(),
        DecodeError::Unknown { message, field } => ApiError::bad_request(format!(
            "the emulator cannot decode field {field} of protobuf message {message} (in {kind}); \
             add it to tests/src/proto/kinds.rs"
        )),
    })?;
    let mut obj = Value::Object(out);
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[derive(Debug)]
enum DecodeError {
    Malformed,
    Unknown { message: &'static str, field: u64 },
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decodes `buf` by `table` into `out` (shared with the parent for inlined structs).
fn message(buf: &[u8], table: &Message, out: &mut Map<String, Value>) -> Result<(), DecodeError> {
    for (num, f) in fields(buf).ok_or(DecodeError::Malformed)? {
        let Some(&(_, name, ty)) = table.fields.iter().find(|(n, _, _)| *n == num) else {
            return Err(DecodeError::Unknown {
                message: table.name,
                field: num,
            });
        };
        let key = name.to_string();
        match (ty, f) {
            (Ty::Skip, _) => {}
            (Ty::Str, Field::Bytes(b)) => {
                if !b.is_empty() {
                    out.insert(key, json!(text(b)));
                }
            }
            (Ty::PStr, Field::Bytes(b)) => {
                out.insert(key, json!(text(b)));
            }
            (Ty::Int, Field::Varint(v)) => {
                if v != 0 {
                    out.insert(key, json!(v as i64));
                }
            }
            (Ty::PInt, Field::Varint(v)) => {
                out.insert(key, json!(v as i64));
            }
            (Ty::Bool, Field::Varint(v)) => {
                if v != 0 {
                    out.insert(key, json!(true));
                }
            }
            (Ty::PBool, Field::Varint(v)) => {
                out.insert(key, json!(v != 0));
            }
            (Ty::Bytes, Field::Bytes(b)) => {
                if !b.is_empty() {
                    out.insert(key, json!(STANDARD.encode(b)));
                }
            }
            (Ty::RepStr, Field::Bytes(b)) => push(out, key, json!(text(b))),
            (Ty::RepInt, Field::Varint(v)) => push(out, key, json!(v as i64)),
            (Ty::RepInt, Field::Bytes(packed)) => {
                let mut pos = 0;
                while pos < packed.len() {
                    let v = varint(packed, &mut pos).ok_or(DecodeError::Malformed)?;
                    push(out, key.clone(), json!(v as i64));
                }
            }
            (Ty::Msg(m), Field::Bytes(b)) => {
                let mut sub = Map::new();
                message(b, m, &mut sub)?;
                out.insert(key, Value::Object(sub));
            }
            (Ty::RepMsg(m), Field::Bytes(b)) => {
                let mut sub = Map::new();
                message(b, m, &mut sub)?;
                push(out, key, Value::Object(sub));
            }
            (Ty::Inline(m), Field::Bytes(b)) => message(b, m, out)?,
            (Ty::Time, Field::Bytes(b)) => {
                if let Some(t) = time(b)? {
                    out.insert(key, json!(t));
                }
            }
            (Ty::Qty, Field::Bytes(b)) => {
                out.insert(key, json!(quantity(b)?));
            }
            (Ty::IntStr, Field::Bytes(b)) => {
                out.insert(key, int_or_string(b)?);
            }
            (Ty::Raw, Field::Bytes(b)) => {
                if let Some(v) = raw_json(b)? {
                    out.insert(key, v);
                }
            }
            (Ty::MapStr | Ty::MapBytes | Ty::MapQty | Ty::MapStrList, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, ty)?;
                if let Some(m) = out.entry(key).or_insert_with(|| json!({})).as_object_mut() {
                    m.insert(k, v);
                }
            }
            _ => return Err(DecodeError::Malformed),
        }
    }
    Ok(())
}

fn push(out: &mut Map<String, Value>, name: String, v: Value) {
    if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
        a.push(v);
    }
}

/// `meta.v1.Time{seconds = 1, nanos = 2}` as Go's JSON prints it (`null`, here absent, for zero).
fn time(b: &[u8]) -> Result<Option<String>, DecodeError> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    for (n, f) in fields(b).ok_or(DecodeError::Malformed)? {
        match (n, f) {
            (1, Field::Varint(v)) => seconds = v as i64,
            (2, Field::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    let t =
        time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| DecodeError::Malformed)?;
    t.format(&time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|_| DecodeError::Malformed)
}

fn quantity(b: &[u8]) -> Result<String, DecodeError> {
    let mut s = String::new();
    for (n, f) in fields(b).ok_or(DecodeError::Malformed)? {
        if let (1, Field::Bytes(v)) = (n, f) {
            s = text(v);
        }
    }
    Ok(s)
}

/// `IntOrString{type = 1, intVal = 2, strVal = 3}`.
fn int_or_string(b: &[u8]) -> Result<Value, DecodeError> {
    let (mut ty, mut int_val, mut str_val) = (0u64, 0i64, String::new());
    for (n, f) in fields(b).ok_or(DecodeError::Malformed)? {
        match (n, f) {
            (1, Field::Varint(v)) => ty = v,
            (2, Field::Varint(v)) => int_val = v as i64,
            (3, Field::Bytes(s)) => str_val = text(s),
            _ => {}
        }
    }
    Ok(if ty == 1 {
        json!(str_val)
    } else {
        json!(int_val)
    })
}

/// `RawExtension{raw = 1}` / `FieldsV1{Raw = 1}`: JSON bytes.
fn raw_json(b: &[u8]) -> Result<Option<Value>, DecodeError> {
    let mut raw: &[u8] = &[];
    for (n, f) in fields(b).ok_or(DecodeError::Malformed)? {
        if let (1, Field::Bytes(v)) = (n, f) {
            raw = v;
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|_| DecodeError::Malformed)
}

fn map_entry(b: &[u8], ty: Ty) -> Result<(String, Value), DecodeError> {
    let mut key = String::new();
    let mut value = match ty {
        Ty::MapStrList => json!([]),
        _ => json!(""),
    };
    for (n, f) in fields(b).ok_or(DecodeError::Malformed)? {
        match (n, f, ty) {
            (1, Field::Bytes(k), _) => key = text(k),
            (2, Field::Bytes(v), Ty::MapBytes) => value = json!(STANDARD.encode(v)),
            (2, Field::Bytes(v), Ty::MapQty) => value = json!(quantity(v)?),
            (2, Field::Bytes(v), Ty::MapStrList) => {
                let items: Vec<Value> = fields(v)
                    .ok_or(DecodeError::Malformed)?
                    .into_iter()
                    .filter_map(|(n, f)| match (n, f) {
                        (1, Field::Bytes(s)) => Some(json!(text(s))),
                        _ => None,
                    })
                    .collect();
                value = Value::Array(items);
            }
            (2, Field::Bytes(v), _) => value = json!(text(v)),
            _ => return Err(DecodeError::Malformed),
        }
    }
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(num: u64, wire: u64) -> Vec<u8> {
        varint_bytes((num << 3) | wire)
    }

    fn varint_bytes(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(num: u64, b: &[u8]) -> Vec<u8> {
        [tag(num, 2), varint_bytes(b.len() as u64), b.to_vec()].concat()
    }

    fn varint_field(num: u64, v: u64) -> Vec<u8> {
        [tag(num, 0), varint_bytes(v)].concat()
    }

    fn envelope_of(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [
            bytes_field(1, api_version.as_bytes()),
            bytes_field(2, kind.as_bytes()),
        ]
        .concat();
        [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, raw),
        ]
        .concat()
    }

    #[test]
    fn decodes_a_token_request_envelope() {
        // spec: audiences = ["api"], expirationSeconds (field 4, varint) = 3600.
        let spec = [bytes_field(1, b"api"), varint_field(4, 3600)].concat();
        let raw = [
            bytes_field(1, &bytes_field(1, b"reader")),
            bytes_field(2, &spec),
        ]
        .concat();
        let v = decode(&envelope_of(
            "authentication.k8s.io/v1",
            "TokenRequest",
            &raw,
        ))
        .unwrap_or_default();
        assert_eq!(v["kind"], "TokenRequest");
        assert_eq!(v["spec"]["expirationSeconds"], 3600);
        assert_eq!(v["spec"]["audiences"], json!(["api"]));
        assert_eq!(v["metadata"]["name"], "reader");
        assert!(decode(b"k8s\0\xff").is_err());
    }

    #[test]
    fn decodes_a_secret_with_labels_and_binary_data() {
        let label = bytes_field(11, &[bytes_field(1, b"app"), bytes_field(2, b"x")].concat());
        // gogo writes every non-pointer string, empty or not; empty ones are not JSON fields.
        let meta = [bytes_field(1, b"s"), bytes_field(2, b""), label].concat();
        let data = bytes_field(
            2,
            &[bytes_field(1, b"k"), bytes_field(2, &[0xff, 0x00])].concat(),
        );
        let raw = [bytes_field(1, &meta), data, bytes_field(3, b"Opaque")].concat();
        let v = decode(&envelope_of("v1", "Secret", &raw)).unwrap_or_default();
        assert_eq!(v["metadata"], json!({"name": "s", "labels": {"app": "x"}}));
        assert_eq!(v["data"], json!({"k": "/wA="}));
        assert_eq!(v["type"], "Opaque");
    }

    #[test]
    fn service_ports_keep_int_or_string_target_ports_and_pointer_zeroes() {
        let int_port = [varint_field(1, 0), varint_field(2, 8080)].concat();
        let named_port = [varint_field(1, 1), bytes_field(3, b"http")].concat();
        let p1 = [
            bytes_field(1, b"a"),
            varint_field(3, 80),
            bytes_field(4, &int_port),
        ]
        .concat();
        let p2 = [
            bytes_field(1, b"b"),
            varint_field(3, 81),
            bytes_field(4, &named_port),
            varint_field(5, 0),
        ]
        .concat();
        let spec = [
            bytes_field(1, &p1),
            bytes_field(1, &p2),
            bytes_field(4, b"LoadBalancer"),
            // allocateLoadBalancerNodePorts is *bool: an explicit false stays.
            varint_field(20, 0),
        ]
        .concat();
        let raw = [
            bytes_field(1, &bytes_field(1, b"lb")),
            bytes_field(2, &spec),
        ]
        .concat();
        let v = decode(&envelope_of("v1", "Service", &raw)).unwrap_or_default();
        assert_eq!(
            v["spec"]["ports"],
            json!([{"name": "a", "port": 80, "targetPort": 8080}, {"name": "b", "port": 81, "targetPort": "http"}])
        );
        assert_eq!(v["spec"]["type"], "LoadBalancer");
        assert_eq!(v["spec"]["allocateLoadBalancerNodePorts"], false);
    }

    #[test]
    fn inlined_structs_merge_into_their_parent_and_empty_messages_stay() {
        // Volume{name = 1, volumeSource = 2 {emptyDir = 2 {}}}: JSON `{"name": "v", "emptyDir": {}}`.
        let volume = [bytes_field(1, b"v"), bytes_field(2, &bytes_field(2, b""))].concat();
        let container = [
            bytes_field(1, b"c"),
            bytes_field(2, b"nginx"),
            bytes_field(8, b""),
        ]
        .concat();
        let pod_spec = [bytes_field(1, &volume), bytes_field(2, &container)].concat();
        let raw = [
            bytes_field(1, &bytes_field(1, b"p")),
            bytes_field(2, &pod_spec),
        ]
        .concat();
        let v = decode(&envelope_of("v1", "Pod", &raw)).unwrap_or_default();
        assert_eq!(v["spec"]["volumes"], json!([{"name": "v", "emptyDir": {}}]));
        assert_eq!(
            v["spec"]["containers"],
            json!([{"name": "c", "image": "nginx", "resources": {}}])
        );
    }

    #[test]
    fn an_unknown_field_number_is_an_error_naming_it() {
        let raw = [bytes_field(1, &bytes_field(1, b"x")), varint_field(99, 1)].concat();
        let e = decode(&envelope_of("v1", "ConfigMap", &raw)).err();
        let msg = e.map(|e| e.message).unwrap_or_default();
        assert!(
            msg.contains("field 99 of protobuf message ConfigMap"),
            "{msg}"
        );
    }

    #[test]
    fn custom_resources_get_415_as_from_a_real_server() {
        let raw = bytes_field(1, &bytes_field(1, b"x"));
        let e = decode(&envelope_of("networking.istio.io/v1", "Gateway", &raw)).err();
        assert_eq!(e.map(|e| e.code), Some(415));
    }

    #[test]
    fn every_built_in_kind_the_emulator_serves_has_a_table() {
        // Kinds served through CRDs (Istio, Gateway API, the CRD kind itself) are not built in:
        // a real server answers their protobuf bodies with 415.
        let crd_groups = [
            "apiextensions.k8s.io",
            "networking.istio.io",
            "gateway.networking.k8s.io",
        ];
        let missing: Vec<String> = crate::resources::builtin()
            .iter()
            .filter(|d| !crd_groups.contains(&d.group.as_str()))
            .filter(|d| kinds::table(&d.api_version(), &d.kind).is_none())
            .map(|d| format!("{} {}", d.api_version(), d.kind))
            .collect();
        assert!(missing.is_empty(), "no protobuf table for {missing:?}");
    }

    #[test]
    fn times_are_rfc3339_and_quantities_strings() {
        let ts = [varint_field(1, 1_700_000_000)].concat();
        assert_eq!(
            time(&ts).ok().flatten().as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(time(&[]).ok().flatten(), None);
        assert_eq!(
            quantity(&bytes_field(1, b"500m")).ok().as_deref(),
            Some("500m")
        );
    }
}
