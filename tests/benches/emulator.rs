//! Emulator throughput: 100 clusters in one process, 50 concurrent kube-rs requests against each,
//! a bounded number of requests per worker; prints requests/second and latency percentiles for
//! reads (GET) and writes (server-side apply). Everything stays on 127.0.0.1.
//!
//! `cargo bench -p mesh-tests --bench emulator`; scale with `BENCH_CLUSTERS`, `BENCH_CONCURRENCY`
//! and `BENCH_REQUESTS` (per worker).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::json;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
enum Op {
    Get,
    Apply,
}

struct Figures {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU seconds used by the emulator's threads and by everything else (the clients).
    cpu: Option<(f64, f64)>,
}

/// CPU seconds (user + system) of this process's threads, split into emulator threads (named
/// `kube-emulator*`) and the rest. Linux only; None elsewhere.
fn cpu_split() -> Option<(f64, f64)> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut emulator = 0.0;
    let mut other = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let secs = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        if comm.starts_with("kube-emulator") {
            emulator += secs / ticks;
        } else {
            other += secs / ticks;
        }
    }
    Some((emulator, other))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn phase(clients: &[kube::Client], concurrency: usize, per_worker: usize, op: Op) -> Figures {
    let cpu_before = cpu_split();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len() * concurrency);
    for (ci, client) in clients.iter().enumerate() {
        for w in 0..concurrency {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_worker);
                let mut errors = 0usize;
                let namespaces: Api<Namespace> = Api::all(client.clone());
                let cms: Api<ConfigMap> = Api::namespaced(client, "default");
                let name = format!("bench-{ci}-{w}");
                for i in 0..per_worker {
                    let t = Instant::now();
                    let ok = match op {
                        Op::Get => namespaces.get("default").await.is_ok(),
                        Op::Apply => {
                            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": i.to_string()}});
                            cms.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&cm)).await.is_ok()
                        }
                    };
                    lat.push(t.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (lat, errors)
            }));
        }
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let elapsed = start.elapsed();
    let cpu = match (cpu_before, cpu_split()) {
        (Some((e0, o0)), Some((e1, o1))) => Some((e1 - e0, o1 - o0)),
        _ => None,
    };
    latencies.sort();
    Figures {
        requests: latencies.len(),
        errors,
        elapsed,
        latencies,
        cpu,
    }
}

fn report(label: &str, f: &Figures) {
    println!(
        "{label:<6} {:>7} requests in {:>6.2} s = {:>8.0} req/s   p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
        f.requests,
        f.elapsed.as_secs_f64(),
        f.requests as f64 / f.elapsed.as_secs_f64().max(1e-9),
        pct(&f.latencies, 0.50).as_secs_f64() * 1e3,
        pct(&f.latencies, 0.99).as_secs_f64() * 1e3,
        f.errors
    );
    if let Some((emulator, clients)) = f.cpu.filter(|(e, _)| *e > 0.0) {
        let per_req = emulator / f.requests.max(1) as f64;
        println!(
            "       CPU: emulator {emulator:.2} s ({:.0} us/request, i.e. {:.0} req/s per core), clients {clients:.2} s",
            per_req * 1e6,
            1.0 / per_req
        );
    }
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let n = env_or("BENCH_CLUSTERS", 100);
    let concurrency = env_or("BENCH_CONCURRENCY", 50);
    let per_worker = env_or("BENCH_REQUESTS", 10);
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();

    let t = Instant::now();
    let clusters = TestClusters::start_with(&refs, EmulatorOptions::default())?;
    println!(
        "started {n} clusters in {:.2} s (serving CA + certificate each)",
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let kubeconfig = Arc::new(Kubeconfig::read_from(clusters.kubeconfig_path())?);
    let clients: Vec<kube::Client> = rt.block_on(async {
        let mut out = Vec::new();
        for name in &names {
            let opts = KubeConfigOptions {
                context: Some(name.clone()),
                ..Default::default()
            };
            let mut cfg =
                kube::Config::from_custom_kubeconfig((*kubeconfig).clone(), &opts).await?;
            cfg.default_retry = false;
            out.push(kube::Client::try_from(cfg)?);
        }
        anyhow::Ok(out)
    })?;

    println!(
        "{n} clusters x {concurrency} concurrent workers x {per_worker} requests each (client and emulator share this machine's cores)"
    );
    // The first pass pays for the TLS handshakes of every connection; it is reported separately.
    let warm = rt.block_on(phase(&clients, concurrency, 1, Op::Get));
    report("warmup", &warm);
    let reads = rt.block_on(phase(&clients, concurrency, per_worker, Op::Get));
    report("get", &reads);
    let writes = rt.block_on(phase(&clients, concurrency, per_worker, Op::Apply));
    report("apply", &writes);

    let total: u64 = clusters
        .clusters()
        .iter()
        .map(|c| c.counters().total_requests())
        .sum();
    let objects: u64 = clusters
        .clusters()
        .iter()
        .map(|c| c.counters().objects)
        .sum();
    println!("emulator counted {total} requests; {objects} objects stored");
    drop(clients);
    drop(rt);
    clusters.stop();
    Ok(())
}
