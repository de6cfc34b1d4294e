//! Reading certificates: PEM splitting, parsing with x509-parser, and the human-facing
//! [`CertInfo`] summary that `meshboot ca inspect`, render and verify print.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry;
use x509_parser::public_key::PublicKey;

use super::PkiError;

/// What a certificate says about itself, in the terms `openssl x509 -text` uses.
///
/// ```
/// # use mesh_core::pki::{cert_info, CaDir, CaOptions, KeyAlgorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let ca = CaDir::open(tmp.path());
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let bundles = ca.ensure(&opts, &["eu"]).unwrap();
/// let info = cert_info(&bundles[0].ca_cert_pem).unwrap();
/// assert_eq!(info.cluster.as_deref(), Some("eu"));
/// assert_eq!(info.subject, "O=Istio, CN=Intermediate CA, L=eu");
/// assert_eq!((info.is_ca, info.path_len), (true, Some(0)));
/// assert_eq!(info.algorithm, "ecdsa-p256");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Subject DN in certificate order, e.g. `O=Istio, CN=Root CA`.
    pub subject: String,
    /// Issuer DN in certificate order.
    pub issuer: String,
    /// The `O=` of the subject.
    pub organization: Option<String>,
    /// The `L=` of the subject: the cluster an Istio intermediate belongs to.
    pub cluster: Option<String>,
    /// Serial number, colon-separated hex.
    pub serial: String,
    /// Key algorithm: `rsa-4096`, `ecdsa-p256`, ... (names outside [`KeyAlgorithm`] for keys
    /// meshboot does not create, e.g. `rsa-1024`, `ed25519`).
    pub algorithm: String,
    /// Signature algorithm, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA384`.
    pub signature_algorithm: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days from now until `not_after` (negative once expired).
    pub days_left: i64,
    /// basicConstraints `CA:TRUE`.
    pub is_ca: bool,
    /// basicConstraints pathlen, when set.
    pub path_len: Option<u32>,
    /// keyUsage bits, in openssl's camelCase names.
    pub key_usage: Vec<String>,
    /// Subject alternative names, as `DNS:...`, `URI:...`, `IP:...`, `email:...`.
    pub sans: Vec<String>,
    /// Subject key identifier, colon-separated hex.
    pub subject_key_id: Option<String>,
    /// Authority key identifier (key id), colon-separated hex.
    pub authority_key_id: Option<String>,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// SHA-256 over the DER, colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256`).
    pub fingerprint_sha256: String,
}

/// Summarises the first certificate of `pem`.
///
/// ```
/// use mesh_core::pki::cert_info;
/// let err = cert_info("not a certificate").unwrap_err();
/// assert!(err.to_string().contains("no PEM CERTIFICATE"));
/// ```
pub fn cert_info(pem: &str) -> Result<CertInfo, PkiError> {
    let certs = pem_certs(pem, "certificate")?;
    info_of_der(&certs[0], "certificate", OffsetDateTime::now_utc())
}

/// SHA-256 fingerprints of every certificate in `pem` (a root bundle may hold several roots,
/// e.g. during root rotation), in file order.
///
/// ```
/// # use mesh_core::pki::{root_fingerprints, CaDir, CaOptions, KeyAlgorithm};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, ..CaOptions::default() };
/// let bundles = CaDir::open(tmp.path()).ensure(&opts, &["eu", "us"]).unwrap();
/// let eu = root_fingerprints(&bundles[0].root_cert_pem).unwrap();
/// let us = root_fingerprints(&bundles[1].root_cert_pem).unwrap();
/// assert_eq!(eu.len(), 1);
/// assert_eq!(eu, us); // one mesh, one root
/// ```
pub fn root_fingerprints(pem: &str) -> Result<Vec<String>, PkiError> {
    Ok(pem_certs(pem, "root certificate")?
        .iter()
        .map(|der| fingerprint(der))
        .collect())
}

/// Every CERTIFICATE block of `pem`, at least one. `file` labels errors.
pub(crate) fn pem_certs(pem: &str, file: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::BadCertificate {
            file: file.to_string(),
            reason: format!("invalid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(PkiError::NoCertificate {
            file: file.to_string(),
        });
    }
    Ok(certs)
}

