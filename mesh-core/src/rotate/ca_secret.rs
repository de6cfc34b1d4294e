//! The CA directory kept in a Secret, for rotation running as a CronJob on a management
//! cluster (`meshboot render rotation-job`): the job reads the directory from the Secret into a
//! private temp folder, rotates, and writes the result back, so the Secret stays the CA
//! directory of record.
//!
//! Each file becomes one data key, its path with `/` spelled `__` (`eu__previous__ca-cert.pem`;
//! no cluster name or file name contains `__`). `history/` and `retired/` stay out: they only
//! grow, and a Secret holds at most 1 MiB. Without keys (alert-only) `root-key.pem` and every
//! `ca-key.pem` stay out too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use super::RotateError;
use crate::cluster::{ApplyOptions, ApplyOutcome, ClusterOps, ObjectRef};
use crate::files::{self, Access};
use crate::pki::{HISTORY_DIR, PkiError, RETIRED_DIR};

/// The API server's limit on one Secret's data.
pub const SECRET_LIMIT: usize = 1024 * 1024;

/// Where the CA directory lives: `CONTEXT/NAMESPACE/NAME` (the context of `$KUBECONFIG`).
///
/// ```
/// use mesh_core::rotate::CaSecretRef;
/// let r: CaSecretRef = "management/meshboot-rotation/meshboot-rotation-ca".parse()?;
/// assert_eq!((r.context.as_str(), r.namespace.as_str(), r.name.as_str()),
///            ("management", "meshboot-rotation", "meshboot-rotation-ca"));
/// assert!("just-a-name".parse::<CaSecretRef>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSecretRef {
    /// The kubeconfig context of the cluster holding it.
    pub context: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::str::FromStr for CaSecretRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [context, namespace, name]
                if !context.is_empty() && !namespace.is_empty() && !name.is_empty() =>
            {
                Ok(CaSecretRef {
                    context: context.to_string(),
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!(
                "{s:?}: expected CONTEXT/NAMESPACE/NAME, e.g. management/meshboot-rotation/meshboot-rotation-ca"
            )),
        }
    }
}

impl std::fmt::Display for CaSecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.context, self.namespace, self.name)
    }
}

/// The Secret holding the CA directory `dir` (see the module docs); `keys: false` leaves every
/// private key out.
///
/// ```
/// # use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};
/// let tmp = tempfile::tempdir()?;
/// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// CaDir::open(tmp.path()).ensure(&opts, &["eu"])?;
/// let full = mesh_core::rotate::ca_dir_secret(tmp.path(), "ns", "ca", true)?;
/// assert!(full["data"]["eu__ca-key.pem"].is_string());
/// let alert = mesh_core::rotate::ca_dir_secret(tmp.path(), "ns", "ca", false)?;
/// assert!(alert["data"].get("root-key.pem").is_none() && alert["data"].get("eu__ca-key.pem").is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn ca_dir_secret(
    dir: &Path,
    namespace: &str,
    name: &str,
    keys: bool,
) -> Result<Value, PkiError> {
    let mut data = BTreeMap::new();
    collect(dir, dir, keys, &mut data)?;
    let size: usize = data.values().map(String::len).sum();
    if size > SECRET_LIMIT {
        return Err(PkiError::Rotation {
            reason: format!(
                "the CA directory {} takes {} KiB as a Secret, more than the API server's 1 MiB: use ECDSA keys, fewer clusters per job, or the alert-only mode",
                dir.display(),
                size / 1024
            ),
        });
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "meshboot", "app.kubernetes.io/name": "meshboot-rotation"},
        },
        "data": data,
    }))
}

fn collect(
    root: &Path,
    dir: &Path,
    keys: bool,
    data: &mut BTreeMap<String, String>,
) -> Result<(), PkiError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PkiError::io(dir, e))?;
    let mut entries: Vec<_> = entries
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(files::TEMP_PREFIX) || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if name == HISTORY_DIR || (dir == root && name == RETIRED_DIR) {
                continue;
            }
            collect(root, &path, keys, data)?;
            continue;
        }
        if !keys && name.ends_with("key.pem") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("__");
        let bytes = std::fs::read(&path).map_err(|e| PkiError::io(&path, e))?;
        data.insert(key, base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    Ok(())
}

