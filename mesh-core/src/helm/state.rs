//! What is deployed (`helm list -o json`, `helm get values -o json`) and what to do about it:
//! install, upgrade (and why) or nothing, so a converged re-run makes no new Helm revision.

use serde::Deserialize;
use serde_json::Value;

use super::Release;

/// A release as `helm list -o json` and `helm get values -o json` show it.
///
/// ```
/// let d = mesh_core::helm::Deployed::from_json(
///     r#"[{"name":"istiod","namespace":"istio-system","revision":"3","updated":"","status":"deployed","chart":"istiod-1.28.2","app_version":"1.28.2"}]"#,
///     r#"{"global":{"meshID":"mesh1"}}"#,
/// )?.expect("listed");
/// assert_eq!((d.chart.as_str(), d.revision, d.status.as_str()), ("istiod-1.28.2", 3, "deployed"));
/// assert_eq!(d.values["global"]["meshID"], "mesh1");
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    /// `<chart name>-<chart version>`, as Helm prints it.
    pub chart: String,
    /// The release's latest revision.
    pub revision: u64,
    /// `deployed`, `failed`, `pending-install`, `pending-upgrade`, `pending-rollback`,
    /// `uninstalling`, ...
    pub status: String,
    /// The values the release was installed with (`{}` when none were given).
    pub values: Value,
}

/// One row of `helm list -o json` (other fields ignored).
#[derive(Deserialize)]
pub(super) struct Listed {
    #[serde(default)]
    revision: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    chart: String,
}

impl Deployed {
    /// The release in `helm list` output (an array, empty when not installed), with its values.
    /// Errors are messages about the output (never containing it: values could be large).
    pub fn from_json(list: &str, values: &str) -> Result<Option<Deployed>, String> {
        match parse_list(list)? {
            None => Ok(None),
            Some(listed) => Ok(Some(Deployed::of(listed, values)?)),
        }
    }

    pub(super) fn of(listed: Listed, values: &str) -> Result<Deployed, String> {
        Ok(Deployed {
            chart: listed.chart,
            revision: listed.revision.trim().parse().unwrap_or(0),
            status: listed.status,
            values: parse_values(values)?,
        })
    }
}

/// The first entry of `helm list -o json` (the filter names one release), or `None`.
pub(super) fn parse_list(list: &str) -> Result<Option<Listed>, String> {
    let entries: Vec<Listed> = serde_json::from_str(list.trim())
        .map_err(|e| format!("unexpected `helm list -o json` output: {e}"))?;
    Ok(entries.into_iter().next())
}

/// `helm get values -o json`: an object, or `null` for a release installed without values.
pub(super) fn parse_values(values: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(values.trim())
        .map_err(|e| format!("unexpected `helm get values -o json` output: {e}"))?;
    match v {
        Value::Null => Ok(Value::Object(Default::default())),
        Value::Object(_) => Ok(v),
        _ => Err("unexpected `helm get values -o json` output: not an object".into()),
    }
}

/// What to do with a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not installed yet.
    Install,
    /// Installed, but with another chart version or other values, or its last operation
    /// failed.
    Upgrade,
    /// Installed with this chart version and exactly these values: nothing to do.
    Unchanged,
    /// Another Helm operation is running on it, or one was interrupted: upgrading now would
    /// fail, and the user has to decide (`helm rollback` or `helm uninstall`).
    Blocked,
}

impl Decision {
    /// `install`, `upgrade`, `unchanged`, `blocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Install => "install",
            Decision::Upgrade => "upgrade",
            Decision::Unchanged => "unchanged",
            Decision::Blocked => "blocked",
        }
    }
}

/// Install, upgrade or leave `release`, given what is deployed, with the reason in words.
///
/// ```
/// use mesh_core::helm::{ChartRef, Decision, Deployed, Release, Target, decide};
/// let release = Release {
///     name: "istiod".into(), chart: "istiod".into(), chart_ref: ChartRef::Oci("oci://r/istiod".into()),
///     version: "1.28.2".into(), values: serde_json::json!({"global": {"meshID": "m"}}),
///     target: Target { context: "eu".into(), kubeconfig: None, namespace: "istio-system".into() },
/// };
/// assert_eq!(decide(&release, None).0, Decision::Install);
/// let live = Deployed { chart: "istiod-1.27.3".into(), revision: 2, status: "deployed".into(), values: release.values.clone() };
/// let (d, why) = decide(&release, Some(&live));
/// assert_eq!((d, why.as_str()), (Decision::Upgrade, "chart istiod-1.27.3 is deployed, istiod-1.28.2 is wanted"));
/// let live = Deployed { chart: "istiod-1.28.2".into(), ..live };
/// assert_eq!(decide(&release, Some(&live)).0, Decision::Unchanged);
/// ```
pub fn decide(release: &Release, deployed: Option<&Deployed>) -> (Decision, String) {
    let Some(d) = deployed else {
        return (
            Decision::Install,
            format!("release {} is not installed", release.name),
        );
    };
    let wanted = format!("{}-{}", release.chart, release.version);
    match d.status.as_str() {
        s if s.starts_with("pending") || s == "uninstalling" => {
            return (
                Decision::Blocked,
                format!(
                    "release {} is {s} (revision {}): another Helm operation is running or was interrupted; wait for it, or `helm rollback`/`helm uninstall` it",
                    release.name, d.revision
                ),
            );
        }
        "failed" => {
            return (
                Decision::Upgrade,
                format!(
                    "the last Helm operation on {} failed (revision {})",
                    release.name, d.revision
                ),
            );
        }
        _ => {}
    }
    if d.chart != wanted {
        return (
            Decision::Upgrade,
            format!("chart {} is deployed, {wanted} is wanted", d.chart),
        );
    }
    let mut differ = Vec::new();
    diff(&release.values, &d.values, &mut Vec::new(), &mut differ);
    if !differ.is_empty() {
        const SHOWN: usize = 5;
        let mut keys = differ
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if differ.len() > SHOWN {
            keys.push_str(&format!(" and {} more", differ.len() - SHOWN));
        }
        return (Decision::Upgrade, format!("values differ at {keys}"));
    }
    (
        Decision::Unchanged,
        format!(
            "{wanted} is deployed with these values (revision {})",
            d.revision
        ),
    )
}

