//! A stand-in for what istiod does with `cacerts` — the part certificate rotation gates on.
//!
//! Off unless enabled for a cluster ([`crate::EmulatorOptions::istiod`] or
//! [`crate::EmulatedCluster::enable_istiod`]), and then active only while an istiod Deployment
//! exists in `istio-system` (name `istiod`, or label `app: istiod`; [`deployment`] builds one
//! with a given version and env, so tests need no Helm). Its version is read as on a real
//! cluster, from the `discovery` container's image tag (`docker.io/istio/pilot:1.28.2`).
//! What it does, after [`IstiodOptions::delay`] (the kubelet's Secret-volume sync, about a
//! minute on a real node):
//!
//! - **Start** (the Deployment appears or its pod template changes, i.e. a rollout): loads
//!   `cacerts` (istiod format `ca-cert.pem`/`ca-key.pem`/`root-cert.pem`/`cert-chain.pem`, or
//!   `tls.crt`/`tls.key`/`ca.crt`) whatever root it holds. No `cacerts`: the self-signed CA —
//!   Secret `istio-ca-secret` (type `istio.io/ca-root`) with a root made here. An incomplete
//!   bundle: istiod does not come up (`failed to create an istiod CA: incomplete signing CA
//!   bundle detected`) and publishes nothing.
//! - **Hot reload** (`cacerts` changes while running; 1.18+, or `AUTO_RELOAD_PLUGIN_CERTS=true`
//!   before): a different root bundle is refused unless `ISTIO_MULTIROOT_MESH=true` is in the
//!   Deployment's env (`Multi root is disabled, updating new ROOT-CA not supported`), and even
//!   then unless one bundle is a subset of the other (`Updating new ROOT-CA not supported`) —
//!   compared as DER certificate sets from 1.31, byte-wise (`bytes.Contains`) in 1.20–1.30; before
//!   1.20 every root change is refused. A refusal keeps the loaded bundle (and the intermediate).
//! - **Verification** (at start and on every reload, as `util.Verify`): the signing cert must
//!   chain, signatures checked, through `cert-chain.pem` to a root of `root-cert.pem`, every link
//!   within its validity, be a CA, and come with a key of a PEM type istiod reads; otherwise
//!   `Failed to update new Plug-in CA certs: cannot verify the cert with the provided root chain
//!   and cert pool with error: x509: certificate signed by unknown authority` (reload) or no CA at
//!   all (start). Whether the key matches the cert is not checked.
//! - **Publish**: ConfigMap `istio-ca-root-cert` (label `istio.io/config: "true"`, key
//!   `root-cert.pem` = the loaded bundle) in every namespace but `kube-public`,
//!   `kube-node-lease` and `local-path-storage`, in namespaces created later, and back again
//!   when someone edits or deletes it.
//!
//! Refusals and failures are observable the way a real cluster shows them: as istiod's log
//! lines, read with [`crate::EmulatedCluster::istiod_log`] (the emulator runs no Pods, so there is
//! no `kubectl logs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::cluster::ClusterState;
use crate::ops::{self, WriteOpts};
use crate::store::Key;

/// The namespace istiod and `cacerts` live in.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// The ConfigMap istiod publishes the root bundle in.
pub const ROOT_CONFIGMAP: &str = "istio-ca-root-cert";
/// Namespaces istiod's namespace controller skips (`inject.IgnoredNamespaces` minus kube-system).
const IGNORED_NAMESPACES: &[&str] = &["kube-public", "kube-node-lease", "local-path-storage"];
const MANAGER: &str = "pilot-discovery";

/// How istiod decides whether a new root bundle may replace the loaded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootCompare {
    /// Before 1.20: no root change without a restart.
    RefuseAll,
    /// 1.20–1.30: `bytes.Contains` of one PEM bundle in the other (order matters).
    Bytes,
    /// 1.31+: subset/superset of DER certificate sets (order-independent).
    DerSet,
}

