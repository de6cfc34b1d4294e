//! Bearer-token authentication: the admin token, legacy service-account token Secrets and
//! TokenRequest-issued (optionally expiring) tokens.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::store::{Key, Store};

/// Who a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The kubeconfig admin: member of `system:masters`, allowed everything.
    Admin,
    /// A service account, authorised through RBAC.
    ServiceAccount {
        /// Namespace of the service account.
        namespace: String,
        /// Name of the service account.
        name: String,
        /// UID of the service account the token was bound to.
        uid: String,
    },
}

impl Identity {
    /// The user name RBAC and error messages use.
    pub fn username(&self) -> String {
        match self {
            Identity::Admin => "kubernetes-admin".into(),
            Identity::ServiceAccount {
                namespace, name, ..
            } => format!("system:serviceaccount:{namespace}:{name}"),
        }
    }

    /// The groups of the user.
    pub fn groups(&self) -> Vec<String> {
        match self {
            Identity::Admin => vec!["system:masters".into(), "system:authenticated".into()],
            Identity::ServiceAccount { namespace, .. } => vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// Where an issued token came from; decides when it stops working.
#[derive(Debug, Clone)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    expires: Option<SystemTime>,
    /// For legacy tokens: the Secret holding it (deleting the Secret revokes the token).
    secret: Option<String>,
}

/// The tokens a cluster accepts. Its Debug output shows counts, never tokens.
pub struct Tokens {
    admin: String,
    issued: HashMap<String, Issued>,
    issuer: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin", &"<redacted>")
            .field("issued", &self.issued.len())
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl Tokens {
    /// A token table with a fresh random admin token.
    pub fn new(cluster: &str) -> Self {
        Tokens {
            admin: random_token("admin"),
            issued: HashMap::new(),
            issuer: format!("https://kubernetes.default.svc.{cluster}"),
        }
    }

    /// The admin bearer token.
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// Issues a JWT-shaped token for a service account. `expires_in` None = never expires
    /// (legacy Secret token, bound to `secret`).
    pub fn issue(
        &mut self,
        namespace: &str,
        name: &str,
        uid: &str,
        expires_in: Option<Duration>,
        secret: Option<&str>,
        audiences: &[String],
    ) -> (String, Option<SystemTime>) {
        let now = SystemTime::now();
        let expires = expires_in.map(|d| now + d);
        let secs = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        let mut claims = json!({
            "iss": self.issuer,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "iat": secs(now),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        });
        if !audiences.is_empty() {
            claims["aud"] = json!(audiences);
        }
        if let Some(e) = expires {
            claims["exp"] = json!(secs(e));
        }
        if let Some(s) = secret {
            claims["kubernetes.io"]["secret"] = json!({"name": s});
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"emulator"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let sig: [u8; 32] = rand::random();
        let token = format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(sig));
        self.issued.insert(
            token.clone(),
            Issued {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.into(),
                expires,
                secret: secret.map(str::to_string),
            },
        );
        (token, expires)
    }

    /// Resolves a bearer token. Issued tokens stop working when they expire, when their service
    /// account is deleted (or recreated with another UID), or — legacy tokens — when their Secret
    /// is deleted or no longer holds them.
    pub fn authenticate(&self, token: &str, store: &Store) -> Option<Identity> {
        if token == self.admin {
            return Some(Identity::Admin);
        }
        let t = self.issued.get(token)?;
        if t.expires.is_some_and(|e| SystemTime::now() >= e) {
            return None;
        }
        let sa = store.get(&Key::new(
            "",
            "serviceaccounts",
            Some(&t.namespace),
            &t.name,
        ))?;
        if sa["metadata"]["uid"].as_str() != Some(t.uid.as_str()) {
            return None;
        }
        if let Some(secret) = &t.secret {
            let s = store.get(&Key::new("", "secrets", Some(&t.namespace), secret))?;
            let stored = s["data"]["token"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            if stored.as_deref() != Some(token.as_bytes()) {
                return None;
            }
        }
        Some(Identity::ServiceAccount {
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            uid: t.uid.clone(),
        })
    }
}

fn random_token(prefix: &str) -> String {
    let b: [u8; 24] = rand::random();
    format!("{prefix}-{}", URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_and_orphaned_tokens_are_rejected() {
        let mut store = Store::default();
        store.put(
            Key::new("", "serviceaccounts", Some("ns"), "sa"),
            json!({"metadata": {"name": "sa", "uid": "u1"}}),
        );
        let mut tokens = Tokens::new("eu");
        let (live, _) = tokens.issue("ns", "sa", "u1", Some(Duration::from_secs(600)), None, &[]);
        let (expired, _) = tokens.issue("ns", "sa", "u1", Some(Duration::ZERO), None, &[]);
        let (stale_uid, _) = tokens.issue("ns", "sa", "u0", None, None, &[]);
        assert_eq!(
            tokens.authenticate(&live, &store).map(|i| i.username()),
            Some("system:serviceaccount:ns:sa".into())
        );
        assert_eq!(tokens.authenticate(&expired, &store), None);
        assert_eq!(tokens.authenticate(&stale_uid, &store), None);
        assert_eq!(tokens.authenticate("nonsense", &store), None);
        let admin = tokens.admin().to_string();
        assert_eq!(tokens.authenticate(&admin, &store), Some(Identity::Admin));
        let debug = format!("{tokens:?}");
        assert!(
            !debug.contains(&admin) && !debug.contains(&live),
            "tokens leak into Debug: {debug}"
        );
    }
}
