//! Service-account tokens as a real API server issues and checks them.
//!
//! - Legacy token Secrets (`kubernetes.io/service-account-token`) hold long-lived JWTs with the
//!   legacy claims (`iss: kubernetes/serviceaccount`, `kubernetes.io/serviceaccount/...`) and no
//!   `exp`; deleting the Secret (or the ServiceAccount) revokes them.
//! - TokenRequest tokens carry the claims of `pkg/serviceaccount/claims.go`: `iss`, `sub`, `aud`,
//!   `exp`, `iat`, `nbf`, `jti` and `kubernetes.io{namespace, serviceaccount{name,uid},
//!   secret|pod|node{name,uid}}`. They stop working when they expire, when their ServiceAccount
//!   or their bound object is deleted or recreated with another UID, and they only authenticate
//!   to the API server when their audiences include the server's own.
//! - Validation failures carry the validator's own words ("service account token has expired",
//!   "service account token has been invalidated", "... UID (..) does not match ..."), which
//!   TokenReview shows in `status.error`; HTTP requests get the plain 401 `Unauthorized`.
//! - A successful authentication may be cached for [`crate::EmulatorOptions::token_cache_ttl`]
//!   (the real server caches about 10 s, so a revoked token keeps working that long); 0 = off.
//! - The token clock can be moved forward ([`crate::EmulatedCluster::advance_clock`]) so expiry
//!   is tested without waiting.
//!
//! Tokens are JWT-shaped (base64url header, claims and a random "signature"); the emulator
//! recognises the exact strings it issued, so a forged or edited token is unknown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::auth::Identity;
use crate::store::{Key, Store, new_uid};

/// The object a bound token is tied to (TokenRequest `spec.boundObjectRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    /// `Secret`, `Pod` or `Node`.
    pub kind: BoundKind,
    /// Its name (in the ServiceAccount's namespace, except Nodes).
    pub name: String,
    /// Its UID when the token was issued.
    pub uid: String,
    /// For a Pod on a Node: that Node's name and UID, which the token also names (a `node` claim
    /// beside `pod`, as servers with ServiceAccountTokenPodNodeInfo — GA in 1.32 — issue them).
    pub node: Option<(String, String)>,
}

/// The kinds a token can be bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundKind {
    /// A Secret in the ServiceAccount's namespace.
    Secret,
    /// A Pod in the ServiceAccount's namespace running as that ServiceAccount.
    Pod,
    /// A Node.
    Node,
}

impl BoundKind {
    fn claim(self) -> &'static str {
        match self {
            BoundKind::Secret => "secret",
            BoundKind::Pod => "pod",
            BoundKind::Node => "node",
        }
    }

    fn key(self, namespace: &str, name: &str) -> Key {
        match self {
            BoundKind::Secret => Key::new("", "secrets", Some(namespace), name),
            BoundKind::Pod => Key::new("", "pods", Some(namespace), name),
            BoundKind::Node => Key::new("", "nodes", None, name),
        }
    }
}

/// What an issued token was made for; decides when it stops working.
#[derive(Debug, Clone)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    expires: Option<SystemTime>,
    audiences: Vec<String>,
    /// Legacy tokens: the Secret holding them.
    secret: Option<String>,
    bound: Option<BoundObject>,
}

/// The tokens a cluster accepts. Its Debug output shows counts, never tokens.
pub struct Tokens {
    admin: String,
    issued: HashMap<String, Issued>,
    issuer: String,
    skew: Duration,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (Identity, SystemTime)>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin", &"<redacted>")
            .field("issued", &self.issued.len())
            .field("issuer", &self.issuer)
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_token(prefix: &str) -> String {
    let b: [u8; 24] = rand::random();
    format!("{prefix}-{}", URL_SAFE_NO_PAD.encode(b))
}

fn jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"meshboot-emulator"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig: [u8; 64] = rand::random();
    format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig))
}

impl Tokens {
    /// A token table with a fresh random admin token; bound tokens are issued by
    /// `https://kubernetes.default.svc.<cluster>` (also the API server's audience).
    pub fn new(cluster: &str) -> Self {
        Tokens {
            admin: random_token("admin"),
            issued: HashMap::new(),
            issuer: format!("https://kubernetes.default.svc.{cluster}"),
            skew: Duration::ZERO,
            cache_ttl: Duration::ZERO,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Caches successful authentications for `ttl` (0 = every request is checked afresh).
    pub fn set_cache_ttl(&mut self, ttl: Duration) {
        self.cache_ttl = ttl;
    }

    /// The admin bearer token.
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// The API server's audiences (what a token must carry to authenticate to it).
    pub fn api_audiences(&self) -> Vec<String> {
        vec![self.issuer.clone()]
    }

    /// The token clock: real time plus what tests advanced it by.
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + self.skew
    }

    /// Moves the token clock forward (expiry without waiting). Cached results are dropped.
    pub fn advance(&mut self, by: Duration) {
        self.skew += by;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A legacy, never-expiring token for the token Secret `secret`.
    pub fn issue_legacy(&mut self, namespace: &str, name: &str, uid: &str, secret: &str) -> String {
        let claims = json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        });
        self.record(
            jwt(&claims),
            Issued {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.into(),
                expires: None,
                audiences: Vec::new(),
                secret: Some(secret.into()),
                bound: None,
            },
        )
    }

