//! `meshboot apply` end to end: the real binary against the API-server emulator.
//!
//! The emulator listens on 127.0.0.1, so every run that is meant to write passes
//! `--allow-loopback` (as one would for kind clusters).

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{Context, Result};
use base64::Engine as _;
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::{Value, json};

mod common;
use common::meshboot_cmd;

/// A mesh file in a temporary directory and the emulated clusters it names.
struct Mesh {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    file: PathBuf,
    names: Vec<String>,
}

impl Mesh {
    /// `clusters` are `(name, network)`; `extra` is appended to each cluster entry (e.g. a role).
    fn start(
        clusters: &[(&str, &str, &str)],
        model: &str,
        options: EmulatorOptions,
    ) -> Result<Mesh> {
        let names: Vec<&str> = clusters.iter().map(|c| c.0).collect();
        let emulated = TestClusters::start_with(&names, options)?;
        emulated.install_istio_crds()?;
        let dir = tempfile::tempdir()?;
        let mut yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nmodel: {model}\n\
             ca: {{dir: ./pki, key: ecdsa-p256}}\nclusters:\n"
        );
        for (name, network, extra) in clusters {
            yaml.push_str(&format!(
                "  - {{name: {name}, network: {network}, context: {name}, kubeconfig: {}{extra}}}\n",
                emulated.kubeconfig_path().display()
            ));
        }
        let file = dir.path().join("mesh.yaml");
        std::fs::write(&file, yaml)?;
        // Istio as its user installed it (`controlPlane.install: none`): the CRDs above and the
        // east-west gateway of each cluster that crosses a network.
        let spec = mesh_core::spec::MeshSpec::from_file(&file)?;
        for c in &spec.clusters {
            if mesh_core::render::Needs::of(&spec, c).eastwest_gateway {
                mesh_tests::charts::install_eastwest_gateway(
                    emulated.cluster(&c.name),
                    &spec.istio_namespace,
                    &c.network,
                )?;
            }
        }
        Ok(Mesh {
            clusters: emulated,
            dir,
            file,
            names: names.iter().map(|n| n.to_string()).collect(),
        })
    }

    fn three_regions() -> Result<Mesh> {
        Mesh::start(
            &[
                ("eu", "network3", ""),
                ("ap", "network1", ""),
                ("us", "network2", ""),
            ],
            "multi-primary",
            EmulatorOptions::default(),
        )
    }

    fn meshboot(&self, args: &[&str]) -> Result<Output> {
        let output = meshboot_cmd()
            .args(args)
            .arg("-f")
            .arg(&self.file)
            .env_remove("KUBECONFIG")
            .output()
            .context("running meshboot")?;
        Ok(output)
    }

    fn apply(&self, extra: &[&str]) -> Result<Output> {
        let mut args = vec!["apply"];
        args.extend_from_slice(extra);
        self.meshboot(&args)
    }

    fn apply_json(&self, extra: &[&str]) -> Result<(Output, Value)> {
        let mut args = vec!["-o", "json"];
        args.extend_from_slice(extra);
        let out = self.apply(&args)?;
        let report = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("JSON report expected, got: {}", text(&out)))?;
        Ok((out, report))
    }

    fn writes(&self) -> u64 {
        self.names
            .iter()
            .map(|n| self.clusters.cluster(n).counters().writes)
            .sum()
    }

    fn remote_secrets_in(&self, cluster: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .clusters
            .cluster(cluster)
            .list_objects("v1", "Secret", Some("istio-system"))
            .iter()
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
            .filter(|n| n.starts_with("istio-remote-secret-"))
            .collect();
        names.sort();
        names
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn others(all: &[String], me: &str) -> Vec<String> {
    let mut v: Vec<String> = all
        .iter()
        .filter(|n| *n != me)
        .map(|n| format!("istio-remote-secret-{n}"))
        .collect();
    v.sort();
    v
}

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["cluster"] == name))
        .unwrap_or(&Value::Null)
}

