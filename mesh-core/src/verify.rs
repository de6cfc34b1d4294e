//! Cross-cluster checks: does every cluster of a mesh file hold what a working multicluster
//! mesh needs (DESIGN §4 phase 9)? Read-only: verify never writes.
//!
//! One [`Finding`] per check and object; the CLI prints them one per line or as JSON, from the
//! same [`VerifyReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::{ClusterClient, ClusterError, ObjectRef, RetryPolicy};
use crate::pki::{CaDir, ClusterBundle, cert_info, root_fingerprints, verify_bundle};
use crate::remote_secret::{MULTICLUSTER_LABEL, is_loopback_server, secret_name};
use crate::render::{NETWORK_LABEL, Needs, eastwest};
use crate::spec::{ClusterSpec, MeshSpec};

/// How bad a finding is.
///
/// ```
/// use mesh_core::verify::Severity;
/// assert!(Severity::Error > Severity::Warning);
/// assert_eq!(serde_json::to_string(&Severity::Ok).unwrap(), "\"ok\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check passed.
    Ok,
    /// Works, but deserves attention.
    Warning,
    /// The mesh will not work as configured; verify exits non-zero.
    Error,
}

impl Severity {
    /// `ok`, `warning` or `error`.
    ///
    /// ```
    /// assert_eq!(mesh_core::verify::Severity::Warning.as_str(), "warning");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What was checked.
///
/// ```
/// use mesh_core::verify::Check;
/// assert_eq!(Check::RemoteSecret.as_str(), "remote-secret");
/// // Text and JSON output name checks alike.
/// let json = serde_json::to_value(Check::EastWestGateway).unwrap();
/// assert_eq!(json, Check::EastWestGateway.as_str());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The cluster's API server answered with the kubeconfig's credentials.
    Reachable,
    /// `cacerts` is complete, verifies, and its intermediate names this cluster.
    Cacerts,
    /// Every cluster's `cacerts` chains to the same root.
    Root,
    /// The istio namespace carries the cluster's network label.
    Network,
    /// An expected remote secret is present and usable.
    RemoteSecret,
    /// The remote secret's token is accepted by its source cluster.
    Token,
    /// A remote secret that should not be there.
    UnexpectedSecret,
    /// The east-west gateway Service has an external address.
    #[serde(rename = "eastwest-gateway")]
    EastWestGateway,
}

impl Check {
    /// The kebab-case name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Reachable => "reachable",
            Check::Cacerts => "cacerts",
            Check::Root => "root",
            Check::Network => "network",
            Check::RemoteSecret => "remote-secret",
            Check::Token => "token",
            Check::UnexpectedSecret => "unexpected-secret",
            Check::EastWestGateway => "eastwest-gateway",
        }
    }
}

/// One line of the report. Never carries key material or tokens.
///
/// ```
/// use mesh_core::verify::{Check, Finding, Severity};
/// let f = Finding { severity: Severity::Error, cluster: Some("eu".into()), check: Check::Network,
///     message: "label missing".into(), hint: None };
/// assert_eq!(f.to_string(), "error    eu  network: label missing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// The cluster it is about; `None` for mesh-wide findings.
    pub cluster: Option<String>,
    /// What was checked.
    pub check: Check,
    /// What was found.
    pub message: String,
    /// What to do about it, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<8} {}  {}: {}",
            self.severity.as_str(),
            self.cluster.as_deref().unwrap_or("*"),
            self.check.as_str(),
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Everything verify found, in spec order.
///
/// ```
/// use mesh_core::verify::VerifyReport;
/// let report = VerifyReport::default();
/// assert!(report.is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Every finding.
    pub findings: Vec<Finding>,
    /// How many findings are errors.
    pub errors: usize,
    /// How many are warnings.
    pub warnings: usize,
}

impl VerifyReport {
    /// True when no finding is an error.
    pub fn is_ok(&self) -> bool {
        self.errors == 0
    }

