//! The I/O half of verify: everything it reads from the clusters, gathered through the
//! [`ClusterOps`] door into plain data that [`checks`](super::checks) judges without I/O.
//!
//! Three rounds, each needing the one before: every cluster's own objects; then, for expected
//! remote secrets missing from a destination's labelled list, a direct read (absent, or there
//! without istiod's label?); then one token check per distinct embedded kubeconfig.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::Value;

use super::VerifyOptions;
use super::checks;
use crate::cluster::{ClusterError, ClusterOps, Connector, ObjectRef};
use crate::pki::{CaDir, root_fingerprints};
use crate::remote_secret::{multicluster_selector, secret_name};
use crate::render::eastwest;
use crate::spec::MeshSpec;

/// Bound on one token check, retries included: an address only the clusters can reach must not
/// stall verify.
pub(crate) const TOKEN_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What verify read from one cluster.
pub(crate) struct ClusterFacts {
    /// The API server URL of the kubeconfig context (what remote secrets default to).
    pub server: String,
    pub cacerts: Result<Option<Value>, ClusterError>,
    pub namespace: Result<Option<Value>, ClusterError>,
    /// Secrets labelled `istio/multiCluster=true`, cluster-wide when allowed.
    pub secrets: Result<Vec<Value>, ClusterError>,
    pub gateway: Result<Option<Value>, ClusterError>,
    /// Expected remote secrets missing from `secrets`, read by name: `None` when absent (or
    /// unreadable).
    pub unlisted: BTreeMap<String, Option<Value>>,
}

/// The root in the mesh file's `ca.dir`, when there is one.
pub(crate) enum LocalRoot {
    /// No root there yet.
    None,
    /// The file exists but could not be read as certificates.
    Unreadable(std::path::PathBuf),
    /// Its SHA-256 fingerprints.
    Read {
        path: std::path::PathBuf,
        fingerprints: Vec<String>,
    },
}

/// What a source cluster made of a remote secret's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenVerdict {
    /// Authenticated, and may list services cluster-wide (what istiod does first).
    Accepted,
    /// Authenticated, but not allowed to read.
    CannotRead,
    /// 401: the token is not (or no longer) valid.
    Rejected,
    /// Anything else: unreachable, bad kubeconfig, timeout.
    Failed(String),
}

/// Everything verify knows about the mesh, and nothing else: the input of the checks.
pub(crate) struct MeshFacts {
    /// Per cluster of the mesh file: what was read, or why it could not be (no client).
    pub clusters: BTreeMap<String, Result<ClusterFacts, String>>,
    pub local_root: LocalRoot,
    /// Per (source cluster, embedded kubeconfig): what the source said of the token.
    pub tokens: BTreeMap<(String, String), TokenVerdict>,
    /// When the facts were read (Unix seconds): what token expiry is judged against.
    pub now: i64,
}