impl RootCompare {
    /// The behaviour of an istiod `major.minor`.
    pub fn for_version(major: u32, minor: u32) -> RootCompare {
        match (major, minor) {
            (1, m) if m < 20 => RootCompare::RefuseAll,
            (1, m) if m < 31 => RootCompare::Bytes,
            _ => RootCompare::DerSet,
        }
    }
}

/// How the stand-in behaves on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstiodOptions {
    /// Delay between a change (Deployment rollout, `cacerts` write) and istiod acting on it.
    pub delay: Duration,
    /// Root comparison; None = from the istiod image's version.
    pub compare: Option<RootCompare>,
}

impl Default for IstiodOptions {
    fn default() -> Self {
        IstiodOptions {
            delay: Duration::from_millis(100),
            compare: None,
        }
    }
}

/// What the running istiod holds.
#[derive(Debug, Default)]
struct Running {
    /// The loaded root bundle (PEM bytes as read).
    root: Option<String>,
    /// The Deployment generation the running pod was started from.
    generation: Option<i64>,
    /// The `cacerts` content last handled (so an unchanged Secret is not re-handled).
    seen: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    options: Option<IstiodOptions>,
    /// Bumped by [`Slot::enable`]: a reaction scheduled under earlier options (say a 100 ms
    /// delay) must not fire after a test switched to a long delay, or a test that holds
    /// istiod back would see a stale timer reload a `cacerts` written after the switch.
    epoch: u64,
    running: Running,
    log: Vec<String>,
}

/// Per-cluster slot of the stand-in (in [`ClusterState`]).
#[derive(Debug, Default)]
pub(crate) struct Slot(Mutex<State>, Mutex<()>);

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn enable(&self, options: IstiodOptions) {
        let mut state = self.lock();
        state.options = Some(options);
        state.epoch += 1;
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    pub(crate) fn root(&self) -> Option<String> {
        self.lock().running.root.clone()
    }

    fn log_line(&self, level: &str, line: String) {
        self.lock().log.push(format!("{level}\t{line}"));
    }
}

/// An istiod Deployment as the `istio/istiod` chart shapes the fields the stand-in reads: name
/// `istiod`, labels `app: istiod` / `istio: pilot`, container `discovery` with image
/// `docker.io/istio/pilot:<version>` and `env`.
pub fn deployment(version: &str, env: &[(&str, &str)]) -> Value {
    let env: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let labels = json!({"app": "istiod", "istio": "pilot", "istio.io/rev": "default",
        "app.kubernetes.io/name": "istiod", "app.kubernetes.io/version": version});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": ISTIO_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "istiod", "istio": "pilot"}},
            "template": {
                "metadata": {"labels": {"app": "istiod", "istio": "pilot", "sidecar.istio.io/inject": "false"}},
                "spec": {
                    "serviceAccountName": "istiod",
                    "containers": [{
                        "name": "discovery",
                        "image": format!("docker.io/istio/pilot:{version}"),
                        "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info"],
                        "env": env,
                        "volumeMounts": [{"name": "cacerts", "mountPath": "/etc/cacerts", "readOnly": true}],
                    }],
                    "volumes": [{"name": "cacerts", "secret": {"secretName": "cacerts", "optional": true}}],
                },
            },
        },
    })
}

/// The istiod Deployment of a cluster, if one exists.
fn find_deployment(st: &ClusterState) -> Option<Value> {
    let inner = st.lock();
    inner
        .store
        .list("apps", "deployments", Some(ISTIO_NAMESPACE))
        .find(|d| d["metadata"]["name"] == "istiod" || d["metadata"]["labels"]["app"] == "istiod")
        .cloned()
}

fn discovery_container(d: &Value) -> Option<&Value> {
    let cs = d["spec"]["template"]["spec"]["containers"].as_array()?;
    cs.iter()
        .find(|c| c["name"] == "discovery")
        .or_else(|| cs.first())
}

