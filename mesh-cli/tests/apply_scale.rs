//! `meshboot apply` and the API servers' limits: `--cluster-concurrency` bounds what each
//! server sees at once, and a server that answers 429 (`Retry-After: 1`, its max-in-flight
//! filter) is waited for without failing the run or touching the other clusters.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result};
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::Value;

mod common;
use common::meshboot_cmd;

struct Mesh {
    clusters: TestClusters,
    _dir: tempfile::TempDir,
    file: PathBuf,
    names: Vec<&'static str>,
}

impl Mesh {
    /// One network, so no east-west gateway is needed.
    fn start(names: &[&'static str], latency: Duration) -> Result<Mesh> {
        let clusters = TestClusters::start_with(
            names,
            EmulatorOptions {
                latency,
                ..EmulatorOptions::default()
            },
        )?;
        clusters.install_istio_crds()?;
        let dir = tempfile::tempdir()?;
        let mut yaml = String::from(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\n\
             ca: {dir: ./pki, key: ecdsa-p256}\nclusters:\n",
        );
        for name in names {
            yaml.push_str(&format!(
                "  - {{name: {name}, network: network1, context: {name}, kubeconfig: {}}}\n",
                clusters.kubeconfig_path().display()
            ));
        }
        let file = dir.path().join("mesh.yaml");
        std::fs::write(&file, yaml)?;
        Ok(Mesh {
            clusters,
            _dir: dir,
            file,
            names: names.to_vec(),
        })
    }

    fn apply(&self, extra: &[&str]) -> Result<(Output, Value)> {
        for name in &self.names {
            self.clusters.cluster(name).reset_counters();
        }
        let out = meshboot_cmd()
            .args(["apply", "--allow-loopback", "-o", "json"])
            .args(extra)
            .arg("-f")
            .arg(&self.file)
            .env_remove("KUBECONFIG")
            .output()
            .context("running meshboot")?;
        let report = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "JSON report expected, got: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok((out, report))
    }

    fn writes(&self) -> u64 {
        self.names
            .iter()
            .map(|n| self.clusters.cluster(n).counters().writes)
            .sum()
    }
}

#[test]
fn cluster_concurrency_bounds_the_requests_each_api_server_sees_at_once() -> Result<()> {
    let mesh = Mesh::start(&["eu", "ap", "us", "sa"], Duration::from_millis(20))?;
    let (out, report) = mesh.apply(&["--cluster-concurrency", "2"])?;
    assert!(out.status.success(), "{report}");
    for name in &mesh.names {
        let peak = mesh.clusters.cluster(name).peak_in_flight();
        assert!(
            (1..=2).contains(&peak),
            "{name} served {peak} requests at once"
        );
    }
    Ok(())
}

#[test]
fn a_server_that_answers_429_is_waited_for_and_the_others_are_untouched() -> Result<()> {
    let mesh = Mesh::start(&["eu", "ap", "us"], Duration::from_millis(20))?;
    // A user that is not system:masters, whose requests the filter limits (masters are exempt).
    mesh.clusters.use_operator_identity()?;
    mesh.clusters.cluster("ap").set_max_in_flight(2, 1);
    let (out, report) = mesh.apply(&[])?;
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        mesh.clusters.cluster("ap").rejected_in_flight() > 0,
        "ap's limit was reached"
    );
    for calm in ["eu", "us"] {
        assert_eq!(mesh.clusters.cluster(calm).rejected_in_flight(), 0);
    }
    let secrets = mesh
        .clusters
        .cluster("ap")
        .list_objects("v1", "Secret", Some("istio-system"))
        .iter()
        .filter(|s| {
            s["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("istio-remote-secret-"))
        })
        .count();
    assert_eq!(secrets, 2, "ap holds the remote secrets of eu and us");

    let (out, _) = mesh.apply(&[])?;
    assert!(out.status.success());
    assert_eq!(mesh.writes(), 0, "the re-run is converged");
    Ok(())
}

#[test]
fn from_nothing_a_new_namespace_and_the_pairs_are_written_without_reads() -> Result<()> {
    let mesh = Mesh::start(&["eu", "ap", "us", "sa"], Duration::ZERO)?;
    let (out, report) = mesh.apply(&[])?;
    assert!(out.status.success(), "{report}");
    for name in &mesh.names {
        let counters = mesh.clusters.cluster(name).counters();
        let steps = report["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["cluster"] == *name)
            .and_then(|c| c["steps"].as_array())
            .context("steps")?;
        assert_eq!(counters.requests("apply"), steps.len() as u64, "{counters}");
        let cluster_scoped = steps
            .iter()
            .filter(|s| s["object"]["namespace"].is_null() && s["object"]["kind"] != "Namespace")
            .count() as u64;
        let in_namespace = steps.len() as u64 - cluster_scoped;
        // Preflight's 8 reads, one per cluster-scoped object (ClusterRole, binding), and the
        // reader-token wait (a poll or two); reading first would add one per object in
        // istio-system and per pair.
        assert!(in_namespace >= 6, "{steps:?}");
        assert!(
            counters.requests("get") <= 8 + cluster_scoped + 2,
            "{name}: {counters}"
        );
    }
    let (out, again) = mesh.apply(&[])?;
    assert!(out.status.success(), "{again}");
    assert_eq!(mesh.writes(), 0, "and the re-run is converged");
    Ok(())
}

#[test]
fn a_concurrency_of_zero_is_a_usage_error() -> Result<()> {
    for flag in ["--concurrency", "--cluster-concurrency"] {
        let out = meshboot_cmd()
            .args(["apply", flag, "0", "-f", "mesh.yaml"])
            .output()?;
        assert_eq!(out.status.code(), Some(2), "{flag} 0");
        assert!(String::from_utf8_lossy(&out.stderr).contains("1 to 4096"));
    }
    Ok(())
}
