//! `meshboot ca ...` end to end: the real binary, real files, exit codes and what lands on
//! stdout and stderr.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{run_meshboot as meshboot, stderr, stdout};

/// Runs `meshboot ca <sub> --dir <dir> <extra>...`.
fn ca(sub: &str, dir: &str, extra: &[&str]) -> Output {
    let mut args = vec!["ca", sub, "--dir", dir];
    args.extend_from_slice(extra);
    meshboot(&args)
}

/// `meshboot ca init --dir <dir> --key <key>`, which must succeed.
fn init_root(dir: &str, key: &str) {
    assert!(ca("init", dir, &["--key", key]).status.success());
}

/// `meshboot ca import --dir <dir>` with the byo-root fixtures `cert` and `key`.
fn import(dir: &str, cert: &str, key: &str) -> Output {
    ca(
        "import",
        dir,
        &["--cert", &fixture(cert), "--key", &fixture(key)],
    )
}

/// Fails the test when any output of the command carries key material.
fn assert_no_key_material(o: &Output) {
    for text in [stdout(o), stderr(o)] {
        assert!(
            !text.contains("PRIVATE KEY"),
            "key material printed:\n{text}"
        );
        assert!(!text.contains("MII"), "base64 DER printed:\n{text}");
    }
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/byo-root")
        .join(name)
        .display()
        .to_string()
}

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn init_intermediate_and_inspect_work_together() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();

    let o = ca(
        "init",
        d,
        &["--key", "ecdsa-p256", "--days", "1000", "--org", "Acme"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("O=Acme, CN=Root CA"), "{}", stdout(&o));
    assert!(stdout(&o).contains("ecdsa-p256"));
    assert_no_key_material(&o);

    let o = ca(
        "intermediate",
        d,
        &[
            "--cluster",
            "eu",
            "--cluster",
            "ap",
            "--cluster",
            "us",
            "--key",
            "ecdsa-p256",
            "--days",
            "90",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for c in ["eu", "ap", "us"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(c) && l.contains("created")),
            "{out}"
        );
        assert!(dir.join(c).join("cert-chain.pem").exists());
    }
    assert_no_key_material(&o);

    let o = ca("inspect", d, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("FILE") && table.contains("DAYS LEFT") && table.contains("CHAIN"));
    let eu_row = table
        .lines()
        .find(|l| l.starts_with("eu/ca-cert.pem"))
        .expect(&table);
    assert!(
        eu_row.contains("O=Acme, CN=Intermediate CA, L=eu") && eu_row.contains("89"),
        "{eu_row}"
    );
    assert!(eu_row.trim_end().ends_with("ok"), "{eu_row}");
    assert!(eu_row.contains("pathlen:0"), "{eu_row}");
    let root_row = table
        .lines()
        .find(|l| l.starts_with("root-cert.pem"))
        .expect(&table);
    assert!(
        root_row.contains(" yes "),
        "root is a CA without pathlen: {root_row}"
    );
    assert_no_key_material(&o);

    let o = ca("inspect", d, &["-o", "json"]);
    assert!(o.status.success());
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["root"]["info"]["subject"], "O=Acme, CN=Root CA");
    assert_eq!(json["root"]["info"]["days_left"], 999);
    let inters = json["intermediates"].as_array().unwrap();
    assert_eq!(inters.len(), 3);
    for i in inters {
        assert_eq!(i["chain_ok"], true, "{i}");
        assert_eq!(i["info"]["path_len"], 0);
        assert_eq!(i["info"]["sans"][0], "DNS:istiod.istio-system.svc");
    }
    assert_no_key_material(&o);

    let o = ca("inspect", d, &["--output", "yaml"]);
    assert!(o.status.success());
    let yaml: serde_json::Value = serde_saphyr::from_str(&stdout(&o)).unwrap();
    assert_eq!(yaml, json, "yaml and json carry the same report");
}