/// `major.minor` from an image tag (`…/pilot:1.28.2`, `…:1.30.0-distroless`).
pub fn image_version(image: &str) -> Option<(u32, u32)> {
    let tag = image.rsplit_once(':')?.1;
    let mut parts = tag.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn env_true(d: &Value, name: &str) -> bool {
    discovery_container(d)
        .and_then(|c| c["env"].as_array())
        .into_iter()
        .flatten()
        .any(|e| e["name"] == name && e["value"].as_str() == Some("true"))
}

/// Reacts to a stored change; cheap for keys it does not care about.
pub(crate) fn on_change(st: &Arc<ClusterState>, key: &Key) {
    let relevant = match (key.group.as_str(), key.plural.as_str()) {
        ("apps", "deployments") => key.namespace == ISTIO_NAMESPACE,
        ("", "secrets") => key.namespace == ISTIO_NAMESPACE && key.name == "cacerts",
        ("", "namespaces") => true,
        ("", "configmaps") => key.name == ROOT_CONFIGMAP,
        _ => false,
    };
    if !relevant {
        return;
    }
    let (delay, epoch) = {
        let state = st.istiod.lock();
        let Some(delay) = state.options.as_ref().map(|o| o.delay) else {
            return;
        };
        (delay, state.epoch)
    };
    let (st, key) = (st.clone(), key.clone());
    tokio::spawn(async move {
        match (key.group.as_str(), key.plural.as_str()) {
            ("apps", "deployments") | ("", "secrets") => {
                tokio::time::sleep(delay).await;
                reconcile(&st, epoch);
            }
            ("", "namespaces") => publish(&st, Some(&key.name)),
            _ => publish(&st, Some(&key.namespace)),
        }
    });
}

/// Brings istiod in line with its Deployment and `cacerts`: start (or restart) when the pod
/// template changed, else hot-reload a changed `cacerts`, then publish.
///
/// `armed`: the options epoch a delayed reaction was armed under; it gives up when
/// [`Slot::enable`] ran since. The epoch is checked after `cacerts` is read, so a Secret written
/// after the switch can never be handled by a timer armed before it.
fn reconcile(st: &ClusterState, armed: u64) {
    // istiod handles one event at a time; two timers firing together (a `cacerts` and a
    // Deployment change) must not both start it, or a late second start is logged after the
    // reaction a test waits for.
    let _one_at_a_time = st.istiod.1.lock().unwrap_or_else(|e| e.into_inner());
    let Some(options) = st.istiod.lock().options.clone() else {
        return;
    };
    let Some(d) = find_deployment(st) else {
        st.istiod.lock().running = Running::default();
        return;
    };
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
    let version = discovery_container(&d)
        .and_then(|c| c["image"].as_str())
        .and_then(image_version)
        .unwrap_or((1, 99));
    let compare = options
        .compare
        .unwrap_or_else(|| RootCompare::for_version(version.0, version.1));
    let cacerts = st
        .lock()
        .store
        .get(&Key::new("", "secrets", Some(ISTIO_NAMESPACE), "cacerts"))
        .cloned();
    if st.istiod.lock().epoch != armed {
        return;
    }
    let fingerprint = cacerts.as_ref().map(|c| c["data"].to_string());
    let restarted = st.istiod.lock().running.generation != Some(generation);
    if restarted {
        start(st, generation, cacerts.as_ref(), fingerprint);
    } else if st.istiod.lock().running.seen != fingerprint {
        st.istiod.lock().running.seen = fingerprint;
        let hot_reload = version >= (1, 18) || env_true(&d, "AUTO_RELOAD_PLUGIN_CERTS");
        if let (true, Some(c)) = (hot_reload, cacerts.as_ref()) {
            reload(st, c, compare, env_true(&d, "ISTIO_MULTIROOT_MESH"));
        }
    }
    publish(st, None);
}

fn data(secret: &Value, key: &str) -> Option<String> {
    let b = secret["data"][key].as_str()?;
    String::from_utf8(STANDARD.decode(b).ok()?).ok()
}

/// The root file of a `cacerts` bundle, or why istiod cannot use it.
fn bundle_root(secret: &Value) -> Result<String, &'static str> {
    let has = |k: &str| secret["data"][k].is_string();
    let (files, root) = if has("tls.crt") {
        (vec!["tls.crt", "tls.key", "ca.crt"], "ca.crt")
    } else {
        (
            vec![
                "ca-cert.pem",
                "ca-key.pem",
                "root-cert.pem",
                "cert-chain.pem",
            ],
            "root-cert.pem",
        )
    };
    if !files.iter().all(|f| has(f)) {
        return Err("incomplete signing CA bundle detected");
    }
    data(secret, root).ok_or("incomplete signing CA bundle detected")
}

