//! One emulated cluster: its shared state (store, resource table, tokens, faults, counters) and
//! the synchronous handle tests use.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::auth::Tokens;
use crate::counters::{CounterSet, Counters};
use crate::faults::Faults;
use crate::resources::{Registry, split_api_version};
use crate::store::{Key, Store};
use crate::watch::Hub;

/// The mutable heart of a cluster, guarded by one lock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    pub(crate) tokens: Tokens,
}

/// Everything a cluster's server, controllers and handle share.
pub(crate) struct ClusterState {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) ca_pem: String,
    pub(crate) admin_token: String,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) faults: Faults,
    pub(crate) counters: CounterSet,
    pub(crate) lb_delay_us: AtomicU64,
    pub(crate) min_token_ttl: Duration,
    pub(crate) max_token_ttl: Option<Duration>,
    pub(crate) controller_tx: mpsc::UnboundedSender<Key>,
    pub(crate) watch: Hub,
    /// Position of this cluster among its siblings (picks its load-balancer addresses).
    pub(crate) index: usize,
    pub(crate) cluster_count: usize,
    pub(crate) lb_allocated: AtomicUsize,
    /// The istiod stand-in (off unless enabled).
    pub(crate) istiod: crate::istiod::Slot,
}

impl std::fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The admin token stays out of Debug output (test failure messages print handles).
        f.debug_struct("ClusterState")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("admin_token", &"<redacted>")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl ClusterState {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (each write is one insert), so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lb_delay(&self) -> Duration {
        Duration::from_micros(self.lb_delay_us.load(Ordering::Relaxed))
    }

    /// The next TEST-NET address for a LoadBalancer Service of this cluster. Cluster `i` gets
    /// `pool[i]`, `pool[i + n]`, `pool[i + 2n]`, ... so no two clusters share an address.
    pub(crate) fn next_lb_ip(&self) -> Ipv4Addr {
        let j = self.lb_allocated.fetch_add(1, Ordering::Relaxed);
        test_net_address(self.index + j * self.cluster_count.max(1))
    }
}

/// The `n`th address of the three TEST-NET blocks (RFC 5737), skipping .0 and .255.
pub(crate) fn test_net_address(n: usize) -> Ipv4Addr {
    const BLOCKS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];
    let n = n % (BLOCKS.len() * 254);
    let b = BLOCKS[n / 254];
    Ipv4Addr::new(b[0], b[1], b[2], (n % 254 + 1) as u8)
}

/// A handle on one emulated cluster. Every method is synchronous and safe to call from plain
/// tests and from async tests alike.
#[derive(Debug, Clone)]
pub struct EmulatedCluster {
    pub(crate) state: Arc<ClusterState>,
}

impl EmulatedCluster {
    /// Cluster name (also its kubeconfig context name).
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    /// PEM of this cluster's serving CA (also what service-account token Secrets carry as `ca.crt`).
    pub fn ca_pem(&self) -> &str {
        &self.state.ca_pem
    }

    /// The admin bearer token (allowed everything).
    pub fn admin_token(&self) -> &str {
        &self.state.admin_token
    }

