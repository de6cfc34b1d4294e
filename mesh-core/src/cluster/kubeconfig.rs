//! Reading kubeconfig *files* (or a kubeconfig held in memory, such as the one in a remote
//! secret), apart from [resolving a context](super::context) in them. Errors never quote the
//! file: it holds credentials.

use std::path::Path;

use kube::config::Kubeconfig;

use super::ClusterError;

/// A parsed kubeconfig and the words that name where it came from in errors.
pub(super) struct Source {
    pub kubeconfig: Kubeconfig,
    /// The file(s) read, or what held the YAML (e.g. `remote secret istio-remote-secret-eu`).
    pub label: String,
}

/// Reads the kubeconfig at `path`, or (`None`) the files of `$KUBECONFIG`, else
/// `~/.kube/config`, as kubectl does. `cluster` and `context` only name the error.
pub(super) fn read(
    cluster: &str,
    path: Option<&Path>,
    context: &str,
) -> Result<Source, ClusterError> {
    let label = match path {
        Some(p) => p.display().to_string(),
        None => std::env::var("KUBECONFIG")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "~/.kube/config".to_string()),
    };
    let kubeconfig = match path {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    }
    .map_err(|e| error(cluster, &label, context, &e))?;
    Ok(Source { kubeconfig, label })
}

/// Parses a kubeconfig held in memory; `label` names it in errors.
pub(super) fn parse(
    cluster: &str,
    yaml: &str,
    context: &str,
    label: &str,
) -> Result<Source, ClusterError> {
    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|e| error(cluster, label, context, &e))?;
    Ok(Source {
        kubeconfig,
        label: label.to_string(),
    })
}

fn error(
    cluster: &str,
    path: &str,
    context: &str,
    err: &kube::config::KubeconfigError,
) -> ClusterError {
    ClusterError::Kubeconfig {
        cluster: cluster.to_string(),
        path: path.to_string(),
        context: context.to_string(),
        reason: describe(err),
    }
}

/// A kubeconfig error in words that cannot carry the file's content: YAML parse errors may
/// quote the offending line, which can hold a token.
pub(super) fn describe(err: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as E;
    match err {
        E::Parse(_) => "not valid kubeconfig YAML".to_string(),
        E::ReadConfig(io, path) => format!("cannot read {}: {io}", path.display()),
        E::FindPath => "no kubeconfig found ($KUBECONFIG unset and no ~/.kube/config)".into(),
        other => other.to_string(),
    }
}

/// The server of a kubeconfig's current context (its first cluster when no context is
/// current), as istiod would dial it; `None` when the YAML has none.
///
/// ```
/// let yaml = "apiVersion: v1\nkind: Config\nclusters:\n- name: eu\n  cluster: {server: 'https://203.0.113.10:6443'}\n";
/// assert_eq!(mesh_core::cluster::kubeconfig_server(yaml).as_deref(), Some("https://203.0.113.10:6443"));
/// assert_eq!(mesh_core::cluster::kubeconfig_server("not: [a kubeconfig"), None);
/// ```
pub fn kubeconfig_server(yaml: &str) -> Option<String> {
    let kc = Kubeconfig::from_yaml(yaml).ok()?;
    let cluster_name = kc
        .current_context
        .as_deref()
        .and_then(|cur| kc.contexts.iter().find(|c| c.name == cur))
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = match cluster_name {
        Some(name) => kc.clusters.iter().find(|c| c.name == name),
        None => kc.clusters.first(),
    }?;
    cluster.cluster.as_ref()?.server.clone()
}
