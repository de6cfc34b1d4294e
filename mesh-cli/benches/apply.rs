//! `cargo bench -p mesh-cli --bench apply`: the real `meshboot apply` against the API-server
//! emulator with 50 ms of latency on every request, for 3, 20 and 100 clusters (200 on request:
//! 39,800 remote secrets); then the same bootstrap done by hand (one `kubectl` process per
//! object, `kubectl-baseline.sh`) for 3 and 20.
//!
//! Prints figures; asserts nothing about time. Per run: wall time, requests and writes the
//! clusters saw, requests per object (per step of the report), peak RSS of the meshboot process
//! (VmHWM, sampled from /proc while it runs), and the ratio to a lower bound: the round trips
//! on the critical path times the latency, plus the load-balancer delay. For the largest size,
//! where the time goes: when each phase's first and last write reached a cluster.
//!
//! The emulated servers run in this process, on the same cores as meshboot. On two cores the
//! 100-cluster run from nothing is bound by CPU, not by the round trips: its 10,600 writes cost
//! the servers about as much CPU as meshboot (2 s each, measured with `perf`), which real API
//! servers on machines of their own would not take from it. Raising `--concurrency` then buys
//! little and costs memory.
//!
//! Environment: `MESHBOOT_BENCH_SIZES` (default `3,20,100`; e.g. `100,200`),
//! `MESHBOOT_BENCH_BASELINE_SIZES` (default `3,20`; empty skips the baseline),
//! `MESHBOOT_BENCH_ROTATE_SIZES` (default `100`), `MESHBOOT_BENCH_LATENCY_MS` (default 50),
//! `MESHBOOT_BENCH_ARGS` (extra `apply` flags, e.g. `--cluster-concurrency 8`),
//! `MESHBOOT_BENCH_TRACE` (a cluster, e.g. `c000`: every request it saw, when).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::Value;

const MESHBOOT: &str = env!("CARGO_BIN_EXE_meshboot");
const LB_DELAY: Duration = Duration::from_millis(100);

struct Run {
    started: Instant,
    wall: Duration,
    requests: u64,
    writes: u64,
    peak_rss_kib: u64,
    ok: bool,
    report: Value,
}

struct Bench {
    clusters: TestClusters,
    _dir: tempfile::TempDir,
    file: PathBuf,
    names: Vec<String>,
}

