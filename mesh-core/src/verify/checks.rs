//! The judging half of verify: pure functions from [`MeshFacts`] to [`Finding`]s. No I/O
//! happens here, so each check is tested on hand-built facts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::cacerts::CacertsSecret;
use super::facts::{ClusterFacts, LocalRoot, MeshFacts, TokenVerdict};
use super::{Check, Finding, Severity, VerifyOptions, VerifyReport};
use crate::cluster::{ClusterError, external_addresses, kubeconfig_server};
use crate::pki::{cert_info, verify_bundle};
use crate::remote_secret::{MULTICLUSTER_LABEL, is_loopback_server, secret_name};
use crate::render::{NETWORK_LABEL, Needs, eastwest};
use crate::spec::{ClusterSpec, MeshSpec};

/// Every finding about the mesh, in spec order.
pub(crate) fn check(spec: &MeshSpec, facts: &MeshFacts, options: &VerifyOptions) -> VerifyReport {
    let ns = spec.istio_namespace.as_str();
    let mut report = VerifyReport::default();
    let mut roots: Vec<(String, String)> = Vec::new();
    for cluster in &spec.clusters {
        let Some(read) = readable(facts, &cluster.name) else {
            if let Some(finding) = unreadable(&cluster.name, facts) {
                report.push(finding);
            }
            continue;
        };
        report.push(ok(
            &cluster.name,
            Check::Reachable,
            "API server answered".into(),
        ));
        let (finding, root) = check_cacerts(&cluster.name, &read.cacerts);
        report.push(finding);
        if let Some(root) = root {
            roots.push((cluster.name.clone(), root));
        }
        report.push(check_network(cluster, ns, &read.namespace));
        if Needs::of(spec, cluster).eastwest_gateway {
            report.push(check_gateway(&cluster.name, ns, &read.gateway));
        }
        match &read.secrets {
            Ok(all) => {
                for secret in all.iter().filter(|s| namespace_of(s) != Some(ns)) {
                    report.push(misplaced(&cluster.name, ns, secret));
                }
            }
            Err(e) => report.push(error(
                &cluster.name,
                Check::RemoteSecret,
                with_causes(e),
                None,
            )),
        }
    }
    // Mid-rotation clusters chain to the old or the new root by design: the rotation's own
    // finding names each one's phase (and any cluster in no phase of it) instead.
    let live: BTreeMap<String, Option<Value>> = spec
        .clusters
        .iter()
        .filter_map(|c| {
            let read = readable(facts, &c.name)?;
            Some((c.name.clone(), read.cacerts.as_ref().ok()?.clone()))
        })
        .collect();
    let rotation = crate::rotate::verify_findings(spec, &live);
    if rotation.is_empty() {
        if let Some(finding) = check_roots(&roots) {
            report.push(finding);
        }
        for finding in check_local_root(&facts.local_root, &roots) {
            report.push(finding);
        }
    }
    for finding in rotation {
        report.push(finding);
    }

    let expected: BTreeSet<(String, String)> = spec.remote_secret_pairs().into_iter().collect();
    let mut servers = BTreeMap::new();
    let mut tokens = Vec::new();
    let mut missing = Vec::new();
    for (src, dst) in &expected {
        let (Some(read), Some(src_spec)) = (readable(facts, dst), spec.cluster(src)) else {
            continue; // dst unreachable: already reported
        };
        let name = secret_name(src);
        match labelled_in(read, ns).find(|s| name_of(s) == Some(name.as_str())) {
            Some(secret) => {
                let expected_server = src_spec.api_server.clone().or_else(|| {
                    let read = facts.clusters.get(src)?.as_ref().ok()?;
                    Some(read.server.clone())
                });
                let (finding, kubeconfig) = check_remote_secret(
                    src_spec,
                    dst,
                    secret,
                    expected_server.as_deref(),
                    options,
                    &mut servers,
                );
                report.push(finding);
                if let Some(kubeconfig) = kubeconfig {
                    if let Some(finding) = token_expiry(spec, src, dst, &kubeconfig, facts.now) {
                        report.push(finding);
                    }
                    tokens.push((src.as_str(), dst.as_str(), kubeconfig));
                }
            }
            None => missing.push(explain_missing(
                src,
                dst,
                read.unlisted.get(&name).and_then(Option::as_ref),
            )),
        }
    }
    for finding in missing {
        report.push(finding);
    }
    for cluster in &spec.clusters {
        if let Some(read) = readable(facts, &cluster.name) {
            let here: Vec<&Value> = labelled_in(read, ns).collect();
            for finding in check_unexpected(spec, &cluster.name, &here, &expected) {
                report.push(finding);
            }
        }
    }
    if options.check_tokens {
        for (src, dst, kubeconfig) in tokens {
            if let Some(verdict) = facts.tokens.get(&(src.to_string(), kubeconfig)) {
                report.push(token_finding(src, dst, verdict));
            }
        }
    }
    report
}

