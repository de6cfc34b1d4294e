//! `meshboot verify` end to end: the real binary against emulated clusters bootstrapped
//! through mesh-core (CA, rendered objects, reader tokens, remote secrets for every pair), then
//! broken one way at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mesh_core::cluster::{ApplyOptions, ClusterClient};
use mesh_core::pki::CaDir;
use mesh_core::remote_secret::{RemoteSecret, SecretType};
use mesh_core::render::{self, reader};
use mesh_core::spec::MeshSpec;
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::{Value, json};

mod common;
use common::{meshboot_cmd, stdout};

/// A mesh of emulated clusters, one per network, bootstrapped as `apply` would leave it.
struct Mesh {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    spec: MeshSpec,
}

impl Mesh {
    fn file(&self) -> PathBuf {
        self.dir.path().join("mesh.yaml")
    }

    fn verify(&self, extra: &[&str]) -> Output {
        let file = self.file();
        let mut args = vec!["verify", "-f", file.to_str().expect("utf-8 path")];
        args.extend(extra);
        meshboot_cmd()
            .args(&args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run meshboot")
    }
}

/// Multi-primary: one network per cluster. Primary-remote: the first cluster is the primary,
/// all on one network.
fn write_mesh_file(dir: &Path, kubeconfig: &Path, names: &[&str], primary_remote: bool) -> PathBuf {
    let model = if primary_remote {
        "primary-remote"
    } else {
        "multi-primary"
    };
    let networks: Vec<String> = (1..=names.len())
        .map(|i| format!("network{}", if primary_remote { 1 } else { i }))
        .collect();
    let clusters: Vec<(&str, &str, &str)> = names
        .iter()
        .zip(&networks)
        .enumerate()
        .map(|(i, (name, network))| {
            let role = if primary_remote && i > 0 {
                "remote"
            } else {
                "primary"
            };
            (*name, network.as_str(), role)
        })
        .collect();
    common::write_mesh(dir, kubeconfig, &clusters, model, "")
}

async fn bootstrap(names: &[&str], options: EmulatorOptions) -> Mesh {
    bootstrap_model(names, options, false).await
}

async fn bootstrap_model(names: &[&str], options: EmulatorOptions, primary_remote: bool) -> Mesh {
    let clusters = TestClusters::start_with(names, options).expect("emulator");
    clusters.install_istio_crds().expect("Istio CRDs");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_mesh_file(
        dir.path(),
        clusters.kubeconfig_path(),
        names,
        primary_remote,
    );
    let spec = MeshSpec::from_file(&file).expect("valid mesh file");
    let bundles = CaDir::open(&spec.ca.dir)
        .ensure(&spec.ca_options(), &spec.cluster_names())
        .expect("CA");
    let bundles: BTreeMap<String, _> = bundles
        .into_iter()
        .map(|b| (b.cluster.clone(), b))
        .collect();
    // Istio as a user installed it before meshboot: its CRDs and, where a network is crossed,
    // the east-west gateway; meshboot's own reader (no chart made one).
    let own_readers = render::RenderOptions {
        readers: spec
            .clusters
            .iter()
            .map(|c| (c.name.clone(), reader::ReaderIdentity::Meshboot))
            .collect(),
        ..Default::default()
    };
    let renders = render::render_mesh_with(&spec, &bundles, &own_readers).expect("render");
    for c in &spec.clusters {
        if render::Needs::of(&spec, c).eastwest_gateway {
            mesh_tests::charts::install_eastwest_gateway(
                clusters.cluster(&c.name),
                &spec.istio_namespace,
                &c.network,
            )
            .expect("east-west gateway");
        }
    }
    let mut clients = BTreeMap::new();
    for c in &spec.clusters {
        let client = ClusterClient::connect(&c.name, c.kubeconfig.as_deref(), &c.context)
            .await
            .expect("connect");
        clients.insert(c.name.clone(), client);
    }
    for r in &renders {
        for o in &r.objects {
            clients[&r.cluster]
                .apply(&o.object, &ApplyOptions::default())
                .await
                .unwrap_or_else(|e| panic!("apply {}: {e}", o.file_stem));
        }
    }
    let ns = spec.istio_namespace.clone();
    for (src, dst) in spec.remote_secret_pairs() {
        let token = clients[&src]
            .wait_for_token_secret(
                &ns,
                reader::ReaderIdentity::Meshboot.token_secret(),
                Duration::from_secs(10),
            )
            .await
            .expect("reader token");
        let secret = RemoteSecret {
            cluster: src.clone(),
            namespace: ns.clone(),
            secret_type: SecretType::Remote,
            server: clients[&src].server().to_string(),
            tls_server_name: None,
            ca_data: token.ca_crt,
            token: token.token,
        };
        clients[&dst]
            .apply(
                &secret.to_object().expect("secret"),
                &ApplyOptions::default(),
            )
            .await
            .expect("apply remote secret");
    }
    Mesh {
        clusters,
        dir,
        spec,
    }
}

/// Waits for the load-balancer controller to give every east-west gateway an address.
fn wait_for_gateways(mesh: &Mesh) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in &mesh.spec.clusters {
        if !render::Needs::of(&mesh.spec, c).eastwest_gateway {
            continue;
        }
        loop {
            let svc = mesh.clusters.cluster(&c.name).object(
                "v1",
                "Service",
                Some("istio-system"),
                "istio-eastwestgateway",
            );
            let ready = svc
                .as_ref()
                .and_then(|s| s.pointer("/status/loadBalancer/ingress/0"))
                .is_some();
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "no LB address on {}", c.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn b64_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn secret(mesh: &Mesh, cluster: &str, name: &str) -> Value {
    mesh.clusters
        .cluster(cluster)
        .object("v1", "Secret", Some("istio-system"), name)
        .unwrap_or_else(|| panic!("Secret {name} in {cluster}"))
}

/// Replaces a stored object (test set-up that bypasses the API).
fn replace(mesh: &Mesh, cluster: &str, mut object: Value) {
    let emu = mesh.clusters.cluster(cluster);
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
    emu.remove_object("v1", &kind, ns.as_deref(), &name);
    if let Some(meta) = object["metadata"].as_object_mut() {
        for key in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(key);
        }
    }
    emu.insert_object(object).expect("insert");
}

#[tokio::test]
async fn passes_on_a_bootstrapped_pair_and_refuses_loopback_by_default() {
    let mesh = bootstrap(&["eu", "ap"], EmulatorOptions::default()).await;
    wait_for_gateways(&mesh);
    for c in ["eu", "ap"] {
        mesh.clusters.cluster(c).reset_counters();
    }

    let out = mesh.verify(&["--allow-loopback"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ok       *  root: 2 cluster(s) chain to one root"),
        "{text}"
    );
    assert!(
        text.contains("ok       ap  token: eu accepts the token of istio-remote-secret-eu"),
        "{text}"
    );
    assert!(
        text.contains("ok       eu  network: namespace istio-system is on network network1"),
        "{text}"
    );
    assert!(
        text.contains("ok       eu  eastwest-gateway: external address"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("no errors"), "{text}");
    // verify never writes.
    for c in ["eu", "ap"] {
        assert_eq!(mesh.clusters.cluster(c).counters().writes, 0, "{c}");
    }

    // Without --allow-loopback the emulator's 127.0.0.1 servers are what a real mesh can
    // never use: an error that says what to set.
    let out = mesh.verify(&[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "error    ap  remote-secret: istio-remote-secret-eu points at https://127.0.0.1:"
        ),
        "{text}"
    );
    assert!(text.contains("set apiServer for eu in mesh.yaml"), "{text}");

    let out = mesh.verify(&["--allow-loopback", "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["errors"], 0);
    let findings = report["findings"].as_array().expect("findings");
    assert!(
        findings
            .iter()
            .any(|f| f["check"] == "token" && f["severity"] == "ok")
    );
}

#[tokio::test]
async fn reports_each_broken_case() {
    let mesh = bootstrap(&["eu", "ap", "us"], EmulatorOptions::default()).await;
    wait_for_gateways(&mesh);

    // ap lost eu's remote secret.
    mesh.clusters.cluster("ap").remove_object(
        "v1",
        "Secret",
        Some("istio-system"),
        "istio-remote-secret-eu",
    );
    // us holds eu's secret with a token eu never issued.
    let mut bad_token = secret(&mesh, "us", "istio-remote-secret-eu");
    let kubeconfig = String::from_utf8(b64_decode(
        bad_token["data"]["eu"].as_str().expect("key eu"),
    ))
    .expect("utf-8");
    let forged: String = kubeconfig
        .lines()
        .map(|l| {
            if l.starts_with("    token: ") {
                "    token: forged-token\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    bad_token["data"]["eu"] = json!(b64(&forged));
    replace(&mesh, "us", bad_token);
    // eu holds ap's secret under the wrong key.
    let mut wrong_key = secret(&mesh, "eu", "istio-remote-secret-ap");
    let data = wrong_key["data"]["ap"].clone();
    wrong_key["data"] = json!({"wrong": data});
    replace(&mesh, "eu", wrong_key);
    // eu also holds a remote secret for itself.
    let mut own = secret(&mesh, "ap", "istio-remote-secret-us");
    own["metadata"]["name"] = json!("istio-remote-secret-eu");
    own["data"] = json!({"eu": own["data"]["us"].clone()});
    replace(&mesh, "eu", own);
    // ap's copy of us's secret is labelled "True": istiod selects on exactly "true".
    let mut mislabelled = secret(&mesh, "ap", "istio-remote-secret-us");
    mislabelled["metadata"]["labels"]["istio/multiCluster"] = json!("True");
    replace(&mesh, "ap", mislabelled);
    // us also holds a copy of ap's secret in `default`, as istioctl leaves it (#49780).
    let mut misplaced = secret(&mesh, "us", "istio-remote-secret-ap");
    misplaced["metadata"]["namespace"] = json!("default");
    mesh.clusters.cluster("us").insert_object(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})).ok();
    replace(&mesh, "us", misplaced);
    // us is labelled with ap's network.
    let mut ns = mesh
        .clusters
        .cluster("us")
        .object("v1", "Namespace", None, "istio-system")
        .expect("ns");
    ns["metadata"]["labels"]["topology.istio.io/network"] = json!("network2");
    replace(&mesh, "us", ns);
    // ap runs with eu's intermediate.
    let mut cacerts = secret(&mesh, "eu", "cacerts");
    cacerts["metadata"]["namespace"] = json!("istio-system");
    replace(&mesh, "ap", cacerts);

    let out = mesh.verify(&["--allow-loopback", "--quiet"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for expected in [
        "error    ap  remote-secret: istio-remote-secret-eu is missing: istiod in ap does not see eu",
        "error    ap  remote-secret: istio-remote-secret-us exists but is not labelled istio/multiCluster: \"true\" (istio/multiCluster: \"True\"): istiod in ap ignores it",
        "error    us  unexpected-secret: default/istio-remote-secret-ap is labelled istio/multiCluster=true but istiod only reads istio-system",
        "error    us  token: eu rejects the token of istio-remote-secret-eu",
        "error    eu  remote-secret: istio-remote-secret-ap is not keyed by cluster name ap (keys: wrong)",
        "error    eu  unexpected-secret: istio-remote-secret-eu holds a kubeconfig for eu itself",
        "error    us  network: namespace istio-system is labelled topology.istio.io/network=network2, mesh.yaml says network3",
        "error    ap  cacerts: the intermediate in cacerts belongs to eu (L=), not to ap",
        "warning  eu  unexpected-secret: istio-remote-secret-ap registers cluster wrong, which is not in mesh.yaml",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // --quiet keeps only what needs attention.
    assert!(!text.lines().any(|l| l.starts_with("ok ")), "{text}");
    assert!(text.contains("error(s)"));
}

#[tokio::test]
async fn reports_a_foreign_root_and_a_gateway_without_address() {
    let options = EmulatorOptions {
        lb_delay: Duration::from_secs(3600),
        ..EmulatorOptions::default()
    };
    let mesh = bootstrap(&["eu", "ap"], options).await;
    // A second, unrelated CA signs ap's cacerts.
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = CaDir::open(other.path())
        .ensure(&mesh.spec.ca_options(), &["ap"])
        .expect("CA")
        .remove(0);
    let mut cacerts = secret(&mesh, "ap", "cacerts");
    cacerts["data"] = json!({
        "ca-cert.pem": b64(&foreign.ca_cert_pem),
        "ca-key.pem": b64(&foreign.ca_key_pem),
        "root-cert.pem": b64(&foreign.root_cert_pem),
        "cert-chain.pem": b64(&foreign.cert_chain_pem),
    });
    replace(&mesh, "ap", cacerts);

    let out = mesh.verify(&["--allow-loopback", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let errors: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            (
                f["check"].as_str().unwrap_or_default().to_string(),
                f["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        errors
            .iter()
            .any(|(c, m)| c == "root" && m.contains("clusters do not share one root")),
        "{errors:?}"
    );
    // ...and ap's root is not the one in the mesh file's ca.dir.
    assert!(
        errors.iter().any(|(c, m)| c == "root"
            && m.starts_with("cacerts chains to root")
            && m.contains("pki/root-cert.pem")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|(c, m)| c == "eastwest-gateway" && m.contains("has no external address")),
        "{errors:?}"
    );
    // Key material never reaches the report.
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(!raw.contains("PRIVATE KEY") && !raw.contains(&foreign.ca_key_pem[30..60]));
}

#[tokio::test]
async fn primary_remote_needs_secrets_only_in_the_primary() {
    let mesh = bootstrap_model(&["eu", "ap"], EmulatorOptions::default(), true).await;
    wait_for_gateways(&mesh);
    let out = mesh.verify(&["--allow-loopback"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok       eu  remote-secret: istio-remote-secret-ap reaches ap at"),
        "{text}"
    );
    assert!(!text.contains("istio-remote-secret-eu"), "{text}");

    // The remote holding the primary's secret is not what this model wants: said, not fatal.
    let mut stray = secret(&mesh, "eu", "istio-remote-secret-ap");
    stray["metadata"]["name"] = json!("istio-remote-secret-eu");
    stray["data"] = json!({"eu": stray["data"]["ap"].clone()});
    replace(&mesh, "ap", stray);
    let out = mesh.verify(&["--allow-loopback", "-q"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("warning  ap  unexpected-secret: istio-remote-secret-eu registers eu, but ap should not watch eu in this mesh model"), "{text}");
}
