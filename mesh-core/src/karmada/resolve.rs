//! The pure half of [`resolve_fleet`](super::resolve_fleet): the hub's `Cluster` objects and
//! the mesh file's overrides → the members, what is skipped and every problem. No I/O, so each
//! rule is pinned by a small test below.

use serde_json::Value;

use super::{FleetMember, FleetOptions, NetworkSource, ReachedBy, SkippedMember, SyncMode};
use crate::cluster::ObjectRef;
use crate::spec::{Dataplane, Install, KarmadaSpec, MeshSpec, NetworkFrom};

/// One member as planned from the hub, before its credentials are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMember {
    /// What the fleet shows for it.
    pub member: FleetMember,
    /// The hub Secret holding its credentials, when it is reached with them.
    pub secret: Option<ObjectRef>,
    /// `spec.insecureSkipTLSVerification`.
    pub insecure: bool,
}

/// What [`plan_members`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// Members to use, sorted by name.
    pub members: Vec<PlannedMember>,
    /// Members not used, and why.
    pub skipped: Vec<SkippedMember>,
    /// Every problem, each naming the member (or `clusters[i]`) and what to change.
    pub problems: Vec<String>,
}

/// `spec.apiEndpoint` as a URL: Karmada accepts a bare host, host:port, IP or IP:port; those
/// mean `https://`.
///
/// ```
/// use mesh_core::karmada::normalize_endpoint;
/// assert_eq!(normalize_endpoint("203.0.113.10:6443"), "https://203.0.113.10:6443");
/// assert_eq!(normalize_endpoint("https://api.eu.example.com/"), "https://api.eu.example.com");
/// assert_eq!(normalize_endpoint("http://10.0.0.1"), "http://10.0.0.1");
/// ```
pub fn normalize_endpoint(endpoint: &str) -> String {
    let e = endpoint.trim();
    let url = if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    };
    url.trim_end_matches('/').to_string()
}

/// The members of the fleet from the hub's `Cluster` objects (those the selector matched) and
/// the mesh file's `karmada` section (the rules are in the [module docs](super)).
///
/// ```
/// use mesh_core::karmada::{plan_members, FleetOptions, ReachedBy};
/// use mesh_core::spec::MeshSpec;
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nkarmada: {context: hub, network: region}\nclusters: [{name: us, context: us-admin}]\n",
///     std::path::Path::new("."), "mesh.yaml").unwrap();
/// let ready = serde_json::json!([{"type": "Ready", "status": "True"}]);
/// let hub = vec![
///     serde_json::json!({"metadata": {"name": "eu"}, "spec": {"syncMode": "Push", "apiEndpoint": "203.0.113.10:6443", "region": "eu-west",
///         "secretRef": {"namespace": "karmada-cluster", "name": "eu"}}, "status": {"conditions": ready}}),
///     serde_json::json!({"metadata": {"name": "us"}, "spec": {"syncMode": "Pull", "apiEndpoint": "https://198.51.100.7", "region": "us-west"},
///         "status": {"conditions": ready}}),
/// ];
/// let planned = plan_members(&spec, spec.karmada.as_ref().unwrap(), &hub, &FleetOptions::default());
/// assert!(planned.problems.is_empty(), "{:?}", planned.problems);
/// let eu = &planned.members[0].member;
/// assert_eq!((eu.network.as_str(), eu.api_server.as_str()), ("eu-west", "https://203.0.113.10:6443"));
/// assert_eq!(eu.reached_by, ReachedBy::HubSecret { secret: "karmada-cluster/eu".into() });
/// assert_eq!(planned.members[1].member.reached_by, ReachedBy::Context { context: "us-admin".into(), kubeconfig: None });
/// ```
pub fn plan_members(
    spec: &MeshSpec,
    karmada: &KarmadaSpec,
    objects: &[Value],
    options: &FleetOptions,
) -> Planned {
    let mut planned = Planned::default();
    let mut objects: Vec<&Value> = objects.iter().collect();
    objects.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    for obj in objects {
        let name = name_of(obj);
        if let Err(why) = crate::pki::validate_cluster_name(name) {
            planned
                .problems
                .push(format!("Cluster {name:?} cannot be a mesh cluster: {why}"));
            continue;
        }
        let (ready, why_not) = ready_of(obj);
        if !ready && !options.include_not_ready {
            planned.skipped.push(SkippedMember {
                name: name.to_string(),
                reason: why_not,
            });
            continue;
        }
        match member(spec, karmada, obj, name, ready) {
            Ok(m) => planned.members.push(m),
            Err(mut problems) => planned.problems.append(&mut problems),
        }
    }
    for (i, o) in karmada.clusters.iter().enumerate() {
        let known = planned.members.iter().any(|m| m.member.name == o.name)
            || planned.skipped.iter().any(|s| s.name == o.name)
            || planned
                .problems
                .iter()
                .any(|p| p.starts_with(&format!("member {}:", o.name)));
        if !known {
            planned.problems.push(format!(
                "clusters[{i}].name: {:?} is not a Cluster in the Karmada hub matching karmada.clusterSelector ({}); members: {}",
                o.name,
                karmada.cluster_selector,
                names(&planned)
            ));
        }
    }
    if planned.members.is_empty() && planned.problems.is_empty() {
        planned.problems.push(format!(
            "no usable member: the selector ({}) matched {} Cluster(s){}",
            karmada.cluster_selector,
            planned.skipped.len(),
            if planned.skipped.is_empty() {
                String::new()
            } else {
                " and none is Ready (--include-not-ready uses them anyway)".to_string()
            }
        ));
    }
    if planned.problems.is_empty() {
        fleet_rules(spec, &mut planned);
    }
    planned
}

