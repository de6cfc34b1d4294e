//! Key algorithms the mesh CA can use: the ones istiod's key helpers accept (RSA and ECDSA).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use rcgen::KeyPair;
use rustls_pki_types::pem::SectionKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PkiError;
use super::der;

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

impl KeyAlgorithm {
    /// The algorithm of an rcgen key pair, when it is one the mesh CA supports.
    pub(crate) fn of_key_pair(key: &KeyPair) -> Option<KeyAlgorithm> {
        let alg = key.algorithm();
        if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            Some(KeyAlgorithm::EcdsaP256)
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            Some(KeyAlgorithm::EcdsaP384)
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            // rcgen does not expose the modulus size; the public key DER is
            // SEQUENCE { INTEGER n, INTEGER e }, so read it from there.
            match rsa_modulus_bits(key.public_key_raw()) {
                Some(2048) => Some(KeyAlgorithm::Rsa2048),
                Some(3072) => Some(KeyAlgorithm::Rsa3072),
                Some(4096) => Some(KeyAlgorithm::Rsa4096),
                _ => None,
            }
        } else {
            None
        }
    }

    /// Generates a fresh key pair. RSA-4096 takes 0.25–2 s (release build).
    pub(crate) fn generate(self) -> Result<KeyPair, rcgen::Error> {
        match self {
            KeyAlgorithm::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyAlgorithm::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            KeyAlgorithm::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
            }
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        }
    }
}

/// Bits of an RSA modulus, given the PKCS#1 `RSAPublicKey` DER.
pub(crate) fn rsa_modulus_bits(public_key_der: &[u8]) -> Option<usize> {
    let (_, seq, _) = der::tlv(public_key_der)?;
    let (tag, modulus, _) = der::tlv(seq)?;
    if tag != der::INTEGER {
        return None;
    }
    unsigned_bits(modulus)
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
pub(crate) fn unsigned_bits(bytes: &[u8]) -> Option<usize> {
    let start = bytes.iter().position(|&b| b != 0)?;
    let first = bytes[start];
    Some((bytes.len() - start) * 8 - first.leading_zeros() as usize)
}

/// Generates one key per entry of `algs`, on as many threads as the machine has cores: RSA
/// prime search dominates CA creation and is embarrassingly parallel.
pub(crate) fn generate_keys(algs: &[KeyAlgorithm]) -> Result<Vec<KeyPair>, PkiError> {
    let results = super::par::map(algs, |alg| alg.generate()).ok_or_else(|| PkiError::Crypto {
        what: "generating keys".into(),
        reason: "a key-generation worker stopped early".into(),
    })?;
    results
        .into_iter()
        .zip(algs)
        .map(|(r, alg)| r.map_err(|e| PkiError::crypto(format!("generating a {alg} key"), e)))
        .collect()
}

/// A private key read from a PEM file, re-encoded as PKCS#8 (the form meshboot writes).
pub(crate) struct LoadedKey {
    pub(crate) key: KeyPair,
    pub(crate) algorithm: KeyAlgorithm,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Parses a private key in any form istiod accepts: PKCS#8 `PRIVATE KEY`, PKCS#1
/// `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`. Encrypted keys, other PEM blocks and algorithms
/// istiod cannot use (Ed25519, P-521, odd RSA sizes) are refused. `file` names the source in
/// errors; the key itself never appears in one.
pub(crate) fn load_private_key(pem: &str, file: &str) -> Result<LoadedKey, PkiError> {
    let bad = |reason: &str| PkiError::BadKey {
        file: file.to_string(),
        reason: reason.to_string(),
    };
    // Both the PKCS#8 (`ENCRYPTED PRIVATE KEY`) and the legacy OpenSSL (`Proc-Type: 4,ENCRYPTED`)
    // forms are recognised by their armour, before any decoding.
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || pem.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(PkiError::EncryptedKey {
            file: file.to_string(),
        });
    }
    let mut reader = pem.as_bytes();
    let mut found = None;
    let mut other_blocks = 0usize;
    loop {
        match rustls_pki_types::pem::from_buf(&mut reader) {
            Ok(Some((kind, der))) => match kind {
                SectionKind::PrivateKey
                | SectionKind::RsaPrivateKey
                | SectionKind::EcPrivateKey => {
                    if found.is_some() {
                        return Err(bad("holds more than one private key"));
                    }
                    found = Some((kind, der));
                }
                _ => other_blocks += 1,
            },
            Ok(None) => break,
            Err(_) => return Err(bad("is not valid PEM")),
        }
    }
    let Some((kind, der)) = found else {
        return Err(bad(if other_blocks > 0 {
            "holds no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block"
        } else {
            "holds no PEM private key"
        }));
    };
    let pkcs8 = match kind {
        SectionKind::PrivateKey => der,
        SectionKind::RsaPrivateKey => aws_lc_rs::rsa::KeyPair::from_der(&der)
            .map_err(|_| bad("RSA PRIVATE KEY block does not parse as a PKCS#1 RSA key"))?
            .as_der()
            .map_err(|_| bad("RSA key cannot be re-encoded as PKCS#8"))?
            .as_ref()
            .to_vec(),
        _ => sec1_to_pkcs8(&der)
            .ok_or_else(|| bad("EC PRIVATE KEY block is not a P-256 or P-384 key in SEC1 form"))?,
    };
    let key = KeyPair::try_from(pkcs8.as_slice()).map_err(|_| {
        bad("private key does not parse (supported: RSA, ECDSA P-256, ECDSA P-384)")
    })?;
    let algorithm = KeyAlgorithm::of_key_pair(&key).ok_or_else(|| {
        bad("unsupported key type: istiod accepts RSA 2048/3072/4096 and ECDSA P-256/P-384 keys")
    })?;
    Ok(LoadedKey { key, algorithm })
}

fn sec1_to_pkcs8(der: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    };
    [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
    ]
    .into_iter()
    .find_map(|alg| EcdsaKeyPair::from_private_key_der(alg, der).ok())
    .and_then(|kp| kp.to_pkcs8v1().ok())
    .map(|doc| doc.as_ref().to_vec())
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
        assert!(
            err.contains("ed25519") && err.contains("ecdsa-p256"),
            "{err}"
        );
    }
}
