//! Karmada without keys in the hub, as a user runs it: `meshboot render --format karmada` and
//! `meshboot render demo --karmada` applied with `kubectl apply --server-side` to an emulated
//! Karmada API server that serves Karmada's real policy CRDs and Istio's real CRDs (so every
//! template and policy meets the real schemas), the output scanned for keys and tokens, and
//! `meshboot apply --only secrets` writing exactly the secrets (and what they need) to the
//! members. Tests that need kubectl or `../shared/data` say so and skip when they are absent.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use mesh_tests::TestClusters;
use serde_json::Value;

mod common;
use common::{fixtures, meshboot_cmd, text};

fn meshboot(cwd: &Path, args: &[&str]) -> Output {
    meshboot_cmd()
        .current_dir(cwd)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("meshboot runs")
}

/// Every file under `dir`, relative path → text.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).expect("under base");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).expect("text file"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A temp dir holding `example`'s mesh.yaml with a fast P-256 CA in place of RSA-4096.
fn copy_of(example: &str) -> tempfile::TempDir {
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

/// Nothing that could be a key, a certificate's key material or a credential.
fn assert_no_secret(path: &str, contents: &str) {
    for needle in [
        "PRIVATE KEY",
        "BEGIN",
        "LS0tLS1CRUdJTi", // base64 of "-----BEGIN"
        "ca-key.pem",
        "eyJhbGciOi", // a JWT's header
    ] {
        assert!(!contents.contains(needle), "{path} contains {needle:?}");
    }
    if path.ends_with(".yaml") {
        assert!(!contents.contains("kind: Secret"), "{path} holds a Secret");
        assert!(!contents.contains("token"), "{path} mentions a token");
    }
}

/// An emulated Karmada API server with Karmada's real policy CRDs (and the cluster-scoped
/// kinds of the same schema) and Istio's real CRDs, or `None` when ../shared/data lacks them.
fn hub(ambient: bool) -> Option<TestClusters> {
    for rel in mesh_tests::karmada::POLICY_CRDS {
        mesh_tests::tools::require_shared(rel, "karmada_render")?;
    }
    let istio = mesh_tests::crds::real_istio_crds().or_else(|| {
        eprintln!(
            "skipping: ../shared/data/istio CRDs not found (CI has ../shared beside the clone)"
        );
        None
    })?;
    let clusters = TestClusters::start(&["karmada"]).expect("emulator");
    let hub = clusters.cluster("karmada");
    hub.make_karmada_hub().expect("hub");
    hub.install_karmada_policy_crds().expect("policy CRDs");
    hub.install_karmada_cluster_policy_crds()
        .expect("cluster policy CRDs");
    hub.install_crds_from(istio).expect("Istio CRDs");
    if ambient {
        hub.install_gateway_api_crds().expect("Gateway API CRDs");
    }
    Some(clusters)
}

fn kubectl_apply(kubectl: &Path, clusters: &TestClusters, path: &Path) -> Output {
    Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(clusters.kubeconfig_path())
        .args(["--context", "karmada", "apply", "--server-side", "-f"])
        .arg(path)
        .output()
        .expect("kubectl runs")
}

#[test]
fn the_karmada_render_of_every_example_is_accepted_by_a_karmada_hub_and_holds_no_secret() {
    let kubectl = mesh_tests::require_kubectl!();
    for example in ["three-region", "ambient", "primary-remote-multinetwork"] {
        let Some(clusters) = hub(example == "ambient") else {
            return;
        };
        let tmp = copy_of(example);
        let run = meshboot(
            tmp.path(),
            &[
                "render",
                "-f",
                "mesh.yaml",
                "--out-dir",
                "out",
                "--format",
                "karmada",
            ],
        );
        assert!(run.status.success(), "{example}: {}", text(&run.stderr));
        assert!(
            !tmp.path().join("pki").exists(),
            "{example}: rendering for Karmada makes no CA"
        );
        let out = tmp.path().join("out");
        for (path, contents) in tree(&out) {
            assert_no_secret(&format!("{example}/{path}"), &contents);
        }
        assert_no_secret("stdout", &text(&run.stdout));

        let applied = kubectl_apply(&kubectl, &clusters, &out.join("karmada"));
        assert!(
            applied.status.success(),
            "{example}: the hub refused: {}\n{}",
            text(&applied.stderr),
            text(&applied.stdout)
        );
        let hub = clusters.cluster("karmada");
        let spec = mesh_core::spec::MeshSpec::from_file(tmp.path().join("mesh.yaml")).unwrap();
        let names: Vec<Value> = spec
            .clusters
            .iter()
            .map(|c| c.name.clone().into())
            .collect();
        let cpp = hub
            .object(
                "policy.karmada.io/v1alpha1",
                "ClusterPropagationPolicy",
                None,
                "meshboot-namespace-istio-system",
            )
            .expect("the namespace's policy is stored");
        assert_eq!(
            cpp["spec"]["placement"]["clusterAffinity"]["clusterNames"],
            Value::Array(names),
            "{example}"
        );
        // Karmada's schema defaulted what the policy leaves out.
        assert_eq!(cpp["spec"]["conflictResolution"], "Abort", "{cpp}");
        let cop = hub
            .object(
                "policy.karmada.io/v1alpha1",
                "ClusterOverridePolicy",
                None,
                "meshboot-namespace-istio-system",
            )
            .expect("the networks differ: one override per member");
        for c in &spec.clusters {
            let rule = cop["spec"]["overrideRules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["targetCluster"]["clusterNames"][0] == c.name.as_str())
                .unwrap_or_else(|| panic!("{example}: no rule for {}", c.name));
            assert_eq!(
                rule["overriders"]["labelsOverrider"][0]["value"]["topology.istio.io/network"],
                c.network.as_str()
            );
        }
        // The hub holds templates, never a Secret of the mesh.
        assert!(
            hub.list_objects("v1", "Secret", Some("istio-system"))
                .is_empty(),
            "{example}"
        );
        assert!(
            hub.object("v1", "Namespace", None, "istio-system")
                .is_some()
        );
        // Re-applying is a no-op for kubectl and the hub.
        let again = kubectl_apply(&kubectl, &clusters, &out.join("karmada"));
        assert!(again.status.success(), "{}", text(&again.stderr));
    }
}

#[test]
fn the_demo_for_karmada_is_accepted_by_the_hub_with_its_weights() {
    let kubectl = mesh_tests::require_kubectl!();
    let Some(clusters) = hub(false) else {
        return;
    };
    let tmp = copy_of("three-region");
    let run = meshboot(
        tmp.path(),
        &[
            "render",
            "demo",
            "-f",
            "mesh.yaml",
            "--karmada",
            "--out-dir",
            "demo",
            "--weights",
            "eu=2,us=2,ap=1",
            "--replicas",
            "10",
            "-o",
            "json",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let report: Value = serde_json::from_slice(&run.stdout).expect("JSON report");
    let split: Vec<(String, u64)> = report["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["cluster"].as_str().unwrap().to_string(),
                s["replicas"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        split,
        [("eu".into(), 4), ("ap".into(), 2), ("us".into(), 4)],
        "40 % / 40 % / 20 %"
    );
    assert!(report.get("tie").is_none(), "{report}");

    let applied = kubectl_apply(
        &kubectl,
        &clusters,
        &tmp.path().join("demo/karmada/demo.yaml"),
    );
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let hub = clusters.cluster("karmada");
    let pp = hub
        .object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            Some("sample"),
            "hello",
        )
        .expect("stored");
    let weights: Vec<(String, i64)> =
        pp["spec"]["placement"]["replicaScheduling"]["weightPreference"]["staticWeightList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["targetCluster"]["clusterNames"][0]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    w["weight"].as_i64().unwrap(),
                )
            })
            .collect();
    assert_eq!(
        weights,
        [("eu".into(), 2), ("ap".into(), 1), ("us".into(), 2)]
    );
    let deployment = hub
        .object("apps/v1", "Deployment", Some("sample"), "hello")
        .expect("the hello template");
    assert_eq!(deployment["spec"]["replicas"], 10);
    assert!(
        hub.object(
            "policy.karmada.io/v1alpha1",
            "OverridePolicy",
            Some("sample"),
            "hello-cluster-name"
        )
        .is_some()
    );
}

#[test]
fn a_tie_in_the_demo_split_is_reported_with_both_outcomes() {
    let tmp = copy_of("three-region");
    let run = meshboot(
        tmp.path(),
        &[
            "render",
            "demo",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "demo",
            "--replicas",
            "10",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = text(&run.stdout);
    assert!(
        out.contains("hello's 10 replica(s): eu 3, ap 4 or 3, us 3 or 4"),
        "{out}"
    );
    assert!(out.contains("hash of the Deployment's UID"), "{out}");
    // Without Karmada, each member's file carries its count.
    let ap = std::fs::read_to_string(tmp.path().join("demo/ap/demo.yaml")).unwrap();
    assert!(
        ap.contains("replicas: 4") && ap.contains("value: ap"),
        "{ap}"
    );

    for args in [
        &[
            "render",
            "demo",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "dry",
            "--dry-run",
        ][..],
        &[
            "render",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "dry",
            "--format",
            "karmada",
            "--dry-run",
        ],
    ] {
        let run = meshboot(tmp.path(), args);
        assert!(run.status.success(), "{args:?}: {}", text(&run.stderr));
        assert!(
            text(&run.stdout).starts_with("dry run"),
            "{}",
            text(&run.stdout)
        );
        assert!(!tmp.path().join("dry").exists(), "{args:?} wrote something");
    }

    for (bad, why) in [
        ("eu", "CLUSTER=WEIGHT"),
        ("eu=two", "whole number"),
        ("mars=1", "mars is not a cluster of the mesh"),
        ("eu=1,eu=2", "eu is given twice"),
    ] {
        let run = meshboot(
            tmp.path(),
            &[
                "render",
                "demo",
                "-f",
                "mesh.yaml",
                "--out-dir",
                "bad",
                "--weights",
                bad,
            ],
        );
        assert_eq!(run.status.code(), Some(2), "{bad}: {}", text(&run.stderr));
        assert!(
            text(&run.stderr).contains(why),
            "{bad}: {}",
            text(&run.stderr)
        );
        assert!(!tmp.path().join("bad").exists(), "{bad}: nothing written");
    }
}

#[test]
fn the_karmada_examples_match_their_golden_files() {
    // What README's render command gives with --format karmada, and the demo for the hub at
    // the reference setup's 40 % / 40 % / 20 %.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fixtures/three-region");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures().join("three-region/mesh.yaml"),
        dir.join("mesh.yaml"),
    )
    .unwrap();
    for (args, golden) in [
        (
            vec![
                "render",
                "-f",
                "fixtures/three-region/mesh.yaml",
                "--out-dir",
                "out/three-region-karmada",
                "--format",
                "karmada",
            ],
            "three-region-karmada",
        ),
        (
            vec![
                "render",
                "demo",
                "-f",
                "fixtures/three-region/mesh.yaml",
                "--karmada",
                "--out-dir",
                "out/three-region-demo",
                "--weights",
                "eu=2,us=2,ap=1",
                "--replicas",
                "10",
            ],
            "three-region-demo",
        ),
    ] {
        let run = meshboot(tmp.path(), &args);
        assert!(run.status.success(), "{golden}: {}", text(&run.stderr));
        let rendered = tree(&tmp.path().join("out").join(golden));
        let want = tree(&fixtures().join("golden").join(golden));
        assert_eq!(
            rendered.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{golden}"
        );
        for (path, contents) in &want {
            assert_eq!(&rendered[path], contents, "{golden}/{path}");
        }
    }
}

#[test]
fn apply_only_secrets_writes_the_secrets_and_what_they_need_and_nothing_else() {
    let clusters = common::start_with_istio(&["eu", "ap", "us"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = common::write_mesh(
        tmp.path(),
        clusters.kubeconfig_path(),
        &[
            ("eu", "network3", "primary"),
            ("ap", "network1", "primary"),
            ("us", "network2", "primary"),
        ],
        "multi-primary",
        "",
    );
    let file = file.to_string_lossy().into_owned();
    let names = ["eu", "ap", "us"];
    let writes = || -> u64 {
        names
            .iter()
            .map(|n| clusters.cluster(n).counters().writes)
            .sum()
    };

    let dry = meshboot(
        tmp.path(),
        &[
            "apply",
            "--only",
            "secrets",
            "--dry-run",
            "--allow-loopback",
            "-f",
            &file,
            "-o",
            "json",
        ],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(writes(), 0, "--dry-run writes nothing");
    assert_no_secret(
        "dry-run stdout",
        &text(&dry.stdout).replace("token", "t0ken"),
    );
    let report: Value = serde_json::from_slice(&dry.stdout).expect("JSON report");
    let planned = report.to_string();
    assert!(planned.contains("istio-remote-secret-eu"), "{report}");
    assert!(!planned.contains("cross-network-gateway"), "{report}");

    let run = meshboot(
        tmp.path(),
        &[
            "apply",
            "--only",
            "secrets",
            "--allow-loopback",
            "-f",
            &file,
        ],
    );
    assert!(
        run.status.success(),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    assert!(
        text(&run.stdout)
            .contains("only secrets: cacerts, the reader tokens and the remote secrets"),
        "{}",
        text(&run.stdout)
    );
    for name in names {
        let c = clusters.cluster(name);
        assert!(
            c.object("v1", "Secret", Some("istio-system"), "cacerts")
                .is_some(),
            "{name}"
        );
        let ns = c
            .object("v1", "Namespace", None, "istio-system")
            .expect("namespace");
        assert!(ns["metadata"]["labels"]["topology.istio.io/network"].is_string());
        let mut remote: Vec<String> = c
            .list_objects("v1", "Secret", Some("istio-system"))
            .iter()
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
            .filter(|n| n.starts_with("istio-remote-secret-"))
            .collect();
        remote.sort();
        let mut want: Vec<String> = names
            .iter()
            .filter(|n| **n != name)
            .map(|n| format!("istio-remote-secret-{n}"))
            .collect();
        want.sort();
        assert_eq!(remote, want, "{name}");
        // The exposure Gateway is Karmada's to deliver.
        assert!(
            c.object(
                "networking.istio.io/v1",
                "Gateway",
                Some("istio-system"),
                "cross-network-gateway"
            )
            .is_none(),
            "{name}"
        );
    }
    // A second run is converged.
    let before = writes();
    let again = meshboot(
        tmp.path(),
        &[
            "apply",
            "--only",
            "secrets",
            "--allow-loopback",
            "-f",
            &file,
            "-o",
            "json",
        ],
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report: Value = serde_json::from_slice(&again.stdout).expect("JSON report");
    assert_eq!(report["totals"]["created"], 0, "{report}");
    assert_eq!(report["totals"]["updated"], 0, "{report}");
    assert!(writes() >= before);
}

#[test]
fn with_the_fleet_from_a_hub_the_karmada_render_lands_there_and_the_secrets_go_to_the_members() {
    use base64::Engine as _;
    use mesh_tests::karmada::{Member, SyncMode, write_kubeconfig_for};
    let kubectl = mesh_tests::require_kubectl!();
    let Some(istio) = mesh_tests::tools::require_shared(
        "istio/crd-all-1.30.3.gen.yaml",
        "with_the_fleet_from_a_hub_the_karmada_render_lands_there",
    ) else {
        return;
    };
    for rel in mesh_tests::karmada::POLICY_CRDS {
        if mesh_tests::tools::require_shared(rel, "with_the_fleet_from_a_hub").is_none() {
            return;
        }
    }
    // The hub serves the Cluster kind, Karmada's policies and Istio's kinds; eu and ap are
    // joined Push (the hub holds their credentials), us registered Pull (its context is ours).
    let clusters = TestClusters::start(&["karmada", "eu", "ap", "us"]).expect("emulator");
    let hub = clusters.cluster("karmada");
    hub.make_karmada_hub().unwrap();
    hub.install_karmada_policy_crds().unwrap();
    hub.install_karmada_cluster_policy_crds().unwrap();
    hub.install_crds_from(&istio).unwrap();
    for (name, mode, region) in [
        ("eu", SyncMode::Push, "eu-west"),
        ("ap", SyncMode::Push, "ap-south"),
        ("us", SyncMode::Pull, "us-west"),
    ] {
        let member = clusters.cluster(name);
        member.install_istio_crds().unwrap();
        mesh_tests::charts::install_eastwest_gateway(member, "istio-system", region).unwrap();
        hub.register_karmada_member(member, &Member::new(mode).region(region))
            .unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    write_kubeconfig_for(&clusters, &["karmada", "us"], &kubeconfig).unwrap();
    std::fs::write(
        tmp.path().join("mesh.yaml"),
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\n\
         ca: {dir: ./pki, key: ecdsa-p256}\n\
         karmada: {context: karmada, kubeconfig: ./kubeconfig, network: region}\n\
         clusters:\n  - {name: us, context: us, kubeconfig: ./kubeconfig}\n",
    )
    .unwrap();

    let run = meshboot(
        tmp.path(),
        &[
            "render",
            "-f",
            "mesh.yaml",
            "--out-dir",
            "out",
            "--format",
            "karmada",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = tmp.path().join("out");
    let files = tree(&out);
    let plan = &files["PLAN.md"];
    assert!(
        plan.contains(" --context karmada apply --server-side -f out/karmada/"),
        "{plan}"
    );
    let ns = &files["karmada/10-namespace.yaml"];
    for region in ["eu-west", "ap-south", "us-west"] {
        assert!(
            ns.contains(&format!("topology.istio.io/network: {region}")),
            "{ns}"
        );
    }
    // Every credential of the test bed: the admins' and the join identities' the hub holds.
    let mut tokens: Vec<String> = clusters
        .clusters()
        .iter()
        .map(|c| c.admin_token().to_string())
        .collect();
    for name in ["eu", "ap"] {
        let s = hub
            .object("v1", "Secret", Some("karmada-cluster"), name)
            .expect("join credentials");
        let token = base64::engine::general_purpose::STANDARD
            .decode(s["data"]["token"].as_str().unwrap())
            .unwrap();
        tokens.push(String::from_utf8(token).unwrap());
    }
    for (path, contents) in &files {
        assert_no_secret(path, contents);
        for t in &tokens {
            assert!(!contents.contains(t.as_str()), "{path} holds a token");
        }
    }

    let applied = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--context", "karmada", "apply", "--server-side", "-f"])
        .arg(out.join("karmada"))
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let before: Vec<Value> = hub.list_objects("v1", "Secret", None);

    let secrets = meshboot(
        tmp.path(),
        &[
            "apply",
            "--only",
            "secrets",
            "--allow-loopback",
            "-f",
            "mesh.yaml",
        ],
    );
    assert!(
        secrets.status.success(),
        "{}\n{}",
        text(&secrets.stdout),
        text(&secrets.stderr)
    );
    for t in &tokens {
        assert!(!text(&secrets.stdout).contains(t.as_str()));
        assert!(!text(&secrets.stderr).contains(t.as_str()));
    }
    for name in ["eu", "ap", "us"] {
        let c = clusters.cluster(name);
        assert!(
            c.object("v1", "Secret", Some("istio-system"), "cacerts")
                .is_some(),
            "{name}"
        );
        assert_eq!(
            c.list_objects("v1", "Secret", Some("istio-system"))
                .iter()
                .filter(|s| s["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("istio-remote-secret-")))
                .count(),
            2,
            "{name}"
        );
    }
    // The hub got no Secret from any of it.
    assert_eq!(hub.list_objects("v1", "Secret", None).len(), before.len());
}