/// The expected pairs whose remote secret is not among the destination's labelled ones: verify
/// reads those by name to tell "absent" from "present without istiod's label".
pub(crate) fn unlisted_pairs(spec: &MeshSpec, facts: &MeshFacts) -> Vec<(String, String)> {
    let ns = spec.istio_namespace.as_str();
    spec.remote_secret_pairs()
        .into_iter()
        .filter(|(src, dst)| {
            readable(facts, dst).is_some_and(|read| {
                let name = secret_name(src);
                read.secrets.is_ok()
                    && !labelled_in(read, ns).any(|s| name_of(s) == Some(name.as_str()))
            })
        })
        .collect()
}

/// The distinct (source, kubeconfig) pairs whose token is worth trying: those of remote secrets
/// that pass [`check_remote_secret`].
pub(crate) fn token_candidates(
    spec: &MeshSpec,
    facts: &MeshFacts,
    options: &VerifyOptions,
) -> BTreeSet<(String, String)> {
    let ns = spec.istio_namespace.as_str();
    let mut servers = BTreeMap::new();
    let mut candidates = BTreeSet::new();
    for (src, dst) in spec.remote_secret_pairs() {
        let (Some(read), Some(src_spec)) = (readable(facts, &dst), spec.cluster(&src)) else {
            continue;
        };
        let name = secret_name(&src);
        if let Some(secret) = labelled_in(read, ns).find(|s| name_of(s) == Some(name.as_str()))
            && let (_, Some(kubeconfig)) =
                check_remote_secret(src_spec, &dst, secret, None, options, &mut servers)
        {
            candidates.insert((src, kubeconfig));
        }
    }
    candidates
}

/// The facts of a cluster that answered; `None` when it has no client or every read failed.
fn readable<'a>(facts: &'a MeshFacts, cluster: &str) -> Option<&'a ClusterFacts> {
    let read = facts.clusters.get(cluster)?.as_ref().ok()?;
    let down = read.cacerts.is_err() && read.namespace.is_err();
    (!down).then_some(read)
}

fn labelled_in<'a>(read: &'a ClusterFacts, ns: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    read.secrets
        .iter()
        .flatten()
        .filter(move |s| namespace_of(s) == Some(ns))
}

fn name_of(object: &Value) -> Option<&str> {
    object.pointer("/metadata/name").and_then(Value::as_str)
}

fn namespace_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
}

/// The finding for a cluster that could not be read at all (no client, or every read failed
/// the same way), so the other checks are not reported as a cascade of failures.
fn unreadable(cluster: &str, facts: &MeshFacts) -> Option<Finding> {
    match facts.clusters.get(cluster)? {
        Err(why) => Some(error(
            cluster,
            Check::Reachable,
            why.clone(),
            Some("check the cluster's context and kubeconfig in mesh.yaml"),
        )),
        Ok(read) => {
            let (Err(err), Err(_)) = (&read.cacerts, &read.namespace) else {
                return None;
            };
            let hint = match err {
                ClusterError::Unreachable { .. } => {
                    "is the cluster up and the kubeconfig server right?"
                }
                ClusterError::Unauthorized { .. } => "the kubeconfig credentials were rejected",
                ClusterError::Forbidden { .. } => "verify needs read access to the istio namespace",
                _ => "re-run with RUST_LOG=debug for details",
            };
            Some(error(
                cluster,
                Check::Reachable,
                with_causes(err),
                Some(hint),
            ))
        }
    }
}