    fn record(&mut self, token: String, issued: Issued) -> String {
        self.issued.insert(token.clone(), issued);
        token
    }

    /// A TokenRequest token valid for `ttl` from the token clock's now, for `audiences` (the API
    /// server's when empty), optionally bound to an object. Returns the token and its expiry.
    pub fn issue_bound(
        &mut self,
        namespace: &str,
        name: &str,
        uid: &str,
        ttl: Duration,
        audiences: &[String],
        bound: Option<BoundObject>,
    ) -> (String, SystemTime) {
        let now = self.now();
        let expires = now + ttl;
        let audiences = if audiences.is_empty() {
            self.api_audiences()
        } else {
            audiences.to_vec()
        };
        let mut k8s = json!({"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}});
        if let Some(b) = &bound {
            k8s[b.kind.claim()] = json!({"name": b.name, "uid": b.uid});
            if let Some((node, node_uid)) = &b.node {
                k8s["node"] = json!({"name": node, "uid": node_uid});
            }
        }
        let claims = json!({
            "aud": audiences,
            "exp": unix(expires),
            "iat": unix(now),
            "iss": self.issuer,
            "jti": new_uid(),
            "kubernetes.io": k8s,
            "nbf": unix(now),
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        });
        let issued = Issued {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            expires: Some(expires),
            audiences,
            secret: None,
            bound,
        };
        (self.record(jwt(&claims), issued), expires)
    }

    /// Checks a token as the service-account validator does, for a request to the API server
    /// itself. The error is the validator's message (TokenReview's `status.error`).
    pub fn validate(&self, token: &str, store: &Store) -> Result<Identity, String> {
        self.validate_for(token, store, &self.api_audiences())
    }

    /// Checks a token for `audiences` (TokenReview `spec.audiences`).
    pub fn validate_for(
        &self,
        token: &str,
        store: &Store,
        audiences: &[String],
    ) -> Result<Identity, String> {
        if token == self.admin {
            return Ok(Identity::Admin);
        }
        let Some(t) = self.issued.get(token) else {
            return Err("invalid bearer token".into());
        };
        if t.expires.is_some_and(|e| self.now() >= e) {
            return Err("service account token has expired".into());
        }
        if t.secret.is_none() && !t.audiences.iter().any(|a| audiences.contains(a)) {
            return Err(format!(
                "token audiences {:?} is invalid for the target audiences {:?}",
                t.audiences, audiences
            ));
        }
        let sa = store
            .get(&Key::new(
                "",
                "serviceaccounts",
                Some(&t.namespace),
                &t.name,
            ))
            .ok_or_else(|| format!("serviceaccounts \"{}\" not found", t.name))?;
        let sa_uid = sa["metadata"]["uid"].as_str().unwrap_or_default();
        if sa_uid != t.uid {
            return Err(format!(
                "service account UID ({sa_uid}) does not match claim ({})",
                t.uid
            ));
        }
        if let Some(secret) = &t.secret {
            let s = store
                .get(&Key::new("", "secrets", Some(&t.namespace), secret))
                .ok_or("service account token has been invalidated")?;
            let stored = s["data"]["token"]
                .as_str()
                .and_then(|b| STANDARD.decode(b).ok());
            if stored.as_deref() != Some(token.as_bytes()) {
                return Err("service account token has been invalidated".into());
            }
        }
        if let Some(b) = &t.bound {
            let obj = store
                .get(&b.kind.key(&t.namespace, &b.name))
                .ok_or("service account token has been invalidated")?;
            let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
            if uid != b.uid {
                return Err(format!(
                    "{} UID ({uid}) does not match service account {} ref claim ({})",
                    b.kind.claim(),
                    b.kind.claim(),
                    b.uid
                ));
            }
        }
        Ok(Identity::ServiceAccount {
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            uid: t.uid.clone(),
        })
    }

    /// Resolves a bearer token for a request (with the optional success cache).
    pub fn authenticate(&self, token: &str, store: &Store) -> Option<Identity> {
        let now = SystemTime::now();
        if !self.cache_ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((who, at)) = cache.get(token)
                && now.duration_since(*at).unwrap_or_default() < self.cache_ttl
            {
                return Some(who.clone());
            }
        }
        let who = self.validate(token, store).ok()?;
        if !self.cache_ttl.is_zero() {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(token.to_string(), (who.clone(), now));
        }
        Some(who)
    }
}

/// The claims of a JWT-shaped token (tests read `exp` the way a client would).
pub fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(objs: &[(Key, Value)]) -> Store {
        let mut store = Store::default();
        for (k, v) in objs {
            store.put(k.clone(), v.clone());
        }
        store
    }

