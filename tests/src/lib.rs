//! `mesh_tests`: an in-process emulator of the Kubernetes API server, faithful enough that
//! kube-rs and the real `kubectl` work against it unchanged, for meshboot's end-to-end tests,
//! demos and benchmarks.
//!
//! Each emulated cluster listens on its own `127.0.0.1` port with HTTPS (its own serving CA),
//! bearer-token authentication and RBAC, serves discovery and the kinds meshboot uses, supports
//! get/list/watch/create/update/delete, merge/JSON/strategic patches and server-side apply with
//! field managers, validates like a real API server, runs the service-account token and
//! load-balancer controllers, and injects faults on demand.
//!
//! The API is synchronous: the emulator runs on its own runtime threads, so it works from plain
//! `#[test]`s and from `#[tokio::test]`s alike. Dropping [`TestClusters`] stops every server.
//!
//! # Behaviour worth knowing
//!
//! - Clusters start fresh: built-in kinds only, no Istio and no Gateway-API CRDs. Tests that need
//!   those kinds install them as a user or Helm would: [`TestClusters::install_istio_crds`] (our
//!   own small set, the one `fixtures/charts/base` ships), [`TestClusters::install_gateway_api_crds`],
//!   or [`TestClusters::install_crds_from`] with Istio's real CRD file ([`crds::real_istio_crds`]).
//!   A stored CRD is marked `NamesAccepted`/`Established` by the server and serves its kinds.
//! - External tools (`helm`, `kubectl`) are found through [`tools`]; tests that need one skip with
//!   a printed reason when it is missing.
//! - Counters: every request is counted by verb (`get`, `list`, `watch`, `create`, `update`,
//!   `patch`, `apply`, `delete`, `deletecollection`, `discovery`), including requests refused by
//!   an injected fault or by authentication. `writes` counts mutating requests on stored objects,
//!   even when they change nothing (an unchanged server-side apply is a write request that keeps
//!   the resourceVersion); dry runs, TokenRequests and access reviews are not writes. `objects`
//!   starts at 12 per cluster: `default`, `kube-system`, `kube-public`, `kube-node-lease`,
//!   their `default` ServiceAccounts and their `kube-root-ca.crt` ConfigMaps (the cluster CA
//!   kube-controller-manager publishes in every namespace).
//! - kube-rs retries 429/503/504 by itself unless `Config::default_retry` is turned off; tests
//!   that want to see injected errors turn it off.
//! - The service-account token controller fills token Secrets about 20 ms after they (or their
//!   ServiceAccount) appear, with legacy never-expiring JWTs; deleting the Secret or the
//!   ServiceAccount revokes the token. TokenRequest tokens are bound tokens as a real server
//!   issues them ([`tokens`]): `expirationSeconds` (at least [`EmulatorOptions::min_token_ttl`],
//!   600 s on a real server), `audiences`, `boundObjectRef`; expiry is testable without waiting
//!   through [`EmulatedCluster::advance_clock`].
//! - Protobuf bodies (kubectl ≥ 1.32 sends them for typed creates) are decoded for every
//!   built-in kind ([`proto`]); custom resources get 415 as from a real server.
//! - Watches with `sendInitialEvents=true` (client-go ≥ 1.35's WatchList) end their initial
//!   events with the `k8s.io/initial-events-end` bookmark.
//! - Optional stand-ins: istiod's handling of `cacerts` ([`istiod`], off by default) and a
//!   Karmada API server with registered members ([`karmada`]).
//! - Objects are stored as a real server stores them: resource quantities of built-in kinds in
//!   canonical form ([`quantity`]: `2000m` → `2`, `1024Mi` → `1Gi`) and the API groups' defaults
//!   filled in ([`defaults`]: workloads, pod templates, HPAs, webhooks, …); an apply or update
//!   that changes nothing else stores nothing (no new resourceVersion, whatever second it lands
//!   in). Apply conflicts are worded as apimachinery words them (`conflict with "helm": .rules`;
//!   updaters `"x" using <apiVersion>`).
//! - Discovery answers aggregated (`apidiscovery.k8s.io/v2`) when the client asks for it, the
//!   legacy documents otherwise. `/openapi/v3` serves stubs that declare `fieldValidation`, which
//!   Helm needs before it applies anything (without them it fails with "failed to download
//!   openapi"); it then leaves validation to the server.
//! - Kinds Helm charts write are served: webhook configurations, HPAs (`autoscaling/v2`), PDBs,
//!   DaemonSets, StatefulSets, ReplicaSets. Helm's release Secrets are ordinary labelled Secrets.
//!   See [`charts`] for our test charts and [`tools::Helm`] for running the real helm.
//! - `kubectl get` receives Tables with kubectl's columns for Secrets, ConfigMaps, Namespaces,
//!   Services and Deployments (Name and Age for other kinds). Deployments are reported rolled out
//!   (status follows the generation, one ReplicaSet per pod template, as Helm's legacy waiter
//!   reads them) although no Pods exist; DaemonSets and StatefulSets likewise.
//! - Custom resources are pruned, defaulted and validated against their CRD's schema, with
//!   `fieldValidation` Ignore/Warn/Strict ([`schema`]); built-in kinds are not schema-checked
//!   (unknown fields are kept, `fieldValidation` is ignored for them, although Helm asks for
//!   Strict).
//! - Not emulated: pagination (`limit` returns everything), admission webhooks, finalizers and
//!   graceful deletion (deletes are immediate; deleting a namespace deletes its objects at once),
//!   Pods, HPA and PDB status, and the other workload controllers.
//!
//! ```
//! use mesh_tests::TestClusters;
//!
//! let clusters = TestClusters::start(&["eu", "ap"])?;
//! let eu = clusters.cluster("eu");
//! assert!(eu.url().starts_with("https://127.0.0.1:"));
//! // kube-system exists at start and has a UID (istioctl's default cluster name).
//! assert!(eu.kube_system_uid().is_some());
//! let kubeconfig = std::fs::read_to_string(clusters.kubeconfig_path())?;
//! assert!(kubeconfig.contains("name: ap"));
//! # Ok::<(), anyhow::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apply;
pub mod auth;
pub mod charts;
mod cluster;
mod controllers;
pub mod counters;
pub mod crds;
pub mod defaults;
pub mod faults;
pub mod fields;
pub mod istiod;
pub mod karmada;
pub mod kubeconfig;
pub mod openapi;
mod ops;
pub mod proto;
pub mod quantity;
pub mod rbac;
pub mod resources;
mod reviews;
pub mod route;
pub mod schema;
pub mod selector;
mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod tokens;
pub mod tools;
pub mod validate;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::json;
use tokio::sync::{mpsc, watch as tokio_watch};