fn start(st: &ClusterState, generation: i64, cacerts: Option<&Value>, fingerprint: Option<String>) {
    let root = match cacerts {
        Some(c) => match bundle_root(c) {
            Ok(root) => match verify(c) {
                Ok(()) => {
                    st.istiod.log_line(
                        "info",
                        "Use plugged-in cert at etc/cacerts/ca-key.pem".into(),
                    );
                    Some(root)
                }
                Err(e) => {
                    st.istiod.log_line(
                        "error",
                        format!(
                            "failed to create an istiod CA: failed to create CA KeyCertBundle ({e})"
                        ),
                    );
                    None
                }
            },
            Err(e) => {
                st.istiod
                    .log_line("error", format!("failed to create an istiod CA: {e}"));
                None
            }
        },
        None => self_signed_root(st),
    };
    let mut slot = st.istiod.lock();
    slot.running = Running {
        root,
        generation: Some(generation),
        seen: fingerprint,
    };
}

/// The self-signed CA istiod makes without `cacerts`: kept in `istio-ca-secret`, reused when it
/// exists.
fn self_signed_root(st: &ClusterState) -> Option<String> {
    let key = Key::new("", "secrets", Some(ISTIO_NAMESPACE), "istio-ca-secret");
    if let Some(existing) = st.lock().store.get(&key).cloned() {
        st.istiod.log_line(
            "info",
            "Load signing key and cert from existing secret istio-system/istio-ca-secret".into(),
        );
        return data(&existing, "root-cert.pem");
    }
    let (cert, key_pem) = match generate_self_signed() {
        Ok(v) => v,
        Err(e) => {
            st.istiod.log_line(
                "error",
                format!("failed to create a self-signed istiod CA: {e}"),
            );
            return None;
        }
    };
    st.istiod.log_line(
        "info",
        "No plugged-in cert at etc/cacerts/ca-key.pem; self-signed cert is used".into(),
    );
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "istio.io/ca-root",
        "metadata": {"name": "istio-ca-secret", "namespace": ISTIO_NAMESPACE},
        "data": {
            "ca-cert.pem": STANDARD.encode(&cert),
            "ca-key.pem": STANDARD.encode(&key_pem),
            "root-cert.pem": STANDARD.encode(&cert),
            "cert-chain.pem": "",
            "key.pem": "",
        },
    });
    write(st, "secrets", None, secret);
    Some(cert)
}

fn generate_self_signed() -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "cluster.local");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// istiod's `handleEvent`: accept an intermediate-only change, accept a root change only under
/// the rules of `compare` with multi-root on.
fn reload(st: &ClusterState, cacerts: &Value, compare: RootCompare, multiroot: bool) {
    st.istiod.log_line("info", "Update Istiod cacerts".into());
    let new_root = match bundle_root(cacerts) {
        Ok(r) => r,
        Err(e) => {
            st.istiod.log_line(
                "error",
                format!("unable to determine signing file format {e}"),
            );
            return;
        }
    };
    let current = st.istiod.root();
    let Some(current) = current else {
        // Running without a usable CA (incomplete bundle at start): it stays down until a rollout.
        return;
    };
    if current != new_root {
        if compare == RootCompare::RefuseAll {
            st.istiod
                .log_line("info", "Updating new ROOT-CA not supported".into());
            return;
        }
        if !multiroot {
            st.istiod.log_line(
                "warn",
                "Multi root is disabled, updating new ROOT-CA not supported".into(),
            );
            return;
        }
        if !nested(&current, &new_root, compare) {
            st.istiod
                .log_line("warn", "Updating new ROOT-CA not supported".into());
            return;
        }
        st.istiod.log_line("info", "Updating new ROOT-CA".into());
    }
    if let Err(e) = verify(cacerts) {
        st.istiod.log_line(
            "error",
            format!("Failed to update new Plug-in CA certs: {e}"),
        );
        return;
    }
    st.istiod.lock().running.root = Some(new_root);
    st.istiod.log_line(
        "info",
        "Istiod has detected the newly added intermediate CA and updated its key and certs accordingly"
            .into(),
    );
}

