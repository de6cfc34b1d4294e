//! One bring-your-own root, four ways to issue the intermediates (`ca import` + `ca
//! intermediate`, `render`, `apply`, `rotate intermediate`): the same subject every time, the one
//! `mesh_core::pki::intermediate_subject` gives (the root's `O=`, not a fixed `Istio`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use mesh_core::pki::{CaOptions, cert_info, intermediate_subject};

mod common;
use common::{ISSUE_EU, meshboot_cmd, start_with_istio, stderr, write_mesh};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/byo-root")
        .join(name)
}

fn meshboot(dir: &Path, args: &[&str]) {
    let out = meshboot_cmd()
        .current_dir(dir)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run meshboot");
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

fn subject_of(pem_file: &Path) -> String {
    let pem = std::fs::read_to_string(pem_file).expect("certificate");
    cert_info(&pem).expect("parses").subject
}

#[test]
fn every_command_gives_a_brought_root_the_same_intermediate_subject() {
    let cert = fixture("ec-root.pem");
    let key = fixture("ec-root-key.pkcs8.pem");
    let root_pem = std::fs::read_to_string(&cert).unwrap();
    let expected = intermediate_subject(&root_pem, "eu", &CaOptions::default()).unwrap();
    assert_eq!(expected, "O=Example Corp, CN=Intermediate CA, L=eu");
    let clusters = start_with_istio(&["eu"]);
    let brought = format!(
        ", root: {{cert: {}, key: {}}}",
        cert.display(),
        key.display()
    );
    let mut subjects = Vec::new();

    let ca = tempfile::tempdir().unwrap();
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    meshboot(
        ca.path(),
        &["ca", "import", "--dir", "pki", "--cert", c, "--key", k],
    );
    meshboot(ca.path(), &ISSUE_EU);
    subjects.push((
        "ca intermediate",
        subject_of(&ca.path().join("pki/eu/ca-cert.pem")),
    ));

    let render = tempfile::tempdir().unwrap();
    let meshes = [("eu", "network1", "primary")];
    write_mesh(
        render.path(),
        clusters.kubeconfig_path(),
        &meshes,
        "multi-primary",
        &brought,
    );
    meshboot(
        render.path(),
        &["render", "-f", "mesh.yaml", "--out-dir", "out"],
    );
    subjects.push((
        "render",
        subject_of(&render.path().join("pki/eu/ca-cert.pem")),
    ));

    let apply = tempfile::tempdir().unwrap();
    write_mesh(
        apply.path(),
        clusters.kubeconfig_path(),
        &meshes,
        "multi-primary",
        &brought,
    );
    meshboot(
        apply.path(),
        &["apply", "-f", "mesh.yaml", "--allow-loopback"],
    );
    subjects.push((
        "apply",
        subject_of(&apply.path().join("pki/eu/ca-cert.pem")),
    ));
    // What istiod gets is what the CA directory holds.
    let cacerts = clusters
        .cluster("eu")
        .object("v1", "Secret", Some("istio-system"), "cacerts")
        .expect("cacerts applied");
    let b64 = cacerts["data"]["ca-cert.pem"]
        .as_str()
        .expect("ca-cert.pem");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let in_cluster = cert_info(std::str::from_utf8(&pem).unwrap())
        .unwrap()
        .subject;
    subjects.push(("apply (cacerts in the cluster)", in_cluster));
    // A rotated intermediate is issued by the same rule.
    meshboot(
        apply.path(),
        &[
            "rotate",
            "intermediate",
            "-f",
            "mesh.yaml",
            "--cluster",
            "eu",
        ],
    );
    let rotated = subject_of(&apply.path().join("pki/eu/ca-cert.pem"));
    let previous = subject_of(&apply.path().join("pki/eu/previous/ca-cert.pem"));
    assert_ne!(
        std::fs::read(apply.path().join("pki/eu/ca-cert.pem")).unwrap(),
        std::fs::read(apply.path().join("pki/eu/previous/ca-cert.pem")).unwrap(),
        "rotate intermediate issued nothing"
    );
    subjects.push(("rotate intermediate", rotated));
    subjects.push(("rotate intermediate (previous)", previous));

    for (command, subject) in &subjects {
        assert_eq!(subject, &expected, "{command}");
    }
}
