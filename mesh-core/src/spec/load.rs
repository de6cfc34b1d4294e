//! Reading a mesh file: text → [`MeshFile`] (YAML errors mapped to [`SpecError`] with the field
//! path and line:column) → [`MeshSpec`] (via `validate`), and resolving paths against the file's
//! folder.

use std::path::{Path, PathBuf};

use super::file::MeshFile;
use super::path::path_at;
use super::{Issue, MeshSpec, SpecError, validate};

impl MeshSpec {
    /// Read, parse and validate a mesh file. Relative paths inside it are resolved against the
    /// file's folder.
    ///
    /// ```no_run
    /// let spec = mesh_core::spec::MeshSpec::from_file("fixtures/three-region/mesh.yaml")?;
    /// println!("{} clusters", spec.clusters.len());
    /// # Ok::<(), mesh_core::spec::SpecError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<MeshSpec, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        MeshSpec::from_yaml(&text, &base_dir, &path.display().to_string())
    }

    /// Parse and validate mesh-file text. `base_dir` is what relative paths are resolved
    /// against; `file_label` is how errors name the file.
    ///
    /// ```
    /// use mesh_core::spec::{MeshSpec, SpecError};
    /// let err = MeshSpec::from_yaml("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusterz: []\n", std::path::Path::new("."), "m.yaml").unwrap_err();
    /// assert!(matches!(err, SpecError::UnknownField { .. }));
    /// assert!(err.to_string().starts_with("m.yaml:4:1: clusterz: unknown field `clusterz`"), "{err}");
    /// ```
    pub fn from_yaml(text: &str, base_dir: &Path, file_label: &str) -> Result<MeshSpec, SpecError> {
        let file = parse(text, file_label)?;
        validate::validate(file, base_dir, file_label)
    }
}

fn parse(text: &str, file_label: &str) -> Result<MeshFile, SpecError> {
    let mut options = serde_saphyr::Options::default();
    // Our errors carry their own file:line:column; the snippet would repeat the source text.
    options.with_snippet = false;
    // A key written twice is a mistake in a config file, never an intent.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    if text.trim().is_empty() {
        return Err(SpecError::Syntax {
            file: file_label.to_string(),
            issue: Issue {
                path: "(document)".into(),
                line: 1,
                column: 1,
                message: "the mesh file is empty".into(),
            },
        });
    }
    serde_saphyr::from_str_with_options::<MeshFile>(text, options)
        .map_err(|e| map_yaml_error(text, file_label, e))
}

fn map_yaml_error(text: &str, file_label: &str, err: serde_saphyr::Error) -> SpecError {
    use serde_saphyr::Error as E;
    let err = err.without_snippet();
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let is_unknown_field = matches!(err, E::SerdeUnknownField { .. });
    let path =
        path_at(text, line, column, is_unknown_field).unwrap_or_else(|| "(document)".to_string());
    let file = file_label.to_string();
    match err {
        E::SerdeUnknownField {
            field, expected, ..
        } => SpecError::UnknownField {
            file,
            issue: Issue {
                path,
                line,
                column,
                message: format!("unknown field `{field}`"),
            },
            expected: expected.join(", "),
        },
        E::DuplicateMappingKey { key, .. } => SpecError::Syntax {
            file,
            issue: Issue {
                message: match key {
                    Some(k) => format!("`{k}` is written twice in the same mapping"),
                    None => "a key is written twice in the same mapping".to_string(),
                },
                path,
                line,
                column,
            },
        },
        other => SpecError::Syntax {
            file,
            issue: Issue {
                path,
                line,
                column,
                message: plain_message(&other.to_string()),
            },
        },
    }
}

/// serde-saphyr appends " at line L, column C" to its messages (we print the location in
/// front) and names Rust types where a user thinks of numbers.
fn plain_message(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    match msg {
        "invalid i64" | "invalid u64" | "invalid u32" | "invalid i32" => {
            "expected a whole number".to_string()
        }
        "expected mapping start" => "expected a mapping of `key: value` fields".to_string(),
        "expected sequence start" => "expected a list (`- item` lines or `[a, b]`)".to_string(),
        other => other.to_string(),
    }
}

/// `relative` resolved against `base_dir`; absolute paths are kept, and a leading `~/` is the
/// home directory, as a shell would expand it (kubeconfig paths are usually written that way).
pub(crate) fn resolve(base_dir: &Path, relative: &str) -> PathBuf {
    if let Some(rest) = relative.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        return PathBuf::from(home).join(rest);
    }
    let p = Path::new(relative);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    // `./pki` under `fixtures/x` reads better as `fixtures/x/pki` in messages and PLAN.md.
    let joined: PathBuf = base_dir
        .join(p)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if joined.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use std::path::{Path, PathBuf};

    #[test]
    fn paths_are_relative_to_the_mesh_file() {
        assert_eq!(
            resolve(Path::new("fixtures/x"), "./pki"),
            Path::new("fixtures/x/pki")
        );
        assert_eq!(resolve(Path::new("."), "./pki"), Path::new("pki"));
        assert_eq!(resolve(Path::new("."), "."), Path::new("."));
        assert_eq!(resolve(Path::new("/srv"), "/etc/k"), Path::new("/etc/k"));
    }

    #[test]
    fn a_leading_tilde_is_home() {
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            return;
        };
        assert_eq!(
            resolve(Path::new("/srv"), "~/.kube/config"),
            PathBuf::from(home).join(".kube/config")
        );
    }
}