#[test]
fn init_twice_refuses_and_changes_nothing_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    init_root(d, "ecdsa-p256");
    let before = files(tmp.path());

    let o = ca("init", d, &["--key", "ecdsa-p256"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.starts_with("error: ") && err.contains("already holds a root CA"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert!(stdout(&o).is_empty(), "errors go to stderr only");
    assert_eq!(files(tmp.path()), before);

    let o = ca("init", d, &["--key", "ecdsa-p256", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("replaced root CA"));
    assert_ne!(files(tmp.path()), before);
}

#[test]
fn intermediate_is_idempotent_and_refuses_a_foreign_one_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    init_root(d, "ecdsa-p256");
    let args = [
        "ca",
        "intermediate",
        "--dir",
        d,
        "--cluster",
        "eu",
        "--key",
        "ecdsa-p256",
    ];
    assert!(meshboot(&args).status.success());
    let before = files(tmp.path());

    let o = meshboot(&args);
    assert!(o.status.success());
    assert!(stdout(&o).contains("unchanged"), "{}", stdout(&o));
    assert_eq!(files(tmp.path()), before, "byte-for-byte unchanged");

    // A new root makes eu's intermediate foreign.
    assert!(
        ca("init", d, &["--key", "ecdsa-p256", "--force"])
            .status
            .success()
    );
    let before = files(tmp.path());
    let o = meshboot(&args);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("eu/ca-cert.pem") && err.contains("not signed by the root"),
        "{err}"
    );
    assert_eq!(files(tmp.path()), before);

    let mut forced = args.to_vec();
    forced.push("--force");
    let o = meshboot(&forced);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("replaced"));
    let o = ca("inspect", d, &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn an_invalid_cluster_name_says_why_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    init_root(d, "ecdsa-p256");
    let before = files(tmp.path());
    let o = ca(
        "intermediate",
        d,
        &["--cluster", "eu", "--cluster", "us_east"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("\"us_east\"") && err.contains("'_'") && err.contains("DNS-1123"),
        "{err}"
    );
    assert_eq!(files(tmp.path()), before, "eu was not created either");
}

#[test]
fn intermediate_without_a_root_points_at_ca_init() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("pki");
    let o = ca("intermediate", d.to_str().unwrap(), &["--cluster", "eu"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("meshboot ca init --dir"),
        "{}",
        stderr(&o)
    );
    assert!(!d.exists());
}

#[test]
fn import_accepts_an_openssl_root_and_refuses_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("pki");
    let d = d.to_str().unwrap();
    let refused = [
        ("rsa-root.pem", "rsa-root-key.encrypted.pem", "encrypted"),
        ("leaf.pem", "leaf-key.pem", "not a CA certificate"),
        ("expired-root.pem", "dated-root-key.pem", "expired"),
        ("future-root.pem", "dated-root-key.pem", "not valid before"),
        ("rsa-root.pem", "ec-root-key.sec1.pem", "does not match"),
        ("sub-ca.pem", "sub-ca-key.pem", "not self-signed"),
    ];
    for (cert, key, why) in refused {
        let o = import(d, cert, key);
        assert!(!o.status.success(), "{cert} + {key} accepted");
        let err = stderr(&o);
        assert!(err.contains(why), "{cert} + {key}: {err}");
        assert_no_key_material(&o);
        assert!(
            !Path::new(d).exists(),
            "{cert} + {key}: something was written"
        );
    }

    let o = import(d, "rsa-root.pem", "rsa-root-key.pkcs1.pem");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("CN=BYO RSA Root CA"));
    assert_no_key_material(&o);
    let o = ca(
        "intermediate",
        d,
        &["--cluster", "eu", "--key", "ecdsa-p256"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ca("inspect", d, &["-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        json["intermediates"][0]["info"]["issuer"],
        "O=Example Corp, CN=BYO RSA Root CA"
    );
}

#[test]
fn inspect_exits_non_zero_and_says_which_chain_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    for dir in [&a, &b] {
        let d = dir.to_str().unwrap();
        init_root(d, "ecdsa-p256");
        let o = ca(
            "intermediate",
            d,
            &["--cluster", "eu", "--cluster", "us", "--key", "ecdsa-p256"],
        );
        assert!(o.status.success());
    }
    // us in a/ is replaced by b/'s us, complete with b's root-cert.pem.
    for f in [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ] {
        fs::copy(b.join("us").join(f), a.join("us").join(f)).unwrap();
    }
    let o = ca("inspect", a.to_str().unwrap(), &[]);
    assert!(!o.status.success());
    let out = stdout(&o);
    let us_row = out
        .lines()
        .find(|l| l.starts_with("us/ca-cert.pem"))
        .expect(&out);
    assert!(us_row.contains("FAILED"), "{us_row}");
    let eu_row = out
        .lines()
        .find(|l| l.starts_with("eu/ca-cert.pem"))
        .expect(&out);
    assert!(eu_row.trim_end().ends_with("ok"), "{eu_row}");
    assert!(
        out.contains("us/ca-cert.pem: chain FAILED: chains to a root other than"),
        "{out}"
    );
    assert!(stderr(&o).contains("1 certificate(s) failed verification"));
    assert_no_key_material(&o);
}

#[test]
fn an_unknown_key_algorithm_lists_the_choices() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ca("init", tmp.path().to_str().unwrap(), &["--key", "ed25519"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("ed25519") && err.contains("ecdsa-p384") && err.contains("rsa-4096"),
        "{err}"
    );
    assert!(files(tmp.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn keys_written_by_the_cli_are_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    init_root(d, "ecdsa-p384");
    assert!(
        ca(
            "intermediate",
            d,
            &["--cluster", "eu", "--key", "ecdsa-p384"]
        )
        .status
        .success()
    );
    for key in ["root-key.pem", "eu/ca-key.pem"] {
        let mode = fs::metadata(tmp.path().join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
}