    fn sa() -> (Key, Value) {
        (
            Key::new("", "serviceaccounts", Some("ns"), "sa"),
            json!({"metadata": {"name": "sa", "uid": "u1"}}),
        )
    }

    #[test]
    fn expired_and_orphaned_tokens_are_rejected_with_the_validators_words() {
        let store = store_with(&[sa()]);
        let mut tokens = Tokens::new("eu");
        let (live, _) = tokens.issue_bound("ns", "sa", "u1", Duration::from_secs(600), &[], None);
        let (stale_uid, _) =
            tokens.issue_bound("ns", "sa", "u0", Duration::from_secs(600), &[], None);
        assert_eq!(
            tokens.authenticate(&live, &store).map(|i| i.username()),
            Some("system:serviceaccount:ns:sa".into())
        );
        assert_eq!(
            tokens.validate(&stale_uid, &store).err().as_deref(),
            Some("service account UID (u1) does not match claim (u0)")
        );
        assert_eq!(tokens.authenticate("nonsense", &store), None);
        tokens.advance(Duration::from_secs(601));
        assert_eq!(
            tokens.validate(&live, &store).err().as_deref(),
            Some("service account token has expired")
        );
        let admin = tokens.admin().to_string();
        assert_eq!(tokens.authenticate(&admin, &store), Some(Identity::Admin));
        let debug = format!("{tokens:?}");
        assert!(
            !debug.contains(&admin) && !debug.contains(&live),
            "tokens leak into Debug: {debug}"
        );
    }

    #[test]
    fn bound_tokens_die_with_their_object_and_its_uid() {
        let secret = (
            Key::new("", "secrets", Some("ns"), "pair"),
            json!({"metadata": {"name": "pair", "uid": "s1"}}),
        );
        let mut store = store_with(&[sa(), secret.clone()]);
        let mut tokens = Tokens::new("eu");
        let bound = BoundObject {
            kind: BoundKind::Secret,
            name: "pair".into(),
            uid: "s1".into(),
            node: None,
        };
        let (t, _) = tokens.issue_bound(
            "ns",
            "sa",
            "u1",
            Duration::from_secs(3600),
            &[],
            Some(bound),
        );
        let c = claims(&t).unwrap_or_default();
        assert_eq!(
            c["kubernetes.io"]["secret"],
            json!({"name": "pair", "uid": "s1"})
        );
        assert_eq!(c["aud"], json!(["https://kubernetes.default.svc.eu"]));
        assert!(c["exp"].as_u64() > c["iat"].as_u64());
        assert!(tokens.validate(&t, &store).is_ok());
        store.put(
            secret.0.clone(),
            json!({"metadata": {"name": "pair", "uid": "s2"}}),
        );
        assert_eq!(
            tokens.validate(&t, &store).err().as_deref(),
            Some("secret UID (s2) does not match service account secret ref claim (s1)")
        );
        store.remove(&secret.0);
        assert_eq!(
            tokens.validate(&t, &store).err().as_deref(),
            Some("service account token has been invalidated")
        );
    }

    #[test]
    fn a_token_for_another_audience_does_not_authenticate_to_the_api_server() {
        let store = store_with(&[sa()]);
        let mut tokens = Tokens::new("eu");
        let (t, _) = tokens.issue_bound(
            "ns",
            "sa",
            "u1",
            Duration::from_secs(600),
            &["vault".to_string()],
            None,
        );
        assert_eq!(tokens.authenticate(&t, &store), None);
        assert!(tokens.validate_for(&t, &store, &["vault".into()]).is_ok());
    }

    #[test]
    fn the_success_cache_keeps_a_revoked_token_working_for_its_ttl() {
        let mut store = store_with(&[sa()]);
        let mut tokens = Tokens::new("eu");
        tokens.set_cache_ttl(Duration::from_secs(10));
        let (t, _) = tokens.issue_bound("ns", "sa", "u1", Duration::from_secs(600), &[], None);
        assert!(tokens.authenticate(&t, &store).is_some());
        store.remove(&sa().0);
        assert!(
            tokens.authenticate(&t, &store).is_some(),
            "cached for 10 s as on a real server"
        );
        assert!(
            tokens.validate(&t, &store).is_err(),
            "TokenReview-style check is fresh"
        );
    }

    #[test]
    fn legacy_tokens_have_the_legacy_claims_and_no_expiry() {
        let mut tokens = Tokens::new("eu");
        let t = tokens.issue_legacy("ns", "sa", "u1", "sa-token");
        let c = claims(&t).unwrap_or_default();
        assert_eq!(c["iss"], "kubernetes/serviceaccount");
        assert_eq!(c["kubernetes.io/serviceaccount/secret.name"], "sa-token");
        assert!(c.get("exp").is_none());
    }
}
