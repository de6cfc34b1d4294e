//! Preflight: everything read from the clusters before anything is written anywhere.
//!
//! Two passes, both read-only: [`probe`] (reachable, authenticated, existing `cacerts` and
//! istiod) runs before the local CA is touched, so a conflicting root stops the run with
//! nothing written at all; [`check_permissions`] needs the plan (it asks for exactly the kinds
//! the plan writes) and runs after it, still before the first cluster write.

use std::collections::BTreeSet;

use base64::Engine as _;
use futures::StreamExt;
use serde_json::Value;

use super::ops::ClusterOps;
use super::report::Problem;
use crate::cluster::{ClusterError, ObjectRef};
use crate::pki;
use crate::plan::Plan;

/// What preflight learnt about a reachable cluster.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterState {
    /// The `cacerts` Secret, when present.
    pub cacerts: Option<Value>,
    /// True when Deployment `istiod` exists in the Istio namespace.
    pub istiod: bool,
}

/// Why a cluster cannot take part.
#[derive(Debug, Clone)]
pub(crate) struct Blocker {
    pub problem: Problem,
    pub message: String,
}

impl Blocker {
    pub(crate) fn new(problem: Problem, message: String) -> Blocker {
        Blocker { problem, message }
    }

    /// True when `--skip-unreachable` lets the run go on without the cluster.
    pub(crate) fn is_skippable(&self) -> bool {
        self.problem == Problem::Unreachable
    }
}

impl From<&ClusterError> for Blocker {
    fn from(err: &ClusterError) -> Self {
        let problem = match err {
            ClusterError::Unreachable { .. } => Problem::Unreachable,
            ClusterError::Kubeconfig { .. } | ClusterError::Unauthorized { .. } => {
                Problem::Credentials
            }
            ClusterError::Forbidden { .. } => Problem::Forbidden,
            _ => Problem::Other,
        };
        Blocker::new(problem, err.to_string())
    }
}

impl From<ClusterError> for Blocker {
    fn from(err: ClusterError) -> Self {
        Blocker::from(&err)
    }
}

/// Reads the namespace (reachability and credentials), `cacerts` and Deployment `istiod`.
pub(crate) async fn probe<C: ClusterOps>(
    client: &C,
    namespace: &str,
) -> Result<ClusterState, Blocker> {
    // The namespace read comes first and alone: when the server is down, one request pays the
    // retries instead of three.
    client
        .get(&ObjectRef::cluster_scoped("v1", "Namespace", namespace))
        .await?;
    let cacerts_ref = ObjectRef::namespaced("v1", "Secret", namespace, "cacerts");
    let istiod_ref = ObjectRef::namespaced("apps/v1", "Deployment", namespace, "istiod");
    let (cacerts, istiod) =
        futures::future::join(client.get(&cacerts_ref), client.get(&istiod_ref)).await;
    Ok(ClusterState {
        cacerts: cacerts?,
        istiod: istiod?.is_some(),
    })
}

/// The SHA-256 fingerprints of the root(s) a `cacerts` Secret trusts: `root-cert.pem`, or
/// `ca.crt` for the `kubernetes.io/tls` layout istiod also reads (`reference/istio.md` §1.2).
pub(crate) fn cacerts_roots(secret: &Value) -> Result<BTreeSet<String>, String> {
    let encoded = ["root-cert.pem", "ca.crt"]
        .iter()
        .find_map(|key| {
            secret
                .get("data")
                .and_then(|d| d.get(*key))
                .and_then(Value::as_str)
        })
        .ok_or_else(|| "it has no root-cert.pem".to_string())?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "its root-cert.pem is not valid base64".to_string())?;
    let pem = String::from_utf8(pem).map_err(|_| "its root-cert.pem is not PEM".to_string())?;
    let fingerprints = pki::root_fingerprints(&pem)
        .map_err(|e| format!("its root-cert.pem cannot be read: {e}"))?;
    Ok(fingerprints.into_iter().collect())
}

/// A `cacerts` already in `cluster` is a conflict unless it trusts exactly the local root.
/// `local` is `None` when no root exists yet (a new one would be made).
pub(crate) fn cacerts_conflict(
    cluster: &str,
    secret: &Value,
    local: Option<&BTreeSet<String>>,
) -> Option<String> {
    let existing = match cacerts_roots(secret) {
        Ok(roots) => roots,
        Err(why) => {
            return Some(format!(
                "cluster {cluster}: Secret cacerts already exists and {why}; meshboot will not \
                 overwrite a CA it cannot compare (inspect it, or delete it if it is unused)"
            ));
        }
    };
    let short = |set: &BTreeSet<String>| {
        set.iter()
            .map(|fp| fp.chars().take(23).collect::<String>())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match local {
        Some(local) if *local == existing => None,
        Some(local) => Some(format!(
            "cluster {cluster}: Secret cacerts trusts a different root (SHA-256 {}) than the \
             mesh CA (SHA-256 {}); apply never replaces a root, because workloads signed by \
             the old one would stop being trusted. Use that root as ca.root in the mesh file, or \
             rotate deliberately",
            short(&existing),
            short(local)
        )),
        None => Some(format!(
            "cluster {cluster}: Secret cacerts already exists (root SHA-256 {}) but the mesh CA \
             has no root yet, so apply would plug in a different one; set ca.root in the mesh \
             file to that root's certificate and key",
            short(&existing)
        )),
    }
}

/// Access reviews in flight per cluster.
const REVIEWS_IN_FLIGHT: usize = 4;

/// Asks the cluster, with access reviews, whether it may create and patch every kind the plan
/// writes there. Returns one line per denied permission.
pub(crate) async fn check_permissions<C: ClusterOps>(
    client: &C,
    plan: &Plan,
) -> Result<Vec<String>, ClusterError> {
    let writes = plan.writes_on(client.name());
    let checks = writes.iter().flat_map(|(group, resource, namespace)| {
        ["create", "patch"].into_iter().map(move |verb| async move {
            let allowed = client
                .can_i(verb, group, resource, namespace.as_deref())
                .await?;
            Ok::<_, ClusterError>((!allowed).then(|| {
                let what = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                match namespace {
                    Some(ns) => format!("{verb} {what} in namespace {ns}"),
                    None => format!("{verb} {what} (cluster-wide)"),
                }
            }))
        })
    });
    let mut denied = Vec::new();
    // A few at a time: each concurrent request to a cluster opens a TLS connection of its own,
    // and twenty handshakes per cluster cost more than the round trips they save.
    let answers: Vec<_> = futures::stream::iter(checks)
        .buffer_unordered(REVIEWS_IN_FLIGHT)
        .collect()
        .await;
    for answer in answers {
        if let Some(line) = answer? {
            denied.push(line);
        }
    }
    Ok(denied)
}
