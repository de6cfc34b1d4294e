//! `check-expiry`: every certificate and token the mesh depends on, against two thresholds,
//! in the monitoring-plugin convention (0 ok, 1 warning, 2 critical, 3 unknown).
//!
//! Checked: the local CA (the root, every cluster folder's intermediate, the new root of a
//! rotation under way), every cluster's live `cacerts` (its intermediate and each root of its
//! bundle), and the tokens inside every remote secret that carry an expiry (the JWT `exp`
//! claim; the token itself is never printed or kept).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::cluster::{ClusterError, ClusterOps, KubeConnector, ObjectRef};
use crate::pki::{self, CaDir, CertInfo};
use crate::spec::MeshSpec;
use crate::verify::cacerts::CacertsSecret;

/// When something counts as expiring.
///
/// ```
/// let t = mesh_core::rotate::ExpiryThresholds::default();
/// assert_eq!((t.warn.as_secs() / 86_400, t.critical.as_secs() / 86_400), (30, 7));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryThresholds {
    /// Less than this left: warning.
    pub warn: Duration,
    /// Less than this left, or expired: critical.
    pub critical: Duration,
}

impl Default for ExpiryThresholds {
    fn default() -> Self {
        ExpiryThresholds {
            warn: Duration::from_secs(30 * 86_400),
            critical: Duration::from_secs(7 * 86_400),
        }
    }
}

impl ExpiryThresholds {
    /// The status of something valid until `not_after`.
    ///
    /// ```
    /// use mesh_core::rotate::{ExpiryStatus, ExpiryThresholds};
    /// let t = ExpiryThresholds::default();
    /// let now = time::OffsetDateTime::now_utc();
    /// assert_eq!(t.status(now + time::Duration::days(60), now), ExpiryStatus::Ok);
    /// assert_eq!(t.status(now + time::Duration::days(20), now), ExpiryStatus::Warning);
    /// assert_eq!(t.status(now + time::Duration::days(2), now), ExpiryStatus::Critical);
    /// assert_eq!(t.status(now - time::Duration::days(1), now), ExpiryStatus::Critical);
    /// ```
    pub fn status(&self, not_after: OffsetDateTime, now: OffsetDateTime) -> ExpiryStatus {
        let left = not_after - now;
        let within =
            |d: Duration| left <= time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
        if left <= time::Duration::ZERO || within(self.critical) {
            ExpiryStatus::Critical
        } else if within(self.warn) {
            ExpiryStatus::Warning
        } else {
            ExpiryStatus::Ok
        }
    }
}

/// The verdict on one item, and on the whole report (the worst item: critical, then unknown,
/// then warning — an unreachable cluster may hide anything, so it outranks a warning).
///
/// ```
/// use mesh_core::rotate::ExpiryStatus;
/// assert_eq!(ExpiryStatus::Unknown.exit_code(), 3);
/// assert!(ExpiryStatus::Critical.worse_than(ExpiryStatus::Unknown));
/// assert!(ExpiryStatus::Unknown.worse_than(ExpiryStatus::Warning));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiryStatus {
    /// Further away than the warning threshold.
    Ok,
    /// Within the warning threshold.
    Warning,
    /// Within the critical threshold, or expired.
    Critical,
    /// Could not be checked.
    Unknown,
}

impl ExpiryStatus {
    /// The monitoring-plugin exit code: 0, 1, 2, 3.
    pub fn exit_code(self) -> u8 {
        match self {
            ExpiryStatus::Ok => 0,
            ExpiryStatus::Warning => 1,
            ExpiryStatus::Critical => 2,
            ExpiryStatus::Unknown => 3,
        }
    }

    fn severity(self) -> u8 {
        match self {
            ExpiryStatus::Ok => 0,
            ExpiryStatus::Warning => 1,
            ExpiryStatus::Unknown => 2,
            ExpiryStatus::Critical => 3,
        }
    }

    /// True when `self` decides the overall verdict over `other`.
    pub fn worse_than(self, other: ExpiryStatus) -> bool {
        self.severity() > other.severity()
    }