/// Checks `cacerts`: one finding, and the fingerprint of the root it chains to when it verifies.
pub(crate) fn check_cacerts(
    name: &str,
    cacerts: &Result<Option<Value>, ClusterError>,
) -> (Finding, Option<String>) {
    let secret = match cacerts {
        Err(e) => return (error(name, Check::Cacerts, with_causes(e), None), None),
        Ok(None) => {
            return (
                error(
                    name,
                    Check::Cacerts,
                    "Secret cacerts is missing: istiod falls back to a self-signed CA this mesh does not share".into(),
                    Some("run `meshboot apply`"),
                ),
                None,
            );
        }
        Ok(Some(secret)) => secret,
    };
    let cacerts = match CacertsSecret::read(secret) {
        Ok(c) => c,
        Err(why) => {
            return (
                error(name, Check::Cacerts, format!("Secret cacerts: {why}"), None),
                None,
            );
        }
    };
    let Some(bundle) = cacerts.bundle(name) else {
        return (
            error(
                name,
                Check::Cacerts,
                format!(
                    "Secret cacerts lacks {} (istiod refuses an incomplete bundle)",
                    cacerts.missing().join(", ")
                ),
                Some("run `meshboot apply`"),
            ),
            None,
        );
    };
    let chain = match verify_bundle(&bundle) {
        Ok(chain) => chain,
        Err(e) => {
            return (
                error(
                    name,
                    Check::Cacerts,
                    format!("cacerts does not verify: {e}"),
                    None,
                ),
                None,
            );
        }
    };
    let finding = match cert_info(&bundle.ca_cert_pem) {
        Ok(info) if info.cluster.as_deref() == Some(name) => ok(
            name,
            Check::Cacerts,
            format!("intermediate L={name} verifies up to the root"),
        ),
        Ok(info) => error(
            name,
            Check::Cacerts,
            format!(
                "the intermediate in cacerts belongs to {} (L=), not to {name}",
                info.cluster.as_deref().unwrap_or("no cluster")
            ),
            Some("each cluster needs its own intermediate: `meshboot apply` installs it"),
        ),
        Err(e) => error(name, Check::Cacerts, format!("ca-cert.pem: {e}"), None),
    };
    (finding, Some(chain.root_fingerprint))
}

/// One mesh-wide finding: do all verified `cacerts` chain to one root?
pub(crate) fn check_roots(roots: &[(String, String)]) -> Option<Finding> {
    let mut by_root: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (cluster, root) in roots {
        by_root.entry(root).or_default().push(cluster);
    }
    let first = by_root.iter().next()?;
    if by_root.len() == 1 {
        return Some(Finding {
            severity: Severity::Ok,
            cluster: None,
            check: Check::Root,
            message: format!("{} cluster(s) chain to one root {}", first.1.len(), first.0),
            hint: None,
        });
    }
    let groups: Vec<String> = by_root
        .iter()
        .map(|(root, clusters)| format!("{} → {root}", clusters.join(",")))
        .collect();
    Some(Finding {
        severity: Severity::Error,
        cluster: None,
        check: Check::Root,
        message: format!(
            "clusters do not share one root: {} (cross-cluster mTLS fails with UNKNOWN_CA)",
            groups.join("; ")
        ),
        hint: Some("all intermediates must be signed by the same root".into()),
    })
}

/// When the mesh file's `ca.dir` holds a root, every cluster must chain to it: otherwise the
/// next `apply` would meet a `cacerts` it refuses to overwrite.
pub(crate) fn check_local_root(local: &LocalRoot, roots: &[(String, String)]) -> Vec<Finding> {
    match local {
        LocalRoot::None => Vec::new(),
        LocalRoot::Unreadable(path) => vec![Finding {
            severity: Severity::Warning,
            cluster: None,
            check: Check::Root,
            message: format!("cannot read the root in {}", path.display()),
            hint: None,
        }],
        LocalRoot::Read { path, fingerprints } => roots
            .iter()
            .filter(|(_, root)| !fingerprints.contains(root))
            .map(|(cluster, root)| {
                error(
                    cluster,
                    Check::Root,
                    format!(
                        "cacerts chains to root {root}, not to the root in {}",
                        path.display()
                    ),
                    Some("this cluster was bootstrapped from another CA; `meshboot apply` will refuse to overwrite it"),
                )
            })
            .collect(),
    }
}

pub(crate) fn check_network(
    cluster: &ClusterSpec,
    ns: &str,
    namespace: &Result<Option<Value>, ClusterError>,
) -> Finding {
    let name = cluster.name.as_str();
    let obj = match namespace {
        Err(e) => return error(name, Check::Network, with_causes(e), None),
        Ok(None) => {
            return error(
                name,
                Check::Network,
                format!("namespace {ns} does not exist"),
                Some("run `meshboot apply`"),
            );
        }
        Ok(Some(obj)) => obj,
    };
    let label = obj
        .pointer("/metadata/labels")
        .and_then(|l| l.get(NETWORK_LABEL))
        .and_then(Value::as_str);
    match label {
        Some(n) if n == cluster.network => ok(
            name,
            Check::Network,
            format!("namespace {ns} is on network {n}"),
        ),
        Some(n) => error(
            name,
            Check::Network,
            format!(
                "namespace {ns} is labelled {NETWORK_LABEL}={n}, mesh.yaml says {}",
                cluster.network
            ),
            Some("run `meshboot apply`"),
        ),
        None => error(
            name,
            Check::Network,
            format!("namespace {ns} has no {NETWORK_LABEL} label"),
            Some("run `meshboot apply`"),
        ),
    }
}