    fn push(&mut self, finding: Finding) {
        match finding.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Ok => {}
        }
        self.findings.push(finding);
    }
}

/// Options of [`verify_mesh`].
///
/// ```
/// use mesh_core::verify::VerifyOptions;
/// assert!(!VerifyOptions::default().allow_loopback);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Accept remote secrets whose server is a loopback address (local test clusters).
    pub allow_loopback: bool,
    /// Try each remote secret's token against its source cluster.
    pub check_tokens: bool,
    /// How many clusters (and token checks) are worked on at once.
    pub concurrency: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            allow_loopback: false,
            check_tokens: true,
            concurrency: 16,
        }
    }
}

/// Connects to every cluster of `spec` and checks it; see [`verify_clusters`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mesh_core::{spec::MeshSpec, verify::{verify_mesh, VerifyOptions}};
/// let spec = MeshSpec::from_file("mesh.yaml")?;
/// let report = verify_mesh(&spec, &VerifyOptions::default()).await;
/// for finding in &report.findings { println!("{finding}"); }
/// # Ok(()) }
/// ```
pub async fn verify_mesh(spec: &MeshSpec, options: &VerifyOptions) -> VerifyReport {
    let mut clients = BTreeMap::new();
    let mut connect_errors = BTreeMap::new();
    for cluster in &spec.clusters {
        match ClusterClient::connect(
            &cluster.name,
            cluster.kubeconfig.as_deref(),
            &cluster.context,
        )
        .await
        {
            Ok(client) => {
                clients.insert(cluster.name.clone(), client);
            }
            Err(err) => {
                connect_errors.insert(cluster.name.clone(), err);
            }
        }
    }
    verify_inner(spec, &clients, &connect_errors, options).await
}

/// What was read from one cluster.
struct ClusterFacts {
    name: String,
    cacerts: Result<Option<Value>, ClusterError>,
    namespace: Result<Option<Value>, ClusterError>,
    secrets: Result<Vec<Value>, ClusterError>,
    gateway: Result<Option<Value>, ClusterError>,
}

/// Checks every cluster of `spec` through `clients` (clusters without a client are reported
/// as unreachable): `cacerts` verify and chain to one root, each intermediate's `L=` is its
/// cluster, the network label matches, every expected remote secret exists exactly where it
/// should, is labelled, keyed by the right cluster, points at a non-loopback https server and
/// carries a token the source cluster accepts, no cluster holds a remote secret for itself,
/// and east-west gateways have an external address.
///
/// ```no_run
/// # async fn demo(spec: mesh_core::spec::MeshSpec, clients: std::collections::BTreeMap<String, mesh_core::cluster::ClusterClient>) {
/// use mesh_core::verify::{verify_clusters, VerifyOptions};
/// let report = verify_clusters(&spec, &clients, &VerifyOptions::default()).await;
/// std::process::exit(if report.is_ok() { 0 } else { 1 });
/// # }
/// ```
pub async fn verify_clusters(
    spec: &MeshSpec,
    clients: &BTreeMap<String, ClusterClient>,
    options: &VerifyOptions,
) -> VerifyReport {
    verify_inner(spec, clients, &BTreeMap::new(), options).await
}