#[test]
fn three_regions_from_nothing_to_verify_and_a_second_apply_writes_nothing() -> Result<()> {
    let mesh = Mesh::three_regions()?;
    let out = mesh.apply(&["--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("meshboot verify -f"), "{stdout}");

    for name in &mesh.names {
        assert_eq!(mesh.remote_secrets_in(name), others(&mesh.names, name));
        let ns = mesh
            .clusters
            .cluster(name)
            .object("v1", "Namespace", None, "istio-system")
            .context("namespace")?;
        assert!(ns["metadata"]["labels"]["topology.istio.io/network"].is_string());
        let cacerts = mesh
            .clusters
            .cluster(name)
            .object("v1", "Secret", Some("istio-system"), "cacerts")
            .context("cacerts")?;
        assert!(cacerts["data"]["ca-key.pem"].is_string());
    }
    // The remote secret of ap in eu is istioctl's, pointing at ap's server with ap's reader
    // token.
    let secret = mesh
        .clusters
        .cluster("eu")
        .object(
            "v1",
            "Secret",
            Some("istio-system"),
            "istio-remote-secret-ap",
        )
        .context("remote secret")?;
    assert_eq!(secret["metadata"]["labels"]["istio/multiCluster"], "true");
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["ap"].as_str().context("data.ap")?)?;
    let kubeconfig = String::from_utf8(kubeconfig)?;
    assert!(
        kubeconfig.contains(&format!("server: {}", mesh.clusters.cluster("ap").url())),
        "{kubeconfig}"
    );

    let verify = mesh.meshboot(&["verify", "--allow-loopback"])?;
    assert!(verify.status.success(), "{}", text(&verify));

    let before = mesh.writes();
    let again = mesh.apply(&["--allow-loopback"])?;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        mesh.writes(),
        before,
        "a converged mesh must see zero writes"
    );
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("unchanged"), "{stdout}");
    assert!(stdout.contains("nothing written"), "{stdout}");
    Ok(())
}

