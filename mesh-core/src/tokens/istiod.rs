//! The Istio caveat of refreshing a remote secret: istiod builds a new client for the remote
//! cluster whenever its kubeconfig changes and swaps it in. Before the fix for istio/istio#61043
//! (in 1.30.4 and 1.31.0; not in 1.29.x as of 1.29.8) the superseded registry's close removed
//! the endpoint shards the new one had just filled, so that cluster's endpoints vanished from
//! the destination's istiod until something else changed them or istiod restarted. The same
//! releases fix #60920 (the remote network's gateway lost after a credential swap).

use serde::Serialize;
use serde_json::Value;

use crate::cluster::{ClusterError, ClusterOps, ObjectRef};

/// The istio issue a refresh can trip over.
pub const SWAP_ISSUE: &str = "istio/istio#61043";

/// The istiod a destination runs, as far as a refresh cares.
///
/// ```
/// use mesh_core::tokens::{SwapRisk, swap_risk};
/// assert_eq!(swap_risk("docker.io/istio/pilot:1.30.3"), SwapRisk::Affected("1.30.3".into()));
/// assert_eq!(swap_risk("docker.io/istio/pilot:1.30.4-distroless"), SwapRisk::Fixed);
/// assert_eq!(swap_risk("gcr.io/istio-release/pilot:1.31.0"), SwapRisk::Fixed);
/// assert!(matches!(swap_risk("pilot:1.31.0-rc.1"), SwapRisk::Unknown(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "risk", content = "version")]
pub enum SwapRisk {
    /// A release with the fix.
    Fixed,
    /// A release without it: each refresh drops the source's endpoints for a moment.
    Affected(String),
    /// The version cannot be told from the image (a digest, a custom tag, a pre-release).
    Unknown(String),
}

/// Judges an istiod image (`…/pilot:<tag>`).
pub fn swap_risk(image: &str) -> SwapRisk {
    let without_digest = image.split('@').next().unwrap_or(image);
    let tag = match without_digest.rsplit_once(':') {
        // A registry port (`host:5000/pilot`) is not a tag.
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => return SwapRisk::Unknown(image.to_string()),
    };
    let (numbers, suffix) = match tag.find('-') {
        Some(i) => (&tag[..i], &tag[i + 1..]),
        None => (tag, ""),
    };
    let parts: Vec<Option<u32>> = numbers.split('.').map(|p| p.parse().ok()).collect();
    let [Some(major), Some(minor), Some(patch)] = parts[..] else {
        return SwapRisk::Unknown(tag.to_string());
    };
    let prerelease = ["alpha", "beta", "rc"]
        .iter()
        .any(|p| suffix.starts_with(p));
    let v = (major, minor, patch);
    // 1.31.0's pre-releases may predate the cherry-pick (#61160); later ones carry master's fix.
    let fixed = (v >= (1, 31, 0) && !(prerelease && v == (1, 31, 0)))
        || ((major, minor) == (1, 30) && patch >= 4 && !prerelease);
    if fixed {
        SwapRisk::Fixed
    } else if prerelease {
        SwapRisk::Unknown(tag.to_string())
    } else {
        SwapRisk::Affected(tag.to_string())
    }
}

/// The image of istiod's `discovery` container (`None` when there is no istiod Deployment in
/// `namespace`, or it has no such container).
pub async fn istiod_image<C: ClusterOps>(
    client: &C,
    namespace: &str,
) -> Result<Option<String>, ClusterError> {
    let deployment = client
        .get(&ObjectRef::namespaced(
            "apps/v1",
            "Deployment",
            namespace,
            "istiod",
        ))
        .await?;
    Ok(deployment.as_ref().and_then(discovery_image))
}

/// The image of the `discovery` container of an istiod Deployment.
pub(crate) fn discovery_image(deployment: &Value) -> Option<String> {
    deployment
        .pointer("/spec/template/spec/containers")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))?
        .get("image")?
        .as_str()
        .map(str::to_string)
}

/// The warning printed before refreshes that would swap istiod's client in `destination`, or
/// `None` when its istiod has the fix (or runs no istiod).
///
/// ```
/// use mesh_core::tokens::{SwapRisk, swap_warning};
/// let w = swap_warning("us", &SwapRisk::Affected("1.29.8".into()), &["eu".to_string()]).unwrap();
/// assert!(w.contains("istio/istio#61043") && w.contains("1.30.4"));
/// assert!(swap_warning("us", &SwapRisk::Fixed, &["eu".to_string()]).is_none());
/// ```
pub fn swap_warning(destination: &str, risk: &SwapRisk, sources: &[String]) -> Option<String> {
    let which = sources.join(", ");
    match risk {
        SwapRisk::Fixed => None,
        SwapRisk::Affected(v) => Some(format!(
            "istiod in {destination} runs Istio {v}: it drops the endpoints of {which} for a moment \
             when their remote secrets change ({SWAP_ISSUE}, fixed in 1.30.4 and 1.31.0), and may \
             keep them dropped until they change again or istiod restarts; upgrade istiod, or \
             refresh in a quiet window and check `istioctl proxy-config endpoints` afterwards"
        )),
        SwapRisk::Unknown(v) => Some(format!(
            "istiod in {destination} runs image tag {v}, whose Istio release cannot be told: before \
             1.30.4 / 1.31.0 istiod drops the endpoints of {which} for a moment when their remote \
             secrets change ({SWAP_ISSUE})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_before_the_fix_are_affected() {
        for affected in [
            "pilot:1.30.3",
            "pilot:1.29.8",
            "pilot:1.22.0-distroless",
            "pilot:1.30.0",
        ] {
            assert!(
                matches!(swap_risk(affected), SwapRisk::Affected(_)),
                "{affected}"
            );
        }
        for fixed in [
            "pilot:1.30.4",
            "pilot:1.30.5",
            "pilot:1.31.0",
            "pilot:1.31.1-debug",
            "pilot:1.32.0-rc.0",
            "registry:5000/istio/pilot:1.31.2",
        ] {
            assert_eq!(swap_risk(fixed), SwapRisk::Fixed, "{fixed}");
        }
        for unknown in [
            "pilot:latest",
            "pilot",
            "pilot@sha256:abcd",
            "registry:5000/pilot",
            "pilot:1.31.0-beta.1",
        ] {
            assert!(
                matches!(swap_risk(unknown), SwapRisk::Unknown(_)),
                "{unknown}"
            );
        }
    }

    #[test]
    fn the_image_is_the_discovery_containers() {
        let d = serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "x:1"}, {"name": "discovery", "image": "docker.io/istio/pilot:1.30.3"}]}}}});
        assert_eq!(
            discovery_image(&d).as_deref(),
            Some("docker.io/istio/pilot:1.30.3")
        );
    }
}