fn parse_cert(der: &[u8]) -> Option<x509_parser::certificate::X509Certificate<'_>> {
    use x509_parser::prelude::FromDer as _;
    x509_parser::certificate::X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .ok()
}

/// istiod's `util.Verify` of a plugged bundle, as far as the stand-in can: the signing cert
/// parses, is a CA, and chains (signatures checked, every link within its validity) through the
/// chain file's certificates to a root of the root file; the key is a PEM block of a type istiod
/// reads. (That the key matches the cert is not checked.)
fn verify(secret: &Value) -> Result<(), String> {
    use x509_parser::certificate::X509Certificate;
    let tls = secret["data"]["tls.crt"].is_string();
    let (cert_file, key_file, root_file) = if tls {
        ("tls.crt", "tls.key", "ca.crt")
    } else {
        ("ca-cert.pem", "ca-key.pem", "root-cert.pem")
    };
    let text = |k: &str| data(secret, k).unwrap_or_default();
    let signing = der_list(&text(cert_file));
    let chain = if tls {
        der_list(&format!("{}{}", text("tls.crt"), text("ca.crt")))
    } else {
        der_list(&text("cert-chain.pem"))
    };
    let roots = der_list(&text(root_file));
    let Some(leaf) = signing.first().and_then(|d| parse_cert(d)) else {
        return Err("failed to parse cert PEM: invalid PEM encoded certificate".into());
    };
    let unknown = "cannot verify the cert with the provided root chain and cert pool with error: x509: certificate signed by unknown authority";
    let expired = "cannot verify the cert with the provided root chain and cert pool with error: x509: certificate has expired or is not yet valid";
    let roots: Vec<X509Certificate<'_>> = roots.iter().filter_map(|d| parse_cert(d)).collect();
    let chain: Vec<X509Certificate<'_>> = chain.iter().filter_map(|d| parse_cert(d)).collect();
    let signed_by = |c: &X509Certificate<'_>, by: &X509Certificate<'_>| {
        c.issuer() == by.subject() && c.verify_signature(Some(by.public_key())).is_ok()
    };
    let mut current = leaf.clone();
    let mut anchored = false;
    for _ in 0..8 {
        if !current.validity().is_valid() {
            return Err(expired.into());
        }
        if let Some(root) = roots.iter().find(|r| signed_by(&current, r)) {
            if !root.validity().is_valid() {
                return Err(expired.into());
            }
            anchored = true;
            break;
        }
        match chain
            .iter()
            .find(|i| i.subject() != current.subject() && signed_by(&current, i))
        {
            Some(next) => current = next.clone(),
            None => break,
        }
    }
    if !anchored {
        return Err(unknown.into());
    }
    let key = text(key_file);
    let key_type = key
        .lines()
        .find_map(|l| {
            l.strip_prefix("-----BEGIN ")
                .and_then(|r| r.strip_suffix("-----"))
        })
        .unwrap_or_default()
        .to_string();
    if !matches!(
        key_type.as_str(),
        "EC PRIVATE KEY" | "RSA PRIVATE KEY" | "PRIVATE KEY"
    ) {
        return Err(format!(
            "failed to parse private key PEM: unsupported PEM block type for a private key: {key_type}"
        ));
    }
    if !leaf.is_ca() {
        return Err("certificate is not authorized to sign other certificates".into());
    }
    Ok(())
}

/// Whether one bundle is a subset of the other under `compare`.
fn nested(a: &str, b: &str, compare: RootCompare) -> bool {
    match compare {
        RootCompare::RefuseAll => false,
        RootCompare::Bytes => a.contains(b) || b.contains(a),
        RootCompare::DerSet => {
            let (sa, sb) = (der_set(a), der_set(b));
            !sa.is_empty() && !sb.is_empty() && (sa.is_subset(&sb) || sb.is_subset(&sa))
        }
    }
}

