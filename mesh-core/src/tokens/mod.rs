//! Remote-secret credentials with a lifetime (`readerToken` in the mesh file).
//!
//! By default a remote secret carries the never-expiring token of a
//! `kubernetes.io/service-account-token` Secret, as istioctl makes it: every destination holds
//! the same token, which can only be revoked for all of them at once (istio/istio#56358), and a
//! leaked one reads every Secret of its cluster for ever (Istio's reader must read Secrets).
//!
//! With `readerToken.ttl`, each pair `(source, destination)` gets its own bound token from the
//! TokenRequest API (`serviceaccounts/<reader>/token`, `expirationSeconds` = the ttl, the API
//! server's own audience), bound (`boundObjectRef`) to a small Secret of its own in the source,
//! [`bound_object_name`]`(destination)`. Deleting that Secret revokes that one pair: the API
//! server refuses the token as soon as its token cache (about 10 s) forgets it.
//!
//! A token is replaced only when it has to be ([`judge`]): it expires within `refreshBefore`
//! (or `rotate tokens --expiring-within`), it is bound to another object or an earlier object of
//! the same name, belongs to another ServiceAccount, or the server or CA changed. Tokens are
//! read by decoding the JWT payload ([`Claims`]); they are never printed.
//!
//! Refreshing a remote secret makes istiod swap its client for that cluster; see [`swap_risk`]
//! for the Istio releases that drop endpoints on each swap.
//!
//! ```
//! use mesh_core::tokens::{bound_object, bound_object_name};
//! assert_eq!(bound_object_name("us"), "meshboot-reader-for-us");
//! let object = bound_object("istio-system", "meshboot-reader", "us");
//! assert_eq!(object["metadata"]["labels"]["tokens.meshboot.io/destination"], "us");
//! assert!(object.get("data").is_none(), "it holds nothing: only its existence matters");
//! ```

mod credential;
mod istiod;
mod judge;
pub(crate) mod pair;
pub(crate) mod prune;
mod refresh;
pub(crate) mod retire;
mod revoke;

pub use credential::{Claims, Credential};
pub(crate) use istiod::discovery_image;
pub use istiod::{SWAP_ISSUE, SwapRisk, istiod_image, swap_risk, swap_warning};
pub use judge::{Verdict, Wanted, Why, judge, rfc3339};
pub use prune::prune_departed;
pub use refresh::{
    LivePair, PairAction, PairToken, RefreshRequest, TokensReport, plan_refresh, rotate_tokens,
    rotate_tokens_with,
};
pub use revoke::{RevokeReport, RevokeRequest, RevokedKind, revoke, revoke_with};

use serde_json::{Value, json};

/// The prefix of each pair's bound object in the source cluster.
pub const BOUND_OBJECT_PREFIX: &str = "meshboot-reader-for-";
/// The label on a bound object naming the destination whose remote secret it backs.
pub const DESTINATION_LABEL: &str = "tokens.meshboot.io/destination";
/// The annotation on a bound object naming the ServiceAccount its tokens belong to.
pub const SERVICE_ACCOUNT_ANNOTATION: &str = "tokens.meshboot.io/service-account";
/// The ConfigMap holding the cluster CA in every namespace (`ca.crt`).
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// `meshboot-reader-for-<destination>`: the Secret in the source cluster that the tokens of
/// the source's remote secret in `destination` are bound to.
pub fn bound_object_name(destination: &str) -> String {
    format!("{BOUND_OBJECT_PREFIX}{destination}")
}

/// The bound object of pair `(this cluster, destination)`: an empty Secret in the reader's
/// namespace, labelled with the destination and annotated with the reader ServiceAccount.
pub fn bound_object(namespace: &str, service_account: &str, destination: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": bound_object_name(destination),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "meshboot",
                DESTINATION_LABEL: destination,
            },
            "annotations": {SERVICE_ACCOUNT_ANNOTATION: service_account},
        },
    })
}

/// The destination and ServiceAccount of a rendered or live bound object; `None` for any other
/// object.
///
/// ```
/// let object = mesh_core::tokens::bound_object("istio-system", "meshboot-reader", "us");
/// assert_eq!(mesh_core::tokens::bound_object_of(&object), Some(("us", "meshboot-reader")));
/// ```
pub fn bound_object_of(object: &Value) -> Option<(&str, &str)> {
    if object.get("kind").and_then(Value::as_str) != Some("Secret") {
        return None;
    }
    let destination = object
        .pointer("/metadata/labels")?
        .get(DESTINATION_LABEL)?
        .as_str()?;
    let service_account = object
        .pointer("/metadata/annotations")?
        .get(SERVICE_ACCOUNT_ANNOTATION)?
        .as_str()?;
    Some((destination, service_account))
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