    /// Upper-case, as monitoring output spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryStatus::Ok => "OK",
            ExpiryStatus::Warning => "WARNING",
            ExpiryStatus::Critical => "CRITICAL",
            ExpiryStatus::Unknown => "UNKNOWN",
        }
    }
}

/// One certificate or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiryItem {
    /// The cluster it lives in; `None` for the local CA's root.
    pub cluster: Option<String>,
    /// What it is, e.g. `intermediate (local pki/eu/ca-cert.pem)`.
    pub what: String,
    /// End of validity, when known.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// Whole days left (negative once expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// The verdict.
    pub status: ExpiryStatus,
    /// Why it is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every item, and the overall verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    /// The worst item's status ([`ExpiryStatus::worse_than`]); ok when there is nothing.
    pub status: ExpiryStatus,
    /// `--warn`, in days.
    pub warn_days: u64,
    /// `--critical`, in days.
    pub critical_days: u64,
    /// One entry per certificate or token.
    pub items: Vec<ExpiryItem>,
}

impl ExpiryReport {
    /// A report over `items`.
    pub fn new(items: Vec<ExpiryItem>, thresholds: &ExpiryThresholds) -> ExpiryReport {
        let status = items
            .iter()
            .map(|i| i.status)
            .fold(
                ExpiryStatus::Ok,
                |acc, s| if s.worse_than(acc) { s } else { acc },
            );
        ExpiryReport {
            status,
            warn_days: thresholds.warn.as_secs() / 86_400,
            critical_days: thresholds.critical.as_secs() / 86_400,
            items,
        }
    }
}

/// The local CA directory alone: the root, every cluster folder's intermediate, and the new
/// root of a rotation under way. What `ca inspect --warn/--critical` judges.
///
/// ```
/// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
/// use mesh_core::rotate::{ExpiryStatus, ExpiryThresholds, check_local};
/// let tmp = tempfile::tempdir().unwrap();
/// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, intermediate_days: 20, ..CaOptions::default() };
/// CaDir::open(tmp.path()).ensure(&opts, &["eu"]).unwrap();
/// let items = check_local(tmp.path(), &ExpiryThresholds::default());
/// assert_eq!(items.len(), 2); // root, eu's intermediate
/// assert_eq!(items[1].status, ExpiryStatus::Warning);
/// ```
pub fn check_local(dir: &Path, thresholds: &ExpiryThresholds) -> Vec<ExpiryItem> {
    let now = OffsetDateTime::now_utc();
    let ca = CaDir::open(dir);
    let mut items = Vec::new();
    let report = match ca.inspect() {
        Ok(r) => r,
        Err(e) => {
            return vec![unknown(
                None,
                format!("CA directory {}", dir.display()),
                e.to_string(),
            )];
        }
    };
    if report.root.is_none() && report.intermediates.is_empty() {
        items.push(unknown(
            None,
            format!("CA directory {}", dir.display()),
            "holds no CA files".into(),
        ));
    }
    for cert in report.root.iter().chain(&report.intermediates) {
        let what = match &cert.cluster {
            None => format!("root (local {})", cert.file.display()),
            Some(_) => format!("intermediate (local {})", cert.file.display()),
        };
        items.push(match &cert.info {
            Some(info) => judged(cert.cluster.clone(), what, info.not_after, thresholds, now),
            None => unknown(cert.cluster.clone(), what, cert.chain.clone()),
        });
    }
    if let Ok(Some(rotation)) = ca.root_rotation() {
        items.push(judged(
            None,
            format!(
                "new root of the rotation under way (local {})",
                ca.rotation_dir()
                    .join("new")
                    .join(pki::ROOT_CERT_FILE)
                    .display()
            ),
            rotation.new.info.not_after,
            thresholds,
            now,
        ));
    }
    items
}

/// [`check_expiry_with`] connecting through the kubeconfigs of the mesh file.
pub async fn check_expiry(spec: &MeshSpec, thresholds: &ExpiryThresholds) -> ExpiryReport {
    let clients = crate::execute::connect_with(spec, &KubeConnector::default()).await;
    check_expiry_with(spec, clients, thresholds).await
}

