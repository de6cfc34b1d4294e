//! The mesh CA as a user meets it: Istio's profile, verifying chains, cross-cluster trust,
//! idempotent re-runs, private key files, and refusals that name the file at fault.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mesh_core::pki::{
    CaDir, CaOptions, ChainError, ClusterBundle, IntermediateAction, KeyAlgorithm, PkiError,
    cert_info, root_fingerprints, verify_bundle, verify_chain,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry;

fn p256() -> CaOptions {
    CaOptions {
        key: KeyAlgorithm::EcdsaP256,
        ..CaOptions::default()
    }
}

fn ders(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

/// The subject's attribute types, in certificate order, as short names.
fn dn_order(cert: &X509Certificate<'_>) -> Vec<&'static str> {
    cert.subject()
        .iter_attributes()
        .map(|a| {
            let oid = a.attr_type();
            if *oid == oid_registry::OID_X509_ORGANIZATION_NAME {
                "O"
            } else if *oid == oid_registry::OID_X509_COMMON_NAME {
                "CN"
            } else if *oid == oid_registry::OID_X509_LOCALITY_NAME {
                "L"
            } else {
                "?"
            }
        })
        .collect()
}

fn ext_critical(cert: &X509Certificate<'_>, oid: &oid_registry::Oid<'_>) -> Option<bool> {
    cert.get_extension_unique(oid).unwrap().map(|e| e.critical)
}

fn ski(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

fn aki(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

fn validity_days(cert: &X509Certificate<'_>) -> i64 {
    let v = cert.validity();
    (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days()
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let modified = fs::metadata(&p).unwrap().modified().unwrap();
                out.insert(p.clone(), (fs::read(&p).unwrap(), modified));
            }
        }
    }
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn root_and_intermediate_follow_istios_tools_certs_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    let bundle = ca.ensure(&p256(), &["eu"]).unwrap().remove(0);

    let root_der = ders(&bundle.root_cert_pem).remove(0);
    let root = parse(&root_der);
    assert_eq!(dn_order(&root), ["O", "CN"]);
    assert_eq!(root.subject().to_string(), "O=Istio, CN=Root CA");
    assert_eq!(root.issuer().to_string(), "O=Istio, CN=Root CA");
    let bc = root.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca, "root: critical CA:TRUE");
    assert_eq!(bc.value.path_len_constraint, None, "root has no pathlen");
    let ku = root.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.digital_signature() && ku.value.non_repudiation());
    assert!(ku.value.key_encipherment() && ku.value.key_cert_sign());
    assert!(!ku.value.crl_sign(), "the Makefile root has no cRLSign");
    assert!(ski(&root).is_some(), "root has a SKI");
    assert_eq!(aki(&root), None, "root has no AKI, like the Makefile's");
    assert!(root.subject_alternative_name().unwrap().is_none());
    assert_eq!(validity_days(&root), 3650);

    let inter_der = ders(&bundle.ca_cert_pem).remove(0);
    let inter = parse(&inter_der);
    assert_eq!(dn_order(&inter), ["O", "CN", "L"]);
    assert_eq!(
        inter.subject().to_string(),
        "O=Istio, CN=Intermediate CA, L=eu"
    );
    assert_eq!(inter.issuer().as_raw(), root.subject().as_raw());
    let bc = inter.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    let ku = inter.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(
        ku.value.flags,
        root.key_usage().unwrap().unwrap().value.flags
    );
    let san = inter.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        [GeneralName::DNSName("istiod.istio-system.svc")]
    );
    assert!(ski(&inter).is_some());
    assert_eq!(
        aki(&inter),
        ski(&root),
        "intermediate AKI is the root's SKI"
    );
    assert_eq!(
        ext_critical(&inter, &oid_registry::OID_X509_EXT_EXTENDED_KEY_USAGE),
        None
    );
    assert_eq!(validity_days(&inter), 730);
    assert_eq!(
        inter.signature_algorithm.algorithm,
        oid_registry::OID_SIG_ECDSA_WITH_SHA256
    );
    assert_ne!(inter.raw_serial(), root.raw_serial());
    assert!(inter.raw_serial().len() >= 16, "random 128-bit serial");
    assert!(
        bundle.ca_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 key"
    );
}

