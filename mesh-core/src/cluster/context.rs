//! Resolving one context of a kubeconfig into what a client needs: the API server URL as the
//! file states it, and a `kube::Config` with our timeouts (and without kube's own retries,
//! which would hide `Retry-After` and the attempt count from [`transport`](super::transport)).

use std::time::Duration;

use kube::config::KubeConfigOptions;

use super::ClusterError;
use super::kubeconfig::{self, Source};

/// A context ready to connect.
pub(super) struct Resolved {
    /// The server URL exactly as the kubeconfig states it.
    pub server: String,
    pub config: kube::Config,
}

/// Picks `context` (empty: the file's current context, never another one by accident) and
/// builds its client configuration.
pub(super) async fn resolve(
    cluster: &str,
    source: Source,
    context: &str,
) -> Result<Resolved, ClusterError> {
    let Source {
        kubeconfig: kc,
        label,
    } = source;
    let bad = |reason: String| ClusterError::Kubeconfig {
        cluster: cluster.to_string(),
        path: label.clone(),
        context: context.to_string(),
        reason,
    };
    let context_name = if context.is_empty() {
        kc.current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("no context given and no current-context set".into()))?
    } else {
        context.to_string()
    };
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| {
            let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
            bad(format!(
                "context {context_name:?} not found (contexts: {})",
                known.join(", ")
            ))
        })?;
    let server = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("cluster entry {:?} has no server", ctx.cluster)))?;
    let opts = KubeConfigOptions {
        context: Some(context_name.clone()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| bad(kubeconfig::describe(&e)))?;
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    Ok(Resolved { server, config })
}
