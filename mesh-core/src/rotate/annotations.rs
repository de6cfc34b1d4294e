//! The annotations a root rotation records on each cluster's `cacerts` Secret, written in the
//! same server-side apply as the bundle they describe. The phase itself is always derived from
//! the bundle (which roots, which signer); the annotations add what the bundle cannot say: when
//! the phase was reached (gate 2 counts from it), and whether phase 1 was reached going back
//! (an abort). `apply` carries them over unchanged, so a re-apply mid-rotation keeps them.
//!
//! ```
//! use mesh_core::rotate::annotations::{PHASE, SINCE};
//! assert_eq!(PHASE, "rotation.meshboot.io/phase");
//! assert!(SINCE.starts_with("rotation.meshboot.io/"));
//! ```

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::verify::cacerts::CacertsSecret;

/// The prefix every rotation annotation starts with.
pub const PREFIX: &str = "rotation.meshboot.io/";
/// The phase the bundle is in: `0`, `1`, `2`, `3` or `abort-1`.
pub const PHASE: &str = "rotation.meshboot.io/phase";
/// When this cluster reached the phase, RFC 3339 UTC.
pub const SINCE: &str = "rotation.meshboot.io/since";
/// SHA-256 fingerprint of the root being replaced.
pub const OLD_ROOT: &str = "rotation.meshboot.io/old-root";
/// SHA-256 fingerprint of the root replacing it.
pub const NEW_ROOT: &str = "rotation.meshboot.io/new-root";

/// The rotation annotations of a live object (`metadata.annotations` entries under
/// [`PREFIX`]).
///
/// ```
/// let secret = serde_json::json!({"metadata": {"annotations": {
///     "rotation.meshboot.io/phase": "2", "kubectl.kubernetes.io/last-applied-configuration": "{}"}}});
/// let kept = mesh_core::rotate::annotations::of(&secret);
/// assert_eq!(kept.len(), 1);
/// ```
pub fn of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with(PREFIX))
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `annotations` on a desired object (replacing rotation annotations it already had).
pub(crate) fn set(object: &mut Value, annotations: &BTreeMap<String, String>) {
    if annotations.is_empty() {
        return;
    }
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let entry = metadata.entry("annotations").or_insert_with(|| json!({}));
    if let Some(map) = entry.as_object_mut() {
        for (k, v) in annotations {
            map.insert(k.clone(), json!(v));
        }
    }
}

/// What `apply` keeps of a live `cacerts` it is about to write, so that it never undoes a
/// rotation and never drops trust: the rotation annotations, and a root bundle that holds more
/// than the CA directory's (the mesh root and others, e.g. mid-rotation from a CA directory
/// that does not know it) is kept as it is. `live` maps cluster names to their live `cacerts`;
/// returns one notice per kept bundle.
pub(crate) fn carry_into_plan(
    plan: &mut crate::plan::Plan,
    live: &BTreeMap<String, Value>,
) -> Vec<crate::execute::Notice> {
    let mut notices = Vec::new();
    for step in &mut plan.steps {
        if step.phase != crate::phase::Phase::CaCerts
            || step.object.kind != "Secret"
            || step.object.name != crate::render::cacerts::SECRET_NAME
        {
            continue;
        }
        let Some(secret) = live.get(&step.cluster) else {
            continue;
        };
        let crate::plan::Action::Apply { object, .. } = &mut step.action else {
            continue;
        };
        set(object, &of(secret));
        if let Some(kept) = wider_bundle(object, secret) {
            object["data"]["root-cert.pem"] = json!(kept.encoded);
            notices.push(crate::execute::Notice {
                cluster: step.cluster.clone(),
                message: format!(
                    "cacerts in {} trusts {} root(s) besides the mesh root ({}); apply keeps that bundle as it is rather than drop trust in them",
                    step.cluster,
                    kept.extra.len(),
                    kept.extra
                        .iter()
                        .map(|f| f.chars().take(23).collect::<String>())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint: Some("a root rotation under way? `meshboot verify` shows its phase; `meshboot rotate root` continues it".into()),
            });
        }
    }
    notices
}

struct Kept {
    encoded: String,
    extra: Vec<String>,
}

/// The live root bundle (base64, for `root-cert.pem`) when it holds every root of the desired
/// one and more. Both are read as istiod reads a `cacerts` ([`CacertsSecret`]: `root-cert.pem`,
/// or `ca.crt` in the `kubernetes.io/tls` layout), the one definition preflight and verify use.
fn wider_bundle(desired: &Value, live: &Value) -> Option<Kept> {
    use base64::Engine as _;
    let decode = |v: &Value| -> Option<(String, Vec<String>)> {
        let pem = CacertsSecret::read(v).ok()?.root_cert?;
        let fps = crate::pki::root_fingerprints(&pem).ok()?;
        Some((pem, fps))
    };
    let (_, want) = decode(desired)?;
    let (pem, have) = decode(live)?;
    let extra: Vec<String> = have.iter().filter(|f| !want.contains(f)).cloned().collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
    (want.iter().all(|f| have.contains(f)) && !extra.is_empty()).then_some(Kept { encoded, extra })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn root(dir: &std::path::Path) -> String {
        let ca = crate::pki::CaDir::open(dir);
        let opts = crate::pki::CaOptions {
            key: crate::pki::KeyAlgorithm::EcdsaP256,
            ..crate::pki::CaOptions::default()
        };
        ca.init(&opts, false).unwrap();
        std::fs::read_to_string(ca.root_cert_path()).unwrap()
    }

    #[test]
    fn a_wider_bundle_is_found_in_either_cacerts_layout() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mesh, other) = (root(a.path()), root(b.path()));
        let both = format!("{mesh}{other}");
        let desired = json!({"data": {"root-cert.pem": b64(&mesh)}});
        // istiod's layout and cert-manager's (`ca.crt`, as istiod reads it when tls.crt is there).
        let istiod = json!({"data": {"root-cert.pem": b64(&both)}});
        let tls = json!({"data": {"tls.crt": b64("c"), "tls.key": b64("k"), "ca.crt": b64(&both)}});
        for live in [istiod, tls] {
            let kept = wider_bundle(&desired, &live).expect("the wider bundle is kept");
            assert_eq!(kept.encoded, b64(&both));
            assert_eq!(kept.extra.len(), 1);
        }
        // The same bundle, or one without the mesh root, is not "wider".
        assert!(wider_bundle(&desired, &desired).is_none());
        let foreign = json!({"data": {"root-cert.pem": b64(&other)}});
        assert!(wider_bundle(&desired, &foreign).is_none());
    }
}
