//! Bring your own root: the openssl-made inputs in `fixtures/byo-root/` (see its README),
//! each accepted or refused with its own error, and nothing written on refusal.

use std::fs;
use std::path::{Path, PathBuf};

use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm, PkiError, cert_info, verify_bundle};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/byo-root")
        .join(name)
}

fn p256() -> CaOptions {
    CaOptions {
        key: KeyAlgorithm::EcdsaP256,
        ..CaOptions::default()
    }
}

/// Imports into a fresh directory; returns it with the result.
fn import(
    cert: &str,
    key: &str,
) -> (
    tempfile::TempDir,
    Result<mesh_core::pki::CertInfo, PkiError>,
) {
    let tmp = tempfile::tempdir().unwrap();
    let result = CaDir::open(tmp.path().join("pki")).import(&fixture(cert), &fixture(key));
    (tmp, result)
}

fn assert_nothing_written(tmp: &tempfile::TempDir) {
    assert!(
        !tmp.path().join("pki").exists(),
        "refusal must not write anything"
    );
}

#[test]
fn an_openssl_rsa_root_imports_with_pkcs8_and_pkcs1_keys_and_signs_intermediates() {
    for key in ["rsa-root-key.pkcs8.pem", "rsa-root-key.pkcs1.pem"] {
        let (tmp, result) = import("rsa-root.pem", key);
        let info = result.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(info.subject, "O=Example Corp, CN=BYO RSA Root CA");
        assert_eq!(info.algorithm, "rsa-4096");

        let ca = CaDir::open(tmp.path().join("pki"));
        let stored_key = fs::read_to_string(ca.root_key_path()).unwrap();
        assert!(
            stored_key.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{key}: stored as PKCS#8"
        );
        let stored_cert = fs::read_to_string(ca.root_cert_path()).unwrap();
        assert_eq!(
            cert_info(&stored_cert).unwrap().fingerprint_sha256,
            cert_info(&fs::read_to_string(fixture("rsa-root.pem")).unwrap())
                .unwrap()
                .fingerprint_sha256,
            "the root certificate is the one given"
        );

        let bundle = ca.ensure(&p256(), &["eu"]).unwrap().remove(0);
        verify_bundle(&bundle).unwrap();
        let inter = cert_info(&bundle.ca_cert_pem).unwrap();
        assert_eq!(inter.issuer, "O=Example Corp, CN=BYO RSA Root CA");
        assert_eq!(inter.signature_algorithm, "sha256WithRSAEncryption");
        assert_eq!(inter.algorithm, "ecdsa-p256");
        assert!(inter.not_after <= info.not_after);
    }
}