impl Bench {
    fn start(n: usize, latency: Duration) -> Result<Bench> {
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
        clusters.install_istio_crds()?;
        let dir = tempfile::tempdir()?;
        let mut yaml = String::from(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: bench\n\
             ca: {dir: ./pki, key: ecdsa-p256}\nclusters:\n",
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
        Ok(Bench {
            clusters,
            _dir: dir,
            file,
            names,
        })
    }

    fn reset(&self) {
        for n in &self.names {
            self.clusters.cluster(n).reset_counters();
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.names.iter().fold((0, 0), |(r, w), n| {
            let c = self.clusters.cluster(n).counters();
            (r + c.total_requests(), w + c.writes)
        })
    }

    fn apply(&self) -> Result<Run> {
        let extra = std::env::var("MESHBOOT_BENCH_ARGS").unwrap_or_default();
        let mut args = vec!["apply", "--allow-loopback"];
        args.extend(extra.split_whitespace());
        self.meshboot(&args)
    }

    /// When each phase's first and last write arrived, from the clusters' write logs.
    fn phases(&self, started: Instant) -> Vec<(&'static str, Duration, Duration, usize)> {
        let mut by_phase: Vec<(&'static str, Duration, Duration, usize)> = Vec::new();
        for n in &self.names {
            for (at, path) in self.clusters.cluster(n).write_log() {
                let phase = phase_of(&path);
                let t = at.saturating_duration_since(started);
                match by_phase.iter_mut().find(|p| p.0 == phase) {
                    Some(p) => {
                        p.1 = p.1.min(t);
                        p.2 = p.2.max(t);
                        p.3 += 1;
                    }
                    None => by_phase.push((phase, t, t, 1)),
                }
            }
        }
        by_phase.sort_by_key(|p| p.1);
        by_phase
    }

    /// With `MESHBOOT_BENCH_TRACE=<cluster>`: every request that cluster saw, by arrival time
    /// (remote secrets it received summed up in one line).
    fn trace(&self, label: &str, started: Instant) {
        let Ok(name) = std::env::var("MESHBOOT_BENCH_TRACE") else {
            return;
        };
        if !self.names.contains(&name) {
            return;
        }
        println!("  requests {name} saw, {label}:");
        let mut pairs = (0usize, Duration::MAX, Duration::ZERO);
        for r in self.clusters.cluster(&name).request_log() {
            let t = r.at.saturating_duration_since(started);
            if r.path
                .rsplit('/')
                .next()
                .is_some_and(|l| l.starts_with("istio-remote-secret-"))
            {
                pairs = (pairs.0 + 1, pairs.1.min(t), pairs.2.max(t));
                continue;
            }
            println!("    {:>7.3}s {:<10} {}", t.as_secs_f64(), r.verb, r.path);
        }
        let last = self
            .names
            .iter()
            .filter_map(|n| self.clusters.cluster(n).request_log().last().map(|r| r.at))
            .max()
            .map(|at| at.saturating_duration_since(started));
        if let Some(last) = last {
            println!(
                "    last request to any cluster at {:.3}s",
                last.as_secs_f64()
            );
        }
        if pairs.0 > 0 {
            println!(
                "    {:>7.3}s..{:.3}s {} remote-secret requests",
                pairs.1.as_secs_f64(),
                pairs.2.as_secs_f64(),
                pairs.0
            );
        }
    }

    /// Runs `meshboot <args> -o json -f <mesh>` and measures it.
    fn meshboot(&self, args: &[&str]) -> Result<Run> {
        self.reset();
        let started = Instant::now();
        let mut child = Command::new(MESHBOOT)
            .args(args)
            .args(["-o", "json", "-f"])
            .arg(&self.file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting meshboot")?;
        let pid = child.id();
        // The JSON report is read on a thread so a full pipe cannot stall the child.
        let mut stdout = child.stdout.take().context("stdout")?;
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut stdout, &mut buf).map(|_| buf)
        });
        let mut peak = 0;
        let status = loop {
            if let Some(hwm) = vm_hwm_kib(pid) {
                peak = peak.max(hwm);
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let wall = started.elapsed();
        let stdout = reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
        let report: Value = serde_json::from_slice(&stdout).with_context(|| {
            format!(
                "meshboot printed no JSON report: {}",
                String::from_utf8_lossy(&stdout)
            )
        })?;
        let (requests, writes) = self.totals();
        Ok(Run {
            started,
            wall,
            requests,
            writes,
            peak_rss_kib: peak,
            ok: status.success(),
            report,
        })
    }
}

/// The plan phase a write belongs to, from its URL path.
fn phase_of(path: &str) -> &'static str {
    let last = path.rsplit('/').next().unwrap_or_default();
    if path.ends_with("/namespaces/istio-system") {
        "namespace"
    } else if last == "cacerts" {
        "cacerts"
    } else if last.starts_with("istio-remote-secret-") {
        "remote-secrets"
    } else if path.contains("/rbac.authorization.k8s.io/")
        || path.contains("/serviceaccounts")
        || last.ends_with("-token")
    {
        "readers"
    } else {
        "other"
    }
}

/// The process's peak resident set so far, from `/proc/<pid>/status`.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Round trips on the critical path of one cluster, which no client can beat whatever its
/// parallelism: preflight (namespace read, then cacerts and istiod reads together), the access
/// reviews (together), then each object of the longest per-cluster chain (read, then apply
/// when it must change), the token read, and the last remote secret (read, then apply).
fn critical_round_trips(report: &Value, converged: bool) -> u64 {
    let chain = report["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            c["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["phase"] != "remote-secrets")
                .count() as u64
        })
        .max()
        .unwrap_or(0);
    let per_object = if converged { 1 } else { 2 };
    2 + 1 + chain * per_object + 1 + per_object
}