pub(crate) fn check_gateway(
    name: &str,
    ns: &str,
    gateway: &Result<Option<Value>, ClusterError>,
) -> Finding {
    let service = match gateway {
        Err(e) => return error(name, Check::EastWestGateway, with_causes(e), None),
        Ok(None) => {
            return error(
                name,
                Check::EastWestGateway,
                format!("Service {ns}/{} is missing", eastwest::NAME),
                Some("run `meshboot apply`"),
            );
        }
        Ok(Some(s)) => s,
    };
    let addresses = external_addresses(service);
    if addresses.is_empty() {
        error(
            name,
            Check::EastWestGateway,
            format!(
                "Service {ns}/{} has no external address: other networks cannot reach this cluster's workloads",
                eastwest::NAME
            ),
            Some("the cluster needs a LoadBalancer implementation, or set spec.externalIPs"),
        )
    } else {
        ok(
            name,
            Check::EastWestGateway,
            format!("external address {}", addresses.join(", ")),
        )
    }
}

/// Checks `istio-remote-secret-<src>` in `dst` (one finding); returns its kubeconfig when the
/// token is worth trying. `expected_server` is where mesh.yaml says `src` is reached (`None`:
/// not compared). `servers` caches the server of each distinct kubeconfig.
pub(crate) fn check_remote_secret(
    src: &ClusterSpec,
    dst: &str,
    secret: &Value,
    expected_server: Option<&str>,
    options: &VerifyOptions,
    servers: &mut BTreeMap<String, Option<String>>,
) -> (Finding, Option<String>) {
    let name = secret_name(&src.name);
    let Some(kubeconfig) = data_text(secret, &src.name) else {
        let keys: Vec<&str> = secret
            .get("data")
            .and_then(Value::as_object)
            .map(|d| d.keys().map(String::as_str).collect())
            .unwrap_or_default();
        return (
            error(
                dst,
                Check::RemoteSecret,
                format!(
                    "{name} is not keyed by cluster name {} (keys: {}): istiod registers the cluster under the key",
                    src.name,
                    keys.join(", ")
                ),
                Some("run `meshboot apply`"),
            ),
            None,
        );
    };
    let server = servers
        .entry(kubeconfig.clone())
        .or_insert_with(|| kubeconfig_server(&kubeconfig))
        .clone();
    let Some(server) = server else {
        return (
            error(
                dst,
                Check::RemoteSecret,
                format!("{name}: the kubeconfig has no server"),
                None,
            ),
            None,
        );
    };
    if !server.starts_with("https://") {
        return (
            error(
                dst,
                Check::RemoteSecret,
                format!("{name} points at {server}, which is not https"),
                None,
            ),
            None,
        );
    }
    if is_loopback_server(&server) && !options.allow_loopback {
        return (
            error(
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
            ),
            None,
        );
    }
    let finding = match expected_server {
        Some(expected) if expected.trim_end_matches('/') != server.trim_end_matches('/') => {
            warning(
                dst,
                Check::RemoteSecret,
                format!(
                    "{name} points at {server}, mesh.yaml expects {expected} for {}",
                    src.name
                ),
                Some("run `meshboot apply` to update it"),
            )
        }
        _ => ok(
            dst,
            Check::RemoteSecret,
            format!("{name} reaches {} at {server}", src.name),
        ),
    };
    (finding, Some(kubeconfig))
}

/// A labelled remote secret outside istiod's namespace: istiod never reads it.
pub(crate) fn misplaced(cluster: &str, ns: &str, secret: &Value) -> Finding {
    let name = name_of(secret).unwrap_or("<unnamed>");
    let other = namespace_of(secret).unwrap_or("<none>");
    error(
        cluster,
        Check::UnexpectedSecret,
        format!("{other}/{name} is labelled {MULTICLUSTER_LABEL}=true but istiod only reads {ns}"),
        Some(&format!("move it: it belongs in namespace {ns}")),
    )
}

/// Why `istio-remote-secret-<src>` is not among `dst`'s labelled secrets, given what reading it
/// by name found.
pub(crate) fn explain_missing(src: &str, dst: &str, found: Option<&Value>) -> Finding {
    let name = secret_name(src);
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

/// Remote secrets in `dst` that should not be there: one for `dst` itself, one for a cluster
/// the mesh does not have, one the mesh model does not call for.
pub(crate) fn check_unexpected(
    spec: &MeshSpec,
    dst: &str,
    secrets: &[&Value],
    expected: &BTreeSet<(String, String)>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for secret in secrets {
        let name = name_of(secret).unwrap_or("<unnamed>");
        let keys = secret
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|d| d.keys());
        for key in keys {
            if key == dst {
                findings.push(error(
                    dst,
                    Check::UnexpectedSecret,
                    format!(
                        "{name} holds a kubeconfig for {dst} itself: istiod ignores it (it would overwrite the config cluster)"
                    ),
                    Some(&format!("delete it: kubectl -n {} delete secret {name}", spec.istio_namespace)),
                ));
            } else if spec.cluster(key).is_none() {
                // meshboot's own (its field manager) is apply --prune's to remove; one made by
                // hand or by istioctl is the user's.
                let (whose, hint) = if crate::cluster::meshboot_entry(secret).is_some() {
                    (
                        "meshboot made it",
                        Some("remove it with `meshboot apply -f mesh.yaml --prune`"),
                    )
                } else {
                    ("meshboot did not make it, so --prune leaves it", None)
                };
                findings.push(warning(
                    dst,
                    Check::UnexpectedSecret,
                    format!("{name} registers cluster {key}, which is not in mesh.yaml ({whose})"),
                    hint,
                ));
            } else if !expected.contains(&(key.to_string(), dst.to_string())) {
                findings.push(warning(
                    dst,
                    Check::UnexpectedSecret,
                    format!("{name} registers {key}, but {dst} should not watch {key} in this mesh model"),
                    None,
                ));
            }
        }
    }
    findings
}

