//! The fleet from a Karmada control plane, end to end: the real `meshboot` binary against an
//! emulated hub with emulated members registered as `karmadactl join` (Push) and
//! `karmadactl register` (Pull) leave them (`reference/karmada.md`). The user's kubeconfig
//! holds the hub's context and the Pull member's only: the Push members are reached with the
//! hub's credentials, which never appear in any output.
//!
//! The emulator listens on 127.0.0.1, so runs that write pass `--allow-loopback`.

use std::path::PathBuf;
use std::process::Output;

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mesh_tests::TestClusters;
use mesh_tests::karmada::{Member, SyncMode, write_kubeconfig_for};
use serde_json::Value;

mod common;
use common::meshboot_cmd;

const MEMBERS: [&str; 4] = ["eu", "ap", "us", "cn"];

/// Hub `karmada`; eu and ap joined Push, us registered Pull, cn Push but NotReady; all
/// labelled `mesh=mesh1`, each in its own region.
struct Fleet {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Fleet {
    fn start(overrides: &str) -> Result<Fleet> {
        let clusters = TestClusters::start(&["karmada", "eu", "ap", "us", "cn"])?;
        let hub = clusters.cluster("karmada");
        hub.make_karmada_hub()?;
        for (name, mode, region, ready) in [
            ("eu", SyncMode::Push, "eu-west", true),
            ("ap", SyncMode::Push, "ap-south", true),
            ("us", SyncMode::Pull, "us-west", true),
            ("cn", SyncMode::Push, "cn-north", false),
        ] {
            let member = clusters.cluster(name);
            member.install_istio_crds()?;
            // Istio as its user installed it: the east-west gateway of its network.
            mesh_tests::charts::install_eastwest_gateway(member, "istio-system", region)?;
            let mut how = Member::new(mode).region(region).label("mesh", "mesh1");
            if !ready {
                how = how.not_ready();
            }
            hub.register_karmada_member(member, &how)?;
        }
        let dir = tempfile::tempdir()?;
        write_kubeconfig_for(
            &clusters,
            &["karmada", "us"],
            &dir.path().join("kubeconfig"),
        )?;
        let yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\n\
             ca: {{dir: ./pki, key: ecdsa-p256}}\n\
             karmada:\n  context: karmada\n  kubeconfig: ./kubeconfig\n  \
             clusterSelector: {{matchLabels: {{mesh: mesh1}}}}\n  network: region\n{overrides}"
        );
        let file = dir.path().join("mesh.yaml");
        std::fs::write(&file, yaml)?;
        Ok(Fleet {
            clusters,
            dir,
            file,
        })
    }

    fn meshboot(&self, args: &[&str]) -> Result<Output> {
        meshboot_cmd()
            .args(args)
            .arg("-f")
            .arg(&self.file)
            .env_remove("KUBECONFIG")
            .output()
            .context("running meshboot")
    }

    fn writes(&self, name: &str) -> u64 {
        self.clusters.cluster(name).counters().writes
    }

