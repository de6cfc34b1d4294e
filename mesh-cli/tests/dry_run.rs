//! `--dry-run` on every command that writes files (README: "`--dry-run` writes nothing
//! anywhere"): `render`, `ca init`, `ca import`, `ca intermediate` report what they would do,
//! with the same report as a real run (`dry_run: true`), and leave the file system as it was.
//! `durability.rs` watches the same runs with strace for any file created.

use std::path::Path;

mod common;
use common::{fixtures, meshboot_cmd, stderr, stdout, write_mesh};

fn meshboot(dir: &Path, args: &[&str]) -> std::process::Output {
    meshboot_cmd()
        .current_dir(dir)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run meshboot")
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn no_key_in(out: &std::process::Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    assert!(
        !all.contains("PRIVATE KEY"),
        "key material in the output: {all}"
    );
}

#[test]
fn render_dry_run_reports_the_files_and_the_ca_it_would_make_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_mesh(
        dir,
        &dir.join("kubeconfig"),
        &[("eu", "network1", "primary"), ("ap", "network2", "primary")],
        "multi-primary",
        "",
    );
    let before = tree(dir);
    let out = meshboot(
        dir,
        &["render", "-f", "mesh.yaml", "--out-dir", "out", "--dry-run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("dry run: would render 2 cluster(s)"),
        "{text}"
    );
    assert!(text.contains("root would create"), "{text}");
    assert!(text.contains("intermediate of eu: would create"), "{text}");
    assert!(
        text.contains("would write out/eu/01-namespace.yaml"),
        "{text}"
    );
    assert!(text.contains("would write out/PLAN.md"), "{text}");
    no_key_in(&out);
    assert_eq!(tree(dir), before, "a dry run changed the folder");

    // JSON: the same report as a real render, marked as a dry run.
    let out = meshboot(
        dir,
        &[
            "render",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "out",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["ca_root"], "created");
    assert!(
        report["written"].as_array().unwrap().len() > 4,
        "{report:#}"
    );
    no_key_in(&out);
    assert_eq!(tree(dir), before);

    // After a real render, a dry run finds every file unchanged (the CA is on disk now).
    let real = meshboot(dir, &["render", "-f", "mesh.yaml", "--out-dir", "out"]);
    assert!(real.status.success(), "{}", stderr(&real));
    let after = tree(dir);
    let out = meshboot(
        dir,
        &[
            "render",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "out",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ca_root"], "unchanged");
    assert_eq!(report["written"], serde_json::json!([]), "{report:#}");
    assert_eq!(tree(dir), after);
}

#[test]
fn ca_dry_runs_check_everything_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let init = [
        "ca",
        "init",
        "--dir",
        "pki",
        "--key",
        "ecdsa-p256",
        "--dry-run",
    ];
    let out = meshboot(dir, &init);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would create root CA"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("dry run: nothing was written"));
    no_key_in(&out);
    assert!(
        !dir.join("pki").exists(),
        "ca init --dry-run made the directory"
    );

    // The intermediates of a real root: planned, not written; a bad name still fails.
    let out = meshboot(dir, &["ca", "init", "--dir", "pki", "--key", "ecdsa-p256"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = tree(dir);
    let out = meshboot(
        dir,
        &[
            "ca",
            "intermediate",
            "--dir",
            "pki",
            "--cluster",
            "eu",
            "--key",
            "ecdsa-p256",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["intermediates"][0]["action"], "created");
    no_key_in(&out);
    assert_eq!(tree(dir), before, "ca intermediate --dry-run wrote");
    let out = meshboot(
        dir,
        &[
            "ca",
            "intermediate",
            "--dir",
            "pki",
            "--cluster",
            "Not_A_Label",
            "--dry-run",
        ],
    );
    assert!(!out.status.success(), "a bad cluster name passed a dry run");

    // An existing root: refused as without --dry-run, unless --force ("would replace").
    let out = meshboot(dir, &init);
    assert!(!out.status.success(), "{}", stdout(&out));
    let forced = meshboot(
        dir,
        &[
            "ca",
            "init",
            "--dir",
            "pki",
            "--key",
            "ecdsa-p256",
            "--dry-run",
            "--force",
        ],
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(
        stdout(&forced).contains("would replace root CA"),
        "{}",
        stdout(&forced)
    );
    assert_eq!(tree(dir), before);

    // ca import: a brought root is checked (key matches) and not copied.
    let byo = fixtures().join("byo-root");
    let (cert, key) = (byo.join("ec-root.pem"), byo.join("ec-root-key.pkcs8.pem"));
    let out = meshboot(
        dir,
        &[
            "ca",
            "import",
            "--dir",
            "other",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would import root CA"),
        "{}",
        stdout(&out)
    );
    assert!(
        !dir.join("other").exists(),
        "ca import --dry-run copied the root"
    );
    // The wrong key for that certificate fails the dry run as it would the import.
    let wrong = byo.join("rsa-root-key.pkcs8.pem");
    let out = meshboot(
        dir,
        &[
            "ca",
            "import",
            "--dir",
            "other",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            wrong.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(!out.status.success(), "a mismatched key passed the dry run");
    assert!(!dir.join("other").exists());
}
