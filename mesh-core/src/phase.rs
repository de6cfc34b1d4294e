//! The phases of a bootstrap (DESIGN §4), the one vocabulary shared by [`render`](crate::render)
//! (which phase applies each object), [`plan`](crate::plan) (steps per phase and cluster) and
//! [`execute`](crate::execute) (events and reports per phase). It lives on its own so that render
//! and plan both depend on it rather than on each other.

use serde::{Deserialize, Serialize};

/// The phases of a bootstrap, in order. A step waits only for what it needs
/// ([`Phase::builds_on`], and per ordered pair of clusters for [`Phase::RemoteSecrets`]); the
/// executor runs namespace and cacerts on every cluster first, then the rest side by side.
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
    /// The per-cluster phases whose steps on the same cluster must be done before this phase's
    /// first step there, in order (each of them builds on the ones before it). The readers
    /// build on the namespace only: a reader token does not need `cacerts` or a gateway, so a
    /// gateway without a load-balancer address does not hold up the remote secrets.
    ///
    /// ```
    /// use mesh_core::phase::Phase;
    /// assert_eq!(Phase::Readers.builds_on(), [Phase::Namespace]);
    /// assert!(Phase::Gateways.builds_on().contains(&Phase::CaCerts));
    /// ```
    pub fn builds_on(self) -> &'static [Phase] {
        match self {
            Phase::CaCerts => &[Phase::Namespace],
            Phase::ControlPlane => &[Phase::Namespace, Phase::CaCerts],
            Phase::Gateways => &[Phase::Namespace, Phase::CaCerts, Phase::ControlPlane],
            Phase::Readers => &[Phase::Namespace],
            Phase::Preflight
            | Phase::Ca
            | Phase::Namespace
            | Phase::RemoteSecrets
            | Phase::Verify => &[],
        }
    }

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
