//! A live `cacerts` Secret read the way istiod reads it (`reference/istio.md` §1.2): one
//! definition for apply's preflight (which root does it trust?) and for verify (is it complete,
//! does it verify, whose intermediate is it?).

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::Value;

use crate::pki::{self, ClusterBundle};

/// Which file names a `cacerts` Secret uses. istiod picks the `kubernetes.io/tls` layout
/// (cert-manager's) when `tls.crt` is present, its own otherwise.
///
/// ```
/// use mesh_core::verify::cacerts::Layout;
/// assert_eq!(Layout::Istiod.root_file(), "root-cert.pem");
/// assert_eq!(Layout::KubernetesTls.root_file(), "ca.crt");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `ca-cert.pem`, `ca-key.pem`, `root-cert.pem`, `cert-chain.pem`.
    Istiod,
    /// `tls.crt`, `tls.key`, `ca.crt`; the chain is `tls.crt` followed by `ca.crt`.
    KubernetesTls,
}

impl Layout {
    /// The files istiod requires in this layout: signing cert, key, root (and chain).
    pub fn required_files(self) -> &'static [&'static str] {
        match self {
            Layout::Istiod => &[
                "ca-cert.pem",
                "ca-key.pem",
                "root-cert.pem",
                "cert-chain.pem",
            ],
            Layout::KubernetesTls => &["tls.crt", "tls.key", "ca.crt"],
        }
    }

    /// The file holding the root certificate(s).
    pub fn root_file(self) -> &'static str {
        match self {
            Layout::Istiod => "root-cert.pem",
            Layout::KubernetesTls => "ca.crt",
        }
    }
}

/// The PEM files of a `cacerts` Secret, decoded. `Debug` never shows the key.
///
/// ```
/// use base64::Engine as _;
/// use mesh_core::verify::cacerts::{CacertsSecret, Layout};
/// let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
/// let secret = serde_json::json!({"data": {"tls.crt": b64("cert"), "tls.key": b64("s3cr3t"), "ca.crt": b64("root")}});
/// let cacerts = CacertsSecret::read(&secret)?;
/// assert_eq!(cacerts.layout, Layout::KubernetesTls);
/// assert_eq!(cacerts.root_cert.as_deref(), Some("root"));
/// assert_eq!(cacerts.cert_chain.as_deref(), Some("certroot"));
/// assert!(cacerts.missing().is_empty());
/// assert!(!format!("{cacerts:?}").contains("s3cr3t"));
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CacertsSecret {
    /// Which file names it uses.
    pub layout: Layout,
    /// The signing (intermediate) certificate.
    pub ca_cert: Option<String>,
    /// The signing key. Never logged.
    pub ca_key: Option<String>,
    /// The root certificate(s) the mesh trusts.
    pub root_cert: Option<String>,
    /// The chain up to the root.
    pub cert_chain: Option<String>,
}

impl std::fmt::Debug for CacertsSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacertsSecret")
            .field("layout", &self.layout)
            .field("ca_cert", &self.ca_cert.as_ref().map(String::len))
            .field("ca_key", &self.ca_key.as_ref().map(|_| "<redacted>"))
            .field("root_cert", &self.root_cert.as_ref().map(String::len))
            .field("cert_chain", &self.cert_chain.as_ref().map(String::len))
            .finish()
    }
}

impl CacertsSecret {
    /// Reads the Secret as the API server returns it (`data`, base64). An empty file counts as
    /// absent; a file that is not base64 of UTF-8 text is an error naming it, worded to follow
    /// "Secret cacerts ...".
    pub fn read(secret: &Value) -> Result<CacertsSecret, String> {
        let file = |name: &str| -> Result<Option<String>, String> {
            let Some(encoded) = secret
                .get("data")
                .and_then(|d| d.get(name))
                .and_then(Value::as_str)
            else {
                return Ok(None);
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| format!("its {name} is not valid base64"))?;
            let text = String::from_utf8(bytes).map_err(|_| format!("its {name} is not PEM"))?;
            Ok((!text.trim().is_empty()).then_some(text))
        };
        if let Some(tls_crt) = file("tls.crt")? {
            let root = file("ca.crt")?;
            let chain = Some(format!("{tls_crt}{}", root.as_deref().unwrap_or_default()));
            return Ok(CacertsSecret {
                layout: Layout::KubernetesTls,
                ca_key: file("tls.key")?,
                root_cert: root,
                cert_chain: chain,
                ca_cert: Some(tls_crt),
            });
        }
        Ok(CacertsSecret {
            layout: Layout::Istiod,
            ca_cert: file("ca-cert.pem")?,
            ca_key: file("ca-key.pem")?,
            root_cert: file("root-cert.pem")?,
            cert_chain: file("cert-chain.pem")?,
        })
    }

