//! Cluster names. Istio uses the cluster name as the remote-secret key, the istiod
//! `clusterName`, the intermediate's `L=` and a directory name, so it must be a DNS-1123 label
//! (Kubernetes' `IsDNS1123Label`, the rule Istio applies to cluster IDs).

use std::fmt;

/// Longest DNS-1123 label.
pub const MAX_CLUSTER_NAME_LEN: usize = 63;

/// A cluster name that is not a DNS-1123 label, with the reason in words.
///
/// ```
/// let err = mesh_core::pki::validate_cluster_name("eu-").unwrap_err();
/// assert_eq!(err.name, "eu-");
/// assert_eq!(err.reason, "it ends with '-'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// Why it is not a DNS-1123 label.
    pub reason: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid cluster name {:?}: {} (a cluster name must be a DNS-1123 label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit)",
            self.name, self.reason
        )
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is a DNS-1123 label and says why when it is not.
///
/// ```
/// use mesh_core::pki::validate_cluster_name;
/// assert!(validate_cluster_name("eu-west-1").is_ok());
/// let err = validate_cluster_name("Eu").unwrap_err();
/// assert!(err.reason.contains("uppercase"));
/// ```
pub fn validate_cluster_name(name: &str) -> Result<(), NameError> {
    let fail = |reason: String| {
        Err(NameError {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("it is empty".into());
    }
    if name.len() > MAX_CLUSTER_NAME_LEN {
        return fail(format!(
            "it is {} characters long, the limit is {MAX_CLUSTER_NAME_LEN}",
            name.len()
        ));
    }
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            continue;
        }
        let what = if c.is_ascii_uppercase() {
            "an uppercase letter".to_string()
        } else {
            format!("the character {c:?}")
        };
        return fail(format!("it contains {what} at position {}", i + 1));
    }
    if name.starts_with('-') {
        return fail("it starts with '-'".into());
    }
    if name.ends_with('-') {
        return fail("it ends with '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_labels() {
        for ok in ["eu", "a", "0", "cluster-1", "us-east-2b", &"a".repeat(63)] {
            assert!(validate_cluster_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn each_bad_name_says_why() {
        let cases = [
            ("", "empty"),
            ("Eu", "uppercase letter at position 1"),
            ("eu_west", "'_' at position 3"),
            ("eu.west", "'.' at position 3"),
            ("-eu", "starts with '-'"),
            ("eu-", "ends with '-'"),
            ("bad/../x", "'/'"),
        ];
        for (name, why) in cases {
            let err = validate_cluster_name(name).unwrap_err();
            assert!(err.reason.contains(why), "{name:?}: {}", err.reason);
            assert!(err.to_string().contains("DNS-1123"), "{err}");
        }
        let long = "a".repeat(64);
        let err = validate_cluster_name(&long).unwrap_err();
        assert!(err.reason.contains("64 characters"), "{}", err.reason);
    }
}