/// When the token of `src`'s remote secret in `dst` expires (its JWT `exp`; the token itself is
/// never kept or printed). A long-lived token is only worth a line when the mesh file asks for
/// bound ones.
pub(crate) fn token_expiry(
    spec: &MeshSpec,
    src: &str,
    dst: &str,
    kubeconfig: &str,
    now: i64,
) -> Option<Finding> {
    let name = secret_name(src);
    let claims = crate::tokens::Credential::from_kubeconfig(kubeconfig)?.claims();
    let rotate = "run `meshboot rotate tokens -f mesh.yaml`";
    let Some(expires) = claims.as_ref().and_then(|c| c.expires) else {
        return spec.reader_token.map(|t| {
            warning(
                dst,
                Check::TokenExpiry,
                format!(
                    "{name} carries a long-lived token, but readerToken.ttl is {}",
                    crate::duration::exact(t.ttl)
                ),
                Some("run `meshboot apply` to give it a bound token"),
            )
        });
    };
    let at = crate::tokens::rfc3339(expires);
    let left = std::time::Duration::from_secs(expires.saturating_sub(now).max(0).unsigned_abs());
    if expires <= now {
        return Some(error(
            dst,
            Check::TokenExpiry,
            format!("the bound token of {name} expired at {at}: istiod in {dst} cannot read {src}"),
            Some(rotate),
        ));
    }
    let refresh = spec.reader_token.map(|t| t.refresh_before);
    Some(match refresh {
        Some(refresh) if left <= refresh => warning(
            dst,
            Check::TokenExpiry,
            format!(
                "the bound token of {name} expires at {at} (in {}), within readerToken.refreshBefore ({})",
                crate::duration::human(left),
                crate::duration::exact(refresh)
            ),
            Some(rotate),
        ),
        _ => ok(
            dst,
            Check::TokenExpiry,
            format!(
                "the bound token of {name} expires at {at} (in {})",
                crate::duration::human(left)
            ),
        ),
    })
}

