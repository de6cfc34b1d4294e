//! Reading kubeconfig *files* (or a kubeconfig held in memory, such as the one in a remote
//! secret), apart from [resolving a context](super::context) in them. Errors never quote the
//! file: it holds credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    let files = files_of(path);
    let stamp = stamps(&files);
    let cached = stamp.as_ref().and_then(|stamp| {
        let cache = PARSED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(&files)
            .filter(|(at, _)| at == stamp)
            .map(|(_, kc)| kc.clone())
    });
    let parsed = match cached {
        Some(kc) => kc,
        None => {
            let kc = match path {
                Some(p) => Kubeconfig::read_from(p),
                None => Kubeconfig::read(),
            }
            .map_err(|e| error(cluster, &label, context, &e))?;
            let kc = std::sync::Arc::new(kc);
            if let Some(stamp) = stamp {
                PARSED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(files, (stamp, kc.clone()));
            }
            kc
        }
    };
    Ok(Source {
        kubeconfig: only_context(&parsed, context),
        label,
    })
}

/// Kubeconfig files parsed in this process, with the size and modification time of each file
/// when it was read: a 100-cluster mesh names the same 100-context file 100 times, and each
/// parse reads every context's CA and credentials. A file that changed is read again.
static PARSED: std::sync::LazyLock<std::sync::Mutex<ParsedFiles>> =
    std::sync::LazyLock::new(Default::default);

type ParsedFiles = std::collections::HashMap<Vec<PathBuf>, (Vec<Stamp>, Arc<Kubeconfig>)>;

/// A file's length and modification time.
type Stamp = (u64, Option<std::time::SystemTime>);

/// The files kubectl reads: `path`, else each of `$KUBECONFIG`, else `~/.kube/config`.
fn files_of(path: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = path {
        return vec![p.to_path_buf()];
    }
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list).collect(),
        None => std::env::var_os("HOME")
            .map(|home| vec![PathBuf::from(home).join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

/// Each file's stamp; `None` (never cached) when one cannot be read.
fn stamps(files: &[PathBuf]) -> Option<Vec<Stamp>> {
    if files.is_empty() {
        return None;
    }
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.len(), meta.modified().ok()))
        })
        .collect()
}

/// The kubeconfig with only `context` (empty: the current one), its cluster and its user,
/// when it has that context; otherwise all of it, so that the error can list the contexts.
fn only_context(kc: &Kubeconfig, context: &str) -> Kubeconfig {
    let name = if context.is_empty() {
        kc.current_context.as_deref().unwrap_or_default()
    } else {
        context
    };
    let Some(entry) = kc.contexts.iter().find(|c| c.name == name) else {
        return kc.clone();
    };
    let (cluster, user) = entry
        .context
        .as_ref()
        .map(|c| (c.cluster.as_str(), c.user.as_deref()))
        .unwrap_or_default();
    Kubeconfig {
        preferences: kc.preferences.clone(),
        clusters: kc
            .clusters
            .iter()
            .filter(|c| c.name == cluster)
            .cloned()
            .collect(),
        auth_infos: kc
            .auth_infos
            .iter()
            .filter(|a| Some(a.name.as_str()) == user)
            .cloned()
            .collect(),
        contexts: vec![entry.clone()],
        current_context: kc.current_context.clone(),
        extensions: kc.extensions.clone(),
        kind: kc.kind.clone(),
        api_version: kc.api_version.clone(),
        other: kc.other.clone(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(contexts: &[&str]) -> String {
        let mut yaml = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
        for c in contexts {
            yaml.push_str(&format!(
                "- name: {c}\n  cluster: {{server: 'https://{c}:6443'}}\n"
            ));
        }
        yaml.push_str("users:\n");
        for c in contexts {
            yaml.push_str(&format!("- name: {c}\n  user: {{token: t-{c}}}\n"));
        }
        yaml.push_str("contexts:\n");
        for c in contexts {
            yaml.push_str(&format!(
                "- name: {c}\n  context: {{cluster: {c}, user: {c}}}\n"
            ));
        }
        yaml
    }

    #[test]
    fn each_context_gets_only_its_entries_and_a_changed_file_is_read_again()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, file(&["eu", "us"]))?;
        let eu = read("eu", Some(&path), "eu")?.kubeconfig;
        assert_eq!(eu.contexts.len(), 1);
        assert_eq!(eu.clusters.len(), 1);
        assert_eq!(eu.auth_infos.len(), 1);
        assert_eq!(eu.auth_infos[0].name, "eu");
        // An unknown context keeps every entry, so its error can name the known ones.
        assert_eq!(read("ap", Some(&path), "ap")?.kubeconfig.contexts.len(), 2);

        // A longer file (another size) is not the one parsed before.
        std::fs::write(&path, file(&["eu", "us", "ap"]))?;
        let ap = read("ap", Some(&path), "ap")?.kubeconfig;
        assert_eq!(ap.contexts.len(), 1);
        assert_eq!(
            ap.clusters[0]
                .cluster
                .as_ref()
                .and_then(|c| c.server.as_deref()),
            Some("https://ap:6443")
        );
        Ok(())
    }
}
