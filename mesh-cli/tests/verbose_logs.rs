//! `-v`/`-vv` and `RUST_LOG`: real runs of ca, apply, verify and remote-secret against the
//! emulator show requests, retries and decisions on stderr, and never a private key or a
//! token (scanned for PEM key headers, key bodies, the emulator's tokens and the header every
//! token it issues starts with).

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use mesh_tests::TestClusters;

mod common;
use common::{ISSUE_EU, install_gateways, meshboot_cmd, start_with_istio, stderr, write_mesh};

fn run(dir: &Path, args: &[&str]) -> Output {
    meshboot_cmd()
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run meshboot")
}

/// Every string a log line must never contain: key headers and bodies of the CA directory,
/// the admin tokens, every token the clusters hold in Secrets (plain and base64), and the
/// fixed header of every token the emulator issues.
fn secrets(dir: &Path, clusters: &TestClusters) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = vec![
        "PRIVATE KEY".to_string(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"RS256","kid":"emulator"}"#),
    ];
    for key in ["pki/root-key.pem", "pki/eu/ca-key.pem", "pki/ap/ca-key.pem"] {
        let pem = std::fs::read_to_string(dir.join(key)).expect("key file");
        // Any full line of the key body is long and random enough to find a leak.
        out.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 40)
                .map(str::to_string),
        );
    }
    for cluster in clusters.clusters() {
        out.push(cluster.admin_token().to_string());
        for secret in cluster.list_objects("v1", "Secret", None) {
            if let Some(token) = secret["data"]["token"].as_str() {
                out.push(token.to_string());
                let plain = b64.decode(token).expect("base64 token");
                out.push(String::from_utf8(plain).expect("utf-8 token"));
            }
        }
    }
    out
}

fn assert_no_secret(label: &str, log: &str, secrets: &[String]) {
    for secret in secrets {
        if let Some(at) = log.find(secret.as_str()) {
            // Say where, without printing the secret itself into the test output.
            let line = log[..at].lines().count();
            panic!("{label}: stderr line {line} shows secret material");
        }
    }
}

#[test]
fn debug_output_of_real_runs_shows_requests_and_decisions_but_no_key_or_token() {
    let clusters = start_with_istio(&["eu", "ap"]);
    install_gateways(&clusters, &[("eu", "network1"), ("ap", "network2")]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kubeconfig = clusters.kubeconfig_path().to_str().unwrap().to_string();
    write_mesh(
        dir,
        clusters.kubeconfig_path(),
        &[("eu", "network1", "primary"), ("ap", "network2", "primary")],
        "multi-primary",
        "",
    );
    let mut logs: Vec<(String, String)> = Vec::new();
    let mut step = |args: &[&str], want_success: bool| {
        let out = run(dir, args);
        let log = stderr(&out);
        assert_eq!(out.status.success(), want_success, "{args:?}:\n{log}");
        logs.push((args.join(" "), log));
    };
    step(
        &["-vv", "ca", "init", "--dir", "pki", "--key", "ecdsa-p256"],
        true,
    );
    step(&[&["-vv"][..], &ISSUE_EU].concat(), true);
    step(
        &[
            "-vv",
            "apply",
            "-f",
            "mesh.yaml",
            "--allow-loopback",
            "--dry-run",
        ],
        true,
    );
    step(
        &["-vv", "apply", "-f", "mesh.yaml", "--allow-loopback"],
        true,
    );
    step(
        &["-vv", "verify", "-f", "mesh.yaml", "--allow-loopback"],
        true,
    );
    step(
        &[
            "-vv",
            "remote-secret",
            "--kubeconfig",
            &kubeconfig,
            "--context",
            "eu",
            "--name",
            "eu",
        ],
        true,
    );
    step(
        &["-vv", "ca", "inspect", "--dir", "pki", "-o", "json"],
        true,
    );

    let secrets = secrets(dir, &clusters);
    for (label, log) in &logs {
        assert_no_secret(label, log, &secrets);
    }
    // By the command line, exactly or (with a trailing `*`) by its start.
    let log_of = |want: &str| {
        logs.iter()
            .find(|(label, _)| match want.strip_suffix('*') {
                Some(prefix) => label.starts_with(prefix),
                None => label == want,
            })
            .map(|(_, log)| log.as_str())
            .unwrap_or_default()
    };
    // Decisions: what the CA step chose for each cluster.
    let apply = log_of("-vv apply -f mesh.yaml --allow-loopback");
    assert!(apply.contains("intermediate decided"), "{apply}");
    assert!(log_of("-vv ca intermediate*").contains("decision=created"));
    let dry = log_of("-vv apply -f mesh.yaml --allow-loopback --dry-run");
    assert!(
        dry.contains("cluster=ap decision=created dry_run=true"),
        "{dry}"
    );
    // Requests: method and URL of every call to a cluster, and the answer's status.
    for label in [
        "-vv apply -f mesh.yaml --allow-loopback",
        "-vv verify*",
        "-vv remote-secret*",
    ] {
        let log = log_of(label);
        assert!(
            log.contains("http.method=GET") && log.contains("http.url=https://127.0.0.1"),
            "{label} shows no requests:\n{log}"
        );
    }
    assert!(apply.contains("http.method=PATCH"), "{apply}");
}

#[test]
fn retries_are_logged_with_the_answer_that_caused_them() {
    let clusters = TestClusters::start(&["eu"]).expect("emulator");
    let tmp = tempfile::tempdir().unwrap();
    write_mesh(
        tmp.path(),
        clusters.kubeconfig_path(),
        &[("eu", "network1", "primary")],
        "multi-primary",
        "",
    );
    clusters.cluster("eu").set_error_rate(1.0);
    let out = run(
        tmp.path(),
        &["-vv", "verify", "-f", "mesh.yaml", "--allow-loopback"],
    );
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("transient answer, retrying"), "{log}");
}

#[test]
fn without_v_stderr_has_no_log_lines_and_rust_log_replaces_v() {
    let tmp = tempfile::tempdir().unwrap();
    let quiet = run(
        tmp.path(),
        &["ca", "init", "--dir", "a", "--key", "ecdsa-p256"],
    );
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "", "no log lines without -v");

    let verbose = run(
        tmp.path(),
        &["-v", "ca", "init", "--dir", "b", "--key", "ecdsa-p256"],
    );
    assert!(
        stderr(&verbose).contains("root CA written"),
        "{}",
        stderr(&verbose)
    );

    let filtered = meshboot_cmd()
        .current_dir(tmp.path())
        .args(["-vv", "ca", "init", "--dir", "c", "--key", "ecdsa-p256"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(filtered.status.success());
    assert_eq!(stderr(&filtered), "", "RUST_LOG=off silences even -vv");
}