    /// The required files of its layout that are absent or empty.
    pub fn missing(&self) -> Vec<&'static str> {
        let present = match self.layout {
            Layout::Istiod => [
                self.ca_cert.is_some(),
                self.ca_key.is_some(),
                self.root_cert.is_some(),
                self.cert_chain.is_some(),
            ]
            .to_vec(),
            Layout::KubernetesTls => [
                self.ca_cert.is_some(),
                self.ca_key.is_some(),
                self.root_cert.is_some(),
            ]
            .to_vec(),
        };
        self.layout
            .required_files()
            .iter()
            .zip(present)
            .filter(|(_, present)| !present)
            .map(|(name, _)| *name)
            .collect()
    }

    /// The SHA-256 fingerprints of the root(s) it trusts; the error is worded to follow
    /// "Secret cacerts already exists and ...".
    pub fn root_fingerprints(&self) -> Result<BTreeSet<String>, String> {
        let file = self.layout.root_file();
        let pem = self
            .root_cert
            .as_deref()
            .ok_or_else(|| format!("it has no {file}"))?;
        let fingerprints =
            pki::root_fingerprints(pem).map_err(|e| format!("its {file} cannot be read: {e}"))?;
        Ok(fingerprints.into_iter().collect())
    }

    /// The bundle to verify, when every required file is there.
    pub fn bundle(&self, cluster: &str) -> Option<ClusterBundle> {
        Some(ClusterBundle {
            cluster: cluster.to_string(),
            ca_cert_pem: self.ca_cert.clone()?,
            ca_key_pem: self.ca_key.clone()?,
            root_cert_pem: self.root_cert.clone()?,
            cert_chain_pem: self.cert_chain.clone()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn istiod_layout_needs_all_four_files() {
        let secret = json!({"data": {"ca-cert.pem": b64("c"), "root-cert.pem": b64("r"), "ca-key.pem": b64("  \n")}});
        let cacerts = CacertsSecret::read(&secret).unwrap();
        assert_eq!(cacerts.layout, Layout::Istiod);
        assert_eq!(cacerts.missing(), ["ca-key.pem", "cert-chain.pem"]);
        assert!(cacerts.bundle("eu").is_none());
    }

    #[test]
    fn tls_layout_is_chosen_by_tls_crt_and_reads_its_root_from_ca_crt() {
        // istiod's detectSigningCABundleAndCRL: tls.crt present means tls.crt/tls.key/ca.crt,
        // even when a root-cert.pem is there too.
        let secret = json!({"data": {"tls.crt": b64("c"), "tls.key": b64("k"), "root-cert.pem": b64("other")}});
        let cacerts = CacertsSecret::read(&secret).unwrap();
        assert_eq!(cacerts.layout, Layout::KubernetesTls);
        assert_eq!(cacerts.missing(), ["ca.crt"]);
        assert_eq!(cacerts.root_fingerprints().unwrap_err(), "it has no ca.crt");
    }

    #[test]
    fn undecodable_files_are_named() {
        let secret = json!({"data": {"root-cert.pem": "%%%"}});
        assert_eq!(
            CacertsSecret::read(&secret).unwrap_err(),
            "its root-cert.pem is not valid base64"
        );
        let secret = json!({"data": {}});
        assert_eq!(
            CacertsSecret::read(&secret)
                .unwrap()
                .root_fingerprints()
                .unwrap_err(),
            "it has no root-cert.pem"
        );
    }
}