/// Writes the files of a CA-directory Secret into `dir` (keys 0600), refusing keys that would
/// leave it.
pub fn restore_ca_dir(secret: &Value, dir: &Path) -> Result<Vec<PathBuf>, PkiError> {
    restore_ca_dir_with(secret, dir, false)
}

/// [`restore_ca_dir`], or with `dry_run` only its checks: the paths it would write, nothing
/// written (no file, no folder, no temp file).
///
/// ```
/// use serde_json::json;
/// let secret = json!({"data": {"root-cert.pem": "LS0t", "eu__ca-cert.pem": "LS0t"}});
/// let dir = std::path::Path::new("/nonexistent/pki");
/// let mut paths = mesh_core::rotate::restore_ca_dir_with(&secret, dir, true).unwrap();
/// paths.sort();
/// assert_eq!(paths, vec![dir.join("eu/ca-cert.pem"), dir.join("root-cert.pem")]);
/// assert!(!dir.exists());
/// ```
pub fn restore_ca_dir_with(
    secret: &Value,
    dir: &Path,
    dry_run: bool,
) -> Result<Vec<PathBuf>, PkiError> {
    let data = secret
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut written = Vec::new();
    for (key, encoded) in data {
        let parts: Vec<&str> = key.split("__").collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('/'))
        {
            return Err(PkiError::Rotation {
                reason: format!("the CA Secret has a key {key:?} that is not a CA directory path"),
            });
        }
        let path = parts.iter().fold(dir.to_path_buf(), |p, part| p.join(part));
        let bytes = encoded
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| PkiError::Rotation {
                reason: format!("the CA Secret's {key} is not base64"),
            })?;
        let access = if key.ends_with("key.pem") {
            Access::Private
        } else {
            Access::Shared
        };
        if !dry_run {
            files::write_atomic(&path, &bytes, access).map_err(|e| PkiError::io(&path, e))?;
        }
        written.push(path);
    }
    Ok(written)
}

/// Reads the CA Secret `at` through `client` into `dir`; an absent Secret is an error naming
/// it.
pub async fn load_ca_secret<C: ClusterOps>(
    client: &C,
    at: &CaSecretRef,
    dir: &Path,
) -> Result<(), RotateError> {
    load_ca_secret_with(client, at, dir, false).await.map(drop)
}

/// [`load_ca_secret`], returning the files written, or with `dry_run` the files it would
/// write (the Secret is read and checked; nothing is written).
pub async fn load_ca_secret_with<C: ClusterOps>(
    client: &C,
    at: &CaSecretRef,
    dir: &Path,
    dry_run: bool,
) -> Result<Vec<PathBuf>, RotateError> {
    let secret = client
        .get(&ObjectRef::namespaced("v1", "Secret", &at.namespace, &at.name))
        .await?
        .ok_or_else(|| {
            RotateError::Conflict(format!(
                "the CA Secret {at} does not exist: apply the rotation job's management manifests first"
            ))
        })?;
    Ok(restore_ca_dir_with(&secret, dir, dry_run)?)
}

/// Writes `dir` back into the CA Secret `at` (server-side apply, taking over the fields a
/// first `kubectl apply` owned; unchanged when nothing changed). `keys` as when it was made:
/// an alert-only Secret never gains keys.
pub async fn store_ca_secret<C: ClusterOps>(
    client: &C,
    at: &CaSecretRef,
    dir: &Path,
    keys: bool,
) -> Result<ApplyOutcome, RotateError> {
    let secret = ca_dir_secret(dir, &at.namespace, &at.name, keys)?;
    let options = ApplyOptions {
        dry_run: false,
        force: true,
    };
    Ok(client.apply(&secret, &options).await?)
}