/// Parses one DER certificate. `file` labels errors.
pub(crate) fn parse_der<'a>(der: &'a [u8], file: &str) -> Result<X509Certificate<'a>, PkiError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(PkiError::BadCertificate {
            file: file.to_string(),
            reason: "trailing bytes after the certificate".into(),
        }),
        Err(e) => Err(PkiError::BadCertificate {
            file: file.to_string(),
            reason: e.to_string(),
        }),
    }
}

pub(crate) fn info_of_der(
    der: &[u8],
    file: &str,
    now: OffsetDateTime,
) -> Result<CertInfo, PkiError> {
    let cert = parse_der(der, file)?;
    let bad = |reason: String| PkiError::BadCertificate {
        file: file.to_string(),
        reason,
    };
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    let basic = cert
        .basic_constraints()
        .map_err(|e| bad(format!("basicConstraints: {e}")))?;
    let key_usage = match cert
        .key_usage()
        .map_err(|e| bad(format!("keyUsage: {e}")))?
    {
        Some(ku) => {
            let ku = ku.value;
            [
                (ku.digital_signature(), "digitalSignature"),
                (ku.non_repudiation(), "nonRepudiation"),
                (ku.key_encipherment(), "keyEncipherment"),
                (ku.data_encipherment(), "dataEncipherment"),
                (ku.key_agreement(), "keyAgreement"),
                (ku.key_cert_sign(), "keyCertSign"),
                (ku.crl_sign(), "cRLSign"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name.to_string())
            .collect()
        }
        None => Vec::new(),
    };
    let sans = match cert
        .subject_alternative_name()
        .map_err(|e| bad(format!("subjectAltName: {e}")))?
    {
        Some(san) => san.value.general_names.iter().map(general_name).collect(),
        None => Vec::new(),
    };
    let mut subject_key_id = None;
    let mut authority_key_id = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(hex(id.0, false)),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key_id = aki.key_identifier.as_ref().map(|id| hex(id.0, false));
            }
            _ => {}
        }
    }
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        organization: organization(&cert),
        cluster: locality(&cert),
        serial: hex(cert.raw_serial(), false),
        algorithm: key_algorithm_name(&cert),
        signature_algorithm: signature_algorithm_name(&cert),
        not_before,
        not_after,
        days_left: (not_after - now).whole_days(),
        is_ca: basic.as_ref().is_some_and(|b| b.value.ca),
        path_len: basic.and_then(|b| b.value.path_len_constraint),
        key_usage,
        sans,
        subject_key_id,
        authority_key_id,
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        fingerprint_sha256: fingerprint(der),
    })
}

/// The first `L=` of the subject.
pub(crate) fn locality(cert: &X509Certificate<'_>) -> Option<String> {
    first_text(cert.subject().iter_locality())
}

/// The first `O=` of the subject.
pub(crate) fn organization(cert: &X509Certificate<'_>) -> Option<String> {
    first_text(cert.subject().iter_organization())
}

fn first_text<'a>(
    mut values: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Option<String> {
    values
        .next()
        .and_then(|v| v.as_str().ok())
        .map(str::to_string)
}

fn key_algorithm_name(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => match super::key::unsigned_bits(rsa.modulus) {
            Some(bits) => format!("rsa-{bits}"),
            None => "rsa".into(),
        },
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == oid_registry::OID_EC_P256 => "ecdsa-p256".into(),
                Some(c) if c == oid_registry::OID_NIST_EC_P384 => "ecdsa-p384".into(),
                Some(c) if c == oid_registry::OID_NIST_EC_P521 => "ecdsa-p521".into(),
                Some(c) => format!("ecdsa-{}", c.to_id_string()),
                None => "ecdsa".into(),
            }
        }
        _ if spki.algorithm.algorithm == oid_registry::OID_SIG_ED25519 => "ed25519".into(),
        _ => format!("unknown ({})", spki.algorithm.algorithm.to_id_string()),
    }
}

fn signature_algorithm_name(cert: &X509Certificate<'_>) -> String {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        _ => return oid,
    };
    name.to_string()
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(ip);
                format!("IP:{}", std::net::Ipv6Addr::from(b))
            }
            _ => format!("IP:{}", hex(ip, false)),
        },
        GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
        other => format!("{other:?}"),
    }
}

/// SHA-256 fingerprint of DER bytes, `AB:CD:...`.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    hex(digest.as_ref(), true)
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}
