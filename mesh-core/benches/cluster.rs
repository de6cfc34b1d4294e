//! Prints figures for the cluster door (no assertions; run with `cargo bench -p mesh-core
//! --bench cluster`): ClusterClient apply (create and converged), create_remote_secret and
//! verify against emulated clusters with 50 ms injected latency per request, with requests
//! counted by the emulator and compared with the round-trip lower bound.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mesh_core::cluster::{ApplyOptions, ClusterClient};
use mesh_core::pki::CaDir;
use mesh_core::remote_secret::{
    RemoteSecret, RemoteSecretOptions, SecretType, create_remote_secret,
};
use mesh_core::render::{self, reader};
use mesh_core::spec::MeshSpec;
use mesh_core::verify::{Severity, VerifyOptions, verify_clusters};
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::{Value, json};

const LATENCY: Duration = Duration::from_millis(50);
const OBJECTS: usize = 20;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

fn start(n: usize) -> TestClusters {
    let names = names(n);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = EmulatorOptions {
        worker_threads: 2,
        ..EmulatorOptions::default()
    };
    TestClusters::start_with(&refs, options).expect("emulator")
}

async fn clients(clusters: &TestClusters, n: usize) -> Vec<ClusterClient> {
    let mut out = Vec::new();
    for name in names(n) {
        out.push(
            ClusterClient::connect(&name, Some(clusters.kubeconfig_path()), &name)
                .await
                .expect("connect"),
        );
    }
    out
}

fn set_latency(clusters: &TestClusters, latency: Duration) {
    for c in clusters.clusters() {
        c.set_latency(latency);
        c.reset_counters();
    }
}

fn totals(clusters: &TestClusters) -> (u64, u64) {
    clusters.clusters().iter().fold((0, 0), |(r, w), c| {
        let k = c.counters();
        (r + k.total_requests(), w + k.writes)
    })
}

fn objects() -> Vec<Value> {
    let mut objs = vec![json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": "n1"}}})];
    for i in 1..OBJECTS {
        objs.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "istio-system"},
            "data": {"i": i.to_string()}}));
    }
    objs
}

/// Applies the objects in order on every cluster, clusters in parallel.
async fn apply_all(clients: &[ClusterClient]) {
    let objs = objects();
    futures::future::join_all(clients.iter().map(|c| {
        let objs = objs.clone();
        async move {
            for o in &objs {
                c.apply(o, &ApplyOptions::default()).await.expect("apply");
            }
        }
    }))
    .await;
}

fn report(what: &str, wall: Duration, requests: u64, writes: u64, critical_round_trips: u64) {
    let bound = LATENCY * critical_round_trips as u32;
    println!(
        "{what:<52} wall {:>8.2?}  requests {requests:>6}  writes {writes:>5}  lower bound {:>7.2?}  ratio {:.2}",
        wall,
        bound,
        wall.as_secs_f64() / bound.as_secs_f64()
    );
}

async fn bench_apply(n: usize) {
    let clusters = start(n);
    let clients = clients(&clusters, n).await;
    set_latency(&clusters, LATENCY);
    let t = Instant::now();
    apply_all(&clients).await;
    let (r, w) = totals(&clusters);
    // Created: one GET + one PATCH per object, objects in order.
    report(
        &format!("apply {OBJECTS} objects x {n} clusters, all created"),
        t.elapsed(),
        r,
        w,
        2 * OBJECTS as u64,
    );
    set_latency(&clusters, LATENCY);
    let t = Instant::now();
    apply_all(&clients).await;
    let (r, w) = totals(&clusters);
    report(
        &format!("apply {OBJECTS} objects x {n} clusters, converged"),
        t.elapsed(),
        r,
        w,
        OBJECTS as u64,
    );
}

