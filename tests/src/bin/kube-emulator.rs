//! `kube-emulator`: starts N emulated Kubernetes API servers on 127.0.0.1, writes a kubeconfig
//! with one context per cluster, prints one line per cluster, and runs until SIGINT/SIGTERM,
//! then prints each cluster's counters.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use mesh_tests::{EmulatorOptions, TestClusters};

/// Emulated Kubernetes API servers for meshboot demos and tests.
#[derive(Debug, Parser)]
#[command(name = "kube-emulator", version)]
struct Args {
    /// Comma-separated cluster names (DNS-1123 labels); each becomes a kubeconfig context.
    #[arg(long, value_delimiter = ',', required = true)]
    clusters: Vec<String>,
    /// Where to write the kubeconfig (mode 0600; it holds the admin tokens).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of requests (0.0..=1.0) answered with an injected 429/500/503.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,
    /// Delay before a LoadBalancer Service gets its external address, in milliseconds.
    #[arg(long, default_value_t = 100)]
    lb_delay_ms: u64,
    /// Install Istio's CRDs at start (our own small set, as `istio/base` ships them), as if a
    /// user had installed them; clusters otherwise start fresh, without Istio.
    #[arg(long)]
    istio_crds: bool,
    /// Install the Gateway API's standard CRDs at start (needed by ambient meshes).
    #[arg(long)]
    gateway_api_crds: bool,
    /// Install every CRD of this YAML file at start (e.g. Istio's real crd-all.gen.yaml).
    #[arg(long, value_name = "FILE")]
    crds: Vec<PathBuf>,
    /// Run the istiod stand-in on every cluster: once an istiod Deployment exists in
    /// istio-system it publishes `istio-ca-root-cert` from `cacerts` and refuses root changes
    /// as istiod does.
    #[arg(long)]
    istiod: bool,
    /// Delay before the istiod stand-in acts on a change, in milliseconds (a real kubelet
    /// syncs Secret volumes in about a minute).
    #[arg(long, default_value_t = 100)]
    istiod_delay_ms: u64,
    /// How long a successful token authentication is cached, in milliseconds (a real API
    /// server: about 10000).
    #[arg(long, default_value_t = 0)]
    token_cache_ms: u64,
    /// Make this cluster a Karmada API server and register every other cluster in it as a
    /// Ready Push member (credentials in `karmada-cluster`).
    #[arg(long, value_name = "CLUSTER")]
    karmada_hub: Option<String>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let names: Vec<&str> = args.clusters.iter().map(String::as_str).collect();
    let options = EmulatorOptions {
        latency: Duration::from_millis(args.latency_ms),
        error_rate: args.error_rate,
        lb_delay: Duration::from_millis(args.lb_delay_ms),
        kubeconfig: Some(args.kubeconfig.clone()),
        istiod: args.istiod.then(|| mesh_tests::istiod::IstiodOptions {
            delay: Duration::from_millis(args.istiod_delay_ms),
            compare: None,
        }),
        token_cache_ttl: Duration::from_millis(args.token_cache_ms),
        ..EmulatorOptions::default()
    };
    // Signal handlers go in before anything is printed, so a supervisor that reacts to the
    // printed URLs with SIGTERM is never too early.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the signal runtime")?;
    let (mut term, mut int) = {
        let _guard = rt.enter();
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        )
    };

    let clusters = TestClusters::start_with(&names, options)?;
    if args.istio_crds {
        clusters.install_istio_crds()?;
    }
    if args.gateway_api_crds {
        clusters.install_gateway_api_crds()?;
    }
    for file in &args.crds {
        clusters.install_crds_from(file)?;
    }
    if let Some(hub_name) = &args.karmada_hub {
        let hub = clusters
            .get(hub_name)
            .with_context(|| format!("--karmada-hub {hub_name}: no such cluster"))?;
        hub.make_karmada_hub()?;
        for member in clusters.clusters().iter().filter(|c| c.name() != hub_name) {
            hub.register_karmada_member(
                member,
                &mesh_tests::karmada::Member::new(mesh_tests::karmada::SyncMode::Push),
            )?;
        }
    }
    for c in clusters.clusters() {
        println!("{} {}", c.name(), c.url());
    }
    eprintln!(
        "kubeconfig written to {} (contexts: {})",
        args.kubeconfig.display(),
        names.join(", ")
    );

    rt.block_on(async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });

    for c in clusters.clusters() {
        println!("{}: {}", c.name(), c.counters());
    }
    clusters.stop();
    Ok(())
}
