//! What every command promises alike: `-o` is the output format (text, json, yaml; the
//! same report in each), folders are `--out-dir`, completions and man pages come from the
//! same definitions, and the exit codes are documented once (`--help`, README) and kept.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use serde_json::Value;

mod common;
use common::{ISSUE_EU, fixtures, meshboot_cmd, start_with_istio, stderr, stdout, write_mesh};

fn run(dir: &Path, args: &[&str]) -> Output {
    meshboot_cmd()
        .current_dir(dir)
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run meshboot")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON expected ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

fn yaml(out: &Output) -> Value {
    serde_saphyr::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("YAML expected ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

fn three_region() -> PathBuf {
    fixtures().join("three-region/mesh.yaml")
}

#[test]
fn render_o_with_a_folder_says_to_use_out_dir_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = three_region().display().to_string();
    let out = run(
        tmp.path(),
        &["render", "-f", &file, "-o", "out/three-region"],
    );
    assert_eq!(out.status.code(), Some(2), "usage error: {}", stderr(&out));
    assert!(
        stderr(&out).contains("`--out-dir out/three-region`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn exit_codes_are_0_done_1_failed_2_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let valid = three_region().display().to_string();
    let invalid = fixtures().join("invalid/api-server-not-https.yaml");
    let invalid = invalid.display().to_string();
    assert_eq!(
        run(tmp.path(), &["validate", "-f", &valid]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(tmp.path(), &["validate", "-f", &invalid]).status.code(),
        Some(1)
    );
    assert_eq!(
        run(tmp.path(), &["validate", "--no-such-flag"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(tmp.path(), &["no-such-command"]).status.code(), Some(2));
    assert_eq!(
        run(tmp.path(), &["validate", "-f", &valid, "-o", "xml"])
            .status
            .code(),
        Some(2)
    );
}

/// The `Exit codes:` block of a help text.
fn exit_codes(help: &str) -> &str {
    let start = help.find("Exit codes:").expect("help lists the exit codes");
    help[start..].trim_end()
}

#[test]
fn the_exit_codes_in_every_help_are_the_ones_in_the_readme() {
    let tmp = tempfile::tempdir().unwrap();
    let top = stdout(&run(tmp.path(), &["--help"]));
    let block = exit_codes(&top).to_string();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    assert!(readme.contains(&block), "README must quote:\n{block}");
    for sub in [
        &["ca", "init"][..],
        &["ca", "inspect"],
        &["render"],
        &["validate"],
        &["apply"],
        &["remote-secret"],
        &["verify"],
        &["completion"],
        &["man"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let help = stdout(&run(tmp.path(), &args));
        assert_eq!(exit_codes(&help), block, "{sub:?}");
    }
}

#[test]
fn offline_commands_report_the_same_result_in_json_and_yaml() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = three_region().display().to_string();

    let v = run(dir, &["validate", "-f", &file, "-o", "json"]);
    let report = json(&v);
    assert_eq!(report["valid"], true);
    assert_eq!(
        report["mesh"]["clusters"],
        serde_json::json!(["eu", "ap", "us"])
    );
    assert_eq!(
        yaml(&run(dir, &["validate", "-f", &file, "-o", "yaml"])),
        report
    );
    let text = stdout(&run(dir, &["validate", "-f", &file]));
    assert!(
        text.starts_with("ok: ") && text.contains("3 cluster(s)"),
        "{text}"
    );

    let invalid = fixtures().join("invalid/api-server-not-https.yaml");
    let bad = run(
        dir,
        &["validate", "-f", invalid.to_str().unwrap(), "-o", "json"],
    );
    assert_eq!(bad.status.code(), Some(1));
    let bad = json(&bad);
    assert_eq!(bad["valid"], false);
    assert!(
        bad["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{bad}"
    );

    let init_args = [
        "ca",
        "init",
        "--dir",
        "pki",
        "--key",
        "ecdsa-p256",
        "-o",
        "json",
    ];
    let init = json(&run(dir, &init_args));
    assert_eq!(init["action"], "created");
    assert_eq!(init["root"]["subject"], "O=Istio, CN=Root CA");
    let again = run(dir, &init_args);
    assert_eq!(again.status.code(), Some(1), "an existing root is refused");
    assert_eq!(stdout(&again), "", "no half report on failure");

    let args = ISSUE_EU;
    let issued = json(&run(dir, &[&args[..], &["-o", "json"]].concat()));
    assert_eq!(issued["intermediates"][0]["cluster"], "eu");
    assert_eq!(issued["intermediates"][0]["action"], "created");
    let kept = yaml(&run(dir, &[&args[..], &["-o", "yaml"]].concat()));
    assert_eq!(kept["intermediates"][0]["action"], "unchanged");

    let inspect = json(&run(dir, &["ca", "inspect", "--dir", "pki", "-o", "json"]));
    assert_eq!(
        yaml(&run(dir, &["ca", "inspect", "--dir", "pki", "-o", "yaml"])),
        inspect
    );
    // `table`, the old name of the text format, still works.
    let table = run(dir, &["ca", "inspect", "--dir", "pki", "-o", "table"]);
    assert!(stdout(&table).contains("DAYS LEFT"), "{}", stdout(&table));

    let mesh = fixtures().join("local/mesh.yaml");
    let mesh = mesh.display().to_string();
    let rendered = json(&run(
        dir,
        &["render", "-f", &mesh, "--out-dir", "out", "-o", "json"],
    ));
    assert!(
        rendered["written"]
            .as_array()
            .is_some_and(|w| !w.is_empty()),
        "{rendered}"
    );
    assert_eq!(rendered["plan"], "out/PLAN.md");
    let again = yaml(&run(
        dir,
        &["render", "-f", &mesh, "--out-dir", "out", "-o", "yaml"],
    ));
    assert_eq!(again["written"], serde_json::json!([]));
    assert_eq!(again["unchanged"], rendered["written"]);
    assert_eq!(again["ca_root"], "unchanged");
}

#[test]
fn cluster_commands_report_the_same_result_in_json_and_yaml() {
    let clusters = start_with_istio(&["eu", "ap"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let meshes = [("eu", "network1", "primary"), ("ap", "network2", "primary")];
    write_mesh(
        dir,
        clusters.kubeconfig_path(),
        &meshes,
        "multi-primary",
        "",
    );
    let apply = run(
        dir,
        &["apply", "-f", "mesh.yaml", "--allow-loopback", "-o", "yaml"],
    );
    assert!(apply.status.success(), "{}", stderr(&apply));
    let applied = yaml(&apply);
    assert_eq!(applied["succeeded"], true);
    assert_eq!(applied["dry_run"], false);

    let verify = ["verify", "-f", "mesh.yaml", "--allow-loopback"];
    let as_json = json(&run(dir, &[&verify[..], &["-o", "json"]].concat()));
    let as_yaml = yaml(&run(dir, &[&verify[..], &["-o", "yaml"]].concat()));
    assert_eq!(as_json, as_yaml);

    let kubeconfig = clusters.kubeconfig_path().to_str().unwrap();
    let secret = [
        "remote-secret",
        "--kubeconfig",
        kubeconfig,
        "--context",
        "eu",
        "--name",
        "eu",
    ];
    // istioctl's output ends with a `---` separator: the Secret is its first document.
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&stdout(&run(dir, &secret))).unwrap();
    let as_yaml = docs.into_iter().next().expect("one document");
    let as_json = json(&run(dir, &[&secret[..], &["-o", "json"]].concat()));
    assert_eq!(as_json["kind"], "Secret");
    assert_eq!(as_json["metadata"], as_yaml["metadata"]);
    // JSON carries the kubeconfig base64-encoded in `data`, istioctl's YAML as `stringData`;
    // compared without printing either (they hold the reader token).
    let encoded = as_json["data"]["eu"].as_str().expect("data.eu");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let plain = as_yaml["stringData"]["eu"].as_str().expect("stringData.eu");
    assert!(
        decoded == plain.as_bytes(),
        "the two formats carry different kubeconfigs"
    );
}

#[test]
fn completions_for_every_shell_know_every_command_and_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run(tmp.path(), &["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        // Flags without their dashes: fish spells them `-l out-dir`.
        for word in [
            "remote-secret",
            "intermediate",
            "out-dir",
            "dry-run",
            "skip-unreachable",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        assert!(script.contains("yaml"), "{shell}: -o values are completed");
    }
    // bash can at least parse its script.
    let script = tmp.path().join("meshboot.bash");
    std::fs::write(&script, run(tmp.path(), &["completion", "bash"]).stdout).unwrap();
    match std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
    {
        Ok(out) => assert!(out.status.success(), "bash -n: {}", stderr(&out)),
        Err(_) => eprintln!("skipping the bash syntax check: bash not found"),
    }
    assert_eq!(
        run(tmp.path(), &["completion", "tcsh"]).status.code(),
        Some(2)
    );
}

#[test]
fn man_pages_come_from_the_same_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    let page = stdout(&run(tmp.path(), &["man"]));
    assert!(page.contains(".TH meshboot 1"), "{page}");
    for word in ["remote\\-secret", "completion", "Exit codes:"] {
        assert!(page.contains(word), "man page lacks {word}");
    }
    let out = run(tmp.path(), &["man", "--out-dir", "man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in [
        "meshboot.1",
        "meshboot-apply.1",
        "meshboot-ca-init.1",
        "meshboot-render.1",
    ] {
        let page = std::fs::read_to_string(tmp.path().join("man").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{name}");
    }
    let render = std::fs::read_to_string(tmp.path().join("man/meshboot-render.1")).unwrap();
    assert!(render.contains("\\-\\-out\\-dir"), "{render}");
}