pub use cluster::EmulatedCluster;
pub use counters::{Counters, Logged};

use crate::auth::Tokens;
use crate::cluster::{ClusterState, Inner};
use crate::resources::Registry;
use crate::store::Store;

/// How the emulated clusters behave at start (faults can be changed later per cluster).
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Added latency per request.
    pub latency: Duration,
    /// Fraction of requests answered with an injected 429/500/503.
    pub error_rate: f64,
    /// Delay before a `type: LoadBalancer` Service gets its address.
    pub lb_delay: Duration,
    /// Shortest `expirationSeconds` a TokenRequest may ask for (600 on a real server; tests of
    /// expiry lower it).
    pub min_token_ttl: Duration,
    /// The server's `--service-account-max-token-expiration`: longer TokenRequests are granted
    /// this lifetime instead (None = no cap, the real default).
    pub max_token_ttl: Option<Duration>,
    /// How long a successful token authentication is cached (a real server: about 10 s, so a
    /// revoked token keeps working that long). Zero = no cache.
    pub token_cache_ttl: Duration,
    /// The istiod stand-in on every cluster ([`istiod`]); None = off (the default).
    pub istiod: Option<istiod::IstiodOptions>,
    /// Runtime worker threads serving all clusters.
    pub worker_threads: usize,
    /// Where to write the kubeconfig; a temporary directory (removed on drop) when None.
    pub kubeconfig: Option<PathBuf>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            latency: Duration::ZERO,
            error_rate: 0.0,
            lb_delay: Duration::from_millis(100),
            min_token_ttl: Duration::from_secs(600),
            max_token_ttl: None,
            token_cache_ttl: Duration::ZERO,
            istiod: None,
            worker_threads: 2,
            kubeconfig: None,
        }
    }
}

