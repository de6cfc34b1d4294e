//! Whether the token a remote secret already carries can stay: the rule that keeps a converged
//! mesh converged. Pure: the live credential, what the pair should hold, and the time.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::credential::{Claims, Credential};

/// What the remote secret of one pair should carry.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The source's API server as the destination dials it.
    pub server: &'a str,
    /// The source's cluster CA (`kube-root-ca.crt`).
    pub ca: &'a [u8],
    /// The reader ServiceAccount's namespace.
    pub namespace: &'a str,
    /// The reader ServiceAccount.
    pub service_account: &'a str,
    /// The pair's bound object (`meshboot-reader-for-<dst>`).
    pub bound_name: &'a str,
    /// Its live uid; `None` when it does not exist yet (dry run), so no token can be bound to
    /// it.
    pub bound_uid: Option<&'a str>,
    /// A token that expires within this is replaced (`refreshBefore`, or `rotate tokens
    /// --expiring-within`).
    pub refresh_within: Duration,
}

/// The verdict on a live remote secret's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it: valid beyond the window, bound to the live object, same server and CA.
    Keep {
        /// Its `exp`.
        expires: i64,
    },
    /// Mint a new token.
    Replace(Why),
}

/// Why a token is replaced: what the report says, never the token.
///
/// ```
/// use mesh_core::tokens::Why;
/// assert_eq!(Why::Legacy.to_string(), "it carries a long-lived legacy token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum Why {
    /// No remote secret (or no kubeconfig for this cluster in it).
    Missing,
    /// Its token has no expiry: a token Secret's legacy token.
    Legacy,
    /// Its token is not a JWT meshboot can read.
    Unreadable,
    /// It expired.
    Expired {
        /// `exp`, Unix seconds.
        expires: i64,
    },
    /// It expires within the window.
    Expiring {
        /// `exp`, Unix seconds.
        expires: i64,
        /// The window, seconds.
        within: u64,
    },
    /// It belongs to another ServiceAccount (the reader identity changed).
    OtherAccount {
        /// The ServiceAccount it belongs to.
        service_account: String,
    },
    /// It is bound to another object, or to an earlier object of the same name.
    Rebound,
    /// The pair's bound object does not exist yet (dry run): a token is minted once it does.
    NoBoundObject,
    /// The kubeconfig names another server.
    Server {
        /// What it names.
        was: String,
    },
    /// The kubeconfig carries another CA.
    Ca,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Missing => f.write_str("there is no remote secret yet"),
            Why::Legacy => f.write_str("it carries a long-lived legacy token"),
            Why::Unreadable => f.write_str("its token is not a service-account JWT"),
            Why::Expired { expires } => write!(f, "its token expired at {}", rfc3339(*expires)),
            Why::Expiring { expires, within } => write!(
                f,
                "its token expires at {}, within {}",
                rfc3339(*expires),
                crate::duration::exact(Duration::from_secs(*within))
            ),
            Why::OtherAccount { service_account } => write!(
                f,
                "its token belongs to ServiceAccount {service_account}, not the reader identity"
            ),
            Why::Rebound => f.write_str("its token is bound to another object than the pair's"),
            Why::NoBoundObject => f.write_str("the pair's bound object does not exist yet"),
            Why::Server { was } => write!(f, "it points at {was}"),
            Why::Ca => f.write_str("it carries another cluster CA"),
        }
    }
}

/// RFC 3339 UTC for a Unix time (what reports print; `?` when out of range).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "?".into())
}

/// Judges the live credential of a pair (`None`: no remote secret) against what it should be.
///
/// ```
/// use std::time::Duration;
/// use mesh_core::tokens::{judge, Verdict, Wanted, Why};
/// let want = Wanted { server: "https://eu:6443", ca: b"ca", namespace: "istio-system",
///     service_account: "meshboot-reader", bound_name: "meshboot-reader-for-us", bound_uid: Some("u1"),
///     refresh_within: Duration::from_secs(3600) };
/// assert_eq!(judge(None, &want, 0), Verdict::Replace(Why::Missing));
/// ```
pub fn judge(live: Option<&Credential>, want: &Wanted<'_>, now: i64) -> Verdict {
    let Some(live) = live else {
        return Verdict::Replace(Why::Missing);
    };
    let Some(claims) = live.claims() else {
        return Verdict::Replace(Why::Unreadable);
    };
    let Some(expires) = claims.expires else {
        return Verdict::Replace(Why::Legacy);
    };
    if let Some(why) = mismatch(live, &claims, want) {
        return Verdict::Replace(why);
    }
    if expires <= now {
        return Verdict::Replace(Why::Expired { expires });
    }
    let within = want.refresh_within.as_secs();
    if expires.saturating_sub(now) <= i64::try_from(within).unwrap_or(i64::MAX) {
        return Verdict::Replace(Why::Expiring { expires, within });
    }
    Verdict::Keep { expires }
}

