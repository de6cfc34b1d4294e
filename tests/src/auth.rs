//! Bearer-token authentication: who a request runs as. The tokens themselves (admin, legacy
//! token Secrets, bound TokenRequest tokens) live in [`crate::tokens`].

pub use crate::tokens::Tokens;

/// Who a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The kubeconfig admin: member of `system:masters`, allowed everything.
    Admin,
    /// A service account, authorised through RBAC.
    ServiceAccount {
        /// Namespace of the service account.
        namespace: String,
        /// Name of the service account.
        name: String,
        /// UID of the service account the token was bound to.
        uid: String,
    },
}

impl Identity {
    /// The user name RBAC and error messages use.
    pub fn username(&self) -> String {
        match self {
            Identity::Admin => "kubernetes-admin".into(),
            Identity::ServiceAccount {
                namespace, name, ..
            } => format!("system:serviceaccount:{namespace}:{name}"),
        }
    }

    /// The groups of the user.
    pub fn groups(&self) -> Vec<String> {
        match self {
            Identity::Admin => vec!["system:masters".into(), "system:authenticated".into()],
            Identity::ServiceAccount { namespace, .. } => vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}