/// The local CA ([`check_local`]) and, per cluster, its live `cacerts` and the expiring tokens
/// of its remote secrets.
pub async fn check_expiry_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    thresholds: &ExpiryThresholds,
) -> ExpiryReport {
    let mut items = check_local(&spec.ca.dir, thresholds);
    let clients: BTreeMap<String, Result<C, ClusterError>> = clients.into_iter().collect();
    let ns = spec.istio_namespace.as_str();
    let per_cluster: Vec<(String, Vec<ExpiryItem>)> = futures::stream::iter(spec.clusters.iter())
        .map(|c| {
            let client = clients.get(&c.name);
            async move {
                let items = match client {
                    Some(Ok(client)) => live_items(client, &c.name, ns, thresholds).await,
                    Some(Err(e)) => vec![unknown(
                        Some(c.name.clone()),
                        "cluster".into(),
                        e.to_string(),
                    )],
                    None => vec![unknown(
                        Some(c.name.clone()),
                        "cluster".into(),
                        "not connected".into(),
                    )],
                };
                (c.name.clone(), items)
            }
        })
        .buffered(8)
        .collect()
        .await;
    for (_, cluster_items) in per_cluster {
        items.extend(cluster_items);
    }
    ExpiryReport::new(items, thresholds)
}

async fn live_items<C: ClusterOps>(
    client: &C,
    cluster: &str,
    ns: &str,
    thresholds: &ExpiryThresholds,
) -> Vec<ExpiryItem> {
    let now = OffsetDateTime::now_utc();
    let here = || Some(cluster.to_string());
    let mut items = Vec::new();
    let secret = match client
        .get(&ObjectRef::namespaced("v1", "Secret", ns, "cacerts"))
        .await
    {
        Ok(s) => s,
        Err(e) => return vec![unknown(here(), "cluster".into(), e.to_string())],
    };
    match secret.as_ref().map(CacertsSecret::read) {
        None => items.push(unknown(
            here(),
            format!("cacerts (live {ns}/cacerts)"),
            "Secret cacerts does not exist".into(),
        )),
        Some(Err(why)) => items.push(unknown(
            here(),
            format!("cacerts (live {ns}/cacerts)"),
            format!("Secret cacerts: {why}"),
        )),
        Some(Ok(files)) => {
            let what = format!("intermediate (live {ns}/cacerts)");
            match files.ca_cert.as_deref().map(pki::cert_info) {
                Some(Ok(info)) => items.push(judged(here(), what, info.not_after, thresholds, now)),
                Some(Err(e)) => items.push(unknown(here(), what, e.to_string())),
                None => items.push(unknown(here(), what, "cacerts has no intermediate".into())),
            }
            for (i, info) in bundle_infos(files.root_cert.as_deref().unwrap_or_default())
                .into_iter()
                .enumerate()
            {
                let what = format!("root #{} of the bundle (live {ns}/cacerts)", i + 1);
                match info {
                    Ok(info) => items.push(judged(here(), what, info.not_after, thresholds, now)),
                    Err(e) => items.push(unknown(here(), what, e)),
                }
            }
        }
    }
    let selector = crate::remote_secret::multicluster_selector();
    match client.list("v1", "Secret", Some(ns), Some(&selector)).await {
        Ok(secrets) => {
            for s in &secrets {
                items.extend(token_items(cluster, s, thresholds, now));
            }
        }
        Err(e) => items.push(unknown(here(), "remote secrets".into(), e.to_string())),
    }
    items
}

/// One item per token with an `exp` inside a remote secret's kubeconfig(s).
fn token_items(
    cluster: &str,
    secret: &Value,
    thresholds: &ExpiryThresholds,
    now: OffsetDateTime,
) -> Vec<ExpiryItem> {
    let name = secret
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let Some(data) = secret.get("data").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut items = Vec::new();
    for (key, encoded) in data {
        let Some(yaml) = encoded
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        let Ok(kubeconfig) = serde_saphyr::from_str::<Value>(&yaml) else {
            continue;
        };
        let users = kubeconfig
            .get("users")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for user in users {
            let Some(token) = user.pointer("/user/token").and_then(Value::as_str) else {
                continue;
            };
            if let Some(exp) = jwt_expiry(token) {
                items.push(judged(
                    Some(cluster.to_string()),
                    format!("token of remote secret {name} (reads {key})"),
                    exp,
                    thresholds,
                    now,
                ));
            }
        }
    }
    items
}

