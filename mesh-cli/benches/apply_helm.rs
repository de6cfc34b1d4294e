//! `cargo bench -p mesh-cli --bench apply_helm`: `meshboot apply` with
//! `controlPlane.install: helm` (the real `helm` installing the test charts of
//! `fixtures/charts/` as `chartDir`) against emulated clusters that start with no Istio, 50 ms of
//! latency on every request, for 3 and 20 clusters; then the converged re-run (no new Helm
//! revision, no write). The same columns as `--bench apply`, printed beside its figures.
//!
//! Prints figures; asserts nothing about time. Helm runs as one process per release, in
//! parallel across clusters, at most `mesh_core::execute::HELM_IN_FLIGHT` at once: the
//! `helm procs` column counts the `helm` processes meshboot started (a wrapper script counts
//! them), `revisions` the Helm revisions the run left (3 per cluster from nothing, unchanged
//! when converged).
//!
//! Needs helm (`MESHBOOT_HELM` or PATH; CI installs it, see `.ci/run`): without it the bench
//! prints why and exits 0. Environment: `MESHBOOT_BENCH_HELM_SIZES` (default `3,20`),
//! `MESHBOOT_BENCH_LATENCY_MS` (default 50).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mesh_tests::{EmulatorOptions, TestClusters, charts};
use serde_json::Value;

const MESHBOOT: &str = env!("CARGO_BIN_EXE_meshboot");
const LB_DELAY: Duration = Duration::from_millis(100);

struct Run {
    wall: Duration,
    requests: u64,
    writes: u64,
    helm_processes: usize,
    ok: bool,
    report: Value,
}

struct Bench {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    file: PathBuf,
    names: Vec<String>,
    /// A wrapper around the real helm that logs one line per process.
    helm: PathBuf,
    helm_log: PathBuf,
}

impl Bench {
    fn start(n: usize, latency: Duration, real_helm: &Path) -> Result<Bench> {
        let names: Vec<String> = (0..n).map(|i| format!("c{i:03}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let clusters = TestClusters::start_with(
            &refs,
            EmulatorOptions {
                latency,
                lb_delay: LB_DELAY,
                ..EmulatorOptions::default()
            },
        )?;
        let dir = tempfile::tempdir()?;
        let mut yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: bench\n\
             ca: {{dir: ./pki, key: ecdsa-p256}}\n\
             controlPlane: {{install: helm, version: {}, chartDir: {}}}\nclusters:\n",
            charts::VERSION,
            charts::dir().display()
        );
        for (i, name) in names.iter().enumerate() {
            yaml.push_str(&format!(
                "  - {{name: {name}, network: net{}, context: {name}, kubeconfig: {}}}\n",
                i % 10,
                clusters.kubeconfig_path().display()
            ));
        }
        let file = dir.path().join("mesh.yaml");
        std::fs::write(&file, yaml)?;
        for sub in ["helm-cache", "helm-config", "helm-data", "kube-cache"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        let helm_log = dir.path().join("helm-processes.log");
        let helm = dir.path().join("helm");
        std::fs::write(
            &helm,
            format!(
                "#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
                helm_log.display(),
                real_helm.display()
            ),
        )?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Bench {
            clusters,
            dir,
            file,
            names,
            helm,
            helm_log,
        })
    }

    fn totals(&self) -> (u64, u64) {
        self.names.iter().fold((0, 0), |(r, w), n| {
            let c = self.clusters.cluster(n).counters();
            (r + c.total_requests(), w + c.writes)
        })
    }

    /// Helm revisions stored in every cluster (one release Secret per revision).
    fn revisions(&self) -> usize {
        self.names
            .iter()
            .map(|n| {
                self.clusters
                    .cluster(n)
                    .list_objects("v1", "Secret", Some("istio-system"))
                    .iter()
                    .filter(|s| s["type"] == "helm.sh/release.v1")
                    .count()
            })
            .sum()
    }

    fn apply(&self) -> Result<Run> {
        for n in &self.names {
            self.clusters.cluster(n).reset_counters();
        }
        let _ = std::fs::remove_file(&self.helm_log);
        let d = self.dir.path();
        let started = Instant::now();
        let out = Command::new(MESHBOOT)
            .current_dir(d)
            .args(["apply", "--allow-loopback", "-o", "json", "--helm"])
            .arg(&self.helm)
            .arg("-f")
            .arg(&self.file)
            .env_remove("KUBECONFIG")
            .env("HELM_CACHE_HOME", d.join("helm-cache"))
            .env("HELM_CONFIG_HOME", d.join("helm-config"))
            .env("HELM_DATA_HOME", d.join("helm-data"))
            .env("KUBECACHEDIR", d.join("kube-cache"))
            .stderr(Stdio::piped())
            .output()
            .context("running meshboot")?;
        let wall = started.elapsed();
        let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "meshboot printed no JSON report: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if !out.status.success() {
            eprintln!("apply failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let (requests, writes) = self.totals();
        let helm_processes = std::fs::read_to_string(&self.helm_log)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        Ok(Run {
            wall,
            requests,
            writes,
            helm_processes,
            ok: out.status.success(),
            report,
        })
    }
}

fn print_run(label: &str, n: usize, run: &Run, revisions: usize) {
    println!(
        "{label:<30} {n:>4} {:>9.2} {:>9} {:>8} {:>10} {:>10}  {}",
        run.wall.as_secs_f64(),
        run.requests,
        run.writes,
        run.helm_processes,
        revisions,
        if run.ok {
            format!(
                "ok ({} created, {} updated)",
                run.report["totals"]["created"], run.report["totals"]["updated"]
            )
        } else {
            "FAILED".to_string()
        },
    );
}

fn sizes() -> Result<Vec<usize>> {
    let var = "MESHBOOT_BENCH_HELM_SIZES";
    let text = std::env::var(var).unwrap_or_else(|_| "3,20".to_string());
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .with_context(|| format!("{var}: {s:?} is not a size"))
        })
        .collect()
}

fn main() -> Result<()> {
    let Some(helm) = mesh_tests::tools::helm() else {
        println!("apply with install: helm skipped: helm not found (CI installs it: see .ci/run)");
        return Ok(());
    };
    let latency = Duration::from_millis(
        std::env::var("MESHBOOT_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    );
    println!(
        "meshboot apply with controlPlane.install: helm (fixtures/charts, the real helm) against the emulator: {} ms latency per request, load balancer after {} ms, at most {} helm processes at once",
        latency.as_millis(),
        LB_DELAY.as_millis(),
        mesh_core::execute::HELM_IN_FLIGHT
    );
    println!(
        "{:<30} {:>4} {:>9} {:>9} {:>8} {:>10} {:>10}",
        "run", "N", "wall s", "requests", "writes", "helm procs", "revisions"
    );
    for n in sizes()? {
        let bench = Bench::start(n, latency, &helm)?;
        let first = bench.apply()?;
        print_run("apply install:helm (nothing)", n, &first, bench.revisions());
        let again = bench.apply()?;
        print_run(
            "apply install:helm (converged)",
            n,
            &again,
            bench.revisions(),
        );
    }
    Ok(())
}
