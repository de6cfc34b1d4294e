//! CA creation speed, side by side with the openssl commands Istio's `tools/certs` Makefile
//! runs (`../shared/bench/openssl-ca-baseline.sh`), in one run. Prints figures; asserts nothing.
//!
//! ```text
//! cargo bench -p mesh-core --bench ca
//! MESHBOOT_BENCH_RUNS=5 cargo bench -p mesh-core --bench ca    # more RSA samples
//! MESHBOOT_BENCH_SKIP_RSA=1 cargo bench -p mesh-core --bench ca # only the ecdsa-p256 figures
//! ```
//!
//! RSA-4096 key generation is a random prime search (0.25–2 s per key), so every RSA figure is
//! the median of several runs, with each run printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mesh_core::pki::{CaDir, CaOptions, KeyAlgorithm};

const CLUSTERS: usize = 10;

fn main() {
    let runs: usize = std::env::var("MESHBOOT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("meshboot CA benchmark: {threads} core(s), {runs} run(s) per RSA figure");
    println!("load average at start: {}", load_average());

    // aws-lc initialises itself on first use (~50 ms); a CLI pays it once per process.
    let start = Instant::now();
    let scratch = tempfile::tempdir().expect("temp dir");
    CaDir::open(scratch.path())
        .ensure(&opts(KeyAlgorithm::EcdsaP256), &["warmup"])
        .expect("warm-up CA");
    println!(
        "first CA in the process (includes crypto start-up): {}",
        ms(start.elapsed())
    );

    let names: Vec<String> = (1..=CLUSTERS).map(|i| format!("cluster{i}")).collect();
    let ten: Vec<&str> = names.iter().map(String::as_str).collect();

    // MESHBOOT_BENCH_SKIP_RSA=1 skips the minutes-long RSA-4096 and openssl part.
    if std::env::var_os("MESHBOOT_BENCH_SKIP_RSA").is_none() {
        rsa_side_by_side(runs, &ten);
    }
    ecdsa_hundred();
    println!("load average at end: {}", load_average());
}

fn rsa_side_by_side(runs: usize, ten: &[&str]) {
    let ours_rsa = median_of(runs, || time_ensure(KeyAlgorithm::Rsa4096, ten));
    report("meshboot rsa-4096   root + 10 intermediates", &ours_rsa);
    let ours_ec = median_of(runs.max(5), || time_ensure(KeyAlgorithm::EcdsaP256, ten));
    report("meshboot ecdsa-p256 root + 10 intermediates", &ours_ec);

    match baseline_script() {
        Some(script) if openssl_available() => {
            let openssl = median_of(runs, || time_openssl(&script, CLUSTERS));
            report(
                "openssl  rsa-4096   root + 10 intermediates (Makefile steps)",
                &openssl,
            );
            let base = median(&openssl);
            println!(
                "ratio rsa-4096:   openssl / meshboot = {:.2}x  (target >= 1.8x)",
                base.as_secs_f64() / median(&ours_rsa).as_secs_f64()
            );
            println!(
                "ratio ecdsa-p256: openssl rsa-4096 / meshboot ecdsa-p256 = {:.0}x",
                base.as_secs_f64() / median(&ours_ec).as_secs_f64()
            );
        }
        Some(_) => println!("openssl not installed: baseline skipped"),
        None => println!(
            "shared/bench/openssl-ca-baseline.sh not found above {}: baseline skipped",
            env!("CARGO_MANIFEST_DIR")
        ),
    }
}

fn ecdsa_hundred() {
    let hundred_names: Vec<String> = (1..=100).map(|i| format!("cluster{i}")).collect();
    let hundred: Vec<&str> = hundred_names.iter().map(String::as_str).collect();
    // Wall time on a shared machine moves with everyone else's load; the CPU time this process
    // used is the load-independent figure (on an idle 2-core machine wall <= CPU time).
    let cpu_before = cpu_time();
    let big = median_of(10, || time_ensure(KeyAlgorithm::EcdsaP256, &hundred));
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| (after - before) / 10);
    report("meshboot ecdsa-p256 root + 100 intermediates", &big);
    if let Some(cpu) = cpu {
        println!(
            "root + 100 ecdsa-p256 intermediates: CPU time (user+sys, all threads) {} per run",
            ms(cpu)
        );
    }
    println!(
        "root + 100 ecdsa-p256 intermediates: median {} (target < 100 ms), {} per cluster",
        ms(median(&big)),
        ms(median(&big) / 100)
    );
    let rerun = median_of(10, || time_rerun(&hundred));
    report(
        "meshboot re-run on 100 existing intermediates (nothing written)",
        &rerun,
    );
    // The same work on a RAM file system: 400 file creations and renames cost more on a disk
    // that other processes keep busy than all the cryptography does.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let on_tmpfs = median_of(10, || {
            time_ensure_in(shm, KeyAlgorithm::EcdsaP256, &hundred)
        });
        report(
            "meshboot ecdsa-p256 root + 100 intermediates, CA dir on tmpfs (/dev/shm)",
            &on_tmpfs,
        );
    }
}

/// `/proc/loadavg`'s first three fields, to say how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// User + system CPU time of this process (all threads) from `/proc/self/stat`, Linux only.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux configuration that matters here.
    Some(Duration::from_millis((utime + stime) * 10))
}

fn opts(key: KeyAlgorithm) -> CaOptions {
    CaOptions {
        key,
        ..CaOptions::default()
    }
}

/// A fresh directory, then `CaDir::ensure`: root + intermediates, all files written.
fn time_ensure(key: KeyAlgorithm, clusters: &[&str]) -> Duration {
    time_ensure_in(&std::env::temp_dir(), key, clusters)
}

fn time_ensure_in(base: &Path, key: KeyAlgorithm, clusters: &[&str]) -> Duration {
    let tmp = tempfile::tempdir_in(base).expect("temp dir");
    let ca = CaDir::open(tmp.path().join("pki"));
    let start = Instant::now();
    ca.ensure(&opts(key), clusters).expect("ensure");
    start.elapsed()
}

/// `ensure` on a directory where everything already exists: verification only.
fn time_rerun(clusters: &[&str]) -> Duration {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ca = CaDir::open(tmp.path().join("pki"));
    let o = opts(KeyAlgorithm::EcdsaP256);
    ca.ensure(&o, clusters).expect("ensure");
    let start = Instant::now();
    ca.ensure(&o, clusters).expect("re-run");
    start.elapsed()
}

fn time_openssl(script: &Path, clusters: usize) -> Duration {
    let tmp = tempfile::tempdir().expect("temp dir");
    let start = Instant::now();
    let out = Command::new("bash")
        .arg(script)
        .arg(tmp.path().join("out"))
        .arg(clusters.to_string())
        .output()
        .expect("run the openssl baseline");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "openssl baseline failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// The baseline lives in `shared/bench/` next to the checkout; look upwards from this crate
/// so the bench works from any worktree location.
fn baseline_script() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MESHBOOT_OPENSSL_BASELINE") {
        return Some(PathBuf::from(p));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared/bench/openssl-ca-baseline.sh"))
        .find(|p| p.is_file())
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn median_of(runs: usize, mut f: impl FnMut() -> Duration) -> Vec<Duration> {
    (0..runs).map(|_| f()).collect()
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn report(label: &str, samples: &[Duration]) {
    let all: Vec<String> = samples.iter().map(|d| ms(*d)).collect();
    println!(
        "{label}: median {}  [{}]",
        ms(median(samples)),
        all.join(", ")
    );
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
