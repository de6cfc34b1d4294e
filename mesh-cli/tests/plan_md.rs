//! PLAN.md is the GitOps path: its commands, run in the order it gives, must work on fresh
//! clusters (no Istio, no CRDs) with Helm charts — here the test charts of `fixtures/charts/`,
//! which create the objects Istio's charts own with the same names and Helm ownership — and
//! leave the charts upgradable afterwards (the conflicts of issue 8, item 5, are gone).
//!
//! Runs the real `meshboot`, `kubectl` and `helm` against the API-server emulator. Skipped with
//! a printed reason when helm or kubectl is missing (CI installs helm: see `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Command;

use mesh_tests::TestClusters;

mod common;
use common::{MESHBOOT, fixtures, text};

fn charts() -> PathBuf {
    let dir = fixtures().join("charts");
    for chart in ["base", "istiod", "gateway"] {
        assert!(
            dir.join(chart).join("Chart.yaml").is_file(),
            "the test charts are part of the repository: {}/{chart} is missing",
            dir.display()
        );
    }
    dir.canonicalize().expect("charts dir")
}

/// The ```sh blocks of PLAN.md in order, without the alternatives that are not GitOps steps
/// (`meshboot apply`) and without the final `meshboot verify` (it checks a running Istio,
/// which the test charts do not provide).
fn plan_script(plan: &str) -> String {
    let mut script = String::from("set -euo pipefail\n");
    let mut block: Option<Vec<&str>> = None;
    for line in plan.lines() {
        match (&mut block, line) {
            (None, "```sh") => block = Some(Vec::new()),
            (Some(lines), "```") => {
                let skip = lines
                    .iter()
                    .any(|l| l.starts_with("meshboot apply") || l.starts_with("meshboot verify"));
                if !skip {
                    for l in lines.iter() {
                        script.push_str(&format!("echo '+ {}'\n{l}\n", l.replace('\'', "")));
                    }
                }
                block = None;
            }
            (Some(lines), l) => lines.push(l),
            (None, _) => {}
        }
    }
    script
}

struct Run {
    tmp: tempfile::TempDir,
    clusters: TestClusters,
    path: String,
}

impl Run {
    /// Fresh emulated clusters and a mesh file for them, with the test charts as `chartDir`.
    fn new(clusters: &[(&str, &str, &str)], model: &str, helm: &Path, kubectl: &Path) -> Run {
        let names: Vec<&str> = clusters.iter().map(|c| c.0).collect();
        let emulator = TestClusters::start(&names).expect("emulator starts");
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nmodel: {model}\nca: {{key: ecdsa-p256}}\ncontrolPlane: {{install: none, version: 1.28.2, chartDir: {}}}\nclusters:\n",
            charts().display()
        );
        for (name, network, role) in clusters {
            yaml.push_str(&format!(
                "  - {{name: {name}, network: {network}, role: {role}, context: {name}, kubeconfig: {}}}\n",
                emulator.kubeconfig_path().display()
            ));
        }
        std::fs::write(tmp.path().join("mesh.yaml"), yaml).expect("mesh.yaml");
        // PLAN.md says `meshboot`, `helm` and `kubectl`: the binaries under test, first on PATH.
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        for (name, target) in [
            ("meshboot", Path::new(MESHBOOT)),
            ("helm", helm),
            ("kubectl", kubectl),
        ] {
            std::os::unix::fs::symlink(target, bin.join(name)).expect("symlink");
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Run {
            tmp,
            clusters: emulator,
            path,
        }
    }

    fn sh(&self, script: &str) -> std::process::Output {
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(self.tmp.path())
            .env("PATH", &self.path)
            // Helm's cache and config stay in the test's folder.
            .env("HELM_CACHE_HOME", self.tmp.path().join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.tmp.path().join("helm/config"))
            .env("HELM_DATA_HOME", self.tmp.path().join("helm/data"))
            .output()
            .expect("bash runs")
    }

    /// `meshboot render`, then every PLAN.md step in order; returns the script that ran.
    fn follow_plan(&self) -> String {
        let render = self.sh("meshboot render -f mesh.yaml --out-dir out");
        assert!(render.status.success(), "render: {}", text(&render.stderr));
        let plan = std::fs::read_to_string(self.tmp.path().join("out/PLAN.md")).expect("PLAN.md");
        let script = plan_script(&plan);
        let run = self.sh(&script);
        assert!(
            run.status.success(),
            "PLAN.md's commands failed:\n{}\n{}",
            text(&run.stdout),
            text(&run.stderr)
        );
        script
    }

    fn object(
        &self,
        cluster: &str,
        api: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        self.clusters.cluster(cluster).object(api, kind, ns, name)
    }

    fn release_status(&self, cluster: &str, release: &str) -> String {
        let out = self.sh(&format!(
            "helm list -n istio-system --kube-context {cluster} --kubeconfig {} -o json --filter '^{release}$'",
            self.clusters.kubeconfig_path().display()
        ));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("helm list json");
        format!(
            "{} {}",
            list[0]["chart"].as_str().unwrap_or("-"),
            list[0]["status"].as_str().unwrap_or("-")
        )
    }
}

