//! The two verbs bound tokens need beyond apply: a TokenRequest (`POST
//! serviceaccounts/<sa>/token`, `authentication.k8s.io/v1`), and a delete guarded by the uid
//! the caller judged (revoking a bound token is deleting its object; pruning deletes only what
//! was looked at).

use kube::api::{DeleteParams, PostParams, Preconditions};
use serde_json::{Value, json};

use super::{ClusterClient, ClusterError, ObjectRef};

/// What a TokenRequest asks for (`spec` of `authentication.k8s.io/v1` TokenRequest).
///
/// ```
/// use mesh_core::cluster::{BoundObjectRef, TokenRequest};
/// let r = TokenRequest {
///     expiration_seconds: 3600,
///     bound_object: Some(BoundObjectRef::secret("meshboot-reader-for-us", "6f1c…")),
///     audiences: Vec::new(),
/// };
/// assert_eq!(r.body()["spec"]["boundObjectRef"]["kind"], "Secret");
/// assert!(r.body()["spec"].get("audiences").is_none(), "no audiences: the API server's own");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `spec.expirationSeconds`: the lifetime asked for (the server may grant less).
    pub expiration_seconds: i64,
    /// `spec.boundObjectRef`: the object whose deletion revokes the token.
    pub bound_object: Option<BoundObjectRef>,
    /// `spec.audiences`; empty means the API server's own audience, which is what a client
    /// of that API server (istiod reading a remote cluster) needs.
    pub audiences: Vec<String>,
}

/// `spec.boundObjectRef` of a TokenRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObjectRef {
    /// `v1` for Secrets and Pods.
    pub api_version: String,
    /// `Secret`, `Pod` or `Node`.
    pub kind: String,
    /// Its name, in the ServiceAccount's namespace.
    pub name: String,
    /// Its uid: the token is refused as soon as no object of that name has this uid.
    pub uid: String,
}

impl BoundObjectRef {
    /// A Secret in the ServiceAccount's namespace.
    pub fn secret(name: &str, uid: &str) -> BoundObjectRef {
        BoundObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }
}

impl TokenRequest {
    /// The request body.
    pub fn body(&self) -> Value {
        let mut spec = json!({"expirationSeconds": self.expiration_seconds});
        if !self.audiences.is_empty() {
            spec["audiences"] = json!(self.audiences);
        }
        if let Some(b) = &self.bound_object {
            spec["boundObjectRef"] = json!({
                "apiVersion": b.api_version, "kind": b.kind, "name": b.name, "uid": b.uid,
            });
        }
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    }
}

/// A token the API server issued. `Debug` never shows the token.
///
/// ```
/// let t = mesh_core::cluster::IssuedToken { token: "eyJ.s3cr3t.sig".into(), expires_unix: 1_900_000_000, expiration_seconds: 3600 };
/// assert!(!format!("{t:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// `status.expirationTimestamp`, as Unix seconds.
    pub expires_unix: i64,
    /// `spec.expirationSeconds` as granted (below the request when the server caps
    /// lifetimes with `--service-account-max-token-expiration`).
    pub expiration_seconds: i64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_unix", &self.expires_unix)
            .field("expiration_seconds", &self.expiration_seconds)
            .finish()
    }
}

impl ClusterClient {
    /// Asks the API server for a token of ServiceAccount `namespace/service_account`.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use mesh_core::cluster::TokenRequest;
    /// let t = c.request_token("istio-system", "istio-reader-service-account",
    ///     &TokenRequest { expiration_seconds: 3600, bound_object: None, audiences: vec![] }).await?;
    /// println!("expires at {}", t.expires_unix);
    /// # Ok(()) }
    /// ```
    pub async fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<IssuedToken, ClusterError> {
        let what = format!("request a token for ServiceAccount {namespace}/{service_account}");
        let collection = format!("/api/v1/namespaces/{namespace}/serviceaccounts");
        let body = serde_json::to_vec(&request.body())
            .map_err(|e| self.invalid_object("TokenRequest", &e.to_string()))?;
        let raw = self
            .send(&what, || {
                kube::core::Request::new(collection.as_str()).create_subresource(
                    "token",
                    service_account,
                    &PostParams::default(),
                    body.clone(),
                )
            })
            .await?;
        self.check(&what, &raw)?;
        let answer = self.json(&what, &raw)?;
        issued(&answer).ok_or_else(|| {
            self.invalid_response(
                &what,
                "no status.token, status.expirationTimestamp or spec.expirationSeconds",
            )
        })
    }

    /// Deletes an object, only if its uid is still `uid` when one is given (DeleteOptions
    /// preconditions: a 409 [`ClusterError::Conflict`] when it was replaced meanwhile).
    /// `Ok(false)` when it did not exist.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use mesh_core::cluster::ObjectRef;
    /// let gone = c.delete(&ObjectRef::namespaced("v1", "Secret", "istio-system", "meshboot-reader-for-us"), None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(
        &self,
        object: &ObjectRef,
        uid: Option<&str>,
    ) -> Result<bool, ClusterError> {
        let what = format!("delete {object}");
        let collection = self.collection_of(object, &what).await?;
        let params = DeleteParams {
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let raw = self
            .send(&what, || {
                kube::core::Request::new(collection.as_str()).delete(&object.name, &params)
            })
            .await?;
        if raw.code == 404 {
            return Ok(false);
        }
        self.check(&what, &raw)?;
        Ok(true)
    }
}

/// The token, expiry and granted lifetime of a TokenRequest answer.
fn issued(answer: &Value) -> Option<IssuedToken> {
    let token = answer.pointer("/status/token")?.as_str()?.to_string();
    let stamp = answer.pointer("/status/expirationTimestamp")?.as_str()?;
    let expires =
        time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
            .ok()?
            .unix_timestamp();
    let expiration_seconds = answer.pointer("/spec/expirationSeconds")?.as_i64()?;
    Some(IssuedToken {
        token,
        expires_unix: expires,
        expiration_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_token_expiry_and_granted_lifetime() {
        let answer = json!({"spec": {"expirationSeconds": 600}, "status": {"token": "t", "expirationTimestamp": "2026-09-01T10:00:00Z"}});
        let t = issued(&answer).unwrap();
        assert_eq!((t.expires_unix, t.expiration_seconds), (1_788_256_800, 600));
        assert!(issued(&json!({"status": {"token": "t"}})).is_none());
    }
}