#[test]
fn rsa_4096_is_the_default_and_signs_with_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = CaDir::open(tmp.path())
        .ensure(&CaOptions::default(), &["eu"])
        .unwrap()
        .remove(0);
    let root = cert_info(&bundle.root_cert_pem).unwrap();
    let inter = cert_info(&bundle.ca_cert_pem).unwrap();
    assert_eq!(root.algorithm, "rsa-4096");
    assert_eq!(inter.algorithm, "rsa-4096");
    assert_eq!(inter.signature_algorithm, "sha256WithRSAEncryption");
    assert!(bundle.ca_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    verify_bundle(&bundle).unwrap();
}

#[test]
fn every_key_algorithm_gives_a_chain_that_verifies() {
    for (alg, sig) in [
        (KeyAlgorithm::Rsa2048, "sha256WithRSAEncryption"),
        (KeyAlgorithm::Rsa3072, "sha256WithRSAEncryption"),
        (KeyAlgorithm::EcdsaP256, "ecdsa-with-SHA256"),
        (KeyAlgorithm::EcdsaP384, "ecdsa-with-SHA384"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let opts = CaOptions {
            key: alg,
            ..CaOptions::default()
        };
        let bundles = CaDir::open(tmp.path())
            .ensure(&opts, &["eu", "us"])
            .unwrap();
        for b in &bundles {
            let chain = verify_bundle(b).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(chain.subjects.len(), 2);
            let info = cert_info(&b.ca_cert_pem).unwrap();
            assert_eq!(info.algorithm, alg.as_str());
            assert_eq!(info.signature_algorithm, sig, "{alg}");
        }
    }
}

#[test]
fn each_cluster_gets_the_four_cacerts_files_in_the_makefile_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path().join("pki"));
    let bundles = ca.ensure(&p256(), &["eu", "ap", "us"]).unwrap();
    let root_pem = fs::read_to_string(tmp.path().join("pki/root-cert.pem")).unwrap();
    assert!(tmp.path().join("pki/root-key.pem").exists());
    for b in &bundles {
        let dir = tmp.path().join("pki").join(&b.cluster);
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("ca-cert.pem"), b.ca_cert_pem);
        assert_eq!(read("ca-key.pem"), b.ca_key_pem);
        assert_eq!(
            read("root-cert.pem"),
            root_pem,
            "{}: copy of the root",
            b.cluster
        );
        let chain = ders(&read("cert-chain.pem"));
        assert_eq!(chain.len(), 2, "cert-chain.pem: intermediate then root");
        assert_eq!(chain[0], ders(&b.ca_cert_pem)[0]);
        assert_eq!(chain[1], ders(&root_pem)[0]);
        assert_eq!(
            cert_info(&b.ca_cert_pem).unwrap().cluster.as_deref(),
            Some(b.cluster.as_str())
        );
    }
    let fps: Vec<_> = bundles
        .iter()
        .map(|b| root_fingerprints(&b.root_cert_pem).unwrap())
        .collect();
    assert!(
        fps.windows(2).all(|w| w[0] == w[1]),
        "one root for the mesh"
    );
}

/// A workload certificate as istiod would issue it from the cluster's intermediate.
fn issue_workload_leaf(bundle: &ClusterBundle) -> CertificateDer<'static> {
    let ca_key = KeyPair::from_pem(&bundle.ca_key_pem).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&bundle.ca_cert_pem, ca_key).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.subject_alt_names = vec![SanType::URI(
        "spiffe://cluster.local/ns/default/sa/default"
            .try_into()
            .unwrap(),
    )];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::hours(24);
    let leaf_key = KeyPair::generate().unwrap();
    params.signed_by(&leaf_key, &issuer).unwrap().der().clone()
}

fn webpki_verify(
    leaf: &CertificateDer<'_>,
    chain_pem: &str,
    roots_pem: &str,
) -> Result<(), webpki::Error> {
    let roots = ders(roots_pem);
    let anchors: Vec<_> = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).unwrap())
        .collect();
    let intermediates = ders(chain_pem);
    let ee = webpki::EndEntityCert::try_from(leaf).unwrap();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        UnixTime::now(),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
}