async fn bench_remote_secret() {
    let clusters = start(1);
    let client = clients(&clusters, 1).await.remove(0);
    set_latency(&clusters, LATENCY);
    let options = RemoteSecretOptions {
        name: Some("c0".into()),
        server: Some("https://203.0.113.10:6443".into()),
        ..RemoteSecretOptions::default()
    };
    let t = Instant::now();
    create_remote_secret(&client, &options)
        .await
        .expect("remote secret");
    let (r, w) = totals(&clusters);
    let fresh = t.elapsed();
    set_latency(&clusters, LATENCY);
    let t = Instant::now();
    create_remote_secret(&client, &options)
        .await
        .expect("remote secret");
    let (r2, w2) = totals(&clusters);
    // Fresh: get SA, 5 applies (ns, SA, role, binding: get+patch each except the ns), get SA,
    // list secrets, create token, get token (+ polls). Every request is sequential.
    report("create_remote_secret, fresh cluster", fresh, r, w, r);
    report(
        "create_remote_secret, existing account and token",
        t.elapsed(),
        r2,
        w2,
        r2,
    );
}

async fn bench_verify(n: usize) {
    let clusters = start(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut yaml = String::from(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nca: {dir: ./pki, key: ecdsa-p256}\nclusters:\n",
    );
    for (i, name) in names(n).iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: {name}, network: net{i}, context: {name}, kubeconfig: {}}}\n",
            clusters.kubeconfig_path().display()
        ));
    }
    let spec = MeshSpec::from_yaml(&yaml, dir.path(), "bench").expect("spec");
    let bundles = CaDir::open(&spec.ca.dir)
        .ensure(&spec.ca_options(), &spec.cluster_names())
        .expect("ca");
    let bundles: BTreeMap<String, _> = bundles
        .into_iter()
        .map(|b| (b.cluster.clone(), b))
        .collect();
    let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())
        .expect("render");
    let list = clients(&clusters, n).await;
    let by_name: BTreeMap<String, ClusterClient> = list
        .iter()
        .map(|c| (c.name().to_string(), c.clone()))
        .collect();
    futures::future::join_all(renders.iter().map(|r| {
        let c = &by_name[&r.cluster];
        async move {
            for o in &r.objects {
                c.apply(&o.object, &ApplyOptions::default())
                    .await
                    .expect("apply");
            }
        }
    }))
    .await;
    let ns = spec.istio_namespace.as_str();
    let mut tokens = BTreeMap::new();
    for c in &list {
        let t = c
            .wait_for_token_secret(ns, reader::TOKEN_SECRET, Duration::from_secs(10))
            .await
            .expect("token");
        tokens.insert(c.name().to_string(), t);
    }
    let pairs = spec.remote_secret_pairs();
    // Bounded: every concurrent request of a client holds its own connection (HTTP/1.1), so
    // 9,900 at once would leave ~20,000 sockets open in this one process.
    futures::stream::iter(pairs.iter())
        .for_each_concurrent(64, |(src, dst)| {
            let secret = RemoteSecret {
                cluster: src.clone(),
                namespace: ns.to_string(),
                secret_type: SecretType::Remote,
                server: by_name[src].server().to_string(),
                tls_server_name: None,
                ca_data: tokens[src].ca_crt.clone(),
                token: tokens[src].token.clone(),
            };
            let c = &by_name[dst];
            async move {
                c.apply(
                    &secret.to_object().expect("secret"),
                    &ApplyOptions::default(),
                )
                .await
                .expect("apply secret");
            }
        })
        .await;
    std::thread::sleep(Duration::from_millis(300)); // load-balancer controller
    set_latency(&clusters, LATENCY);
    let options = VerifyOptions {
        allow_loopback: true,
        ..VerifyOptions::default()
    };
    let t = Instant::now();
    let result = verify_clusters(&spec, &by_name, &options).await;
    let wall = t.elapsed();
    let (r, w) = totals(&clusters);
    for f in result
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .take(3)
    {
        println!("  {f}");
    }
    // Critical path: the 4 reads of a cluster run together (1 round trip, 16 clusters at a
    // time), then token checks (1 SelfSubjectAccessReview each, 16 at a time).
    let waves = n.div_ceil(options.concurrency) as u64;
    report(
        &format!(
            "verify {n} clusters ({} pairs, {} errors)",
            pairs.len(),
            result.errors
        ),
        wall,
        r,
        w,
        2 * waves,
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    println!("meshboot cluster door, {LATENCY:?} injected latency per request");
    for n in [1, 3, 20, 100] {
        bench_apply(n).await;
    }
    bench_remote_secret().await;
    for n in [3, 20, 100] {
        bench_verify(n).await;
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!(
            "peak RSS (whole process, emulator included): {}",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
}