#[test]
fn json_report_lists_every_step_with_its_outcome_and_no_secret_material() -> Result<()> {
    let mesh = Mesh::three_regions()?;
    let (out, report) = mesh.apply_json(&["--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(report["succeeded"], true);
    let eu = cluster(&report, "eu");
    assert_eq!(eu["status"], "ok");
    let steps = eu["steps"].as_array().context("steps")?;
    assert_eq!(steps[0]["object"]["kind"], "Namespace");
    // The user's Istio is installed in it already: meshboot adds the network label.
    assert_eq!(steps[0]["outcome"], "updated");
    assert_eq!(steps[1]["object"]["name"], "cacerts");
    assert_eq!(steps[1]["outcome"], "created");
    // What preflight found and chose is in the report.
    assert_eq!(eu["detected"]["istioCrds"], true);
    assert_eq!(
        eu["detected"]["reader"]["serviceAccount"],
        "meshboot-reader"
    );
    let pairs: Vec<&Value> = steps
        .iter()
        .filter(|s| s["phase"] == "remote-secrets")
        .collect();
    assert_eq!(pairs.len(), 2);
    assert!(pairs.iter().all(|s| s["outcome"] == "created"));
    let total = report["totals"]["created"].as_u64().context("created")?;
    assert!(total > 20, "{report}");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(
        !raw.contains("PRIVATE KEY") && !raw.contains("token:"),
        "{raw}"
    );
    Ok(())
}

#[test]
fn primary_remote_writes_remote_secrets_into_the_primary_only() -> Result<()> {
    let mesh = Mesh::start(
        &[
            ("hub", "network1", ", role: primary"),
            ("edge1", "network1", ", role: remote"),
            ("edge2", "network2", ", role: remote"),
        ],
        "primary-remote",
        EmulatorOptions::default(),
    )?;
    let out = mesh.apply(&["--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        mesh.remote_secrets_in("hub"),
        ["istio-remote-secret-edge1", "istio-remote-secret-edge2"]
    );
    assert!(mesh.remote_secrets_in("edge1").is_empty());
    assert!(mesh.remote_secrets_in("edge2").is_empty());
    // The primary needs no reader identity: nobody reads it.
    assert!(
        mesh.clusters
            .cluster("hub")
            .object(
                "v1",
                "ServiceAccount",
                Some("istio-system"),
                "istio-reader-service-account"
            )
            .is_none()
    );
    let verify = mesh.meshboot(&["verify", "--allow-loopback"])?;
    assert!(verify.status.success(), "{}", text(&verify));
    Ok(())
}

#[test]
fn twenty_clusters_are_fully_linked() -> Result<()> {
    let names: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
    let networks: Vec<String> = (0..20).map(|i| format!("net{}", i % 4)).collect();
    let spec: Vec<(&str, &str, &str)> = names
        .iter()
        .zip(&networks)
        .map(|(n, net)| (n.as_str(), net.as_str(), ""))
        .collect();
    let mesh = Mesh::start(&spec, "multi-primary", EmulatorOptions::default())?;
    let (out, report) = mesh.apply_json(&["--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    let pairs: usize = report["clusters"]
        .as_array()
        .context("clusters")?
        .iter()
        .flat_map(|c| c["steps"].as_array().into_iter().flatten())
        .filter(|s| s["phase"] == "remote-secrets" && s["outcome"] == "created")
        .count();
    assert_eq!(pairs, 20 * 19);
    for name in &mesh.names {
        assert_eq!(mesh.remote_secrets_in(name), others(&mesh.names, name));
    }
    Ok(())
}

#[test]
fn a_cluster_down_stops_everything_then_skip_unreachable_then_resume() -> Result<()> {
    let mesh = Mesh::three_regions()?;
    mesh.clusters.cluster("us").set_down(true);

    // Without --skip-unreachable: nothing anywhere, and the cluster is named.
    let (out, report) = mesh.apply_json(&["--allow-loopback"])?;
    assert!(!out.status.success());
    assert_eq!(mesh.writes(), 0);
    assert!(
        report["stopped"]
            .as_str()
            .unwrap_or_default()
            .contains("us"),
        "{report}"
    );
    assert_eq!(cluster(&report, "us")["status"], "unreachable");
    assert!(
        report["hints"].to_string().contains("--skip-unreachable"),
        "{report}"
    );

    // With it: eu and ap are bootstrapped and linked to each other; us is left for later.
    let (out, report) = mesh.apply_json(&["--allow-loopback", "--skip-unreachable"])?;
    assert!(!out.status.success(), "incomplete runs exit non-zero");
    assert_eq!(cluster(&report, "us")["status"], "unreachable");
    assert_eq!(cluster(&report, "eu")["status"], "incomplete");
    assert_eq!(mesh.remote_secrets_in("eu"), ["istio-remote-secret-ap"]);
    assert_eq!(mesh.remote_secrets_in("ap"), ["istio-remote-secret-eu"]);

    // Back up: a plain re-run finishes, and touches only what was missing.
    mesh.clusters.cluster("us").set_down(false);
    let (out, report) = mesh.apply_json(&["--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    for name in &mesh.names {
        assert_eq!(mesh.remote_secrets_in(name), others(&mesh.names, name));
    }
    let eu = cluster(&report, "eu");
    assert_eq!(
        eu["totals"]["created"], 1,
        "only us's secret is new in eu: {eu}"
    );
    assert_eq!(eu["totals"]["updated"], 0);
    Ok(())
}

#[test]
fn five_percent_injected_errors_still_converge() -> Result<()> {
    let mesh = Mesh::start(
        &[
            ("eu", "network3", ""),
            ("ap", "network1", ""),
            ("us", "network2", ""),
        ],
        "multi-primary",
        EmulatorOptions {
            error_rate: 0.05,
            ..EmulatorOptions::default()
        },
    )?;
    let out = mesh.apply(&["--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    for name in &mesh.names {
        mesh.clusters.cluster(name).set_error_rate(0.0);
        assert_eq!(mesh.remote_secrets_in(name), others(&mesh.names, name));
    }
    let verify = mesh.meshboot(&["verify", "--allow-loopback"])?;
    assert!(verify.status.success(), "{}", text(&verify));
    Ok(())
}

#[test]
fn a_cacerts_from_another_root_stops_apply_with_nothing_written() -> Result<()> {
    let mesh = Mesh::three_regions()?;
    let other = tempfile::tempdir()?;
    let opts = mesh_core::pki::CaOptions {
        key: mesh_core::pki::KeyAlgorithm::EcdsaP256,
        ..Default::default()
    };
    let foreign = mesh_core::pki::CaDir::open(other.path()).ensure(&opts, &["ap"])?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ap = mesh.clusters.cluster("ap");
    ap.insert_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
    )?;
    ap.insert_object(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "data": {
            "ca-cert.pem": b64(&foreign[0].ca_cert_pem),
            "ca-key.pem": b64(&foreign[0].ca_key_pem),
            "root-cert.pem": b64(&foreign[0].root_cert_pem),
            "cert-chain.pem": b64(&foreign[0].cert_chain_pem),
        },
    }))?;
    let before = ap.object("v1", "Secret", Some("istio-system"), "cacerts");

    // No local CA yet: apply would make a new root, so it refuses before writing anything,
    // not even the CA directory.
    let out = mesh.apply(&["--allow-loopback"])?;
    assert!(!out.status.success());
    let all = text(&out);
    assert!(
        all.contains("cluster ap: Secret cacerts already exists"),
        "{all}"
    );
    assert!(all.contains("nothing was written"), "{all}");
    assert_eq!(mesh.writes(), 0);
    assert!(!mesh.dir.path().join("pki").exists(), "no local CA either");

    // A mesh CA of its own: the roots differ, which apply never resolves by overwriting.
    let pki = mesh.dir.path().join("pki");
    let init = meshboot_cmd()
        .args(["ca", "init", "--key", "ecdsa-p256", "--dir"])
        .arg(&pki)
        .output()?;
    assert!(init.status.success(), "{}", text(&init));
    let out = mesh.apply(&["--allow-loopback"])?;
    assert!(!out.status.success());
    let all = text(&out);
    assert!(
        all.contains("cluster ap: Secret cacerts trusts a different root"),
        "{all}"
    );
    assert!(all.contains("nothing was written"), "{all}");
    assert!(!all.contains("PRIVATE KEY"), "{all}");
    assert_eq!(mesh.writes(), 0);
    assert_eq!(
        ap.object("v1", "Secret", Some("istio-system"), "cacerts"),
        before
    );
    assert!(!pki.join("ap").exists(), "no intermediate was made");
    Ok(())
}

#[test]
fn a_loopback_server_is_refused_without_allow_loopback() -> Result<()> {
    let mesh = Mesh::three_regions()?;
    let out = mesh.apply(&[])?;
    assert!(!out.status.success());
    let all = text(&out);
    assert!(all.contains("loopback"), "{all}");
    assert!(all.contains("apiServer"), "{all}");
    assert_eq!(mesh.writes(), 0);
    Ok(())
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() -> Result<()> {
    let mesh = Mesh::three_regions()?;
    let out = mesh.apply(&["--dry-run", "--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("would create"), "{stdout}");
    assert!(
        stdout.contains("Secret istio-system/istio-remote-secret-ap (from ap)"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was written"), "{stdout}");
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    assert_eq!(mesh.writes(), 0);
    assert!(!mesh.dir.path().join("pki").exists());

    // After a real apply, a dry run predicts no change at all.
    assert!(mesh.apply(&["--allow-loopback"])?.status.success());
    let written = mesh.writes();
    let (out, report) = mesh.apply_json(&["--dry-run", "--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(report["totals"]["created"], 0);
    assert_eq!(report["totals"]["updated"], 0);
    assert_eq!(mesh.writes(), written);
    Ok(())
}

#[test]
fn a_bad_mesh_file_is_refused_before_anything_happens() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("mesh.yaml");
    std::fs::write(
        &file,
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters:\n  - {name: eu, network: n, context: eu, netwrok: x}\n",
    )?;
    let out = meshboot_cmd().args(["apply", "-f"]).arg(&file).output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("netwrok"), "{stderr}");
    assert!(!Path::new(&dir.path().join("pki")).exists());
    Ok(())
}