/// N emulated clusters and the kubeconfig that reaches them. Dropping it stops every server.
#[derive(Debug)]
pub struct TestClusters {
    clusters: Vec<EmulatedCluster>,
    kubeconfig: PathBuf,
    _dir: Option<tempfile::TempDir>,
    shutdown: tokio_watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TestClusters {
    /// Starts one cluster per name with default options.
    pub fn start(names: &[&str]) -> anyhow::Result<TestClusters> {
        Self::start_with(names, EmulatorOptions::default())
    }

    /// Starts one cluster per name. Names must be distinct DNS-1123 labels (they become
    /// kubeconfig context names).
    pub fn start_with(names: &[&str], options: EmulatorOptions) -> anyhow::Result<TestClusters> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if names.is_empty() {
            bail!("at least one cluster name is required");
        }
        for (i, n) in names.iter().enumerate() {
            if !validate::is_dns_label(n) {
                bail!("cluster name {n:?} is not a DNS-1123 label");
            }
            if names[..i].contains(n) {
                bail!("cluster name {n:?} is given twice");
            }
        }
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let (shutdown, shutdown_rx) = tokio_watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let opts = options.clone();
        let thread = std::thread::Builder::new()
            .name("kube-emulator".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(opts.worker_threads.max(1))
                    .thread_name("kube-emulator-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(
                            anyhow::Error::from(e).context("building the emulator runtime")
                        ));
                        return;
                    }
                };
                let started = rt.block_on(start_all(&names, &opts, shutdown_rx.clone()));
                let ok = started.is_ok();
                let _ = ready_tx.send(started);
                if ok {
                    let mut rx = shutdown_rx;
                    rt.block_on(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    });
                }
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .context("spawning the emulator thread")?;
        let states = ready_rx
            .recv()
            .context("the emulator thread died during start-up")??;
        let clusters: Vec<EmulatedCluster> = states
            .into_iter()
            .map(|state| EmulatedCluster { state })
            .collect();

        let (dir, kubeconfig) = match options.kubeconfig {
            Some(p) => (None, p),
            None => {
                let d = tempfile::tempdir().context("creating a directory for the kubeconfig")?;
                let p = d.path().join("kubeconfig");
                (Some(d), p)
            }
        };
        let entries: Vec<kubeconfig::Entry<'_>> = clusters
            .iter()
            .map(|c| kubeconfig::Entry {
                name: c.name(),
                server: c.url(),
                ca_pem: c.ca_pem(),
                token: c.admin_token(),
            })
            .collect();
        let me = TestClusters {
            clusters: clusters.clone(),
            kubeconfig: kubeconfig.clone(),
            _dir: dir,
            shutdown,
            thread: Mutex::new(Some(thread)),
        };
        kubeconfig::write(&kubeconfig, &entries)
            .with_context(|| format!("writing kubeconfig {}", kubeconfig.display()))?;
        Ok(me)
    }

    /// The kubeconfig with one context per cluster (context name = cluster name).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Makes every context of the kubeconfig authenticate as a cluster-admin ServiceAccount
    /// (`kube-system/meshboot-operator`) instead of `system:masters`: as a user on a managed
    /// cluster, whose requests the max-in-flight and priority-and-fairness filters limit
    /// ([`EmulatedCluster::set_max_in_flight`]), while `system:masters` is exempt.
    pub fn use_operator_identity(&self) -> anyhow::Result<()> {
        let mut tokens = Vec::new();
        for c in &self.clusters {
            tokens.push(c.operator_token("meshboot-operator")?);
        }
        let entries: Vec<kubeconfig::Entry<'_>> = self
            .clusters
            .iter()
            .zip(&tokens)
            .map(|(c, token)| kubeconfig::Entry {
                name: c.name(),
                server: c.url(),
                ca_pem: c.ca_pem(),
                token,
            })
            .collect();
        kubeconfig::write(&self.kubeconfig, &entries)
            .with_context(|| format!("writing kubeconfig {}", self.kubeconfig.display()))
    }

    /// The cluster called `name`.
    ///
    /// # Panics
    /// When no cluster of that name was started (a mistake in the test itself).
    pub fn cluster(&self, name: &str) -> &EmulatedCluster {
        match self.get(name) {
            Some(c) => c,
            None => panic!("no emulated cluster named {name:?}"),
        }
    }

    /// The cluster called `name`, if started.
    pub fn get(&self, name: &str) -> Option<&EmulatedCluster> {
        self.clusters.iter().find(|c| c.name() == name)
    }

    /// Every cluster, in start order.
    pub fn clusters(&self) -> &[EmulatedCluster] {
        &self.clusters
    }

    /// Installs our own small set of Istio CRDs in every cluster (see
    /// [`EmulatedCluster::install_istio_crds`]); clusters start without them, like fresh ones.
    pub fn install_istio_crds(&self) -> anyhow::Result<()> {
        self.install_crds_yaml(crds::ISTIO_CRDS)
    }

    /// Installs the Gateway API's standard CRDs (our own small set) in every cluster.
    pub fn install_gateway_api_crds(&self) -> anyhow::Result<()> {
        self.install_crds_yaml(crds::GATEWAY_API_CRDS)
    }

    /// Installs every CRD of a YAML file in every cluster (e.g. [`crds::real_istio_crds`]).
    pub fn install_crds_from(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading CRDs from {}", path.display()))?;
        self.install_crds_yaml(&text)
            .with_context(|| format!("installing the CRDs of {}", path.display()))
    }

    /// Installs every CRD of a multi-document YAML text in every cluster.
    pub fn install_crds_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        let parsed = crds::parse(yaml)?;
        for c in &self.clusters {
            crds::apply_all(&c.state, &parsed)?;
        }
        Ok(())
    }

    /// Stops every server and waits for them to finish (also done on drop).
    pub fn stop(&self) {
        self.shutdown.send_replace(true);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for TestClusters {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn start_all(
    names: &[String],
    opts: &EmulatorOptions,
    shutdown: tokio_watch::Receiver<bool>,
) -> anyhow::Result<Vec<Arc<ClusterState>>> {
    let mut out = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let listener = server::bind("127.0.0.1:0".parse()?)
            .with_context(|| format!("cluster {name}: binding 127.0.0.1"))?;
        let port = listener.local_addr()?.port();
        let serving = tls::generate(name)
            .with_context(|| format!("cluster {name}: generating its serving CA"))?;
        let mut tokens = Tokens::new(name);
        tokens.set_cache_ttl(opts.token_cache_ttl);
        let (controller_tx, controller_rx) = mpsc::unbounded_channel();
        let state = Arc::new(ClusterState {
            name: name.clone(),
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: serving.ca_pem.clone(),
            admin_token: tokens.admin().to_string(),
            inner: Mutex::new(Inner {
                store: Store::default(),
                registry: Registry::default(),
                tokens,
            }),
            faults: faults::Faults::new(opts.latency, opts.error_rate),
            counters: counters::CounterSet::default(),
            lb_delay_us: AtomicU64::new(
                u64::try_from(opts.lb_delay.as_micros()).unwrap_or(u64::MAX),
            ),
            min_token_ttl: opts.min_token_ttl,
            max_token_ttl: opts.max_token_ttl,
            controller_tx,
            watch: watch::Hub::default(),
            index,
            cluster_count: names.len(),
            lb_allocated: AtomicUsize::new(0),
            istiod: istiod::Slot::default(),
        });
        if let Some(o) = &opts.istiod {
            state.istiod.enable(o.clone());
        }
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            ops::insert_direct(
                &state,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )?;
            // Created here rather than by the controller, so the start-up object count is fixed.
            ops::insert_direct(
                &state,
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
            )?;
            ops::insert_direct(&state, controllers::root_ca_configmap(ns, &state.ca_pem))?;
        }
        tokio::spawn(controllers::run(state.clone(), controller_rx));
        tokio::spawn(server::serve(
            state.clone(),
            listener,
            serving.config.clone(),
            shutdown.clone(),
        ));
        out.push(state);
    }
    Ok(out)
}