fn mismatch(live: &Credential, claims: &Claims, want: &Wanted<'_>) -> Option<Why> {
    if claims.namespace.as_deref() != Some(want.namespace)
        || claims.service_account.as_deref() != Some(want.service_account)
    {
        return Some(Why::OtherAccount {
            service_account: format!(
                "{}/{}",
                claims.namespace.as_deref().unwrap_or("?"),
                claims.service_account.as_deref().unwrap_or("?")
            ),
        });
    }
    let Some(uid) = want.bound_uid else {
        return Some(Why::NoBoundObject);
    };
    match &claims.bound_secret {
        Some((name, bound)) if name == want.bound_name && bound == uid => {}
        _ => return Some(Why::Rebound),
    }
    if live.server.trim_end_matches('/') != want.server.trim_end_matches('/') {
        return Some(Why::Server {
            was: live.server.clone(),
        });
    }
    if live.ca_data != want.ca {
        return Some(Why::Ca);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn token(claims: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", e(r#"{"alg":"RS256"}"#), e(claims))
    }

    fn bound(exp: i64, sa: &str, secret: &str, uid: &str) -> String {
        token(&format!(
            r#"{{"exp":{exp},"kubernetes.io":{{"namespace":"istio-system","serviceaccount":{{"name":"{sa}","uid":"sa1"}},"secret":{{"name":"{secret}","uid":"{uid}"}}}}}}"#
        ))
    }

    fn live(token: String) -> Credential {
        Credential {
            server: "https://eu:6443".into(),
            ca_data: b"ca".to_vec(),
            token,
        }
    }

    const WANT: Wanted<'static> = Wanted {
        server: "https://eu:6443",
        ca: b"ca",
        namespace: "istio-system",
        service_account: "meshboot-reader",
        bound_name: "meshboot-reader-for-us",
        bound_uid: Some("u1"),
        refresh_within: Duration::from_secs(3600),
    };

    #[test]
    fn a_valid_bound_token_of_the_live_object_stays() {
        let now = 1_000_000;
        let c = live(bound(
            now + 7200,
            "meshboot-reader",
            "meshboot-reader-for-us",
            "u1",
        ));
        assert_eq!(
            judge(Some(&c), &WANT, now),
            Verdict::Keep {
                expires: now + 7200
            }
        );
    }

    #[test]
    fn every_reason_to_mint_is_named() {
        let now = 1_000_000;
        let ok = |exp| bound(exp, "meshboot-reader", "meshboot-reader-for-us", "u1");
        let cases = [
            (live(ok(now + 1800)), "expires at"),
            (live(ok(now - 1)), "expired at"),
            (
                live(bound(
                    now + 9999,
                    "meshboot-reader",
                    "meshboot-reader-for-us",
                    "u0",
                )),
                "bound to another object",
            ),
            (
                live(bound(
                    now + 9999,
                    "meshboot-reader",
                    "meshboot-reader-for-eu",
                    "u1",
                )),
                "bound to another object",
            ),
            (
                live(bound(
                    now + 9999,
                    "istio-reader-service-account",
                    "meshboot-reader-for-us",
                    "u1",
                )),
                "istio-system/istio-reader-service-account",
            ),
            (
                live(token(
                    r#"{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/secret.name":"t"}"#,
                )),
                "legacy",
            ),
            (live("opaque".into()), "not a service-account JWT"),
            (
                Credential {
                    server: "https://old:6443".into(),
                    ..live(ok(now + 9999))
                },
                "points at https://old:6443",
            ),
            (
                Credential {
                    ca_data: b"other".to_vec(),
                    ..live(ok(now + 9999))
                },
                "another cluster CA",
            ),
        ];
        for (credential, words) in cases {
            match judge(Some(&credential), &WANT, now) {
                Verdict::Replace(why) => {
                    assert!(why.to_string().contains(words), "{why} lacks {words:?}")
                }
                keep => panic!("kept {keep:?}, expected {words:?}"),
            }
        }
        let not_yet = Wanted {
            bound_uid: None,
            ..WANT
        };
        assert_eq!(
            judge(Some(&live(ok(now + 9999))), &not_yet, now),
            Verdict::Replace(Why::NoBoundObject)
        );
    }
}
