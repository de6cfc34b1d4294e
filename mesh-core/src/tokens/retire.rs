//! Switching a source from the long-lived token to bound tokens: once every remote secret of the
//! source carries a bound token, the token Secret meshboot made for it is deleted, which revokes
//! the long-lived token wherever a copy of it is left. Only meshboot's: a token Secret is
//! removed only when meshboot's field manager applied it (istioctl's, or one made by hand, is
//! left alone).

use serde_json::Value;

use crate::cluster::{ClusterOps, ObjectRef, meshboot_entry};
use crate::render::reader::{MESHBOOT_TOKEN_SECRET, TOKEN_SECRET};

/// The service-account token Secret type.
const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// True when `secret` is a token Secret meshboot applied.
pub(crate) fn is_meshboot_token_secret(secret: &Value) -> bool {
    secret.get("type").and_then(Value::as_str) == Some(TOKEN_TYPE)
        && meshboot_entry(secret).is_some()
}

/// Deletes (dry run: finds) the long-lived reader token Secrets meshboot made in `namespace`
/// of `client`. Returns what was (or would be) removed, and the errors met.
pub(crate) async fn legacy_token_secrets<C: ClusterOps>(
    client: &C,
    namespace: &str,
    dry_run: bool,
) -> (Vec<ObjectRef>, Vec<String>) {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for name in [TOKEN_SECRET, MESHBOOT_TOKEN_SECRET] {
        let object = ObjectRef::namespaced("v1", "Secret", namespace, name);
        let secret = match client.get(&object).await {
            Ok(Some(secret)) if is_meshboot_token_secret(&secret) => secret,
            Ok(_) => continue,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        if !dry_run {
            let uid = secret.pointer("/metadata/uid").and_then(Value::as_str);
            if let Err(e) = client.delete(&object, uid).await {
                errors.push(e.to_string());
                continue;
            }
        }
        removed.push(object);
    }
    (removed, errors)
}
