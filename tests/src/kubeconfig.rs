//! Writing a kubeconfig with one context per emulated cluster.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// What one context needs.
#[derive(Clone)]
pub struct Entry<'a> {
    /// Cluster, context and user name.
    pub name: &'a str,
    /// `https://127.0.0.1:<port>`.
    pub server: &'a str,
    /// Serving CA PEM.
    pub ca_pem: &'a str,
    /// Bearer token.
    pub token: &'a str,
}

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The kubeconfig YAML; `current-context` is the first entry.
pub fn render(entries: &[Entry<'_>]) -> anyhow::Result<String> {
    let clusters: Vec<_> = entries
        .iter()
        .map(|e| json!({"name": e.name, "cluster": {"server": e.server, "certificate-authority-data": STANDARD.encode(e.ca_pem)}}))
        .collect();
    let contexts: Vec<_> = entries
        .iter()
        .map(|e| json!({"name": e.name, "context": {"cluster": e.name, "user": e.name}}))
        .collect();
    let users: Vec<_> = entries
        .iter()
        .map(|e| json!({"name": e.name, "user": {"token": e.token}}))
        .collect();
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "contexts": contexts,
        "users": users,
        "current-context": entries.first().map(|e| e.name).unwrap_or_default(),
        "preferences": {},
    });
    Ok(serde_saphyr::to_string(&doc)?)
}

/// Writes the kubeconfig atomically with mode 0600 (it holds bearer tokens).
pub fn write(path: &Path, entries: &[Entry<'_>]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let text = render(entries)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}
