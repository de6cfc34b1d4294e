//! What a remote secret holds, read back without keeping more than needed: the server, CA and
//! token of its kubeconfig, and the claims of that token (a JWT payload is base64url JSON; it
//! is decoded, never verified: the source cluster's API server does that).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::Value;

/// The credential inside one remote secret's kubeconfig (its current context). `Debug` never
/// shows the token.
///
/// ```
/// use mesh_core::tokens::Credential;
/// let kc = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Y2E=\n    server: https://10.0.0.1:6443\n  name: eu\ncontexts:\n- context: {cluster: eu, user: eu}\n  name: eu\ncurrent-context: eu\nkind: Config\nusers:\n- name: eu\n  user:\n    token: abc\n";
/// let c = Credential::from_kubeconfig(kc).unwrap();
/// assert_eq!((c.server.as_str(), c.ca_data.as_slice()), ("https://10.0.0.1:6443", &b"ca"[..]));
/// assert!(!format!("{c:?}").contains("abc"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// `server` of the current context's cluster.
    pub server: String,
    /// `certificate-authority-data`, decoded (empty when absent).
    pub ca_data: Vec<u8>,
    /// The bearer token (empty when the user has none).
    pub token: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("server", &self.server)
            .field("ca_len", &self.ca_data.len())
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    /// `cluster:`, `context:` or `user:`, whichever list this entry is in.
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    entry: Option<T>,
}

#[derive(Deserialize)]
struct ClusterEntry {
    server: Option<String>,
    #[serde(rename = "certificate-authority-data")]
    ca: Option<String>,
}

#[derive(Deserialize)]
struct ContextEntry {
    cluster: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct UserEntry {
    token: Option<String>,
}

impl Credential {
    /// Reads the current context's server, CA and token (the first entries when there is no
    /// current context); `None` for text that is not a kubeconfig with a server.
    pub fn from_kubeconfig(yaml: &str) -> Option<Credential> {
        let kc: Kubeconfig = serde_saphyr::from_str(yaml).ok()?;
        let context = kc
            .current_context
            .as_deref()
            .and_then(|cur| kc.contexts.iter().find(|c| c.name == cur))
            .and_then(|c| c.entry.as_ref());
        let cluster = match context.and_then(|c| c.cluster.as_deref()) {
            Some(name) => kc.clusters.iter().find(|c| c.name == name),
            None => kc.clusters.first(),
        }?
        .entry
        .as_ref()?;
        let user = match context.and_then(|c| c.user.as_deref()) {
            Some(name) => kc.users.iter().find(|u| u.name == name),
            None => kc.users.first(),
        }
        .and_then(|u| u.entry.as_ref());
        Some(Credential {
            server: cluster.server.clone()?,
            ca_data: cluster
                .ca
                .as_deref()
                .and_then(|b| STANDARD.decode(b).ok())
                .unwrap_or_default(),
            token: user.and_then(|u| u.token.clone()).unwrap_or_default(),
        })
    }

    /// The credential of remote secret `secret` for cluster `key` (its `data.<key>`).
    pub fn of_secret(secret: &Value, key: &str) -> Option<Credential> {
        let encoded = secret.get("data")?.get(key)?.as_str()?;
        let text = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
        Credential::from_kubeconfig(&text)
    }

    /// The claims of its token, when the token is a JWT.
    pub fn claims(&self) -> Option<Claims> {
        Claims::of(&self.token)
    }
}

/// What a service-account token says about itself: enough to tell a bound token (TokenRequest,
/// `pkg/serviceaccount/claims.go`) from a legacy one (token Secret, no `exp`), when it expires,
/// whose it is and what it is bound to. Never holds the token.
///
/// ```
/// use mesh_core::tokens::Claims;
/// let part = |s: &str| { use base64::Engine as _; base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s) };
/// let payload = r#"{"exp":1900000000,"kubernetes.io":{"namespace":"istio-system","serviceaccount":{"name":"meshboot-reader","uid":"u1"},"secret":{"name":"meshboot-reader-for-us","uid":"s1"}}}"#;
/// let c = Claims::of(&format!("{}.{}.sig", part("{}"), part(payload))).unwrap();
/// assert_eq!(c.expires, Some(1_900_000_000));
/// assert_eq!(c.service_account.as_deref(), Some("meshboot-reader"));
/// assert_eq!(c.bound_secret.as_ref().map(|(name, _)| name.as_str()), Some("meshboot-reader-for-us"));
/// assert!(c.is_bound());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `exp`, Unix seconds; `None` for a legacy token (it never expires).
    pub expires: Option<i64>,
    /// `iat`, Unix seconds.
    pub issued: Option<i64>,
    /// The ServiceAccount's namespace.
    pub namespace: Option<String>,
    /// The ServiceAccount's name.
    pub service_account: Option<String>,
    /// The ServiceAccount's uid.
    pub service_account_uid: Option<String>,
    /// `kubernetes.io.secret`: (name, uid) of the Secret a bound token is tied to.
    pub bound_secret: Option<(String, String)>,
    /// A legacy token: the token Secret it was read from
    /// (`kubernetes.io/serviceaccount/secret.name`).
    pub legacy_secret: Option<String>,
}

impl Claims {
    /// The claims of a JWT-shaped token; `None` when it is not one.
    pub fn of(token: &str) -> Option<Claims> {
        let payload = token.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let k8s = v.get("kubernetes.io");
        let (namespace, service_account, service_account_uid, legacy_secret) = match k8s {
            Some(_) => (
                s("/kubernetes.io/namespace"),
                s("/kubernetes.io/serviceaccount/name"),
                s("/kubernetes.io/serviceaccount/uid"),
                None,
            ),
            None => (
                s("/kubernetes.io~1serviceaccount~1namespace"),
                s("/kubernetes.io~1serviceaccount~1service-account.name"),
                s("/kubernetes.io~1serviceaccount~1service-account.uid"),
                s("/kubernetes.io~1serviceaccount~1secret.name"),
            ),
        };
        let bound_secret = match (
            s("/kubernetes.io/secret/name"),
            s("/kubernetes.io/secret/uid"),
        ) {
            (Some(name), Some(uid)) => Some((name, uid)),
            _ => None,
        };
        Some(Claims {
            expires: v.get("exp").and_then(Value::as_i64),
            issued: v.get("iat").and_then(Value::as_i64),
            namespace,
            service_account,
            service_account_uid,
            bound_secret,
            legacy_secret,
        })
    }

    /// True for a TokenRequest token bound to a Secret, with an expiry.
    pub fn is_bound(&self) -> bool {
        self.expires.is_some() && self.bound_secret.is_some()
    }
}