/// The `exp` claim of a JWT, when it has one; nothing else of the token is kept.
///
/// ```
/// use base64::Engine as _;
/// let part = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
/// let token = format!("{}.{}.sig", part(r#"{"alg":"RS256"}"#), part(r#"{"exp":1900000000}"#));
/// assert_eq!(mesh_core::rotate::jwt_expiry(&token).unwrap().unix_timestamp(), 1_900_000_000);
/// assert!(mesh_core::rotate::jwt_expiry("not-a-jwt").is_none());
/// ```
pub fn jwt_expiry(token: &str) -> Option<OffsetDateTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_i64()?;
    OffsetDateTime::from_unix_timestamp(exp).ok()
}

fn bundle_infos(pem: &str) -> Vec<Result<CertInfo, String>> {
    let mut out = Vec::new();
    let mut rest = pem;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else {
            out.push(Err("a certificate block is not closed".into()));
            break;
        };
        let block = &rest[start..start + end + END.len()];
        out.push(pki::cert_info(block).map_err(|e| e.to_string()));
        rest = &rest[start + end + END.len()..];
    }
    if out.is_empty() {
        out.push(Err("the bundle holds no certificate".into()));
    }
    out
}

fn judged(
    cluster: Option<String>,
    what: String,
    not_after: OffsetDateTime,
    thresholds: &ExpiryThresholds,
    now: OffsetDateTime,
) -> ExpiryItem {
    ExpiryItem {
        cluster,
        what,
        not_after: Some(not_after),
        days_left: Some((not_after - now).whole_days()),
        status: thresholds.status(not_after, now),
        error: None,
    }
}

fn unknown(cluster: Option<String>, what: String, error: String) -> ExpiryItem {
    ExpiryItem {
        cluster,
        what,
        not_after: None,
        days_left: None,
        status: ExpiryStatus::Unknown,
        error: Some(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_judged_by_exp_and_never_kept() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let now = OffsetDateTime::now_utc();
        let exp = (now + time::Duration::days(3)).unix_timestamp();
        let token = format!("{}.{}.c2ln", b64("{}"), b64(&format!("{{\"exp\":{exp}}}")));
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: ap\n  user:\n    token: {token}\n"
        );
        let secret = json!({"metadata": {"name": "istio-remote-secret-ap"},
            "data": {"ap": base64::engine::general_purpose::STANDARD.encode(kubeconfig)}});
        let items = token_items("eu", &secret, &ExpiryThresholds::default(), now);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].status, ExpiryStatus::Critical);
        assert_eq!(
            items[0].what,
            "token of remote secret istio-remote-secret-ap (reads ap)"
        );
        assert!(!serde_json::to_string(&items).unwrap().contains(&token));
        // A legacy token (no exp) is not an expiring item.
        let legacy = format!("{}.{}.c2ln", b64("{}"), b64("{\"sub\":\"x\"}"));
        let kubeconfig = format!("users:\n- user:\n    token: {legacy}\n");
        let secret =
            json!({"data": {"ap": base64::engine::general_purpose::STANDARD.encode(kubeconfig)}});
        assert!(token_items("eu", &secret, &ExpiryThresholds::default(), now).is_empty());
    }

    #[test]
    fn the_worst_item_decides_with_critical_over_unknown_over_warning() {
        let t = ExpiryThresholds::default();
        let item = |status| ExpiryItem {
            cluster: None,
            what: "x".into(),
            not_after: None,
            days_left: None,
            status,
            error: None,
        };
        let r = ExpiryReport::new(
            vec![item(ExpiryStatus::Warning), item(ExpiryStatus::Unknown)],
            &t,
        );
        assert_eq!(r.status, ExpiryStatus::Unknown);
        let r = ExpiryReport::new(
            vec![item(ExpiryStatus::Critical), item(ExpiryStatus::Unknown)],
            &t,
        );
        assert_eq!(r.status, ExpiryStatus::Critical);
        assert_eq!(ExpiryReport::new(vec![], &t).status, ExpiryStatus::Ok);
    }
}
