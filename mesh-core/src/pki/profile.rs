//! Istio's `tools/certs` X.509 profile (`reference/istio.md` §1.1), as rcgen parameters.
//!
//! Root: `O=<org>, CN=Root CA`, critical `CA:TRUE` without pathlen, critical keyUsage
//! digitalSignature+nonRepudiation+keyEncipherment+keyCertSign, SKI, no AKI.
//! Intermediate: `O=<org>, CN=Intermediate CA, L=<cluster>`, critical `CA:TRUE, pathlen:0`,
//! the same keyUsage, SAN `DNS:istiod.istio-system.svc`, SKI and AKI.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::inspect::{parse_der, pem_certs};
use super::{CaOptions, PkiError};

/// The organisation of a root (and so of its intermediates) when nobody names one: the
/// Makefile's `ROOTCA_ORG` and `INTERMEDIATE_ORG` default.
pub const DEFAULT_ORG: &str = "Istio";

/// Root CA common name, as Istio's Makefile writes it.
pub const ROOT_CN: &str = "Root CA";
/// Intermediate CA common name, as Istio's Makefile writes it.
pub const INTERMEDIATE_CN: &str = "Intermediate CA";
/// The DNS SAN every intermediate carries (`INTERMEDIATE_SAN_DNS` in the Makefile).
pub const ISTIOD_SAN: &str = "istiod.istio-system.svc";

fn key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ]
}

/// A positive 128-bit random serial, like openssl's `-CAcreateserial` start value.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PkiError::Crypto {
        what: "drawing a random serial number".into(),
        reason: "the system random number generator failed".into(),
    })?;
    // Clear the top bit so the DER INTEGER stays positive; keep it non-zero.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Whole seconds: certificates carry no sub-second precision and byte-stable tests are easier.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn validity(now: OffsetDateTime, days: u32) -> (OffsetDateTime, OffsetDateTime) {
    (now, now + Duration::days(i64::from(days)))
}

/// Parameters of a new root CA.
pub(crate) fn root_params(org: &str, days: u32) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.distinguished_name.push(DnType::CommonName, ROOT_CN);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = key_usages();
    params.use_authority_key_identifier_extension = false;
    (params.not_before, params.not_after) = validity(now(), days);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// Self-signs a new root.
pub(crate) fn self_sign_root(
    org: &str,
    days: u32,
    key: &KeyPair,
) -> Result<(Certificate, CertificateParams), PkiError> {
    let params = root_params(org, days)?;
    let cert = params
        .self_signed(key)
        .map_err(|e| PkiError::crypto("signing the root certificate", e))?;
    Ok((cert, params))
}

/// The one rule for the `O=` of a new intermediate, whichever command issues it: the
/// explicit `opts.intermediate_org`, else the signing root's `O=` (a brought `O=Acme` root
/// gives `O=Acme` intermediates), else [`DEFAULT_ORG`].
pub(crate) fn intermediate_org(root_org: Option<&str>, opts: &CaOptions) -> String {
    opts.intermediate_org
        .as_deref()
        .or(root_org)
        .unwrap_or(DEFAULT_ORG)
        .to_string()
}

/// The subject a new intermediate for `cluster` gets under the root in `root_cert_pem`, as
/// [`crate::pki::CertInfo::subject`] spells it: `O=<org>, CN=Intermediate CA, L=<cluster>`,
/// the organisation chosen by one rule (`opts.intermediate_org`, else the root's `O=`, else
/// `Istio`) for `meshboot ca intermediate`, `render` and `apply` alike.
///
/// ```
/// use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, intermediate_subject};
/// let tmp = tempfile::tempdir().unwrap();
/// let ca = CaDir::open(tmp.path());
/// let opts = CaOptions { key: KeyAlgorithm::EcdsaP256, org: "Acme".into(), ..CaOptions::default() };
/// ca.init(&opts, false).unwrap();
/// let root = std::fs::read_to_string(ca.root_cert_path()).unwrap();
/// let defaults = CaOptions::default();
/// assert_eq!(intermediate_subject(&root, "eu", &defaults).unwrap(), "O=Acme, CN=Intermediate CA, L=eu");
/// ```
pub fn intermediate_subject(
    root_cert_pem: &str,
    cluster: &str,
    opts: &CaOptions,
) -> Result<String, PkiError> {
    let der = pem_certs(root_cert_pem, "root certificate")?.swap_remove(0);
    let parsed = parse_der(&der, "root certificate")?;
    let org = intermediate_org(super::inspect::organization(&parsed).as_deref(), opts);
    Ok(format!("O={org}, CN={INTERMEDIATE_CN}, L={cluster}"))
}

/// Issues the intermediate for `cluster`, valid for `days` but never beyond `root_not_after`
/// (a CA cannot usefully outlive the root that vouches for it).
pub(crate) fn issue_intermediate(
    cluster: &str,
    org: &str,
    days: u32,
    root_not_after: OffsetDateTime,
    key: &KeyPair,
    issuer: &Issuer<'_, &KeyPair>,
) -> Result<Certificate, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params
        .distinguished_name
        .push(DnType::CommonName, INTERMEDIATE_CN);
    params
        .distinguished_name
        .push(DnType::LocalityName, cluster);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = key_usages();
    params.use_authority_key_identifier_extension = true;
    let san = ISTIOD_SAN
        .try_into()
        .map_err(|e| PkiError::crypto("encoding the istiod SAN", e))?;
    params.subject_alt_names = vec![SanType::DnsName(san)];
    let (not_before, not_after) = validity(now(), days);
    params.not_before = not_before;
    params.not_after = not_after.min(root_not_after);
    params.serial_number = Some(random_serial()?);
    params
        .signed_by(key, issuer)
        .map_err(|e| PkiError::crypto(format!("signing the intermediate for {cluster:?}"), e))
}