/// Reads everything the checks need. `connect_errors` are the clusters that could not be
/// connected (with why); `connector` dials the kubeconfigs remote secrets carry.
pub(crate) async fn gather<C: ClusterOps, K: Connector>(
    spec: &MeshSpec,
    clients: &BTreeMap<String, C>,
    connect_errors: &BTreeMap<String, String>,
    connector: &K,
    options: &VerifyOptions,
) -> MeshFacts {
    let ns = spec.istio_namespace.as_str();
    let concurrency = options.concurrency.max(1);
    let read: Vec<(String, Result<ClusterFacts, String>)> =
        futures::stream::iter(spec.clusters.iter())
            .map(|cluster| async move {
                let facts = match clients.get(&cluster.name) {
                    Some(client) => Ok(read_cluster(client, ns).await),
                    None => Err(connect_errors
                        .get(&cluster.name)
                        .cloned()
                        .unwrap_or_else(|| "no client for this cluster".to_string())),
                };
                (cluster.name.clone(), facts)
            })
            .buffered(concurrency)
            .collect()
            .await;
    let mut facts = MeshFacts {
        clusters: read.into_iter().collect(),
        local_root: local_root(spec),
        tokens: BTreeMap::new(),
        now: crate::tokens::now_unix(),
    };

    let unlisted: Vec<(String, String, Option<Value>)> =
        futures::stream::iter(checks::unlisted_pairs(spec, &facts))
            .map(|(src, dst)| async move {
                let name = secret_name(&src);
                let found = match clients.get(&dst) {
                    Some(c) => c
                        .get(&ObjectRef::namespaced("v1", "Secret", ns, &name))
                        .await
                        .ok()
                        .flatten(),
                    None => None,
                };
                (dst, name, found)
            })
            .buffered(concurrency)
            .collect()
            .await;
    for (dst, name, found) in unlisted {
        if let Some(Ok(cluster)) = facts.clusters.get_mut(&dst) {
            cluster.unlisted.insert(name, found);
        }
    }

    if options.check_tokens {
        // Every destination usually holds the same kubeconfig of a source: try each distinct
        // one once (N checks instead of N·(N−1) for a multi-primary mesh).
        let candidates: BTreeSet<(String, String)> =
            checks::token_candidates(spec, &facts, options);
        facts.tokens = futures::stream::iter(candidates)
            .map(|(src, kc)| async move {
                let verdict = try_token(connector, &src, &kc).await;
                ((src, kc), verdict)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    }
    facts
}

async fn read_cluster<C: ClusterOps>(client: &C, ns: &str) -> ClusterFacts {
    let cacerts_ref = ObjectRef::namespaced("v1", "Secret", ns, "cacerts");
    let namespace_ref = ObjectRef::cluster_scoped("v1", "Namespace", ns);
    let gateway_ref = ObjectRef::namespaced("v1", "Service", ns, eastwest::NAME);
    let selector = multicluster_selector();
    let cacerts = client.get(&cacerts_ref);
    let namespace = client.get(&namespace_ref);
    // Cluster-wide, to find remote secrets in the wrong namespace too (istioctl used the
    // context's namespace, #49780); a reader limited to the istio namespace still gets those.
    let secrets = async {
        match client.list("v1", "Secret", None, Some(&selector)).await {
            Err(ClusterError::Forbidden { .. }) => {
                client.list("v1", "Secret", Some(ns), Some(&selector)).await
            }
            other => other,
        }
    };
    let gateway = client.get(&gateway_ref);
    let (cacerts, namespace, secrets, gateway) =
        futures::join!(cacerts, namespace, secrets, gateway);
    ClusterFacts {
        server: client.server().to_string(),
        cacerts,
        namespace,
        secrets,
        gateway,
        unlisted: BTreeMap::new(),
    }
}

fn local_root(spec: &MeshSpec) -> LocalRoot {
    let ca = CaDir::open(&spec.ca.dir);
    if !ca.has_root() {
        return LocalRoot::None;
    }
    let path = ca.root_cert_path();
    match std::fs::read_to_string(&path)
        .ok()
        .and_then(|pem| root_fingerprints(&pem).ok())
    {
        Some(fingerprints) => LocalRoot::Read { path, fingerprints },
        None => LocalRoot::Unreadable(path),
    }
}

/// Connects to `src` with a kubeconfig embedded in a remote secret, as istiod would, and asks
/// whether it may list services.
async fn try_token<K: Connector>(connector: &K, src: &str, kubeconfig: &str) -> TokenVerdict {
    let probe = tokio::time::timeout(TOKEN_CHECK_TIMEOUT, async {
        let client = connector
            .connect_yaml(src, kubeconfig, "", "the remote secret")
            .await?;
        client.can_i("list", "", "services", None).await
    })
    .await;
    match probe {
        Ok(Ok(true)) => TokenVerdict::Accepted,
        Ok(Ok(false)) => TokenVerdict::CannotRead,
        Ok(Err(ClusterError::Unauthorized { .. })) => TokenVerdict::Rejected,
        Ok(Err(e)) => TokenVerdict::Failed(checks::with_causes(&e)),
        Err(_) => TokenVerdict::Failed(format!(
            "{src} did not answer within {TOKEN_CHECK_TIMEOUT:?}"
        )),
    }
}