async fn verify_inner(
    spec: &MeshSpec,
    clients: &BTreeMap<String, ClusterClient>,
    connect_errors: &BTreeMap<String, ClusterError>,
    options: &VerifyOptions,
) -> VerifyReport {
    let ns = spec.istio_namespace.as_str();
    let facts: Vec<Option<ClusterFacts>> = futures::stream::iter(spec.clusters.iter())
        .map(|cluster| async move {
            let client = clients.get(&cluster.name)?;
            Some(read_facts(client, cluster, ns).await)
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;

    let mut report = VerifyReport::default();
    let mut roots: Vec<(String, String)> = Vec::new();
    let mut secrets_by_dst: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (cluster, facts) in spec.clusters.iter().zip(&facts) {
        let Some(facts) = facts else {
            let message = match connect_errors.get(&cluster.name) {
                Some(err) => with_causes(err),
                None => "no client for this cluster".to_string(),
            };
            report.push(error(
                &cluster.name,
                Check::Reachable,
                message,
                Some("check the cluster's context and kubeconfig in mesh.yaml"),
            ));
            continue;
        };
        if let Some(unreachable) = reachability(facts) {
            report.push(unreachable);
            continue;
        }
        report.push(ok(
            &cluster.name,
            Check::Reachable,
            "API server answered".into(),
        ));
        if let Some(root) = check_cacerts(&mut report, cluster, &facts.cacerts) {
            roots.push((cluster.name.clone(), root));
        }
        check_network(&mut report, cluster, ns, &facts.namespace);
        if Needs::of(spec, cluster).eastwest_gateway {
            check_gateway(&mut report, cluster, ns, &facts.gateway);
        }
        match &facts.secrets {
            Ok(all) => {
                let (here, elsewhere): (Vec<&Value>, Vec<&Value>) = all.iter().partition(|s| {
                    s.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                });
                for secret in elsewhere {
                    report.push(misplaced(&cluster.name, ns, secret));
                }
                secrets_by_dst.insert(cluster.name.clone(), here.into_iter().cloned().collect());
            }
            Err(e) => report.push(error(
                &cluster.name,
                Check::RemoteSecret,
                with_causes(e),
                None,
            )),
        }
    }
    check_roots(&mut report, &roots);
    check_local_root(&mut report, spec, &roots);

    let expected: BTreeSet<(String, String)> = spec.remote_secret_pairs().into_iter().collect();
    let mut token_checks = Vec::new();
    let mut servers = BTreeMap::new();
    let mut missing = Vec::new();
    for (src, dst) in &expected {
        let Some(secrets) = secrets_by_dst.get(dst) else {
            continue; // dst unreachable: already reported
        };
        let Some(src_spec) = spec.cluster(src) else {
            continue;
        };
        let name = secret_name(src);
        let Some(secret) = secrets
            .iter()
            .find(|s| s.pointer("/metadata/name").and_then(Value::as_str) == Some(name.as_str()))
        else {
            missing.push((src.as_str(), dst.as_str()));
            continue;
        };
        if let Some(kubeconfig) = check_remote_secret(
            &mut report,
            src_spec,
            dst,
            secret,
            clients,
            options,
            &mut servers,
        ) {
            token_checks.push((src.clone(), dst.clone(), kubeconfig));
        }
    }
    // Not among the labelled secrets: absent, or present without the label istiod selects by.
    let unlabelled: Vec<Finding> = futures::stream::iter(missing)
        .map(|(src, dst)| async move { explain_missing(clients.get(dst), src, dst, ns).await })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    for finding in unlabelled {
        report.push(finding);
    }
    for (dst, secrets) in &secrets_by_dst {
        check_unexpected(&mut report, spec, dst, secrets, &expected);
    }
    if options.check_tokens {
        // Every destination usually holds the same kubeconfig of a source: try each distinct
        // one once (N checks instead of N·(N−1) for a multi-primary mesh).
        let distinct: BTreeSet<(&str, &str)> = token_checks
            .iter()
            .map(|(src, _, kc)| (src.as_str(), kc.as_str()))
            .collect();
        let verdicts: BTreeMap<(&str, &str), TokenVerdict> = futures::stream::iter(distinct)
            .map(|(src, kc)| async move { ((src, kc), try_token(src, kc).await) })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        for (src, dst, kc) in &token_checks {
            if let Some(verdict) = verdicts.get(&(src.as_str(), kc.as_str())) {
                report.push(token_finding(src, dst, verdict));
            }
        }
    }
    report
}

async fn read_facts(client: &ClusterClient, cluster: &ClusterSpec, ns: &str) -> ClusterFacts {
    let cacerts_ref = ObjectRef::namespaced("v1", "Secret", ns, "cacerts");
    let namespace_ref = ObjectRef::cluster_scoped("v1", "Namespace", ns);
    let gateway_ref = ObjectRef::namespaced("v1", "Service", ns, eastwest::NAME);
    let selector = format!("{MULTICLUSTER_LABEL}=true");
    let cacerts = client.get(&cacerts_ref);
    let namespace = client.get(&namespace_ref);
    // Cluster-wide, to find remote secrets in the wrong namespace too (istioctl used the
    // context's namespace, #49780); a reader limited to the istio namespace still gets those.
    let secrets = async {
        match client.list("v1", "Secret", None, Some(&selector)).await {
            Err(ClusterError::Forbidden { .. }) => {
                client.list("v1", "Secret", Some(ns), Some(&selector)).await
            }
            other => other,
        }
    };
    let gateway = client.get(&gateway_ref);
    let (cacerts, namespace, secrets, gateway) =
        futures::join!(cacerts, namespace, secrets, gateway);
    ClusterFacts {
        name: cluster.name.clone(),
        cacerts,
        namespace,
        secrets,
        gateway,
    }
}

/// An error finding when the cluster could not be read at all (every read failed the same
/// way), so the other checks are not reported as a cascade of failures.
fn reachability(facts: &ClusterFacts) -> Option<Finding> {
    let err = match (&facts.cacerts, &facts.namespace) {
        (Err(e), Err(_)) => e,
        _ => return None,
    };
    let hint = match err {
        ClusterError::Unreachable { .. } => "is the cluster up and the kubeconfig server right?",
        ClusterError::Unauthorized { .. } => "the kubeconfig credentials were rejected",
        ClusterError::Forbidden { .. } => "verify needs read access to the istio namespace",
        _ => "re-run with RUST_LOG=debug for details",
    };
    Some(error(
        &facts.name,
        Check::Reachable,
        with_causes(err),
        Some(hint),
    ))
}

fn secret_text(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret.get("data")?.get(key)?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Checks `cacerts` and returns the fingerprint of the root it chains to.
fn check_cacerts(
    report: &mut VerifyReport,
    cluster: &ClusterSpec,
    cacerts: &Result<Option<Value>, ClusterError>,
) -> Option<String> {
    let name = cluster.name.as_str();
    let secret = match cacerts {
        Err(e) => {
            report.push(error(name, Check::Cacerts, with_causes(e), None));
            return None;
        }
        Ok(None) => {
            report.push(error(
                name,
                Check::Cacerts,
                "Secret cacerts is missing: istiod falls back to a self-signed CA this mesh does not share".into(),
                Some("run `meshboot apply`"),
            ));
            return None;
        }
        Ok(Some(secret)) => secret,
    };
    let files = [
        "ca-cert.pem",
        "ca-key.pem",
        "root-cert.pem",
        "cert-chain.pem",
    ];
    let missing: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| secret_text(secret, f).is_none_or(|t| t.trim().is_empty()))
        .collect();
    if !missing.is_empty() {
        report.push(error(
            name,
            Check::Cacerts,
            format!(
                "Secret cacerts lacks {} (istiod refuses an incomplete bundle)",
                missing.join(", ")
            ),
            Some("run `meshboot apply`"),
        ));
        return None;
    }
    let bundle = ClusterBundle {
        cluster: name.to_string(),
        ca_cert_pem: secret_text(secret, "ca-cert.pem").unwrap_or_default(),
        ca_key_pem: secret_text(secret, "ca-key.pem").unwrap_or_default(),
        root_cert_pem: secret_text(secret, "root-cert.pem").unwrap_or_default(),
        cert_chain_pem: secret_text(secret, "cert-chain.pem").unwrap_or_default(),
    };
    let chain = match verify_bundle(&bundle) {
        Ok(chain) => chain,
        Err(e) => {
            report.push(error(
                name,
                Check::Cacerts,
                format!("cacerts does not verify: {e}"),
                None,
            ));
            return None;
        }
    };
    match cert_info(&bundle.ca_cert_pem) {
        Ok(info) if info.cluster.as_deref() == Some(name) => report.push(ok(
            name,
            Check::Cacerts,
            format!("intermediate L={name} verifies up to the root"),
        )),
        Ok(info) => report.push(error(
            name,
            Check::Cacerts,
            format!(
                "the intermediate in cacerts belongs to {} (L=), not to {name}",
                info.cluster.as_deref().unwrap_or("no cluster")
            ),
            Some("each cluster needs its own intermediate: `meshboot apply` installs it"),
        )),
        Err(e) => report.push(error(
            name,
            Check::Cacerts,
            format!("ca-cert.pem: {e}"),
            None,
        )),
    }
    Some(chain.root_fingerprint)
}

fn check_roots(report: &mut VerifyReport, roots: &[(String, String)]) {
    let mut by_root: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (cluster, root) in roots {
        by_root.entry(root).or_default().push(cluster);
    }
    match by_root.len() {
        0 => {}
        1 => {
            let (root, clusters) = by_root
                .iter()
                .next()
                .map(|(r, c)| (*r, c.len()))
                .unwrap_or_default();
            report.push(Finding {
                severity: Severity::Ok,
                cluster: None,
                check: Check::Root,
                message: format!("{clusters} cluster(s) chain to one root {root}"),
                hint: None,
            });
        }
        _ => {
            let groups: Vec<String> = by_root
                .iter()
                .map(|(root, clusters)| format!("{} → {root}", clusters.join(",")))
                .collect();
            report.push(Finding {
                severity: Severity::Error,
                cluster: None,
                check: Check::Root,
                message: format!(
                    "clusters do not share one root: {} (cross-cluster mTLS fails with UNKNOWN_CA)",
                    groups.join("; ")
                ),
                hint: Some("all intermediates must be signed by the same root".into()),
            });
        }
    }
}

/// When the mesh file's `ca.dir` holds a root, every cluster must chain to it: otherwise the
/// next `apply` would meet a `cacerts` it refuses to overwrite.
fn check_local_root(report: &mut VerifyReport, spec: &MeshSpec, roots: &[(String, String)]) {
    let ca = CaDir::open(&spec.ca.dir);
    if !ca.has_root() {
        return;
    }
    let local = std::fs::read_to_string(ca.root_cert_path())
        .ok()
        .and_then(|pem| root_fingerprints(&pem).ok());
    let Some(local) = local else {
        report.push(Finding {
            severity: Severity::Warning,
            cluster: None,
            check: Check::Root,
            message: format!("cannot read the root in {}", ca.root_cert_path().display()),
            hint: None,
        });
        return;
    };
    for (cluster, root) in roots {
        if !local.contains(root) {
            report.push(error(
                cluster,
                Check::Root,
                format!(
                    "cacerts chains to root {root}, not to the root in {}",
                    ca.root_cert_path().display()
                ),
                Some("this cluster was bootstrapped from another CA; `meshboot apply` will refuse to overwrite it"),
            ));
        }
    }
}

fn check_network(
    report: &mut VerifyReport,
    cluster: &ClusterSpec,
    ns: &str,
    namespace: &Result<Option<Value>, ClusterError>,
) {
    let name = cluster.name.as_str();
    match namespace {
        Err(e) => report.push(error(name, Check::Network, with_causes(e), None)),
        Ok(None) => report.push(error(
            name,
            Check::Network,
            format!("namespace {ns} does not exist"),
            Some("run `meshboot apply`"),
        )),
        Ok(Some(obj)) => {
            let label = obj
                .pointer("/metadata/labels")
                .and_then(|l| l.get(NETWORK_LABEL))
                .and_then(Value::as_str);
            match label {
                Some(n) if n == cluster.network => report.push(ok(
                    name,
                    Check::Network,
                    format!("namespace {ns} is on network {n}"),
                )),
                Some(n) => report.push(error(
                    name,
                    Check::Network,
                    format!(
                        "namespace {ns} is labelled {NETWORK_LABEL}={n}, mesh.yaml says {}",
                        cluster.network
                    ),
                    Some("run `meshboot apply`"),
                )),
                None => report.push(error(
                    name,
                    Check::Network,
                    format!("namespace {ns} has no {NETWORK_LABEL} label"),
                    Some("run `meshboot apply`"),
                )),
            }
        }
    }
}

fn check_gateway(
    report: &mut VerifyReport,
    cluster: &ClusterSpec,
    ns: &str,
    gateway: &Result<Option<Value>, ClusterError>,
) {
    let name = cluster.name.as_str();
    let service = match gateway {
        Err(e) => {
            report.push(error(name, Check::EastWestGateway, with_causes(e), None));
            return;
        }
        Ok(None) => {
            report.push(error(
                name,
                Check::EastWestGateway,
                format!("Service {ns}/{} is missing", eastwest::NAME),
                Some("run `meshboot apply`"),
            ));
            return;
        }
        Ok(Some(s)) => s,
    };
    let mut addresses: Vec<String> = service
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.get("ip")
                .or_else(|| i.get("hostname"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    addresses.extend(
        service
            .pointer("/spec/externalIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string)),
    );
    if addresses.is_empty() {
        report.push(error(
            name,
            Check::EastWestGateway,
            format!(
                "Service {ns}/{} has no external address: other networks cannot reach this cluster's workloads",
                eastwest::NAME
            ),
            Some("the cluster needs a LoadBalancer implementation, or set spec.externalIPs"),
        ));
    } else {
        report.push(ok(
            name,
            Check::EastWestGateway,
            format!("external address {}", addresses.join(", ")),
        ));
    }
}

/// Checks `istio-remote-secret-<src>` in `dst`; returns its kubeconfig when the token is worth
/// trying.
fn check_remote_secret(
    report: &mut VerifyReport,
    src: &ClusterSpec,
    dst: &str,
    secret: &Value,
    clients: &BTreeMap<String, ClusterClient>,
    options: &VerifyOptions,
    servers: &mut BTreeMap<String, Option<String>>,
) -> Option<String> {
    let name = secret_name(&src.name);
    let Some(kubeconfig) = secret_text(secret, &src.name) else {
        let keys: Vec<&str> = secret
            .get("data")
            .and_then(Value::as_object)
            .map(|d| d.keys().map(String::as_str).collect())
            .unwrap_or_default();
        report.push(error(
            dst,
            Check::RemoteSecret,
            format!(
                "{name} is not keyed by cluster name {} (keys: {}): istiod registers the cluster under the key",
                src.name,
                keys.join(", ")
            ),
            Some("run `meshboot apply`"),
        ));
        return None;
    };
    // Parsed once per distinct kubeconfig: every destination holds the same one per source.
    let server = servers
        .entry(kubeconfig.clone())
        .or_insert_with(|| kubeconfig_server(&kubeconfig))
        .clone();
    let Some(server) = server else {
        report.push(error(
            dst,
            Check::RemoteSecret,
            format!("{name}: the kubeconfig has no server"),
            None,
        ));
        return None;
    };
    if !server.starts_with("https://") {
        report.push(error(
            dst,
            Check::RemoteSecret,
            format!("{name} points at {server}, which is not https"),
            None,
        ));
        return None;
    }
    if is_loopback_server(&server) && !options.allow_loopback {
        report.push(error(
            dst,
            Check::RemoteSecret,
            format!(
                "{name} points at {server}, a loopback address {dst} cannot reach {}",
                src.name
            ),
            Some(&format!(
                "set apiServer for {} in mesh.yaml to an address the other clusters reach (or --allow-loopback for local test clusters)",
                src.name
            )),
        ));
        return None;
    }
    let expected = src
        .api_server
        .clone()
        .or_else(|| clients.get(&src.name).map(|c| c.server().to_string()));
    match expected {
        Some(expected) if expected.trim_end_matches('/') != server.trim_end_matches('/') => {
            report.push(warning(
                dst,
                Check::RemoteSecret,
                format!(
                    "{name} points at {server}, mesh.yaml expects {expected} for {}",
                    src.name
                ),
                Some("run `meshboot apply` to update it"),
            ));
        }
        _ => report.push(ok(
            dst,
            Check::RemoteSecret,
            format!("{name} reaches {} at {server}", src.name),
        )),
    }
    Some(kubeconfig)
}

/// A labelled remote secret outside istiod's namespace: istiod never reads it.
fn misplaced(cluster: &str, ns: &str, secret: &Value) -> Finding {
    let name = secret
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let other = secret
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    error(
        cluster,
        Check::UnexpectedSecret,
        format!("{other}/{name} is labelled {MULTICLUSTER_LABEL}=true but istiod only reads {ns}"),
        Some(&format!("move it: it belongs in namespace {ns}")),
    )
}

/// Why `istio-remote-secret-<src>` is not among `dst`'s labelled secrets.
async fn explain_missing(
    client: Option<&ClusterClient>,
    src: &str,
    dst: &str,
    ns: &str,
) -> Finding {
    let name = secret_name(src);
    let found = match client {
        Some(c) => c
            .get(&ObjectRef::namespaced("v1", "Secret", ns, &name))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match found {
        Some(secret) => {
            let label = secret
                .pointer("/metadata/labels")
                .and_then(|l| l.get(MULTICLUSTER_LABEL))
                .map_or("no such label".to_string(), |v| {
                    format!("{MULTICLUSTER_LABEL}: {v}")
                });
            error(
                dst,
                Check::RemoteSecret,
                format!(
                    "{name} exists but is not labelled {MULTICLUSTER_LABEL}: \"true\" ({label}): istiod in {dst} ignores it"
                ),
                Some("run `meshboot apply`"),
            )
        }
        None => error(
            dst,
            Check::RemoteSecret,
            format!("{name} is missing: istiod in {dst} does not see {src}"),
            Some("run `meshboot apply`"),
        ),
    }
}

fn check_unexpected(
    report: &mut VerifyReport,
    spec: &MeshSpec,
    dst: &str,
    secrets: &[Value],
    expected: &BTreeSet<(String, String)>,
) {
    for secret in secrets {
        let name = secret
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        let keys: Vec<&str> = secret
            .get("data")
            .and_then(Value::as_object)
            .map(|d| d.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for key in keys {
            if key == dst {
                report.push(error(
                    dst,
                    Check::UnexpectedSecret,
                    format!(
                        "{name} holds a kubeconfig for {dst} itself: istiod ignores it (it would overwrite the config cluster)"
                    ),
                    Some(&format!("delete it: kubectl -n {} delete secret {name}", spec.istio_namespace)),
                ));
            } else if spec.cluster(key).is_none() {
                report.push(warning(
                    dst,
                    Check::UnexpectedSecret,
                    format!("{name} registers cluster {key}, which is not in mesh.yaml"),
                    None,
                ));
            } else if !expected.contains(&(key.to_string(), dst.to_string())) {
                report.push(warning(
                    dst,
                    Check::UnexpectedSecret,
                    format!("{name} registers {key}, but {dst} should not watch {key} in this mesh model"),
                    None,
                ));
            }
        }
    }
}

/// Bound on one token check, retries included: an address only the clusters can reach must not
/// stall verify.
const TOKEN_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a source cluster made of a remote secret's credentials.
enum TokenVerdict {
    /// Authenticated, and may list services cluster-wide (what istiod does first).
    Accepted,
    /// Authenticated, but not allowed to read.
    CannotRead,
    /// 401: the token is not (or no longer) valid.
    Rejected,
    /// Anything else: unreachable, bad kubeconfig, timeout.
    Failed(String),
}

/// Connects to `src` with a kubeconfig embedded in a remote secret, as istiod would.
async fn try_token(src: &str, kubeconfig: &str) -> TokenVerdict {
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let client =
        match ClusterClient::from_kubeconfig_yaml(src, kubeconfig, "", "the remote secret").await {
            Ok(c) => c.with_retry(policy),
            Err(e) => return TokenVerdict::Failed(with_causes(&e)),
        };
    let probe = tokio::time::timeout(
        TOKEN_CHECK_TIMEOUT,
        client.can_i("list", "", "services", None),
    )
    .await;
    match probe {
        Ok(Ok(true)) => TokenVerdict::Accepted,
        Ok(Ok(false)) => TokenVerdict::CannotRead,
        Ok(Err(ClusterError::Unauthorized { .. })) => TokenVerdict::Rejected,
        Ok(Err(e)) => TokenVerdict::Failed(with_causes(&e)),
        Err(_) => TokenVerdict::Failed(format!(
            "{src} did not answer within {TOKEN_CHECK_TIMEOUT:?}"
        )),
    }
}

fn token_finding(src: &str, dst: &str, verdict: &TokenVerdict) -> Finding {
    let name = secret_name(src);
    match verdict {
        TokenVerdict::Accepted => ok(
            dst,
            Check::Token,
            format!("{src} accepts the token of {name}"),
        ),
        TokenVerdict::CannotRead => error(
            dst,
            Check::Token,
            format!(
                "{src} accepts the token of {name} but it may not list services: istiod in {dst} cannot watch {src}"
            ),
            Some("the reader ClusterRole/ClusterRoleBinding is missing: run `meshboot apply`"),
        ),
        TokenVerdict::Rejected => error(
            dst,
            Check::Token,
            format!("{src} rejects the token of {name}"),
            Some("the token Secret was deleted or rotated: run `meshboot apply`"),
        ),
        TokenVerdict::Failed(reason) => error(
            dst,
            Check::Token,
            format!("{name}: cannot check its token: {reason}"),
            Some(
                "verify connects from this machine with the secret's kubeconfig; if only the clusters can reach that server, re-run with --skip-token-check",
            ),
        ),
    }
}

/// An error and its causes on one line: "cannot reach" alone does not say whether the
/// connection was refused, timed out or failed certificate verification.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The current context's server of a kubeconfig (first cluster when there is no context).
fn kubeconfig_server(kubeconfig: &str) -> Option<String> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).ok()?;
    let cluster_name = kc
        .current_context
        .as_deref()
        .and_then(|cur| kc.contexts.iter().find(|c| c.name == cur))
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = match cluster_name {
        Some(name) => kc.clusters.iter().find(|c| c.name == name),
        None => kc.clusters.first(),
    }?;
    cluster.cluster.as_ref()?.server.clone()
}

fn ok(cluster: &str, check: Check, message: String) -> Finding {
    Finding {
        severity: Severity::Ok,
        cluster: Some(cluster.to_string()),
        check,
        message,
        hint: None,
    }
}

fn warning(cluster: &str, check: Check, message: String, hint: Option<&str>) -> Finding {
    Finding {
        severity: Severity::Warning,
        cluster: Some(cluster.to_string()),
        check,
        message,
        hint: hint.map(str::to_string),
    }
}

fn error(cluster: &str, check: Check, message: String, hint: Option<&str>) -> Finding {
    Finding {
        severity: Severity::Error,
        cluster: Some(cluster.to_string()),
        check,
        message,
        hint: hint.map(str::to_string),
    }
}