#[test]
fn a_workload_leaf_from_cluster_a_verifies_against_cluster_bs_root() {
    let tmp = tempfile::tempdir().unwrap();
    let bundles = CaDir::open(tmp.path())
        .ensure(&p256(), &["eu", "us"])
        .unwrap();
    let (eu, us) = (&bundles[0], &bundles[1]);
    let leaf = issue_workload_leaf(eu);

    // What an `us` sidecar does with a peer certificate from `eu`: the peer sends leaf +
    // eu's cert-chain.pem, the sidecar trusts us's root-cert.pem.
    webpki_verify(&leaf, &eu.cert_chain_pem, &us.root_cert_pem)
        .expect("eu workload trusted in us (rustls-webpki)");
    let leaf_pem = pem_of(&leaf);
    let chain = verify_chain(&leaf_pem, &eu.cert_chain_pem, &us.root_cert_pem).unwrap();
    assert_eq!(
        chain.subjects,
        [
            "",
            "O=Istio, CN=Intermediate CA, L=eu",
            "O=Istio, CN=Root CA"
        ]
    );

    // A mesh with another root does not trust it.
    let other = tempfile::tempdir().unwrap();
    let foreign = CaDir::open(other.path())
        .ensure(&p256(), &["us"])
        .unwrap()
        .remove(0);
    assert!(webpki_verify(&leaf, &eu.cert_chain_pem, &foreign.root_cert_pem).is_err());
    assert!(verify_chain(&leaf_pem, &eu.cert_chain_pem, &foreign.root_cert_pem).is_err());
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[test]
fn re_running_leaves_every_file_byte_for_byte_and_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    let first = ca.ensure(&p256(), &["eu", "ap", "us"]).unwrap();
    let before = snapshot(tmp.path());
    std::thread::sleep(std::time::Duration::from_millis(20));

    let second = ca.ensure(&p256(), &["eu", "ap", "us"]).unwrap();
    let statuses = ca
        .ensure_intermediates(&["eu", "ap", "us"], &p256(), false)
        .unwrap();
    assert_eq!(first, second);
    assert!(
        statuses
            .iter()
            .all(|s| s.action == IntermediateAction::Unchanged)
    );
    // Even a different algorithm request keeps a valid intermediate as it is.
    let rsa = CaOptions::default();
    let statuses = ca.ensure_intermediates(&["eu"], &rsa, false).unwrap();
    assert_eq!(statuses[0].action, IntermediateAction::Unchanged);
    assert_eq!(
        before,
        snapshot(tmp.path()),
        "no file rewritten, not even in place"
    );

    // Adding a cluster touches only the new cluster's folder.
    let statuses = ca
        .ensure_intermediates(&["eu", "sa"], &p256(), false)
        .unwrap();
    assert_eq!(statuses[0].action, IntermediateAction::Unchanged);
    assert_eq!(statuses[1].action, IntermediateAction::Created);
    let after = snapshot(tmp.path());
    for (path, v) in &before {
        assert_eq!(after.get(path), Some(v), "{}", path.display());
    }
}

#[cfg(unix)]
#[test]
fn private_keys_are_mode_0600_and_certificates_0644() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    ca.ensure(&p256(), &["eu"]).unwrap();
    assert_eq!(mode(&tmp.path().join("root-key.pem")), 0o600);
    assert_eq!(mode(&tmp.path().join("eu/ca-key.pem")), 0o600);
    for f in [
        "root-cert.pem",
        "eu/ca-cert.pem",
        "eu/cert-chain.pem",
        "eu/root-cert.pem",
    ] {
        assert_eq!(mode(&tmp.path().join(f)), 0o644, "{f}");
    }
    // Replacing goes through a new file too: the mode holds after --force.
    ca.init(&p256(), true).unwrap();
    ca.ensure_intermediates(&["eu"], &p256(), true).unwrap();
    assert_eq!(mode(&tmp.path().join("root-key.pem")), 0o600);
    assert_eq!(mode(&tmp.path().join("eu/ca-key.pem")), 0o600);
    for dir in [tmp.path().to_path_buf(), tmp.path().join("eu")] {
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temp files left behind: {leftovers:?}"
        );
    }
    assert_eq!(
        mode(&tmp.path().join("eu")),
        0o755,
        "cluster folder like mkdir's"
    );
}

#[test]
fn init_refuses_an_existing_root_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    ca.init(&p256(), false).unwrap();
    let before = snapshot(tmp.path());
    let err = ca.init(&p256(), false).unwrap_err();
    assert!(matches!(err, PkiError::RootExists { .. }), "{err}");
    assert!(err.to_string().contains("root-cert.pem"), "{err}");
    assert_eq!(before, snapshot(tmp.path()));

    let old_fp = cert_info(&fs::read_to_string(tmp.path().join("root-cert.pem")).unwrap())
        .unwrap()
        .fingerprint_sha256;
    let new = ca.init(&p256(), true).unwrap();
    assert_ne!(new.fingerprint_sha256, old_fp);
}