/// The key paths where `want` and `have` differ (values as Helm stored them: numbers by value,
/// map order ignored). Only paths are collected, never values.
fn diff(want: &Value, have: &Value, at: &mut Vec<String>, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (k, wv) in w {
                at.push(k.clone());
                match h.get(k) {
                    Some(hv) => diff(wv, hv, at, out),
                    None => out.push(at.join(".")),
                }
                at.pop();
            }
            for k in h.keys().filter(|k| !w.contains_key(*k)) {
                at.push(k.clone());
                out.push(at.join("."));
                at.pop();
            }
        }
        (Value::Array(w), Value::Array(h)) if w.len() == h.len() => {
            let mut inner = Vec::new();
            for (wv, hv) in w.iter().zip(h) {
                diff(wv, hv, at, &mut inner);
            }
            if !inner.is_empty() {
                out.push(display(at));
            }
        }
        (Value::Number(w), Value::Number(h)) => {
            if w != h && w.as_f64() != h.as_f64() {
                out.push(display(at));
            }
        }
        (w, h) => {
            if w != h {
                out.push(display(at));
            }
        }
    }
}

fn display(at: &[String]) -> String {
    if at.is_empty() {
        "(all values)".into()
    } else {
        at.join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::{ChartRef, Target};
    use serde_json::json;

    fn release(values: Value) -> Release {
        Release {
            name: "istio-base".into(),
            chart: "base".into(),
            chart_ref: ChartRef::Oci("oci://r/base".into()),
            version: "1.28.2".into(),
            values,
            target: Target {
                context: "eu".into(),
                kubeconfig: None,
                namespace: "istio-system".into(),
            },
        }
    }

    fn deployed(status: &str, values: Value) -> Deployed {
        Deployed {
            chart: "base-1.28.2".into(),
            revision: 4,
            status: status.into(),
            values,
        }
    }

    #[test]
    fn parses_what_helm_4_prints() {
        // Captured from helm v4.1.4 against the emulator.
        let list = r#"[{"name":"r1","namespace":"default","revision":"3","updated":"2026-12-01 23:02:59.348377706 +0000 UTC","status":"deployed","chart":"tiny-0.1.0","app_version":""}]"#;
        let d = Deployed::from_json(list, "null\n").unwrap().unwrap();
        assert_eq!(d.revision, 3);
        assert_eq!(d.values, json!({}));
        assert_eq!(Deployed::from_json("[]\n", "ignored").unwrap(), None);
        assert!(Deployed::from_json("not json", "{}").is_err());
        assert!(Deployed::from_json(list, "[1]").is_err());
    }

    #[test]
    fn empty_values_equal_no_values() {
        let (d, _) = decide(&release(json!({})), Some(&deployed("deployed", json!({}))));
        assert_eq!(d, Decision::Unchanged);
    }

    #[test]
    fn values_compare_by_meaning_not_by_text() {
        let want = json!({"a": {"x": 1.0, "y": [1, 2]}, "b": "s"});
        let have = json!({"b": "s", "a": {"y": [1, 2], "x": 1}});
        assert_eq!(
            decide(&release(want), Some(&deployed("deployed", have))).0,
            Decision::Unchanged
        );
    }

    #[test]
    fn changed_added_and_removed_keys_are_named() {
        let want = json!({"global": {"network": "n2", "meshID": "m"}, "new": true});
        let have = json!({"global": {"network": "n1", "meshID": "m"}, "old": 1});
        let (d, why) = decide(&release(want), Some(&deployed("deployed", have)));
        assert_eq!(d, Decision::Upgrade);
        assert_eq!(why, "values differ at global.network, new, old");
    }

    #[test]
    fn failed_and_pending_releases() {
        let (d, why) = decide(&release(json!({})), Some(&deployed("failed", json!({}))));
        assert_eq!(d, Decision::Upgrade);
        assert!(why.contains("failed (revision 4)"), "{why}");
        let (d, why) = decide(
            &release(json!({})),
            Some(&deployed("pending-upgrade", json!({}))),
        );
        assert_eq!(d, Decision::Blocked);
        assert!(why.contains("pending-upgrade"), "{why}");
    }
}