    /// Adds `latency` before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state.faults.set_latency(latency);
    }

    /// Answers this fraction of requests (0.0..=1.0) with an injected 429 (with Retry-After),
    /// 500 or 503 `Status`.
    pub fn set_error_rate(&self, rate: f64) {
        self.state.faults.set_error_rate(rate);
    }

    /// kube-apiserver's `--max-requests-inflight` and `--max-mutating-requests-inflight`
    /// (0 = no limit, the default): one request more than the limit is answered 429 with
    /// `Retry-After: 1` ([`crate::faults::InFlight`]); watches and `system:masters` are exempt.
    pub fn set_max_in_flight(&self, read: usize, mutating: usize) {
        self.state.faults.in_flight.set_limits(read, mutating);
    }

    /// The most requests this cluster served at once (watches excluded) since the last
    /// [`reset_counters`](Self::reset_counters).
    pub fn peak_in_flight(&self) -> usize {
        self.state.faults.in_flight.peak()
    }

    /// Requests the max-in-flight limits answered with 429 since the last reset.
    pub fn rejected_in_flight(&self) -> u64 {
        self.state.faults.in_flight.rejected()
    }

    /// A token of ServiceAccount `kube-system/<name>`, bound to a ClusterRole that allows
    /// everything (what `cluster-admin` is): an identity with every permission that is not
    /// `system:masters`. The token Secret is filled by the token controller.
    pub fn operator_token(&self, name: &str) -> anyhow::Result<String> {
        use base64::Engine as _;
        self.insert_object(
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": "kube-system"}}),
        )?;
        self.insert_object(
            serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
        )?;
        self.insert_object(serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}]}))?;
        let secret = format!("{name}-token");
        self.insert_object(serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {"name": secret, "namespace": "kube-system",
                         "annotations": {"kubernetes.io/service-account.name": name}}}))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let token = self
                .object("v1", "Secret", Some("kube-system"), &secret)
                .and_then(|s| s.pointer("/data/token")?.as_str().map(str::to_string))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|t| String::from_utf8(t).ok());
            if let Some(token) = token {
                return Ok(token);
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("the token controller did not fill {secret}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Takes the cluster down (its port refuses connections and open connections are closed) or
    /// brings it back on the same port.
    pub fn set_down(&self, down: bool) {
        self.state.faults.set_down(down);
    }

    /// Changes the delay before the load-balancer controller assigns an address.
    pub fn set_lb_delay(&self, delay: Duration) {
        self.state.lb_delay_us.store(
            u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Requests by verb, writes, and the number of stored objects.
    pub fn counters(&self) -> Counters {
        let objects = self.state.lock().store.len();
        self.state.counters.snapshot(objects)
    }

    /// Every write since the last [`reset_counters`](Self::reset_counters): when it arrived
    /// and its URL path (where a benchmark's time goes).
    pub fn write_log(&self) -> Vec<(std::time::Instant, String)> {
        self.state.counters.write_log()
    }

    /// Every request since the last [`reset_counters`](Self::reset_counters), in arrival
    /// order: when, its verb and path (what a benchmark's critical path is made of).
    pub fn request_log(&self) -> Vec<crate::counters::Logged> {
        self.state.counters.request_log()
    }

    /// Zeroes the request and write counters.
    pub fn reset_counters(&self) {
        self.state.counters.reset();
        self.state.faults.in_flight.reset();
    }

    /// The stored object, looked up by `apiVersion`, `kind`, namespace and name.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let inner = self.state.lock();
        let def = inner.registry.by_kind(api_version, kind)?;
        let ns = if def.namespaced { namespace } else { None };
        inner
            .store
            .get(&Key::new(&def.group, &def.plural, ns, name))
            .cloned()
    }

    /// Every stored object of a kind, optionally in one namespace.
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let inner = self.state.lock();
        let Some(def) = inner.registry.by_kind(api_version, kind) else {
            return Vec::new();
        };
        let ns = if def.namespaced { namespace } else { None };
        inner
            .store
            .list(&def.group, &def.plural, ns)
            .cloned()
            .collect()
    }

    /// Stores an object directly, bypassing HTTP, authentication, validation, faults and counters
    /// (test set-up). Server metadata is filled in and controllers react as after a real write.
    /// Replaces an existing object of the same name.
    pub fn insert_object(&self, obj: Value) -> anyhow::Result<Value> {
        crate::ops::insert_direct(&self.state, obj)
    }

    /// Removes an object directly, bypassing HTTP; returns it if it existed.
    pub fn remove_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let mut inner = self.state.lock();
        let def = inner.registry.by_kind(api_version, kind)?.clone();
        let ns = if def.namespaced { namespace } else { None };
        let removed = inner
            .store
            .remove(&Key::new(&def.group, &def.plural, ns, name));
        if let Some(obj) = &removed {
            self.state.watch.publish(
                &def.group,
                &def.plural,
                "DELETED",
                obj,
                inner.store.last_rv(),
            );
        }
        removed
    }

    /// Whether the cluster serves `kind` in `api_version` (a built-in kind, or one a CRD added).
    pub fn serves(&self, api_version: &str, kind: &str) -> bool {
        self.state
            .lock()
            .registry
            .by_kind(api_version, kind)
            .is_some()
    }

    /// Installs our own small set of Istio CRDs (the ones `fixtures/charts/base` ships), as
    /// `kubectl apply --server-side` would; returns how many were applied. See [`crate::crds`].
    pub fn install_istio_crds(&self) -> anyhow::Result<usize> {
        self.install_crds_yaml(crate::crds::ISTIO_CRDS)
    }

    /// Installs the Gateway API's standard CRDs (our own small set), as a user does before
    /// installing Istio for Gateway-API use (ambient's east-west Gateway).
    pub fn install_gateway_api_crds(&self) -> anyhow::Result<usize> {
        self.install_crds_yaml(crate::crds::GATEWAY_API_CRDS)
    }

    /// Installs every CRD of a YAML file, e.g. Istio's real
    /// `../shared/data/istio/crd-all-1.30.3.gen.yaml` ([`crate::crds::real_istio_crds`]).
    pub fn install_crds_from(&self, path: impl AsRef<std::path::Path>) -> anyhow::Result<usize> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading CRDs from {}: {e}", path.display()))?;
        self.install_crds_yaml(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
    }

    /// Installs every CRD of a multi-document YAML text.
    pub fn install_crds_yaml(&self, yaml: &str) -> anyhow::Result<usize> {
        let crds = crate::crds::parse(yaml)?;
        crate::crds::apply_all(&self.state, &crds)
    }

    /// Moves this cluster's token clock forward: tokens expire (and TokenRequests are issued) as
    /// if `by` had passed, without waiting.
    pub fn advance_clock(&self, by: Duration) {
        self.state.lock().tokens.advance(by);
    }

    /// Turns on the istiod stand-in for this cluster ([`crate::istiod`]); it acts once an istiod
    /// Deployment exists in `istio-system` (see [`EmulatedCluster::install_istiod`]).
    pub fn enable_istiod(&self, options: crate::istiod::IstiodOptions) {
        self.state.istiod.enable(options);
        // Wakes the stand-in through the controller queue, which runs on the emulator's runtime.
        let _ = self.state.controller_tx.send(Key::new(
            "",
            "secrets",
            Some(crate::istiod::ISTIO_NAMESPACE),
            "cacerts",
        ));
    }

    /// Creates `istio-system` (if missing) and an istiod Deployment of `version`
    /// (`docker.io/istio/pilot:<version>`) with `env` on its `discovery` container, as the
    /// `istio/istiod` chart would; replaces an existing one (a rollout).
    pub fn install_istiod(&self, version: &str, env: &[(&str, &str)]) -> anyhow::Result<Value> {
        let ns = crate::istiod::ISTIO_NAMESPACE;
        if self.object("v1", "Namespace", None, ns).is_none() {
            self.insert_object(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))?;
        }
        let mut d = crate::istiod::deployment(version, env);
        // A replaced pod template is a new generation, as the API server counts it.
        if let Some(old) = self.object("apps/v1", "Deployment", Some(ns), "istiod") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let changed = old["spec"] != d["spec"];
            d["metadata"]["generation"] = serde_json::json!(if changed { g + 1 } else { g });
        }
        self.insert_object(d)
    }

    /// istiod's log lines (`level<TAB>message`), where refusals of a new root show.
    pub fn istiod_log(&self) -> Vec<String> {
        self.state.istiod.log()
    }

    /// The root bundle the istiod stand-in has loaded (what it publishes), if running.
    pub fn istiod_root(&self) -> Option<String> {
        self.state.istiod.root()
    }

    /// Makes this cluster act as a Karmada API server: serves `Cluster`
    /// (`cluster.karmada.io/v1alpha1`) and creates `karmada-cluster` ([`crate::karmada`]).
    pub fn make_karmada_hub(&self) -> anyhow::Result<()> {
        crate::karmada::make_hub(self)
    }

    /// Registers `member` in this hub as `karmadactl join` (Push) or `register` (Pull) would;
    /// returns the stored `Cluster` object.
    pub fn register_karmada_member(
        &self,
        member: &EmulatedCluster,
        how: &crate::karmada::Member,
    ) -> anyhow::Result<Value> {
        crate::karmada::register(self, member, how)
    }

    /// Sets a registered member's `Ready` condition (True/`ClusterReady` or
    /// False/`ClusterNotReachable`).
    pub fn set_karmada_member_ready(&self, member: &str, ready: bool) -> anyhow::Result<()> {
        crate::karmada::set_ready(self, member, ready)
    }

    /// Installs Karmada's real PropagationPolicy and OverridePolicy CRDs from
    /// `../shared/data/karmada/`; an error naming the missing file when they are absent (tests
    /// check with `require_shared_data!` first).
    pub fn install_karmada_policy_crds(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        for rel in crate::karmada::POLICY_CRDS {
            let path = crate::tools::shared_data(rel)
                .ok_or_else(|| anyhow::anyhow!("../shared/data/{rel} not found"))?;
            n += self.install_crds_from(path)?;
        }
        Ok(n)
    }

    /// Installs ClusterPropagationPolicy and ClusterOverridePolicy, made from the same real
    /// CRDs ([`crate::karmada::cluster_policy_crds`]); an error when they are absent.
    pub fn install_karmada_cluster_policy_crds(&self) -> anyhow::Result<usize> {
        let crds = crate::karmada::cluster_policy_crds()?
            .ok_or_else(|| anyhow::anyhow!("../shared/data/karmada/ policy CRDs not found"))?;
        crate::crds::apply_all(&self.state, &crds)
    }

    /// The `kube-system` namespace UID (istioctl's default cluster name).
    pub fn kube_system_uid(&self) -> Option<String> {
        self.object("v1", "Namespace", None, "kube-system")
            .and_then(|ns| ns["metadata"]["uid"].as_str().map(str::to_string))
    }
}

/// Splits an object's `apiVersion` (for callers holding an object).
pub(crate) fn api_version_of(obj: &Value) -> (&str, &str) {
    split_api_version(obj["apiVersion"].as_str().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_admin_token() -> anyhow::Result<()> {
        let clusters = crate::TestClusters::start(&["eu"])?;
        let eu = clusters.cluster("eu");
        let token = eu.admin_token().to_string();
        assert!(!format!("{clusters:?}").contains(&token));
        assert!(!format!("{eu:?}").contains(&token));
        Ok(())
    }

    #[test]
    fn test_net_addresses_are_documentation_ranges() {
        assert_eq!(test_net_address(0), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(test_net_address(254), Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(test_net_address(508), Ipv4Addr::new(203, 0, 113, 1));
    }
}