#[test]
fn an_intermediate_from_another_root_is_refused_with_its_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    ca.ensure(&p256(), &["eu"]).unwrap();
    // Someone re-creates the root: eu's intermediate now belongs to the old one.
    ca.init(&p256(), true).unwrap();
    let before = snapshot(tmp.path());

    let err = ca
        .ensure_intermediates(&["eu"], &p256(), false)
        .unwrap_err();
    match &err {
        PkiError::ForeignIntermediate { cluster, file, .. } => {
            assert_eq!(cluster, "eu");
            assert_eq!(file, &tmp.path().join("eu/ca-cert.pem"));
        }
        other => panic!("unexpected: {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("eu/ca-cert.pem") && msg.contains("--force"),
        "{msg}"
    );
    assert!(ca.ensure(&p256(), &["eu"]).is_err(), "ensure never forces");
    assert_eq!(before, snapshot(tmp.path()), "nothing written on refusal");

    let statuses = ca.ensure_intermediates(&["eu"], &p256(), true).unwrap();
    assert_eq!(statuses[0].action, IntermediateAction::Replaced);
    verify_bundle(&ca.bundle("eu").unwrap()).unwrap();
}

#[test]
fn bad_cluster_names_and_duplicates_fail_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path().join("pki"));
    let err = ca.ensure(&p256(), &["eu", "US_East"]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PkiError::InvalidClusterName(_)), "{msg}");
    assert!(
        msg.contains("\"US_East\"") && msg.contains("uppercase"),
        "{msg}"
    );
    assert!(!tmp.path().join("pki").exists(), "no root was created");

    let err = ca.ensure(&p256(), &["eu", "us", "eu"]).unwrap_err();
    assert!(
        matches!(err, PkiError::DuplicateCluster(ref c) if c == "eu"),
        "{err}"
    );
    assert!(!tmp.path().join("pki").exists());

    for bad in ["../escape", "", "eu.west", &"x".repeat(64)] {
        assert!(ca.ensure(&p256(), &[bad]).is_err(), "{bad:?}");
    }
    assert!(!tmp.path().join("pki").exists());
}

#[test]
fn a_missing_chain_file_is_rewritten_without_touching_key_or_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    ca.ensure(&p256(), &["eu"]).unwrap();
    let key = fs::read(tmp.path().join("eu/ca-key.pem")).unwrap();
    let cert = fs::read(tmp.path().join("eu/ca-cert.pem")).unwrap();
    let chain = fs::read(tmp.path().join("eu/cert-chain.pem")).unwrap();
    fs::remove_file(tmp.path().join("eu/cert-chain.pem")).unwrap();

    let statuses = ca.ensure_intermediates(&["eu"], &p256(), false).unwrap();
    assert_eq!(statuses[0].action, IntermediateAction::Repaired);
    assert_eq!(fs::read(tmp.path().join("eu/ca-key.pem")).unwrap(), key);
    assert_eq!(fs::read(tmp.path().join("eu/ca-cert.pem")).unwrap(), cert);
    assert_eq!(
        fs::read(tmp.path().join("eu/cert-chain.pem")).unwrap(),
        chain
    );
}

/// Ensures eu's intermediate without `force`, which must be refused as stale; returns the
/// error message.
fn stale_eu_refusal(ca: &CaDir) -> String {
    let err = ca
        .ensure_intermediates(&["eu"], &p256(), false)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PkiError::StaleIntermediate { .. }), "{msg}");
    msg
}

#[test]
fn a_key_that_belongs_to_another_cluster_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    ca.ensure(&p256(), &["eu", "us"]).unwrap();
    fs::copy(
        tmp.path().join("us/ca-key.pem"),
        tmp.path().join("eu/ca-key.pem"),
    )
    .unwrap();
    let msg = stale_eu_refusal(&ca);
    assert!(
        msg.contains("eu/ca-key.pem") && msg.contains("does not match"),
        "{msg}"
    );
    assert!(
        !msg.contains("PRIVATE KEY"),
        "no key material in errors: {msg}"
    );

    let mut bundle = ca.bundle("eu").unwrap();
    let err = mesh_core::pki::verify_bundle(&bundle).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Chain {
                source: ChainError::KeyMismatch,
                ..
            }
        ),
        "{err}"
    );
    bundle.ca_key_pem = ca.bundle("us").unwrap().ca_key_pem;
    assert!(format!("{bundle:?}").contains("redacted"));
}

