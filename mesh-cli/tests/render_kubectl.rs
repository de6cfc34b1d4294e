//! Every object `meshboot render` writes, for every example, is accepted by an API server's
//! validation when applied the way a user applies it: `kubectl apply --server-side` against the
//! API-server emulator (`mesh_tests`), file by file in apply order. Skipped, with a note, when
//! `kubectl` is not on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mesh_tests::TestClusters;

mod common;
use common::{fixtures, meshboot_cmd, text};

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn kubectl(kubeconfig: &Path, context: &str, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--context", context])
        .args(args)
        .output()
        .expect("kubectl runs")
}

/// A temp dir holding `example`'s mesh.yaml with a fast P-256 CA in place of RSA-4096.
fn p256_copy(example: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mesh =
        std::fs::read_to_string(fixtures().join(example).join("mesh.yaml")).expect("fixture");
    std::fs::write(
        tmp.path().join("mesh.yaml"),
        mesh.replace("key: rsa-4096", "key: ecdsa-p256"),
    )
    .expect("write mesh.yaml");
    tmp
}

/// Renders `example` (with a fast P-256 CA) into a temp dir and returns (tempdir, out dir,
/// cluster names).
fn render(example: &str) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let tmp = p256_copy(example);
    let run = meshboot_cmd()
        .current_dir(tmp.path())
        .args(["render", "-f", "mesh.yaml", "--out-dir", "out"])
        .output()
        .expect("meshboot runs");
    assert!(
        run.status.success(),
        "{example}: render failed: {}",
        text(&run.stderr)
    );
    let spec = mesh_core::spec::MeshSpec::from_file(tmp.path().join("mesh.yaml")).expect("valid");
    let names = spec.clusters.iter().map(|c| c.name.clone()).collect();
    let out = tmp.path().join("out");
    (tmp, out, names)
}

fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("cluster dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_rendered_object_is_accepted_by_kubectl_server_side_apply() {
    if !kubectl_available() {
        eprintln!("note: kubectl is not on PATH; skipping the kubectl apply test");
        return;
    }
    for example in [
        "three-region",
        "primary-remote",
        "primary-remote-multinetwork",
        "ambient",
    ] {
        let (_tmp, out, names) = render(example);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let clusters = TestClusters::start(&refs).expect("emulator starts");
        clusters.install_istio_crds().expect("Istio CRDs");
        clusters
            .install_gateway_api_crds()
            .expect("Gateway API CRDs");
        let kubeconfig = clusters.kubeconfig_path().to_path_buf();
        for name in &names {
            // The reader account is istio/base's (installed before 06-reader.yaml in PLAN.md's
            // order); render writes only its token.
            clusters
                .cluster(name)
                .insert_object(serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "istio-reader-service-account", "namespace": "istio-system"}}))
                .expect("reader account");
            let mut applied = 0;
            for file in manifests(&out.join(name)) {
                let run = kubectl(
                    &kubeconfig,
                    name,
                    &["apply", "--server-side", "-f", &file.to_string_lossy()],
                );
                assert!(
                    run.status.success(),
                    "{example}/{name}/{}: kubectl apply --server-side failed:\n{}{}",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    text(&run.stdout),
                    text(&run.stderr)
                );
                applied += 1;
                // Every document of the file is now stored as written.
                let docs: Vec<serde_json::Value> =
                    serde_saphyr::from_multiple(&std::fs::read_to_string(&file).expect("read"))
                        .expect("YAML");
                for d in docs {
                    let ns = d["metadata"]["namespace"].as_str();
                    let stored = clusters.cluster(name).object(
                        d["apiVersion"].as_str().unwrap_or_default(),
                        d["kind"].as_str().unwrap_or_default(),
                        ns,
                        d["metadata"]["name"].as_str().unwrap_or_default(),
                    );
                    let stored = stored.unwrap_or_else(|| {
                        panic!(
                            "{example}/{name}: {} {} not stored",
                            d["kind"], d["metadata"]["name"]
                        )
                    });
                    // The server may add its own labels (kubernetes.io/metadata.name); ours
                    // must all be there with the values we wrote.
                    if let Some(ours) = d["metadata"]["labels"].as_object() {
                        for (k, v) in ours {
                            assert_eq!(
                                &stored["metadata"]["labels"][k], v,
                                "{example}/{name}: {} label {k}",
                                d["kind"]
                            );
                        }
                    }
                }
            }
            assert!(
                applied >= 2,
                "{example}/{name}: at least namespace and cacerts"
            );
        }

        // The reader's token Secret is a real service-account token Secret: the token controller
        // fills it, which is what remote secrets are later built from.
        for name in &names {
            let has_reader = out.join(name).join("06-reader.yaml").is_file();
            if !has_reader {
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let secret = clusters.cluster(name).object(
                    "v1",
                    "Secret",
                    Some("istio-system"),
                    "istio-reader-service-account-istio-remote-secret-token",
                );
                if secret
                    .as_ref()
                    .is_some_and(|s| s["data"]["token"].is_string())
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{example}/{name}: token never filled: {secret:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        // Applying the same files again changes nothing a user would see: kubectl says so.
        let first = &names[0];
        let again = kubectl(
            &kubeconfig,
            first,
            &[
                "apply",
                "--server-side",
                "-f",
                &out.join(first).join("01-namespace.yaml").to_string_lossy(),
            ],
        );
        assert!(again.status.success(), "{}", text(&again.stderr));
        assert!(
            text(&again.stdout).contains("serverside-applied"),
            "{}",
            text(&again.stdout)
        );
    }
}

#[test]
fn kustomize_output_applies_with_kubectl_k() {
    if !kubectl_available() {
        eprintln!("note: kubectl is not on PATH; skipping the kubectl apply -k test");
        return;
    }
    let tmp = p256_copy("three-region");
    let run = meshboot_cmd()
        .current_dir(tmp.path())
        .args([
            "render",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "out",
            "--format",
            "kustomize",
        ])
        .output()
        .expect("meshboot runs");
    assert!(run.status.success(), "{}", text(&run.stderr));
    let clusters = TestClusters::start(&["eu", "ap", "us"]).expect("emulator starts");
    clusters.install_istio_crds().expect("Istio CRDs");
    for name in ["eu", "ap", "us"] {
        let dir = tmp.path().join("out").join(name);
        let run = kubectl(
            clusters.kubeconfig_path(),
            name,
            &["apply", "--server-side", "-k", &dir.to_string_lossy()],
        );
        assert!(
            run.status.success(),
            "{name}: {}{}",
            text(&run.stdout),
            text(&run.stderr)
        );
        let c = clusters.cluster(name);
        assert!(
            c.object("v1", "Secret", Some("istio-system"), "cacerts")
                .is_some()
        );
        assert!(
            c.object(
                "networking.istio.io/v1",
                "Gateway",
                Some("istio-system"),
                "cross-network-gateway"
            )
            .is_some()
        );
        assert!(
            c.object(
                "apps/v1",
                "Deployment",
                Some("istio-system"),
                "istio-eastwestgateway"
            )
            .is_none(),
            "the east-west gateway is the istio/gateway chart's: render never writes it"
        );
    }
}
