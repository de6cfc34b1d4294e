//! Key algorithms the mesh CA can use: the ones istiod's key helpers accept (RSA and ECDSA).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PkiError;

/// A key algorithm for the root or an intermediate CA.
///
/// ```
/// use mesh_core::pki::KeyAlgorithm;
/// let k: KeyAlgorithm = "ecdsa-p256".parse().unwrap();
/// assert_eq!(k, KeyAlgorithm::EcdsaP256);
/// assert_eq!(KeyAlgorithm::default().to_string(), "rsa-4096");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// RSA 2048-bit, SHA-256 signatures.
    Rsa2048,
    /// RSA 3072-bit, SHA-256 signatures.
    Rsa3072,
    /// RSA 4096-bit, SHA-256 signatures: Istio's Makefile default.
    #[default]
    Rsa4096,
    /// ECDSA P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384,
}

impl KeyAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
    ];

    /// The name used in `mesh.yaml` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
        }
    }

    /// True for the RSA variants.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
        )
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| PkiError::UnknownKeyAlgorithm(s.to_string()))
    }
}

impl Serialize for KeyAlgorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in KeyAlgorithm::ALL {
            assert_eq!(k.as_str().parse::<KeyAlgorithm>().unwrap(), k);
        }
    }

    #[test]
    fn unknown_name_lists_the_choices() {
        let err = "ed25519".parse::<KeyAlgorithm>().unwrap_err().to_string();
        assert!(err.contains("ed25519") && err.contains("ecdsa-p256"), "{err}");
    }
}