#[test]
fn an_expired_intermediate_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    ca.ensure(&p256(), &["eu"]).unwrap();
    // Overwrite eu with an intermediate this root signed but that expired yesterday.
    let root_pem = fs::read_to_string(tmp.path().join("root-cert.pem")).unwrap();
    let root_key =
        KeyPair::from_pem(&fs::read_to_string(tmp.path().join("root-key.pem")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&root_pem, root_key).unwrap();
    let mut params = CertificateParams::new(vec!["istiod.istio-system.svc".into()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Istio");
    params
        .distinguished_name
        .push(DnType::CommonName, "Intermediate CA");
    params.distinguished_name.push(DnType::LocalityName, "eu");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(30);
    params.not_after = now - time::Duration::days(1);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    fs::write(tmp.path().join("eu/ca-cert.pem"), cert.pem()).unwrap();
    fs::write(tmp.path().join("eu/ca-key.pem"), key.serialize_pem()).unwrap();
    fs::write(tmp.path().join("eu/cert-chain.pem"), cert.pem() + &root_pem).unwrap();

    let msg = stale_eu_refusal(&ca);
    assert!(
        msg.contains("expired") && msg.contains("eu/ca-cert.pem"),
        "{msg}"
    );
    let report = ca.inspect().unwrap();
    assert!(!report.intermediates[0].chain_ok);
    assert!(report.intermediates[0].chain.contains("expired"));

    let statuses = ca.ensure_intermediates(&["eu"], &p256(), true).unwrap();
    assert_eq!(statuses[0].action, IntermediateAction::Replaced);
    assert!(
        cert_info(&ca.bundle("eu").unwrap().ca_cert_pem)
            .unwrap()
            .days_left
            > 700
    );
}

/// Changes the first letter of the subject's `L=` value inside the signed part of the first
/// certificate in `pem` (the OID 2.5.4.7 is followed by the string tag and length).
fn tamper_locality(pem: &str, letter: u8) -> String {
    let mut der = ders(pem).remove(0).to_vec();
    let at = der
        .windows(3)
        .position(|w| w == [0x55, 0x04, 0x07])
        .expect("an L= attribute");
    der[at + 5] = letter;
    pem_of(&der)
}

#[test]
fn verification_checks_signatures_not_names() {
    let tmp = tempfile::tempdir().unwrap();
    let good = CaDir::open(tmp.path())
        .ensure(&p256(), &["eu"])
        .unwrap()
        .remove(0);
    verify_bundle(&good).unwrap();

    // Same names, other keys: a look-alike root from another mesh.
    let other = tempfile::tempdir().unwrap();
    let lookalike = CaDir::open(other.path())
        .ensure(&p256(), &["eu"])
        .unwrap()
        .remove(0);
    let mut b = good.clone();
    b.root_cert_pem = lookalike.root_cert_pem.clone();
    let err = verify_bundle(&b).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Chain {
                source: ChainError::BadSignature { .. },
                ..
            }
        ),
        "{err}"
    );

    // One byte changed inside the signed part (L=eu -> L=xu): the signature breaks.
    let forged = tamper_locality(&good.ca_cert_pem, b'x');
    assert_eq!(cert_info(&forged).unwrap().cluster.as_deref(), Some("xu"));
    let err = verify_chain(&forged, "", &good.root_cert_pem).unwrap_err();
    assert!(matches!(err, ChainError::BadSignature { .. }), "{err}");

    // cert-chain.pem must start with ca-cert.pem.
    let mut b = good.clone();
    b.cert_chain_pem = good.root_cert_pem.clone() + &good.ca_cert_pem;
    let err = verify_bundle(&b).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Chain {
                source: ChainError::ChainOrder,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_sub_ca_under_a_pathlen_zero_intermediate_is_rejected() {
    // Istio's Makefile.k8s quirk: a "new intermediate" signed by a plugged pathlen:0
    // intermediate loads in istiod but every workload certificate it issues fails.
    let tmp = tempfile::tempdir().unwrap();
    let eu = CaDir::open(tmp.path())
        .ensure(&p256(), &["eu"])
        .unwrap()
        .remove(0);
    let issuer =
        Issuer::from_ca_cert_pem(&eu.ca_cert_pem, KeyPair::from_pem(&eu.ca_key_pem).unwrap())
            .unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "Sub CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let key = KeyPair::generate().unwrap();
    let sub = params.signed_by(&key, &issuer).unwrap();
    let bundle = ClusterBundle {
        cluster: "eu".into(),
        ca_cert_pem: sub.pem(),
        ca_key_pem: key.serialize_pem(),
        root_cert_pem: eu.root_cert_pem.clone(),
        cert_chain_pem: sub.pem() + &eu.cert_chain_pem,
    };
    let err = verify_bundle(&bundle).unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::Chain {
                source: ChainError::PathLenExceeded { path_len: 0, .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn inspect_reports_each_cluster_separately() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path());
    ca.ensure(&p256(), &["ap", "eu", "us"]).unwrap();
    // us's intermediate comes from another mesh.
    let other = tempfile::tempdir().unwrap();
    CaDir::open(other.path()).ensure(&p256(), &["us"]).unwrap();
    for f in [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ] {
        fs::copy(
            other.path().join("us").join(f),
            tmp.path().join("us").join(f),
        )
        .unwrap();
    }
    let report = ca.inspect().unwrap();
    let root = report.root.as_ref().unwrap();
    assert!(root.chain_ok, "{}", root.chain);
    let by_cluster: BTreeMap<_, _> = report
        .intermediates
        .iter()
        .map(|c| (c.cluster.clone().unwrap(), c))
        .collect();
    assert_eq!(by_cluster.keys().collect::<Vec<_>>(), ["ap", "eu", "us"]);
    assert!(by_cluster["ap"].chain_ok && by_cluster["eu"].chain_ok);
    assert!(!by_cluster["us"].chain_ok);
    assert!(
        by_cluster["us"].chain.contains("root other than"),
        "{}",
        by_cluster["us"].chain
    );
    assert_eq!(by_cluster["eu"].info.as_ref().unwrap().days_left, 729);
    assert!(!report.all_ok());
}

#[test]
fn openssl_agrees_that_the_chain_verifies() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("openssl not installed; skipping the cross-check");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    CaDir::open(tmp.path()).ensure(&p256(), &["eu"]).unwrap();
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(tmp.path().join("eu/root-cert.pem"))
        .arg("-untrusted")
        .arg(tmp.path().join("eu/cert-chain.pem"))
        .arg(tmp.path().join("eu/ca-cert.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(tmp.path().join("eu/ca-cert.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(
        text.contains("Digital Signature, Non Repudiation, Key Encipherment, Certificate Sign")
    );
}

/// The openssl steps of Istio's `tools/certs` Makefile, as the shared benchmark script runs
/// them; `None` when the script or openssl is not available here.
fn makefile_baseline_script() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("shared/bench/openssl-ca-baseline.sh"))
        .find(|p| p.is_file())?;
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output();
    openssl.is_ok_and(|o| o.status.success()).then_some(script)
}

#[test]
fn a_ca_directory_made_by_istios_makefile_is_taken_over_unchanged() {
    let Some(script) = makefile_baseline_script() else {
        eprintln!("openssl or shared/bench/openssl-ca-baseline.sh missing; skipping");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    // RSA-2048 keeps the test quick; the profile is the Makefile's either way.
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .args(["2", "2048"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ca = CaDir::open(&dir);
    let before = snapshot(&dir);

    let report = ca.inspect().unwrap();
    assert!(report.all_ok(), "{report:#?}");
    let statuses = ca
        .ensure_intermediates(&["cluster1", "cluster2"], &p256(), false)
        .unwrap();
    assert!(
        statuses
            .iter()
            .all(|s| s.action == IntermediateAction::Unchanged)
    );
    assert_eq!(
        before,
        snapshot(&dir),
        "the Makefile's files are left as they are"
    );

    // And a new cluster joins under the Makefile's root.
    let b = ca.ensure(&p256(), &["cluster1", "eu"]).unwrap().remove(1);
    let chain = verify_bundle(&b).unwrap();
    assert_eq!(chain.subjects[1], "O=Istio, CN=Root CA");
    assert_eq!(
        cert_info(&b.ca_cert_pem).unwrap().signature_algorithm,
        "sha256WithRSAEncryption"
    );
}

#[test]
fn concurrent_runs_on_one_directory_agree_on_one_root() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let bundles: Vec<Vec<ClusterBundle>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| s.spawn(|| CaDir::open(&dir).ensure(&p256(), &["eu", "us"]).unwrap()))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for b in &bundles {
        assert_eq!(
            b, &bundles[0],
            "every run sees the same root and intermediates"
        );
        verify_bundle(&b[0]).unwrap();
    }
}
