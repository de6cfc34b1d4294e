//! One pair `(source, destination)` with a bound token: the remote secret of `source` in
//! `destination` carries a TokenRequest token of the source's reader, bound to the pair's own
//! object in the source. Minted only when the live one cannot stay ([`judge`](super::judge)),
//! written only when the remote secret changes. `apply`, `rotate tokens` and `revoke` all go
//! through [`converge`], so they agree on when a token is replaced.

use std::time::Duration;

use serde_json::Value;

use super::credential::Credential;
use super::judge::{Verdict, Wanted, Why, judge};
use super::{ROOT_CA_CONFIGMAP, bound_object_name};
use crate::cluster::{
    ApplyOptions, ApplyOutcome, BoundObjectRef, ClusterOps, ObjectRef, TokenRequest, is_converged,
    normalize_secret,
};
use crate::remote_secret::{RemoteSecret, SecretType, secret_name};

/// Everything one pair's remote secret is made of, except the token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a> {
    pub source: &'a str,
    pub destination: &'a str,
    /// The Istio namespace: the reader's, the bound object's and the remote secret's.
    pub namespace: &'a str,
    pub service_account: &'a str,
    /// The source's API server as the destination dials it.
    pub server: &'a str,
    /// The source's cluster CA.
    pub ca: &'a [u8],
    /// `expirationSeconds` of a new token.
    pub expiration_seconds: i64,
    /// `refreshBefore`: a granted lifetime at or below it would be replaced on every run.
    pub refresh_before: Duration,
    /// Replace a token that expires within this.
    pub refresh_within: Duration,
}

/// What [`converge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PairRun {
    pub outcome: ApplyOutcome,
    /// Why a new token was (or, in a dry run, would be) minted; `None` when the live one stayed.
    pub replaced: Option<Why>,
    /// `exp` of the token the remote secret now carries (`None` in a dry run that would mint).
    pub expires: Option<i64>,
    /// Set when the server granted a lifetime at or below `refreshBefore` (it caps
    /// TokenRequests with `--service-account-max-token-expiration`): seconds granted.
    pub capped: Option<i64>,
}

/// The cluster CA of `client` as pods see it: `ca.crt` of ConfigMap `kube-root-ca.crt` in
/// `namespace` (kube-controller-manager publishes it in every namespace; it is the bundle a
/// token Secret's `ca.crt` holds).
pub(crate) async fn cluster_ca<C: ClusterOps>(
    client: &C,
    namespace: &str,
) -> Result<Vec<u8>, String> {
    let cm = client
        .get(&ObjectRef::namespaced(
            "v1",
            "ConfigMap",
            namespace,
            ROOT_CA_CONFIGMAP,
        ))
        .await
        .map_err(|e| e.to_string())?;
    cm.as_ref()
        .and_then(|cm| cm.pointer("/data/ca.crt"))
        .and_then(Value::as_str)
        .filter(|pem| !pem.is_empty())
        .map(|pem| pem.as_bytes().to_vec())
        .ok_or_else(|| {
            format!(
                "cluster {}: ConfigMap {namespace}/{ROOT_CA_CONFIGMAP} has no ca.crt: it is the cluster \
                 CA the remote secrets carry (kube-controller-manager publishes it in every namespace)",
                client.name()
            )
        })
}

/// Makes `destination` hold the pair's remote secret. `live` is the remote secret already read
/// (`Some(None)`: known absent; `None`: read it here).
///
/// `before_swap` is called once, right before a changed remote secret replaces a live one
/// (istiod in the destination then swaps its client for the source: [`super::swap_risk`]).
pub(crate) async fn converge<C: ClusterOps>(
    source: &C,
    destination: &C,
    pair: &Pair<'_>,
    live: Option<Option<Value>>,
    options: &ApplyOptions,
    now: i64,
    before_swap: &(dyn Fn() + Sync),
) -> Result<PairRun, String> {
    let bound_name = bound_object_name(pair.destination);
    let bound = source
        .get(&ObjectRef::namespaced(
            "v1",
            "Secret",
            pair.namespace,
            &bound_name,
        ))
        .await
        .map_err(|e| e.to_string())?;
    let bound_uid = bound
        .as_ref()
        .and_then(|b| b.pointer("/metadata/uid"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if bound_uid.is_none() && !options.dry_run {
        return Err(format!(
            "cluster {}: Secret {}/{bound_name} is missing: it is what the token of {} in {} is bound to",
            pair.source,
            pair.namespace,
            secret_name(pair.source),
            pair.destination
        ));
    }
    let remote_ref =
        ObjectRef::namespaced("v1", "Secret", pair.namespace, &secret_name(pair.source));
    let live = match live {
        Some(known) => known,
        None => destination
            .get(&remote_ref)
            .await
            .map_err(|e| e.to_string())?,
    };
    let credential = live
        .as_ref()
        .and_then(|s| Credential::of_secret(s, pair.source));
    let want = Wanted {
        server: pair.server,
        ca: pair.ca,
        namespace: pair.namespace,
        service_account: pair.service_account,
        bound_name: &bound_name,
        bound_uid: bound_uid.as_deref(),
        refresh_within: pair.refresh_within,
    };
    let (token, replaced, expires, capped) = match judge(credential.as_ref(), &want, now) {
        Verdict::Keep { expires } => (
            credential.map(|c| c.token).unwrap_or_default(),
            None,
            Some(expires),
            None,
        ),
        Verdict::Replace(why) if options.dry_run => {
            let outcome = if live.is_some() {
                before_swap();
                ApplyOutcome::Updated
            } else {
                ApplyOutcome::Created
            };
            return Ok(PairRun {
                outcome,
                replaced: Some(why),
                expires: None,
                capped: None,
            });
        }
        Verdict::Replace(why) => {
            let request = TokenRequest {
                expiration_seconds: pair.expiration_seconds,
                bound_object: Some(BoundObjectRef::secret(
                    &bound_name,
                    bound_uid.as_deref().unwrap_or_default(),
                )),
                audiences: Vec::new(),
            };
            let issued = source
                .request_token(pair.namespace, pair.service_account, &request)
                .await
                .map_err(|e| e.to_string())?;
            let refresh = i64::try_from(pair.refresh_before.as_secs()).unwrap_or(i64::MAX);
            let capped =
                (issued.expiration_seconds <= refresh).then_some(issued.expiration_seconds);
            (issued.token, Some(why), Some(issued.expires_unix), capped)
        }
    };
    let desired = RemoteSecret {
        cluster: pair.source.to_string(),
        namespace: pair.namespace.to_string(),
        secret_type: SecretType::Remote,
        server: pair.server.to_string(),
        tls_server_name: None,
        ca_data: pair.ca.to_vec(),
        token,
    }
    .to_object()
    .map_err(|e| e.to_string())?;
    let converged = live
        .as_ref()
        .is_some_and(|live| is_converged(&normalize_secret(desired.clone()), live));
    let outcome = if converged {
        ApplyOutcome::Unchanged
    } else {
        if live.is_some() {
            before_swap();
        }
        destination
            .apply(&desired, options)
            .await
            .map_err(|e| e.to_string())?
    };
    Ok(PairRun {
        outcome,
        replaced,
        expires,
        capped,
    })
}