pub(crate) fn token_finding(src: &str, dst: &str, verdict: &TokenVerdict) -> Finding {
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

fn data_text(secret: &Value, key: &str) -> Option<String> {
    use base64::Engine as _;
    let encoded = secret.get("data")?.get(key)?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// An error and its causes on one line: "cannot reach" alone does not say whether the
/// connection was refused, timed out or failed certificate verification.
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::*;
    use crate::pki::{CaDir, CaOptions, ClusterBundle, KeyAlgorithm};

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn spec(model: &str, clusters: &str) -> MeshSpec {
        let yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nmodel: {model}\nclusters:\n{clusters}"
        );
        MeshSpec::from_yaml(&yaml, std::path::Path::new("/nonexistent"), "mesh.yaml").unwrap()
    }

    fn three() -> MeshSpec {
        spec(
            "multi-primary",
            "  - {name: eu, network: n3, context: eu, apiServer: 'https://203.0.113.10:6443'}\n  - {name: ap, network: n1, context: ap}\n  - {name: us, network: n2, context: us}\n",
        )
    }

    fn bundles(names: &[&str]) -> (tempfile::TempDir, Vec<ClusterBundle>) {
        let dir = tempfile::tempdir().unwrap();
        let opts = CaOptions {
            key: KeyAlgorithm::EcdsaP256,
            ..CaOptions::default()
        };
        let bundles = CaDir::open(dir.path()).ensure(&opts, names).unwrap();
        (dir, bundles)
    }

    fn istiod_cacerts(b: &ClusterBundle) -> Value {
        json!({"data": {"ca-cert.pem": b64(&b.ca_cert_pem), "ca-key.pem": b64(&b.ca_key_pem),
                        "root-cert.pem": b64(&b.root_cert_pem), "cert-chain.pem": b64(&b.cert_chain_pem)}})
    }

    #[test]
    fn cacerts_missing_incomplete_verified_and_misassigned() {
        let (_dir, b) = bundles(&["eu", "ap"]);
        let (f, root) = check_cacerts("eu", &Ok(None));
        assert_eq!((f.severity, root), (Severity::Error, None));
        assert!(f.message.contains("is missing"));

        let mut partial = istiod_cacerts(&b[0]);
        partial["data"]
            .as_object_mut()
            .unwrap()
            .remove("cert-chain.pem");
        let (f, _) = check_cacerts("eu", &Ok(Some(partial)));
        assert!(f.message.contains("lacks cert-chain.pem"), "{f}");

        let (f, root) = check_cacerts("eu", &Ok(Some(istiod_cacerts(&b[0]))));
        assert_eq!(f.severity, Severity::Ok, "{f}");
        assert!(root.is_some());

        let (f, _) = check_cacerts("eu", &Ok(Some(istiod_cacerts(&b[1]))));
        assert!(f.message.contains("belongs to ap"), "{f}");
    }

    #[test]
    fn a_cert_manager_style_cacerts_verifies_like_istiod_reads_it() {
        // tls.crt/tls.key/ca.crt (reference/istio.md §1.2): istiod accepts it, so verify must;
        // it used to report "lacks ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem".
        let (_dir, b) = bundles(&["eu"]);
        let secret = json!({"type": "kubernetes.io/tls", "data": {
            "tls.crt": b64(&b[0].ca_cert_pem), "tls.key": b64(&b[0].ca_key_pem), "ca.crt": b64(&b[0].root_cert_pem)}});
        let (f, root) = check_cacerts("eu", &Ok(Some(secret)));
        assert_eq!(f.severity, Severity::Ok, "{f}");
        assert!(root.is_some());
    }

    #[test]
    fn roots_agree_or_are_named_apart() {
        assert!(check_roots(&[]).is_none());
        let one = check_roots(&[("eu".into(), "AA".into()), ("ap".into(), "AA".into())]).unwrap();
        assert_eq!(one.severity, Severity::Ok);
        assert!(one.message.starts_with("2 cluster(s) chain to one root AA"));
        let two = check_roots(&[("eu".into(), "AA".into()), ("ap".into(), "BB".into())]).unwrap();
        assert_eq!(two.severity, Severity::Error);
        assert!(
            two.message.contains("ap → BB") && two.message.contains("eu → AA"),
            "{two}"
        );
    }

    #[test]
    fn clusters_must_chain_to_the_local_root() {
        let local = LocalRoot::Read {
            path: "pki/root-cert.pem".into(),
            fingerprints: vec!["AA".into()],
        };
        let findings = check_local_root(
            &local,
            &[("eu".into(), "AA".into()), ("ap".into(), "BB".into())],
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].cluster.as_deref(), Some("ap"));
        assert!(check_local_root(&LocalRoot::None, &[("ap".into(), "BB".into())]).is_empty());
        let unreadable = check_local_root(&LocalRoot::Unreadable("x".into()), &[]);
        assert_eq!(unreadable[0].severity, Severity::Warning);
    }

    #[test]
    fn network_label_must_match_the_mesh_file() {
        let spec = three();
        let eu = &spec.clusters[0];
        let ns = |labels: Value| {
            Ok(Some(
                json!({"metadata": {"name": "istio-system", "labels": labels}}),
            ))
        };
        assert_eq!(
            check_network(eu, NS, &ns(json!({NETWORK_LABEL: "n3"}))).severity,
            Severity::Ok
        );
        let wrong = check_network(eu, NS, &ns(json!({NETWORK_LABEL: "n1"})));
        assert!(wrong.message.contains("mesh.yaml says n3"), "{wrong}");
        assert!(
            check_network(eu, NS, &ns(json!({})))
                .message
                .contains("has no")
        );
        assert!(
            check_network(eu, NS, &Ok(None))
                .message
                .contains("does not exist")
        );
    }

    const NS: &str = "istio-system";

    #[test]
    fn gateway_needs_an_address_other_networks_can_dial() {
        let svc = |status: Value, spec: Value| Ok(Some(json!({"spec": spec, "status": status})));
        let lb = check_gateway(
            "eu",
            NS,
            &svc(
                json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}),
                json!({}),
            ),
        );
        assert_eq!(lb.message, "external address 203.0.113.7");
        let ips = check_gateway(
            "eu",
            NS,
            &svc(json!({}), json!({"externalIPs": ["192.0.2.1"]})),
        );
        assert_eq!(ips.message, "external address 192.0.2.1");
        let none = check_gateway("eu", NS, &svc(json!({"loadBalancer": {}}), json!({})));
        assert_eq!(none.severity, Severity::Error);
        assert!(
            check_gateway("eu", NS, &Ok(None))
                .message
                .contains("is missing")
        );
    }

    fn remote_secret(key: &str, server: &str) -> Value {
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {key}\n  cluster: {{server: '{server}'}}\ncontexts:\n- name: {key}\n  context: {{cluster: {key}, user: {key}}}\ncurrent-context: {key}\nusers:\n- name: {key}\n  user: {{token: t}}\n"
        );
        json!({"metadata": {"name": format!("istio-remote-secret-{key}"), "namespace": NS,
                            "labels": {MULTICLUSTER_LABEL: "true"}},
               "data": {key: b64(&kubeconfig)}})
    }

    #[test]
    fn remote_secret_key_server_and_loopback() {
        let spec = three();
        let eu = &spec.clusters[0];
        let opts = VerifyOptions::default();
        let mut cache = BTreeMap::new();
        let good = remote_secret("eu", "https://203.0.113.10:6443");
        let (f, kc) = check_remote_secret(
            eu,
            "ap",
            &good,
            Some("https://203.0.113.10:6443/"),
            &opts,
            &mut cache,
        );
        assert_eq!(f.severity, Severity::Ok, "{f}");
        assert!(kc.is_some());
        let (f, kc) = check_remote_secret(
            eu,
            "ap",
            &good,
            Some("https://198.51.100.1:6443"),
            &opts,
            &mut cache,
        );
        assert_eq!(f.severity, Severity::Warning);
        assert!(kc.is_some(), "a server mismatch still gets its token tried");

        let mut wrong_key = good.clone();
        wrong_key["data"] = json!({"europe": "x"});
        let (f, kc) = check_remote_secret(eu, "ap", &wrong_key, None, &opts, &mut cache);
        assert!(
            f.message
                .contains("not keyed by cluster name eu (keys: europe)"),
            "{f}"
        );
        assert!(kc.is_none());

        let loopback = remote_secret("eu", "https://127.0.0.1:6443");
        let (f, _) = check_remote_secret(eu, "ap", &loopback, None, &opts, &mut cache);
        assert!(f.message.contains("loopback"), "{f}");
        let allow = VerifyOptions {
            allow_loopback: true,
            ..opts
        };
        let (f, _) = check_remote_secret(eu, "ap", &loopback, None, &allow, &mut cache);
        assert_eq!(f.severity, Severity::Ok);

        let plain = remote_secret("eu", "http://203.0.113.10:6443");
        let (f, _) = check_remote_secret(eu, "ap", &plain, None, &opts, &mut cache);
        assert!(f.message.contains("not https"));
    }

    #[test]
    fn a_missing_remote_secret_is_told_from_an_unlabelled_one() {
        let absent = explain_missing("eu", "ap", None);
        assert!(
            absent.message.contains("istio-remote-secret-eu is missing"),
            "{absent}"
        );
        let unlabelled = json!({"metadata": {"labels": {MULTICLUSTER_LABEL: "yes"}}});
        let found = explain_missing("eu", "ap", Some(&unlabelled));
        assert!(
            found.message.contains("not labelled") && found.message.contains("\"yes\""),
            "{found}"
        );
    }

    #[test]
    fn unexpected_secrets_self_unknown_and_out_of_model() {
        let spec = spec(
            "primary-remote",
            "  - {name: hub, network: n1, context: hub, role: primary}\n  - {name: edge, network: n1, context: edge, role: remote}\n",
        );
        let expected: BTreeSet<(String, String)> = spec.remote_secret_pairs().into_iter().collect();
        let secrets = [
            json!({"metadata": {"name": "istio-remote-secret-hub"}, "data": {"hub": ""}}),
            json!({"metadata": {"name": "istio-remote-secret-mars"}, "data": {"mars": ""}}),
            json!({"metadata": {"name": "istio-remote-secret-edge"}, "data": {"edge": ""}}),
        ];
        let refs: Vec<&Value> = secrets.iter().collect();
        let at_hub = check_unexpected(&spec, "hub", &refs, &expected);
        assert_eq!(at_hub.len(), 2, "{at_hub:?}");
        assert_eq!(at_hub[0].severity, Severity::Error);
        assert!(at_hub[0].message.contains("for hub itself"));
        assert!(
            at_hub[1]
                .message
                .contains("mars, which is not in mesh.yaml")
        );
        // A primary's secret in a remote: the model has no such pair.
        let at_edge = check_unexpected(&spec, "edge", &refs[..1], &expected);
        assert!(
            at_edge[0].message.contains("should not watch hub"),
            "{at_edge:?}"
        );
    }

    #[test]
    fn token_expiry_is_read_from_the_jwt_and_judged_against_refresh_before() {
        let jwt = |payload: &str| {
            let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!("{}.{}.c2lnbmF0dXJl", e("{}"), e(payload))
        };
        let kubeconfig = |token: &str| {
            format!(
                "apiVersion: v1\nclusters:\n- cluster:\n    server: https://eu:6443\n  name: eu\ncontexts:\n- context:\n    cluster: eu\n    user: eu\n  name: eu\ncurrent-context: eu\nkind: Config\nusers:\n- name: eu\n  user:\n    token: {token}\n"
            )
        };
        let clusters =
            "  - {name: eu, network: n1, context: eu}\n  - {name: us, network: n2, context: us}\n";
        let ttl = MeshSpec::from_yaml(
            &format!("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nreaderToken: {{ttl: 240h, refreshBefore: 48h}}\nclusters:\n{clusters}"),
            std::path::Path::new("/tmp"),
            "mesh.yaml",
        )
        .unwrap();
        let legacy = spec("multi-primary", clusters);
        let now = 1_800_000_000;
        let bound = |left: i64| kubeconfig(&jwt(&format!(r#"{{"exp":{}}}"#, now + left)));
        let f = token_expiry(&ttl, "eu", "us", &bound(100 * 3600), now).unwrap();
        assert_eq!((f.severity, f.check), (Severity::Ok, Check::TokenExpiry));
        assert!(
            f.message.contains("expires at 2027-01-19T12:00:00Z")
                && f.message.contains("(in 4d 4h)"),
            "{f}"
        );
        let f = token_expiry(&ttl, "eu", "us", &bound(3600), now).unwrap();
        assert_eq!(f.severity, Severity::Warning, "{f}");
        assert!(f.hint.as_deref().unwrap().contains("rotate tokens"));
        let f = token_expiry(&ttl, "eu", "us", &bound(-5), now).unwrap();
        assert_eq!(f.severity, Severity::Error, "{f}");
        assert!(f.message.contains("expired at"), "{f}");
        let long_lived = kubeconfig(&jwt(r#"{"iss":"kubernetes/serviceaccount"}"#));
        let f = token_expiry(&ttl, "eu", "us", &long_lived, now).unwrap();
        assert!(
            f.severity == Severity::Warning && f.message.contains("long-lived"),
            "{f}"
        );
        assert!(token_expiry(&legacy, "eu", "us", &long_lived, now).is_none());
        assert!(
            !f.to_string().contains("c2lnbmF0dXJl"),
            "no token in a finding"
        );
    }

    #[test]
    fn token_verdicts_read_as_the_user_needs_them() {
        assert_eq!(
            token_finding("eu", "ap", &TokenVerdict::Accepted).severity,
            Severity::Ok
        );
        assert!(
            token_finding("eu", "ap", &TokenVerdict::CannotRead)
                .message
                .contains("may not list services")
        );
        assert!(
            token_finding("eu", "ap", &TokenVerdict::Rejected)
                .message
                .contains("rejects the token")
        );
        let failed = token_finding("eu", "ap", &TokenVerdict::Failed("refused".into()));
        assert!(failed.hint.unwrap().contains("--skip-token-check"));
    }

    fn down(name: &str) -> ClusterFacts {
        let err = || ClusterError::Unauthorized {
            cluster: name.into(),
            object: "get".into(),
            message: "no".into(),
        };
        ClusterFacts {
            server: "https://198.51.100.9:6443".into(),
            cacerts: Err(err()),
            namespace: Err(err()),
            secrets: Err(err()),
            gateway: Err(err()),
            unlisted: BTreeMap::new(),
        }
    }

    #[test]
    fn an_unreadable_cluster_is_one_finding_not_a_cascade() {
        let spec = three();
        let mut clusters = BTreeMap::new();
        clusters.insert("eu".to_string(), Ok(down("eu")));
        clusters.insert(
            "ap".to_string(),
            Err("kubeconfig: no context ap".to_string()),
        );
        clusters.insert("us".to_string(), Ok(down("us")));
        let facts = MeshFacts {
            clusters,
            local_root: LocalRoot::None,
            tokens: BTreeMap::new(),
            now: 0,
        };
        let report = check(&spec, &facts, &VerifyOptions::default());
        assert_eq!(report.findings.len(), 3, "{:#?}", report.findings);
        assert!(report.findings.iter().all(|f| f.check == Check::Reachable));
        assert_eq!(
            report.findings[0].hint.as_deref(),
            Some("the kubeconfig credentials were rejected")
        );
        assert!(report.findings[1].message.contains("no context ap"));
        assert!(unlisted_pairs(&spec, &facts).is_empty());
        assert!(token_candidates(&spec, &facts, &VerifyOptions::default()).is_empty());
    }
}