fn names(planned: &Planned) -> String {
    let all: Vec<&str> = planned
        .members
        .iter()
        .map(|m| m.member.name.as_str())
        .chain(planned.skipped.iter().map(|s| s.name.as_str()))
        .collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// `status.conditions[type=Ready]`: True, else why not (as karmada-controller-manager says).
fn ready_of(obj: &Value) -> (bool, String) {
    let ready = obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    match ready {
        Some(c) if c["status"] == "True" => (true, String::new()),
        Some(c) => {
            let reason = c["reason"].as_str().unwrap_or("no reason given");
            let message = c["message"].as_str().unwrap_or_default();
            let status = c["status"].as_str().unwrap_or("Unknown");
            (
                false,
                if message.is_empty() {
                    format!("NotReady (Ready={status}: {reason})")
                } else {
                    format!("NotReady (Ready={status}: {reason}: {message})")
                },
            )
        }
        None => (
            false,
            "NotReady (no Ready condition reported yet)".to_string(),
        ),
    }
}

fn member(
    spec: &MeshSpec,
    karmada: &KarmadaSpec,
    obj: &Value,
    name: &str,
    ready: bool,
) -> Result<PlannedMember, Vec<String>> {
    let mut problems = Vec::new();
    let o = karmada.override_of(name).map(|(_, o)| o);
    let s = &obj["spec"];
    let sync_mode = match s["syncMode"].as_str() {
        Some("Push") => Some(SyncMode::Push),
        Some("Pull") => Some(SyncMode::Pull),
        other => {
            problems.push(format!(
                "member {name}: spec.syncMode is {}, expected Push or Pull",
                other.map_or("missing".to_string(), |v| format!("{v:?}"))
            ));
            None
        }
    };
    let api_endpoint = s["apiEndpoint"]
        .as_str()
        .filter(|e| !e.trim().is_empty())
        .map(normalize_endpoint);

    let (network, network_from) = match o.and_then(|o| o.network.clone()) {
        Some(n) => (n, NetworkSource::MeshFile),
        None => match network_of(karmada.network, name, s) {
            Ok(n) => (n, karmada.network.into()),
            Err(why) => {
                problems.push(format!(
                    "member {name}: {why}; set clusters[].network for {name}, or choose another karmada.network"
                ));
                (String::new(), karmada.network.into())
            }
        },
    };
    if network_from != NetworkSource::MeshFile
        && !network.is_empty()
        && let Err(why) = crate::spec::label_value_rule(&network)
    {
        problems.push(format!(
            "member {name}: its network from the {} would be {why}; set clusters[].network for {name}",
            NetworkSource::from(karmada.network)
        ));
    }

    let api_server = match (o.and_then(|o| o.api_server.clone()), &api_endpoint) {
        (Some(a), _) => a,
        (None, Some(e)) => {
            if !e.starts_with("https://") {
                problems.push(format!(
                    "member {name}: spec.apiEndpoint {e} is not https (istiod only talks TLS to remote API servers); set clusters[].apiServer for {name}"
                ));
            }
            e.clone()
        }
        (None, None) => {
            problems.push(format!(
                "member {name}: the Cluster has no spec.apiEndpoint; set clusters[].apiServer for {name} (the address the other clusters dial)"
            ));
            String::new()
        }
    };

    let insecure = s["insecureSkipTLSVerification"].as_bool() == Some(true);
    let (reached_by, secret) = match o.and_then(|o| o.context.clone()) {
        Some(context) => (
            ReachedBy::Context {
                context,
                kubeconfig: o.and_then(|o| o.kubeconfig.clone()),
            },
            None,
        ),
        None => match sync_mode {
            Some(SyncMode::Pull) => {
                problems.push(format!(
                    "member {name} joined in Pull mode and the mesh file gives no context for it: the hub holds no credentials for Pull members (an agent in the member reaches the hub, not the other way round); add {{name: {name}, context: <its kubeconfig context>}} to clusters[]"
                ));
                (
                    ReachedBy::HubSecret {
                        secret: String::new(),
                    },
                    None,
                )
            }
            _ => hub_secret(name, s, &api_endpoint, &mut problems),
        },
    };
    if secret.is_some() && spec.control_plane.install == Install::Helm {
        problems.push(format!(
            "member {name}: controlPlane.install: helm runs the helm program, which needs a kubeconfig context, and the hub's credentials are never written to a file; add {{name: {name}, context: <its kubeconfig context>}} to clusters[] (or install Istio yourself: controlPlane.install: none)"
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(PlannedMember {
        member: FleetMember {
            name: name.to_string(),
            network,
            network_from,
            api_server,
            api_endpoint,
            sync_mode,
            ready,
            reached_by,
        },
        secret,
        insecure,
    })
}

/// A Push member without a context: its `spec.secretRef`.
fn hub_secret(
    name: &str,
    s: &Value,
    api_endpoint: &Option<String>,
    problems: &mut Vec<String>,
) -> (ReachedBy, Option<ObjectRef>) {
    let ns = s["secretRef"]["namespace"].as_str().unwrap_or_default();
    let secret = s["secretRef"]["name"].as_str().unwrap_or_default();
    if ns.is_empty() || secret.is_empty() {
        problems.push(format!(
            "member {name}: a Push member whose Cluster has no spec.secretRef: the hub holds no credentials for it; add {{name: {name}, context: <its kubeconfig context>}} to clusters[]"
        ));
    }
    if api_endpoint.is_none() {
        problems.push(format!(
            "member {name}: without spec.apiEndpoint the hub's credentials lead nowhere; add {{name: {name}, context: <its kubeconfig context>}} to clusters[]"
        ));
    }
    if s["proxyURL"].as_str().is_some_and(|p| !p.is_empty()) {
        problems.push(format!(
            "member {name}: the hub reaches it through spec.proxyURL, which meshboot does not use; add {{name: {name}, context: <its kubeconfig context>}} to clusters[]"
        ));
    }
    (
        ReachedBy::HubSecret {
            secret: format!("{ns}/{secret}"),
        },
        Some(ObjectRef::namespaced("v1", "Secret", ns, secret)),
    )
}

fn network_of(rule: NetworkFrom, name: &str, s: &Value) -> Result<String, String> {
    let text = |v: &Value| v.as_str().filter(|t| !t.is_empty()).map(str::to_string);
    match rule {
        NetworkFrom::Cluster => Ok(name.to_string()),
        NetworkFrom::Region => text(&s["region"])
            .ok_or_else(|| "the Cluster has no spec.region (karmada.network: region)".into()),
        NetworkFrom::Zone => {
            let zones: Vec<String> = s["zones"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(text)
                .collect();
            match (zones.as_slice(), text(&s["zone"])) {
                ([one], _) => Ok(one.clone()),
                ([], Some(zone)) => Ok(zone),
                ([], None) => {
                    Err("the Cluster has no spec.zones or spec.zone (karmada.network: zone)".into())
                }
                (many, _) => Err(format!(
                    "the Cluster spans {} zones ({}), so its zone names no one network (karmada.network: zone)",
                    many.len(),
                    many.join(", ")
                )),
            }
        }
    }
}

/// Rules over the whole fleet that the mesh file alone could not check.
fn fleet_rules(spec: &MeshSpec, planned: &mut Planned) {
    let networks: std::collections::BTreeSet<&str> = planned
        .members
        .iter()
        .map(|m| m.member.network.as_str())
        .collect();
    if spec.dataplane == Dataplane::Ambient && planned.members.len() > 1 && networks.len() < 2 {
        planned.problems.push(format!(
            "dataplane: ambient needs the clusters on more than one network (Istio supports ambient multicluster only as multi-primary, multi-network), and every member is on {}; set clusters[].network or choose another karmada.network",
            networks.iter().next().copied().unwrap_or_default()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extra: &str) -> MeshSpec {
        let text = format!("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\n{extra}");
        match MeshSpec::from_yaml(&text, std::path::Path::new("."), "mesh.yaml") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn cluster(name: &str, mode: &str, ready: bool) -> Value {
        let mut c = json!({
            "metadata": {"name": name},
            "spec": {"syncMode": mode, "apiEndpoint": format!("https://{name}.example.com:6443"),
                     "region": format!("{name}-region"), "zones": [format!("{name}-1a")]},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "reason": if ready {"ClusterReady"} else {"ClusterNotReachable"},
                "message": if ready {"cluster is healthy and ready to accept workloads"} else {"cluster is not reachable"}}]},
        });
        if mode == "Push" {
            c["spec"]["secretRef"] = json!({"namespace": "karmada-cluster", "name": name});
        }
        c
    }

    fn plan(spec: &MeshSpec, objects: &[Value], include_not_ready: bool) -> Planned {
        let Some(k) = spec.karmada.as_ref() else {
            panic!("no karmada section")
        };
        plan_members(spec, k, objects, &FleetOptions { include_not_ready })
    }

    #[test]
    fn a_pull_member_without_a_context_is_an_error_naming_it_and_why() {
        let s = spec("karmada: {context: hub, network: region}\n");
        let p = plan(
            &s,
            &[cluster("eu", "Push", true), cluster("us", "Pull", true)],
            false,
        );
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(
            p.problems[0].starts_with("member us joined in Pull mode"),
            "{}",
            p.problems[0]
        );
        assert!(p.problems[0].contains("the hub holds no credentials for Pull members"));
        assert!(p.problems[0].contains("{name: us, context: <its kubeconfig context>}"));
    }

    #[test]
    fn a_context_in_clusters_wins_over_the_hub_credentials() {
        let s = spec(
            "karmada: {context: hub, network: region}\nclusters: [{name: eu, context: eu-admin, kubeconfig: ./eu.kubeconfig}]\n",
        );
        let p = plan(&s, &[cluster("eu", "Push", true)], false);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.members[0].secret, None);
        assert_eq!(
            p.members[0].member.reached_by,
            ReachedBy::Context {
                context: "eu-admin".into(),
                kubeconfig: Some("eu.kubeconfig".into())
            }
        );
    }

    #[test]
    fn not_ready_members_are_skipped_unless_asked_for() {
        let s = spec("karmada: {context: hub, network: cluster}\n");
        let objects = [cluster("ap", "Push", false), cluster("eu", "Push", true)];
        let p = plan(&s, &objects, false);
        assert_eq!(p.members.len(), 1);
        assert_eq!(
            p.skipped,
            vec![SkippedMember {
                name: "ap".into(),
                reason: "NotReady (Ready=False: ClusterNotReachable: cluster is not reachable)"
                    .into(),
            }]
        );
        let p = plan(&s, &objects, true);
        assert_eq!(
            p.members
                .iter()
                .map(|m| m.member.name.as_str())
                .collect::<Vec<_>>(),
            ["ap", "eu"]
        );
        assert!(!p.members[0].member.ready);
    }

    #[test]
    fn network_rules_region_zone_cluster_and_the_override() {
        let objects = [cluster("eu", "Push", true)];
        for (rule, want, from) in [
            ("region", "eu-region", NetworkSource::Region),
            ("zone", "eu-1a", NetworkSource::Zone),
            ("cluster", "eu", NetworkSource::Cluster),
        ] {
            let p = plan(
                &spec(&format!("karmada: {{context: hub, network: {rule}}}\n")),
                &objects,
                false,
            );
            assert_eq!(
                (
                    p.members[0].member.network.as_str(),
                    p.members[0].member.network_from
                ),
                (want, from)
            );
        }
        let p = plan(
            &spec(
                "karmada: {context: hub, network: region}\nclusters: [{name: eu, network: network3}]\n",
            ),
            &objects,
            false,
        );
        assert_eq!(
            (
                p.members[0].member.network.as_str(),
                p.members[0].member.network_from
            ),
            ("network3", NetworkSource::MeshFile)
        );
    }

    #[test]
    fn a_member_without_the_field_the_network_rule_reads_is_named() {
        let mut eu = cluster("eu", "Push", true);
        eu["spec"]["zones"] = json!(["eu-1a", "eu-1b"]);
        eu["spec"].as_object_mut().map(|m| m.remove("region"));
        let p = plan(
            &spec("karmada: {context: hub, network: region}\n"),
            std::slice::from_ref(&eu),
            false,
        );
        assert_eq!(
            p.problems,
            [
                "member eu: the Cluster has no spec.region (karmada.network: region); set clusters[].network for eu, or choose another karmada.network"
            ]
        );
        let p = plan(
            &spec("karmada: {context: hub, network: zone}\n"),
            &[eu],
            false,
        );
        assert!(
            p.problems[0].contains("spans 2 zones (eu-1a, eu-1b)"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn an_override_for_no_member_is_an_error() {
        let p = plan(
            &spec(
                "karmada: {context: hub, network: region}\nclusters: [{name: eu}, {name: moon, network: n}]\n",
            ),
            &[cluster("eu", "Push", true)],
            false,
        );
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(
            p.problems[0]
                .starts_with("clusters[1].name: \"moon\" is not a Cluster in the Karmada hub"),
            "{}",
            p.problems[0]
        );
    }

    #[test]
    fn endpoints_without_a_scheme_are_https_and_http_is_refused() {
        let mut eu = cluster("eu", "Push", true);
        eu["spec"]["apiEndpoint"] = json!("203.0.113.10:6443");
        let mut us = cluster("us", "Push", true);
        us["spec"]["apiEndpoint"] = json!("http://198.51.100.7");
        let p = plan(
            &spec("karmada: {context: hub, network: region}\n"),
            &[eu, us],
            false,
        );
        assert_eq!(p.members[0].member.api_server, "https://203.0.113.10:6443");
        assert_eq!(p.problems.len(), 1);
        assert!(
            p.problems[0]
                .starts_with("member us: spec.apiEndpoint http://198.51.100.7 is not https"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn helm_installs_need_a_context_for_every_member() {
        let s = spec(
            "controlPlane: {install: helm, version: 1.28.2}\nkarmada: {context: hub, network: region}\n",
        );
        let p = plan(&s, &[cluster("eu", "Push", true)], false);
        assert!(
            p.problems[0].contains("controlPlane.install: helm runs the helm program"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn ambient_needs_members_on_several_networks() {
        let s = spec(
            "dataplane: ambient\nkarmada: {context: hub, network: region}\nclusters: [{name: eu, network: n}, {name: us, network: n}]\n",
        );
        let p = plan(
            &s,
            &[cluster("eu", "Push", true), cluster("us", "Push", true)],
            false,
        );
        assert!(
            p.problems[0]
                .starts_with("dataplane: ambient needs the clusters on more than one network"),
            "{:?}",
            p.problems
        );
    }
}
