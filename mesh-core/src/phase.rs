//! The phases of a bootstrap (DESIGN §4), the one vocabulary shared by [`render`](crate::render)
//! (which phase applies each object), [`plan`](crate::plan) (steps per phase and cluster) and
//! [`execute`](crate::execute) (events and reports per phase). It lives on its own so that render
//! and plan both depend on it rather than on each other.

use serde::{Deserialize, Serialize};

/// The phases of a bootstrap, in order. Each completes on every cluster before the next begins,
/// except [`Phase::RemoteSecrets`], which runs per ordered pair of clusters.
///
/// ```
/// use mesh_core::phase::Phase;
/// assert!(Phase::Namespace < Phase::CaCerts);
/// assert_eq!(Phase::CaCerts.as_str(), "cacerts");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Reach every cluster, check permissions and existing state.
    Preflight,
    /// Local: root and one intermediate per cluster.
    Ca,
    /// `istio-system` with its network label.
    Namespace,
    /// The `cacerts` Secret.
    CaCerts,
    /// Helm values for the control plane (files only).
    ControlPlane,
    /// East-west gateway and exposure.
    Gateways,
    /// Reader ServiceAccount, RBAC and token.
    Readers,
    /// Remote secrets, per ordered pair.
    RemoteSecrets,
    /// Cross-cluster checks.
    Verify,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 9] = [
        Phase::Preflight,
        Phase::Ca,
        Phase::Namespace,
        Phase::CaCerts,
        Phase::ControlPlane,
        Phase::Gateways,
        Phase::Readers,
        Phase::RemoteSecrets,
        Phase::Verify,
    ];

    /// The kebab-case name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Ca => "ca",
            Phase::Namespace => "namespace",
            Phase::CaCerts => "cacerts",
            Phase::ControlPlane => "control-plane",
            Phase::Gateways => "gateways",
            Phase::Readers => "readers",
            Phase::RemoteSecrets => "remote-secrets",
            Phase::Verify => "verify",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