fn pairs(report: &Value) -> usize {
    report["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["steps"].as_array().into_iter().flatten())
        .filter(|s| s["phase"] == "remote-secrets")
        .count()
}

fn steps(report: &Value) -> usize {
    report["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["steps"].as_array().into_iter().flatten())
        .count()
}

fn failed(report: &Value) -> usize {
    report["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["steps"].as_array().into_iter().flatten())
        .filter(|s| s["outcome"] == "failed" || s["outcome"] == "skipped")
        .count()
}

fn print_run(label: &str, n: usize, run: &Run, latency: Duration, converged: bool) {
    let rtts = critical_round_trips(&run.report, converged);
    let mut bound = latency * rtts as u32;
    if !converged {
        bound += LB_DELAY;
    }
    let objects = steps(&run.report).max(1);
    let failures = failed(&run.report);
    println!(
        "{label:<22} {n:>4} {:>9.2} {:>9} {:>7.2} {:>8} {:>9.1} {:>8} {:>6.2}  {:>6} {}",
        run.wall.as_secs_f64(),
        run.requests,
        run.requests as f64 / objects as f64,
        run.writes,
        run.peak_rss_kib as f64 / 1024.0,
        format!("{:.2}s", bound.as_secs_f64()),
        run.wall.as_secs_f64() / bound.as_secs_f64(),
        pairs(&run.report),
        if run.ok && failures == 0 {
            "ok".to_string()
        } else {
            format!("FAILED ({failures} steps failed or skipped)")
        },
    );
}

fn sizes(var: &str, default: &str) -> Result<Vec<usize>> {
    let text = std::env::var(var).unwrap_or_else(|_| default.to_string());
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .with_context(|| format!("{var}: {s:?} is not a size"))
        })
        .collect()
}

fn baseline(n: usize, latency: Duration) -> Result<(Duration, String)> {
    let bench = Bench::start(n, latency)?;
    let dir = bench.file.parent().context("mesh dir")?.to_path_buf();
    let render_dir = dir.join("rendered");
    let render = Command::new(MESHBOOT)
        .args(["render", "-f"])
        .arg(&bench.file)
        .arg("--out-dir")
        .arg(&render_dir)
        .output()?;
    if !render.status.success() {
        bail!(
            "meshboot render: {}",
            String::from_utf8_lossy(&render.stderr)
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kubectl-baseline.sh");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(bench.clusters.kubeconfig_path())
        .arg(&render_dir)
        .arg(MESHBOOT)
        .args(&bench.names)
        .output()?;
    let wall = started.elapsed();
    if !out.status.success() {
        bail!(
            "kubectl baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let summary = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    Ok((wall, summary))
}

/// `meshboot rotate intermediate` of every cluster (`MESHBOOT_BENCH_ROTATE_SIZES`, default
/// 100) after a bootstrap: new keys, the previous intermediates kept, one `cacerts` each. The
/// bound is its critical path: read `cacerts` and istiod, then read and patch `cacerts`.
fn rotation(latency: Duration) -> Result<()> {
    let sizes = sizes("MESHBOOT_BENCH_ROTATE_SIZES", "100")?;
    if sizes.is_empty() {
        return Ok(());
    }
    println!();
    println!(
        "meshboot rotate intermediate --expiring-within 36500d (every cluster), same emulator"
    );
    for n in sizes {
        let bench = Bench::start(n, latency)?;
        let bootstrap = bench.apply()?;
        if !bootstrap.ok {
            bail!("the bootstrap apply of {n} clusters failed");
        }
        let run = bench.meshboot(&["rotate", "intermediate", "--expiring-within", "36500d"])?;
        let rotated = run.report["clusters"].as_array().map_or(0, Vec::len);
        let bound = latency * 4;
        println!(
            "{:<22} {n:>4} {:>9.2} {:>9} {:>7.2} {:>8} {:>9.1} {:>8} {:>6.2}  {:>6} {}",
            "rotate intermediates",
            run.wall.as_secs_f64(),
            run.requests,
            run.requests as f64 / n.max(1) as f64,
            run.writes,
            run.peak_rss_kib as f64 / 1024.0,
            format!("{:.2}s", bound.as_secs_f64()),
            run.wall.as_secs_f64() / bound.as_secs_f64(),
            rotated,
            if run.ok && rotated == n {
                "ok"
            } else {
                "FAILED"
            },
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let latency = Duration::from_millis(
        std::env::var("MESHBOOT_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    );
    let apply_sizes = sizes("MESHBOOT_BENCH_SIZES", "3,20,100")?;
    let baseline_sizes = sizes("MESHBOOT_BENCH_BASELINE_SIZES", "3,20")?;

    println!(
        "meshboot apply against the emulator: {} ms latency per request, load balancer after {} ms, ecdsa-p256 CA",
        latency.as_millis(),
        LB_DELAY.as_millis()
    );
    println!(
        "{:<22} {:>4} {:>9} {:>9} {:>7} {:>8} {:>9} {:>8} {:>6}  {:>6}",
        "run",
        "N",
        "wall s",
        "requests",
        "req/obj",
        "writes",
        "peak MiB",
        "bound",
        "ratio",
        "pairs"
    );
    let mut first_runs = Vec::new();
    let mut timelines = Vec::new();
    let largest = apply_sizes.iter().copied().max().unwrap_or(0);
    for &n in &apply_sizes {
        let bench = Bench::start(n, latency)?;
        let first = bench.apply()?;
        print_run("apply (from nothing)", n, &first, latency, false);
        bench.trace("from nothing", first.started);
        if n == largest {
            timelines.push(("from nothing", bench.phases(first.started)));
        }
        let again = bench.apply()?;
        print_run("apply (converged)", n, &again, latency, true);
        bench.trace("converged", again.started);
        first_runs.push((n, first.wall));
    }
    for (label, phases) in timelines {
        println!();
        println!("where the time goes, {largest} clusters {label}: writes per phase (first, last)");
        for (phase, first, last, writes) in phases {
            println!(
                "  {phase:<16} first write {:>6.2}s  last write {:>6.2}s  {writes:>6} writes",
                first.as_secs_f64(),
                last.as_secs_f64()
            );
        }
    }

    rotation(latency)?;

    if baseline_sizes.is_empty() {
        return Ok(());
    }
    let have_kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_kubectl {
        println!("kubectl baseline skipped: kubectl is not on PATH");
        return Ok(());
    }
    println!();
    println!("by hand: one kubectl process per object, in sequence (benches/kubectl-baseline.sh)");
    for &n in &baseline_sizes {
        let (wall, summary) = baseline(n, latency)?;
        let speedup = first_runs
            .iter()
            .find(|(size, _)| *size == n)
            .map(|(_, ours)| {
                format!(
                    "meshboot is {:.0}x faster",
                    wall.as_secs_f64() / ours.as_secs_f64()
                )
            })
            .unwrap_or_default();
        println!(
            "kubectl baseline       {n:>4} {:>9.2}  {summary}  {speedup}",
            wall.as_secs_f64()
        );
    }
    Ok(())
}
