//! `meshboot render` and `meshboot validate` as a user runs them: the real binary, a mesh file in
//! a temp dir, the exit code, stdout/stderr and the files on disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use base64::Engine as _;

mod common;
use common::{fixtures, meshboot_cmd, text};

fn meshboot(cwd: &Path, args: &[&str]) -> Output {
    meshboot_cmd()
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("meshboot runs")
}

const MESH: &str = "apiVersion: meshboot/v1alpha1
kind: Mesh
meshID: mesh1
ca:
  dir: ./pki
  key: ecdsa-p256
clusters:
  - {name: eu, network: network3, context: eu}
  - {name: ap, network: network1, context: ap}
  - {name: us, network: network2, context: us}
";

/// Every file under `dir`, relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&p).expect("readable file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn no_key_material(s: &str) {
    assert!(
        !s.contains("PRIVATE KEY") && !s.contains("LS0tLS1CRUdJTi"),
        "key material printed: {s}"
    );
}

#[test]
fn render_writes_every_cluster_and_a_rerun_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mesh.yaml"), MESH).unwrap();

    let first = meshboot(
        tmp.path(),
        &["render", "-f", "mesh.yaml", "--out-dir", "out"],
    );
    assert!(first.status.success(), "stderr: {}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(
        stdout.contains("rendered 3 cluster(s) of mesh mesh1 into out"),
        "{stdout}"
    );
    no_key_material(&stdout);
    no_key_material(&text(&first.stderr));

    let out = tmp.path().join("out");
    for c in ["eu", "ap", "us"] {
        for f in [
            "01-namespace.yaml",
            "02-cacerts.yaml",
            "04-expose-services.yaml",
            "06-reader.yaml",
            "helm/base-values.yaml",
            "helm/istiod-values.yaml",
            "helm/gateway-values.yaml",
        ] {
            assert!(out.join(c).join(f).is_file(), "{c}/{f} missing");
        }
        assert!(
            !out.join(c).join("kustomization.yaml").exists(),
            "files format has no kustomization"
        );
        assert!(
            !out.join(c).join("03-eastwest-gateway.yaml").exists(),
            "the sidecar east-west gateway is the istio/gateway chart's, installed from its values"
        );
    }
    assert!(out.join("PLAN.md").is_file());
    assert!(
        tmp.path().join("pki/root-cert.pem").is_file(),
        "the CA is created at ca.dir"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("eu/02-cacerts.yaml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let before = tree(&out);
    let second = meshboot(
        tmp.path(),
        &["render", "-f", "mesh.yaml", "--out-dir", "out"],
    );
    assert!(second.status.success(), "stderr: {}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains(": 0 file(s) written"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(
        before,
        tree(&out),
        "same inputs and CA: byte-identical output"
    );
}

#[test]
fn cacerts_carries_the_ca_files_from_ca_dir() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mesh.yaml"), MESH).unwrap();
    let run = meshboot(
        tmp.path(),
        &["render", "-f", "mesh.yaml", "--out-dir", "out"],
    );
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));

    let manifest = std::fs::read_to_string(tmp.path().join("out/ap/02-cacerts.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&manifest).unwrap();
    let data = docs[0]["data"].as_object().unwrap();
    for (key, file) in [
        ("ca-cert.pem", "ca-cert.pem"),
        ("ca-key.pem", "ca-key.pem"),
        ("root-cert.pem", "root-cert.pem"),
        ("cert-chain.pem", "cert-chain.pem"),
    ] {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data[key].as_str().unwrap())
            .unwrap();
        let on_disk = std::fs::read(tmp.path().join("pki/ap").join(file)).unwrap();
        assert_eq!(decoded, on_disk, "{key}");
    }
}

#[test]
fn the_three_region_example_matches_its_golden_files() {
    // The README's command, run in a copy of the repository layout so nothing lands in the repo;
    // the fixture's RSA-4096 CA is this suite's one RSA test.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fixtures/three-region");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures().join("three-region/mesh.yaml"),
        dir.join("mesh.yaml"),
    )
    .unwrap();
    let run = meshboot(
        tmp.path(),
        &[
            "render",
            "-f",
            "fixtures/three-region/mesh.yaml",
            "--out-dir",
            "out/three-region",
            "--format",
            "kustomize",
        ],
    );
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));

    let rendered = tree(&tmp.path().join("out/three-region"));
    let golden = tree(&fixtures().join("golden/three-region"));
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        golden.keys().collect::<Vec<_>>()
    );
    for (path, want) in &golden {
        if path.ends_with("02-cacerts.yaml") {
            continue; // a fresh CA: compared by content in cacerts_carries_the_ca_files_from_ca_dir
        }
        assert_eq!(text(&rendered[path]), text(want), "{path}");
    }
    assert!(
        dir.join("pki/eu/ca-key.pem").is_file(),
        "ca.dir is relative to the mesh file"
    );
}