/// The DER bodies of the `CERTIFICATE` blocks of a PEM bundle.
pub fn der_set(pem: &str) -> std::collections::BTreeSet<Vec<u8>> {
    der_list(pem).into_iter().collect()
}

/// The DER bodies of a PEM bundle's `CERTIFICATE` blocks, in order.
fn der_list(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let Some(end) = body.find("-----END CERTIFICATE-----") else {
            break;
        };
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = STANDARD.decode(b64) {
            out.push(der);
        }
        rest = &body[end..];
    }
    out
}

/// Writes `istio-ca-root-cert` into one namespace (or all) when istiod runs with a root.
fn publish(st: &ClusterState, only: Option<&str>) {
    let Some(root) = st.istiod.root() else {
        return;
    };
    if find_deployment(st).is_none() {
        return;
    }
    let namespaces: Vec<String> = {
        let inner = st.lock();
        inner
            .store
            .list("", "namespaces", None)
            .filter(|n| n["status"]["phase"] != "Terminating")
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
            .filter(|n| !IGNORED_NAMESPACES.contains(&n.as_str()))
            .filter(|n| only.is_none_or(|o| o == n))
            .collect()
    };
    for ns in namespaces {
        let key = Key::new("", "configmaps", Some(&ns), ROOT_CONFIGMAP);
        let existing = st.lock().store.get(&key).cloned();
        if existing
            .as_ref()
            .is_some_and(|c| c["data"]["root-cert.pem"].as_str() == Some(root.as_str()))
        {
            continue;
        }
        let mut cm = existing.clone().unwrap_or_else(|| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CONFIGMAP, "namespace": ns, "labels": {"istio.io/config": "true"}}})
        });
        cm["data"]["root-cert.pem"] = json!(root);
        write(st, "configmaps", existing.as_ref(), cm);
    }
}

fn write(st: &ClusterState, plural: &str, old: Option<&Value>, obj: Value) {
    let Some(def) = st.lock().registry.by_plural("", "v1", plural).cloned() else {
        return;
    };
    let mut inner = st.lock();
    let opts = WriteOpts {
        dry_run: false,
        manager: MANAGER.into(),
        force: false,
        ..Default::default()
    };
    if let Err(e) = ops::finish_write(st, &mut inner, &def, old, obj, &opts, None, true) {
        tracing::warn!(cluster = %st.name, "istiod stand-in: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
    const B: &str = "-----BEGIN CERTIFICATE-----\nAwQF\n-----END CERTIFICATE-----\n";

    #[test]
    fn root_bundles_nest_by_bytes_before_1_31_and_by_der_set_after() {
        let ab = format!("{A}{B}");
        let ba = format!("{B}{A}");
        assert!(nested(A, &ab, RootCompare::Bytes));
        assert!(nested(&ab, B, RootCompare::Bytes));
        // Re-ordered "B then A" does not contain "A then B" byte-wise (the pre-1.31 pitfall).
        assert!(!nested(&ab, &ba, RootCompare::Bytes));
        assert!(nested(&ab, &ba, RootCompare::DerSet));
        assert!(nested(&ba, A, RootCompare::DerSet));
        assert!(!nested(A, B, RootCompare::DerSet));
        assert!(!nested(A, &ab, RootCompare::RefuseAll));
    }

    #[test]
    fn versions_come_from_the_image_tag() {
        assert_eq!(image_version("docker.io/istio/pilot:1.28.2"), Some((1, 28)));
        assert_eq!(
            image_version("gcr.io/istio-release/pilot:1.31.0-distroless"),
            Some((1, 31))
        );
        assert_eq!(image_version("pilot"), None);
        assert_eq!(RootCompare::for_version(1, 19), RootCompare::RefuseAll);
        assert_eq!(RootCompare::for_version(1, 30), RootCompare::Bytes);
        assert_eq!(RootCompare::for_version(1, 31), RootCompare::DerSet);
    }
}