/// Every helm command of the script again: a later `helm upgrade` of the charts must not meet
/// anything kubectl or meshboot wrote (the reader RBAC and gateway conflicts of issue 8).
fn helm_again(run: &Run, script: &str) {
    let mut again = String::from("set -euo pipefail\n");
    for l in script.lines() {
        if l.starts_with("DISCOVERY_ADDRESS=") || l.starts_with("helm upgrade --install") {
            again.push_str(l);
            again.push('\n');
        }
    }
    let out = run.sh(&again);
    assert!(
        out.status.success(),
        "upgrading the charts after PLAN.md failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// helm and kubectl, or `None` after printing why `test` skips.
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let helm = mesh_tests::tools::require(mesh_tests::tools::Tool::Helm, test)?;
    let kubectl = mesh_tests::tools::require(mesh_tests::tools::Tool::Kubectl, test)?;
    Some((helm, kubectl))
}

#[test]
fn multi_primary_on_two_networks_from_bare_clusters() {
    let Some((helm, kubectl)) = tools("plan_md::multi_primary_on_two_networks_from_bare_clusters")
    else {
        return;
    };
    let run = Run::new(
        &[("eu", "network1", "primary"), ("us", "network2", "primary")],
        "multi-primary",
        &helm,
        &kubectl,
    );
    let script = run.follow_plan();
    for (me, other) in [("eu", "us"), ("us", "eu")] {
        for release in ["istio-base", "istiod", "istio-eastwestgateway"] {
            let chart = match release {
                "istio-base" => "base",
                "istio-eastwestgateway" => "gateway",
                r => r,
            };
            assert_eq!(
                run.release_status(me, release),
                format!("{chart}-1.28.2 deployed"),
                "{me}"
            );
        }
        let ns = Some("istio-system");
        assert!(
            run.object(me, "v1", "Secret", ns, "cacerts").is_some(),
            "{me}"
        );
        let secret = run
            .object(
                me,
                "v1",
                "Secret",
                ns,
                &format!("istio-remote-secret-{other}"),
            )
            .unwrap_or_else(|| panic!("{me}: remote secret of {other}"));
        assert_eq!(secret["metadata"]["labels"]["istio/multiCluster"], "true");
        assert!(
            run.object(
                me,
                "networking.istio.io/v1",
                "Gateway",
                ns,
                "cross-network-gateway"
            )
            .is_some(),
            "{me}: exposure"
        );
        let svc = run
            .object(me, "v1", "Service", ns, "istio-eastwestgateway")
            .expect("gateway Service");
        assert_eq!(
            svc["metadata"]["labels"]["topology.istio.io/network"],
            if me == "eu" { "network1" } else { "network2" }
        );
        assert_eq!(
            svc["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
            "{me}: the gateway is the chart's"
        );
        let sa = run
            .object(
                me,
                "v1",
                "ServiceAccount",
                ns,
                "istio-reader-service-account",
            )
            .expect("reader");
        assert_eq!(
            sa["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "istio-base"
        );
    }
    helm_again(&run, &script);
    // And the whole plan once more: every step is repeatable.
    let again = run.sh(&script);
    assert!(
        again.status.success(),
        "{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
}

#[test]
fn primary_remote_on_two_networks_from_bare_clusters() {
    let Some((helm, kubectl)) = tools("plan_md::primary_remote_on_two_networks_from_bare_clusters")
    else {
        return;
    };
    let run = Run::new(
        &[("p1", "network1", "primary"), ("r1", "network2", "remote")],
        "primary-remote",
        &helm,
        &kubectl,
    );
    let script = run.follow_plan();
    let ns = Some("istio-system");
    // The remote's istiod Service points at the primary's east-west gateway address.
    let lb = run
        .object("p1", "v1", "Service", ns, "istio-eastwestgateway")
        .expect("primary gateway");
    let address = lb["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .expect("LB address")
        .to_string();
    let out = run.sh(&format!(
        "helm get values istiod -n istio-system --kube-context r1 --kubeconfig {} -o json",
        run.clusters.kubeconfig_path().display()
    ));
    let values: serde_json::Value = serde_json::from_slice(&out.stdout).expect("values");
    assert_eq!(values["global"]["remotePilotAddress"], address.as_str());
    assert_eq!(values["profile"], "remote");
    assert!(
        run.object("p1", "v1", "Secret", ns, "istio-remote-secret-r1")
            .is_some(),
        "the remote is attached to its primary"
    );
    assert!(
        run.object("r1", "v1", "Secret", ns, "istio-remote-secret-p1")
            .is_none(),
        "a remote reads no other cluster"
    );
    assert!(
        run.object(
            "p1",
            "networking.istio.io/v1",
            "Gateway",
            ns,
            "istiod-gateway"
        )
        .is_some()
    );
    helm_again(&run, &script);
}