    /// Every bearer token of the test bed: the kubeconfig admins' and the join identities'
    /// the hub holds.
    fn tokens(&self) -> Result<Vec<String>> {
        let mut tokens: Vec<String> = self
            .clusters
            .clusters()
            .iter()
            .map(|c| c.admin_token().to_string())
            .collect();
        for name in MEMBERS {
            if let Some(s) = self.clusters.cluster("karmada").object(
                "v1",
                "Secret",
                Some("karmada-cluster"),
                name,
            ) {
                let b64 = s["data"]["token"].as_str().context("data.token")?;
                tokens.push(String::from_utf8(STANDARD.decode(b64)?)?);
            }
        }
        Ok(tokens)
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

/// No output carries a private key or any token of the test bed (nor its base64).
fn assert_no_secret(outputs: &[&Output], tokens: &[String]) {
    for out in outputs {
        let all = text(out);
        assert!(!all.contains("PRIVATE KEY"), "{all}");
        for t in tokens {
            assert!(!all.contains(t.as_str()), "a token leaked:\n{all}");
            assert!(
                !all.contains(&STANDARD.encode(t)),
                "a token leaked (base64):\n{all}"
            );
        }
    }
}

fn remote_secrets_in(fleet: &Fleet, cluster: &str) -> Vec<String> {
    let mut names: Vec<String> = fleet
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

#[test]
fn apply_from_nothing_to_verify_with_the_fleet_from_karmada() -> Result<()> {
    let fleet = Fleet::start("clusters:\n  - {name: us, context: us, kubeconfig: ./kubeconfig}\n")?;

    // validate prints the fleet: what Karmada contributed, and how each member is reached.
    let validate = fleet.meshboot(&["validate"])?;
    assert!(validate.status.success(), "{}", text(&validate));
    let out = String::from_utf8_lossy(&validate.stdout);
    assert!(
        out.contains("mesh mesh1, 3 cluster(s), multi-primary, sidecar, 3 network(s)"),
        "{out}"
    );
    assert!(
        out.contains("context karmada; mesh=mesh1; network from region"),
        "{out}"
    );
    let row = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .map(str::to_string)
    };
    let eu = row("eu").context("no eu row")?;
    assert!(
        eu.contains("eu-west (region)") && eu.contains(fleet.clusters.cluster("eu").url()),
        "{eu}"
    );
    assert!(
        eu.contains("Push") && eu.contains("the hub's Secret karmada-cluster/eu"),
        "{eu}"
    );
    let us = row("us").context("no us row")?;
    assert!(us.contains("Pull") && us.contains("context us of"), "{us}");
    assert!(row("cn").is_none(), "{out}");
    assert!(
        out.contains(
            "skipped: karmada member cn skipped: NotReady (Ready=False: ClusterNotReachable"
        ),
        "{out}"
    );

    let json = fleet.meshboot(&["validate", "-o", "json"])?;
    assert!(json.status.success(), "{}", text(&json));
    let report: Value = serde_json::from_slice(&json.stdout)?;
    let members = report["fleet"]["members"]
        .as_array()
        .context("fleet.members")?;
    let names: Vec<&str> = members.iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(names, ["ap", "eu", "us"]);
    assert_eq!(members[1]["reachedBy"]["via"], "hubSecret");
    assert_eq!(members[1]["apiServer"], fleet.clusters.cluster("eu").url());
    assert_eq!(members[2]["reachedBy"]["via"], "context");
    assert_eq!(members[2]["syncMode"], "Pull");
    assert_eq!(report["fleet"]["skipped"][0]["name"], "cn");
    assert_eq!(
        report["fleet"]["hub"]["server"],
        fleet.clusters.cluster("karmada").url()
    );

    let with_cn = fleet.meshboot(&["validate", "--include-not-ready", "-o", "json"])?;
    let report: Value = serde_json::from_slice(&with_cn.stdout)?;
    assert_eq!(
        report["mesh"]["clusters"].as_array().map(Vec::len),
        Some(4),
        "{report}"
    );

    // The most verbose logs and a dry run read the hub's credentials too, and show none.
    let traced = fleet.meshboot(&["-vvv", "validate"])?;
    assert!(traced.status.success(), "{}", text(&traced));
    let trace = String::from_utf8_lossy(&traced.stderr);
    assert!(
        trace.contains("/api/v1/namespaces/karmada-cluster/secrets/eu"),
        "{trace}"
    );
    let dry_run = fleet.meshboot(&["-vv", "apply", "--dry-run", "--allow-loopback"])?;
    assert!(dry_run.status.success(), "{}", text(&dry_run));
    assert_eq!(fleet.writes("eu"), 0, "a dry run writes nothing");

    // apply from nothing: every Ready member gets the mesh, cn is left alone.
    let apply = fleet.meshboot(&["apply", "--allow-loopback"])?;
    assert!(apply.status.success(), "{}", text(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("warn: karmada member cn skipped: NotReady"),
        "{stderr}"
    );
    for (name, others) in [
        ("eu", ["ap", "us"]),
        ("ap", ["eu", "us"]),
        ("us", ["ap", "eu"]),
    ] {
        let want: Vec<String> = others
            .iter()
            .map(|o| format!("istio-remote-secret-{o}"))
            .collect();
        assert_eq!(remote_secrets_in(&fleet, name), want, "{name}");
        let ns = fleet
            .clusters
            .cluster(name)
            .object("v1", "Namespace", None, "istio-system")
            .context("namespace")?;
        let region = match name {
            "eu" => "eu-west",
            "ap" => "ap-south",
            _ => "us-west",
        };
        assert_eq!(
            ns["metadata"]["labels"]["topology.istio.io/network"],
            region
        );
    }
    // The remote secret of eu points at eu's apiEndpoint as Karmada records it.
    let secret = fleet
        .clusters
        .cluster("us")
        .object(
            "v1",
            "Secret",
            Some("istio-system"),
            "istio-remote-secret-eu",
        )
        .context("remote secret")?;
    let kubeconfig =
        String::from_utf8(STANDARD.decode(secret["data"]["eu"].as_str().context("data.eu")?)?)?;
    assert!(
        kubeconfig.contains(&format!("server: {}", fleet.clusters.cluster("eu").url())),
        "{kubeconfig}"
    );
    assert!(remote_secrets_in(&fleet, "cn").is_empty());
    assert!(
        fleet
            .clusters
            .cluster("cn")
            .object("v1", "Secret", Some("istio-system"), "cacerts")
            .is_none()
    );

    let verify = fleet.meshboot(&["verify", "--allow-loopback"])?;
    assert!(verify.status.success(), "{}", text(&verify));
    let verify_json = fleet.meshboot(&["verify", "--allow-loopback", "-o", "json"])?;
    assert!(verify_json.status.success(), "{}", text(&verify_json));

    let before: Vec<u64> = ["eu", "ap", "us"].iter().map(|n| fleet.writes(n)).collect();
    let again = fleet.meshboot(&["apply", "--allow-loopback", "-o", "json"])?;
    assert!(again.status.success(), "{}", text(&again));
    let after: Vec<u64> = ["eu", "ap", "us"].iter().map(|n| fleet.writes(n)).collect();
    assert_eq!(before, after, "a converged fleet sees zero writes");

    // The other commands over the mesh take the same fleet.
    let expiry = fleet.meshboot(&["check-expiry"])?;
    assert_eq!(expiry.status.code(), Some(0), "{}", text(&expiry));
    let expiry_out = String::from_utf8_lossy(&expiry.stdout);
    for name in ["eu", "ap", "us"] {
        assert!(expiry_out.contains(name), "{expiry_out}");
    }
    let rotate = fleet.meshboot(&["rotate", "intermediate", "--cluster", "eu"])?;
    assert!(rotate.status.success(), "{}", text(&rotate));
    let rotated = String::from_utf8_lossy(&rotate.stdout);
    assert!(
        rotated.contains("Secret istio-system/cacerts: updated"),
        "{rotated}"
    );
    assert!(rotated.contains("not touched: ap, us"), "{rotated}");
    let out_dir = fleet.dir.path().join("out");
    let out_dir = out_dir.to_string_lossy();
    let render = fleet.meshboot(&["render", "--out-dir", &out_dir])?;
    assert!(render.status.success(), "{}", text(&render));
    assert!(
        String::from_utf8_lossy(&render.stdout).contains("rendered 3 cluster(s)"),
        "{}",
        text(&render)
    );
    // PLAN.md's commands never carry an empty --context (kubectl would take the current one).
    let plan = std::fs::read_to_string(fleet.dir.path().join("out/PLAN.md"))?;
    assert!(plan.contains("--context '<context of eu>'"), "{plan}");
    assert!(
        !plan.contains("--context ''") && !plan.contains("--kube-context ''"),
        "{plan}"
    );

    assert_no_secret(
        &[
            &validate,
            &json,
            &with_cn,
            &apply,
            &verify,
            &verify_json,
            &again,
            &expiry,
            &rotate,
            &traced,
            &dry_run,
            &render,
        ],
        &fleet.tokens()?,
    );
    // Nothing of the hub's credentials was written to the mesh folder either.
    let tokens = fleet.tokens()?;
    for entry in walk(fleet.dir.path()) {
        let bytes = std::fs::read(&entry)?;
        let content = String::from_utf8_lossy(&bytes);
        for t in &tokens[tokens.len() - 3..] {
            assert!(
                !content.contains(t.as_str()),
                "{} holds a join token",
                entry.display()
            );
        }
    }
    Ok(())
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_pull_member_without_a_context_stops_before_any_write() -> Result<()> {
    let fleet = Fleet::start("")?;
    let before: Vec<u64> = MEMBERS.iter().map(|n| fleet.writes(n)).collect();
    let apply = fleet.meshboot(&["apply", "--allow-loopback"])?;
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("error: karmada (context karmada): member us joined in Pull mode and the mesh file gives no context for it: the hub holds no credentials for Pull members"),
        "{stderr}"
    );
    assert!(
        stderr.contains("add {name: us, context: <its kubeconfig context>} to clusters[]"),
        "{stderr}"
    );
    let after: Vec<u64> = MEMBERS.iter().map(|n| fleet.writes(n)).collect();
    assert_eq!(before, after, "nothing may be written");
    assert!(!fleet.dir.path().join("pki").exists(), "not even the CA");

    let validate = fleet.meshboot(&["validate", "-o", "json"])?;
    assert_eq!(validate.status.code(), Some(1), "{}", text(&validate));
    let report: Value = serde_json::from_slice(&validate.stdout)?;
    assert_eq!(report["valid"], false);
    assert!(
        report["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("member us joined in Pull mode")),
        "{report}"
    );
    assert_no_secret(&[&apply, &validate], &fleet.tokens()?);
    Ok(())
}