#[test]
fn an_openssl_ec_root_imports_with_sec1_and_pkcs8_keys() {
    for key in ["ec-root-key.sec1.pem", "ec-root-key.pkcs8.pem"] {
        let (tmp, result) = import("ec-root.pem", key);
        let info = result.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(info.algorithm, "ecdsa-p256");
        let ca = CaDir::open(tmp.path().join("pki"));
        assert!(
            fs::read_to_string(ca.root_key_path())
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let bundle = ca.ensure(&p256(), &["eu", "us"]).unwrap().remove(1);
        verify_bundle(&bundle).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn the_imported_key_is_private_whatever_the_source_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (tmp, result) = import("ec-root.pem", "ec-root-key.sec1.pem");
    result.unwrap();
    let mode = fs::metadata(tmp.path().join("pki/root-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn encrypted_keys_are_refused_in_both_openssl_forms() {
    for key in [
        "rsa-root-key.encrypted.pem",
        "rsa-root-key.encrypted-legacy.pem",
    ] {
        let (tmp, result) = import("rsa-root.pem", key);
        let err = result.unwrap_err();
        assert!(matches!(err, PkiError::EncryptedKey { .. }), "{key}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(key) && msg.contains("encrypted"), "{msg}");
        assert!(
            !msg.contains("MII"),
            "no key material in the message: {msg}"
        );
        assert_nothing_written(&tmp);
    }
}

#[test]
fn a_certificate_that_is_not_a_ca_is_refused() {
    let (tmp, result) = import("leaf.pem", "leaf-key.pem");
    let err = result.unwrap_err();
    assert!(matches!(err, PkiError::NotCa { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("leaf.pem") && msg.contains("not a CA"),
        "{msg}"
    );
    assert_nothing_written(&tmp);
}

#[test]
fn expired_and_not_yet_valid_roots_are_refused() {
    let (tmp, result) = import("expired-root.pem", "dated-root-key.pem");
    let err = result.unwrap_err();
    assert!(matches!(err, PkiError::Expired { .. }), "{err}");
    assert!(err.to_string().contains("2021-01-01"), "{err}");
    assert_nothing_written(&tmp);

    let (tmp, result) = import("future-root.pem", "dated-root-key.pem");
    let err = result.unwrap_err();
    assert!(matches!(err, PkiError::NotYetValid { .. }), "{err}");
    assert!(err.to_string().contains("2090-01-01"), "{err}");
    assert_nothing_written(&tmp);
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let (tmp, result) = import("rsa-root.pem", "ec-root-key.sec1.pem");
    let err = result.unwrap_err();
    assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("ec-root-key.sec1.pem") && msg.contains("rsa-root.pem"),
        "{msg}"
    );
    assert_nothing_written(&tmp);
}

#[test]
fn a_ca_that_is_not_self_signed_is_refused() {
    let (tmp, result) = import("sub-ca.pem", "sub-ca-key.pem");
    let err = result.unwrap_err();
    assert!(matches!(err, PkiError::NotSelfSigned { .. }), "{err}");
    assert!(
        err.to_string().contains("BYO RSA Root CA"),
        "names the issuer: {err}"
    );
    assert_nothing_written(&tmp);
}

#[test]
fn files_of_the_wrong_kind_are_refused_with_their_name() {
    // A certificate where the key should be.
    let (tmp, result) = import("rsa-root.pem", "rsa-root.pem");
    let err = result.unwrap_err();
    assert!(matches!(err, PkiError::BadKey { .. }), "{err}");
    assert!(err.to_string().contains("no PRIVATE KEY"), "{err}");
    assert_nothing_written(&tmp);

    // A key where the certificate should be.
    let (tmp, result) = import("rsa-root-key.pkcs8.pem", "rsa-root-key.pkcs8.pem");
    let err = result.unwrap_err();
    assert!(matches!(err, PkiError::NoCertificate { .. }), "{err}");
    assert!(!err.to_string().contains("MII"), "{err}");
    assert_nothing_written(&tmp);

    // Two certificates in one file: which one is the root is not guessed.
    let tmp = tempfile::tempdir().unwrap();
    let both = tmp.path().join("both.pem");
    fs::write(
        &both,
        fs::read_to_string(fixture("sub-ca.pem")).unwrap()
            + &fs::read_to_string(fixture("rsa-root.pem")).unwrap(),
    )
    .unwrap();
    let err = CaDir::open(tmp.path().join("pki"))
        .import(&both, &fixture("rsa-root-key.pkcs8.pem"))
        .unwrap_err();
    assert!(
        matches!(err, PkiError::TooManyCertificates { count: 2, .. }),
        "{err}"
    );

    // A file that does not exist.
    let err = CaDir::open(tmp.path().join("pki"))
        .import(&fixture("nope.pem"), &fixture("rsa-root-key.pkcs8.pem"))
        .unwrap_err();
    assert!(matches!(err, PkiError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

#[test]
fn importing_the_same_root_again_is_a_no_op_and_another_root_is_refused() {
    let (tmp, result) = import("ec-root.pem", "ec-root-key.sec1.pem");
    result.unwrap();
    let ca = CaDir::open(tmp.path().join("pki"));
    let before = fs::read(ca.root_key_path()).unwrap();
    ca.import(&fixture("ec-root.pem"), &fixture("ec-root-key.pkcs8.pem"))
        .unwrap();
    assert_eq!(fs::read(ca.root_key_path()).unwrap(), before);

    let err = ca
        .import(&fixture("rsa-root.pem"), &fixture("rsa-root-key.pkcs8.pem"))
        .unwrap_err();
    assert!(matches!(err, PkiError::DifferentRootExists { .. }), "{err}");
    assert!(
        !err.to_string().contains("--force"),
        "import has no --force: {err}"
    );
    assert_eq!(fs::read(ca.root_key_path()).unwrap(), before);
}

#[test]
fn fingerprints_match_openssl() {
    // `openssl x509 -noout -fingerprint -sha256 -in fixtures/byo-root/rsa-root.pem`
    let pem = fs::read_to_string(fixture("rsa-root.pem")).unwrap();
    let info = cert_info(&pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(fixture("rsa-root.pem"))
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let expected = text.trim().rsplit('=').next().unwrap();
            assert_eq!(info.fingerprint_sha256, expected);
        }
        _ => eprintln!("openssl not available; fingerprint cross-check skipped"),
    }
    assert_eq!(info.fingerprint_sha256.len(), 32 * 3 - 1);
    assert_eq!(
        info.days_left,
        (info.not_after - time::OffsetDateTime::now_utc()).whole_days()
    );
}

#[test]
fn a_root_that_expired_in_place_issues_nothing() {
    // The directory's root expired since it was made (here: the expired fixture copied in).
    let tmp = tempfile::tempdir().unwrap();
    fs::copy(
        fixture("expired-root.pem"),
        tmp.path().join("root-cert.pem"),
    )
    .unwrap();
    fs::copy(
        fixture("dated-root-key.pem"),
        tmp.path().join("root-key.pem"),
    )
    .unwrap();
    let ca = CaDir::open(tmp.path());
    for err in [
        ca.ensure_intermediates(&["eu"], &p256(), false)
            .unwrap_err(),
        ca.ensure(&p256(), &["eu"]).unwrap_err(),
    ] {
        assert!(matches!(err, PkiError::Expired { .. }), "{err}");
        assert!(err.to_string().contains("root-cert.pem"), "{err}");
    }
    assert!(!tmp.path().join("eu").exists());
    let report = ca.inspect().unwrap();
    assert!(!report.all_ok());
    assert!(report.root.unwrap().chain.contains("expired"));
}

/// The openssl-made P-256 root (`O=Example Corp`): certificate and key paths.
fn ec_root() -> (PathBuf, PathBuf) {
    (fixture("ec-root.pem"), fixture("ec-root-key.pkcs8.pem"))
}

/// Every path below `dir`, for before/after comparisons.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn a_dry_run_with_a_brought_root_plans_in_memory_and_writes_nothing() {
    use mesh_core::pki::{IntermediateAction, RootAction, RootFiles};
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path().join("pki"));
    let (cert, key) = ec_root();
    let brought = RootFiles {
        cert: &cert,
        key: &key,
    };
    let planned = ca
        .prepare(Some(brought), &p256(), &["eu", "us"], true)
        .unwrap();
    assert!(planned.dry_run);
    assert_eq!(planned.root, RootAction::Imported);
    assert!(
        planned
            .intermediates
            .iter()
            .all(|s| s.action == IntermediateAction::Created)
    );
    for bundle in &planned.bundles {
        verify_bundle(bundle).unwrap();
        assert_eq!(
            cert_info(&bundle.root_cert_pem).unwrap().fingerprint_sha256,
            cert_info(&fs::read_to_string(fixture("ec-root.pem")).unwrap())
                .unwrap()
                .fingerprint_sha256
        );
    }
    assert_eq!(
        tree(tmp.path()),
        Vec::<PathBuf>::new(),
        "a dry run wrote files"
    );

    // A real run afterwards imports; a dry run then finds everything in place.
    let done = ca
        .prepare(Some(brought), &p256(), &["eu", "us"], false)
        .unwrap();
    assert_eq!(done.root, RootAction::Imported);
    let before = tree(tmp.path());
    let again = ca
        .prepare(Some(brought), &p256(), &["eu", "us"], true)
        .unwrap();
    assert_eq!(again.root, RootAction::Unchanged);
    assert!(
        again
            .intermediates
            .iter()
            .all(|s| s.action == IntermediateAction::Unchanged)
    );
    assert_eq!(again.bundles, done.bundles);
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn a_dry_run_reports_the_refusal_a_real_run_would_meet() {
    use mesh_core::pki::RootFiles;
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaDir::open(tmp.path().join("pki"));
    ca.init(&p256(), false).unwrap();
    let (cert, key) = ec_root();
    let brought = RootFiles {
        cert: &cert,
        key: &key,
    };
    let err = ca
        .prepare(Some(brought), &p256(), &["eu"], true)
        .unwrap_err();
    assert!(matches!(err, PkiError::DifferentRootExists { .. }), "{err}");
}

#[test]
fn intermediates_take_the_brought_roots_organisation_by_one_rule() {
    use mesh_core::pki::{RootFiles, intermediate_subject};
    let root_pem = fs::read_to_string(fixture("ec-root.pem")).unwrap();
    let expected = intermediate_subject(&root_pem, "eu", &p256()).unwrap();
    assert_eq!(expected, "O=Example Corp, CN=Intermediate CA, L=eu");

    // Imported then issued (`meshboot ca import` + `ca intermediate`) ...
    let (tmp, result) = import("ec-root.pem", "ec-root-key.pkcs8.pem");
    result.unwrap();
    let ca = CaDir::open(tmp.path().join("pki"));
    ca.ensure_intermediates(&["eu"], &p256(), false).unwrap();
    let issued = cert_info(&ca.bundle("eu").unwrap().ca_cert_pem).unwrap();
    assert_eq!(issued.subject, expected);

    // ... and prepared from a mesh file's `ca.root` (`render`, `apply`), dry or not.
    for dry_run in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, key) = ec_root();
        let brought = RootFiles {
            cert: &cert,
            key: &key,
        };
        let prepared = CaDir::open(tmp.path().join("pki"))
            .prepare(Some(brought), &p256(), &["eu"], dry_run)
            .unwrap();
        let subject = cert_info(&prepared.bundles[0].ca_cert_pem).unwrap().subject;
        assert_eq!(subject, expected, "dry_run={dry_run}");
    }

    // An explicit organisation wins over the root's.
    let named = CaOptions {
        intermediate_org: Some("Mesh Team".into()),
        ..p256()
    };
    assert_eq!(
        intermediate_subject(&root_pem, "eu", &named).unwrap(),
        "O=Mesh Team, CN=Intermediate CA, L=eu"
    );
}