#[test]
fn kustomize_format_lists_the_files_in_apply_order() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mesh.yaml"), MESH).unwrap();
    let run = meshboot(
        tmp.path(),
        &[
            "render",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "out",
            "--format",
            "kustomize",
        ],
    );
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let k: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(tmp.path().join("out/eu/kustomization.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(k["kind"], "Kustomization");
    assert_eq!(
        k["resources"],
        serde_json::json!([
            "01-namespace.yaml",
            "02-cacerts.yaml",
            "04-expose-services.yaml",
            "06-reader.yaml"
        ])
    );
}

#[test]
fn every_bad_input_fails_before_anything_is_written() {
    let invalid = fixtures().join("invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&invalid).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(&path, tmp.path().join("mesh.yaml")).unwrap();
        let run = meshboot(
            tmp.path(),
            &["render", "-f", "mesh.yaml", "--out-dir", "out"],
        );
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{}: {stderr}", path.display());
        let expected = std::fs::read_to_string(path.with_extension("err")).unwrap();
        for fragment in expected.lines().map(str::trim).filter(|l| !l.is_empty()) {
            assert!(
                stderr.contains(fragment),
                "{}: expected {fragment:?} in\n{stderr}",
                path.display()
            );
        }
        assert!(
            stderr.lines().all(|l| l.starts_with("error: mesh.yaml")),
            "{}: {stderr}",
            path.display()
        );
        assert!(
            run.stdout.is_empty(),
            "{}: nothing on stdout",
            path.display()
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            ["mesh.yaml"],
            "{}: nothing written (no out/, no pki/)",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 25, "{checked}");
}

#[test]
fn validate_prints_one_ok_line() {
    let run = meshboot(&fixtures(), &["validate", "-f", "three-region/mesh.yaml"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        text(&run.stdout),
        "ok: three-region/mesh.yaml: mesh mesh1, 3 cluster(s), multi-primary, sidecar, 3 network(s)\n"
    );
    assert!(run.stderr.is_empty());
}

#[test]
fn validate_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mesh.yaml"), MESH).unwrap();
    let run = meshboot(tmp.path(), &["validate", "-f", "mesh.yaml"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["mesh.yaml"], "no CA, no output");
}

#[test]
fn validate_lists_every_error_on_stderr() {
    let run = meshboot(
        &fixtures(),
        &["validate", "-f", "invalid/several-problems.yaml"],
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty());
    let stderr = text(&run.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with("error: invalid/several-problems.yaml:4:12: dataplane:"),
        "{stderr}"
    );
}

#[test]
fn validate_names_a_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = meshboot(tmp.path(), &["validate", "-f", "nope.yaml"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).starts_with("error: cannot read mesh file nope.yaml:"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn a_brought_root_signs_the_intermediates() {
    let tmp = tempfile::tempdir().unwrap();
    let byo = fixtures().join("byo-root");
    let mesh = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nca:\n  dir: ./pki\n  key: ecdsa-p256\n  root:\n    cert: {}\n    key: {}\nclusters:\n  - {{name: a, network: n1, context: a}}\n",
        byo.join("ec-root.pem").display(),
        byo.join("ec-root-key.pkcs8.pem").display()
    );
    std::fs::write(tmp.path().join("mesh.yaml"), mesh).unwrap();
    for _ in 0..2 {
        // Twice: importing the same root again is a no-op.
        let run = meshboot(
            tmp.path(),
            &["render", "-f", "mesh.yaml", "--out-dir", "out"],
        );
        assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    }
    let theirs = mesh_core::pki::root_fingerprints(
        &std::fs::read_to_string(byo.join("ec-root.pem")).unwrap(),
    )
    .unwrap();
    let ours = mesh_core::pki::root_fingerprints(
        &std::fs::read_to_string(tmp.path().join("pki/a/root-cert.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(theirs, ours);
    let bundle = mesh_core::pki::CaDir::open(tmp.path().join("pki"))
        .bundle("a")
        .unwrap();
    mesh_core::pki::verify_bundle(&bundle).expect("the intermediate chains to the brought root");
}

#[test]
fn a_removed_cluster_is_reported_not_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mesh.yaml"), MESH).unwrap();
    assert!(
        meshboot(
            tmp.path(),
            &["render", "-f", "mesh.yaml", "--out-dir", "out"]
        )
        .status
        .success()
    );
    let two = MESH.replace("  - {name: us, network: network2, context: us}\n", "");
    std::fs::write(tmp.path().join("mesh.yaml"), two).unwrap();
    let run = meshboot(
        tmp.path(),
        &["render", "-f", "mesh.yaml", "--out-dir", "out"],
    );
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("warn: out/us/01-namespace.yaml is from an earlier render"),
        "{stderr}"
    );
    assert!(stderr.contains("out/us/02-cacerts.yaml"), "{stderr}");
    assert!(tmp.path().join("out/us/02-cacerts.yaml").exists());
    let plan = std::fs::read_to_string(tmp.path().join("out/PLAN.md")).unwrap();
    assert!(!plan.contains("`us`"), "PLAN.md is about the current mesh");
}
