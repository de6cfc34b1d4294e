//! The rules of a mesh file (listed in the [`spec`](super) module docs): [`MeshFile`] →
//! [`MeshSpec`], collecting every problem rather than stopping at the first, each with its field
//! path and line:column.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde_saphyr::Location;

use super::file::{CaFile, ClusterFile, MeshFile, S};
use super::load::resolve;
use super::{
    API_VERSION, CaSpec, ClusterSpec, Dataplane, Issue, KIND, MeshSpec, Model, Role, RootSource,
    SpecError,
};
use crate::pki::KeyAlgorithm;

const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
const DEFAULT_ISTIO_NAMESPACE: &str = "istio-system";
const DEFAULT_CA_DIR: &str = "./pki";
const DEFAULT_ROOT_DAYS: u32 = 3650;
const DEFAULT_INTERMEDIATE_DAYS: u32 = 730;
/// A hundred years: anything longer is a typo, and `time` arithmetic stays far from overflow.
const MAX_DAYS: i64 = 36_500;

pub(super) struct Issues(pub(super) Vec<Issue>);

impl Issues {
    pub(super) fn at(
        &mut self,
        path: impl Into<String>,
        pos: impl Into<Pos>,
        message: impl Into<String>,
    ) {
        let Pos(line, column) = pos.into();
        self.0.push(Issue {
            path: path.into(),
            line,
            column,
            message: message.into(),
        });
    }
}

/// A 1-based line and column.
#[derive(Clone, Copy)]
pub(super) struct Pos(pub(super) u64, pub(super) u64);

impl From<Location> for Pos {
    fn from(l: Location) -> Pos {
        Pos(l.line(), l.column())
    }
}

/// Where a missing top-level field is reported: the start of the file.
pub(super) const TOP: Pos = Pos(1, 1);

/// Where a missing field would have gone: its parent's location, or the top of the file.
fn parent_loc<T>(parent: Option<&S<T>>) -> Pos {
    parent.map(|p| Pos::from(p.referenced)).unwrap_or(TOP)
}

pub(crate) fn validate(
    file: MeshFile,
    base_dir: &Path,
    file_label: &str,
) -> Result<MeshSpec, SpecError> {
    let mut issues = Issues(Vec::new());

    match &file.api_version {
        None => issues.at(
            "apiVersion",
            TOP,
            format!("required: apiVersion: {API_VERSION}"),
        ),
        Some(v) if v.value != API_VERSION => issues.at(
            "apiVersion",
            v.referenced,
            format!(
                "unsupported apiVersion {:?}: expected {API_VERSION}",
                v.value
            ),
        ),
        Some(_) => {}
    }
    match &file.kind {
        None => issues.at("kind", TOP, format!("required: kind: {KIND}")),
        Some(v) if v.value != KIND => issues.at(
            "kind",
            v.referenced,
            format!("unsupported kind {:?}: expected {KIND}", v.value),
        ),
        Some(_) => {}
    }

    let mesh_id = match &file.mesh_id {
        None => {
            issues.at(
                "meshID",
                TOP,
                "required: the mesh ID shared by every cluster (global.meshID), e.g. meshID: mesh1",
            );
            String::new()
        }
        Some(v) => {
            if let Err(why) = label_value(&v.value) {
                issues.at("meshID", v.referenced, why);
            }
            v.value.clone()
        }
    };

    let trust_domain = match &file.trust_domain {
        None => DEFAULT_TRUST_DOMAIN.to_string(),
        Some(v) => {
            if let Err(why) = trust_domain(&v.value) {
                issues.at("trustDomain", v.referenced, why);
            }
            v.value.clone()
        }
    };

    let istio_namespace = match &file.istio_namespace {
        None => DEFAULT_ISTIO_NAMESPACE.to_string(),
        Some(v) => {
            if let Err(why) = dns1123_label(&v.value) {
                issues.at("istioNamespace", v.referenced, why);
            }
            v.value.clone()
        }
    };

    let model = keyword::<Model>(&file.model, "model", &mut issues);
    let dataplane = keyword::<Dataplane>(&file.dataplane, "dataplane", &mut issues);
    let ca = validate_ca(file.ca.as_ref(), base_dir, &mut issues);
    let control_plane = super::control_plane::validate_control_plane(
        file.control_plane.as_ref(),
        dataplane,
        base_dir,
        &mut issues,
    );
    let reader_token =
        super::reader_token::validate_reader_token(file.reader_token.as_ref(), &mut issues);
    let mut karmada = file
        .karmada
        .as_ref()
        .map(|k| super::karmada::validate_karmada(k, base_dir, &mut issues));
    if let (Some(k), Model::PrimaryRemote) = (&file.karmada, model) {
        issues.at(
            "karmada",
            k.referenced,
            "the fleet from Karmada supports model: multi-primary (every member runs istiod); for primary-remote list the clusters with their roles instead of karmada",
        );
    }

    let mut clusters = Vec::new();
    match &file.clusters {
        // With karmada the members come from the hub; clusters[] only overrides.
        None if karmada.is_some() => {}
        Some(list) if list.value.is_empty() && karmada.is_some() => {}
        None => issues.at(
            "clusters",
            TOP,
            "required: at least one cluster ({name, network, context})",
        ),
        Some(list) if list.value.is_empty() => issues.at(
            "clusters",
            list.referenced,
            "at least one cluster is required",
        ),
        Some(list) => {
            for (i, c) in list.value.iter().enumerate() {
                clusters.push((
                    c.referenced,
                    validate_cluster(
                        i,
                        c,
                        model,
                        dataplane,
                        base_dir,
                        karmada.is_some(),
                        &mut issues,
                    ),
                ));
            }
            cross_cluster_rules(
                &file,
                &mut clusters,
                model,
                dataplane,
                karmada.is_some(),
                &mut issues,
            );
        }
    }

    if !issues.0.is_empty() {
        // File order reads best; the checks above run field by field.
        issues.0.sort_by_key(|i| (i.line, i.column));
        return Err(SpecError::Invalid {
            file: file_label.to_string(),
            issues: issues.0,
        });
    }

    let mut clusters: Vec<ClusterSpec> = clusters.into_iter().map(|(_, c)| c).collect();
    if let Some(k) = karmada.as_mut() {
        k.clusters = clusters.drain(..).map(member_override).collect();
    }
    let spec = MeshSpec {
        mesh_id,
        trust_domain,
        istio_namespace,
        model,
        dataplane,
        ca,
        control_plane,
        reader_token,
        karmada,
        clusters,
    };
    // Needs the members; for a Karmada fleet it runs once they are resolved.
    if spec.karmada.is_none() {
        unused_gateway_values(&file, &spec, &mut issues);
    }
    if !issues.0.is_empty() {
        return Err(SpecError::Invalid {
            file: file_label.to_string(),
            issues: issues.0,
        });
    }
    Ok(spec)
}

/// `clusters[i].controlPlane.values.gateway` on a cluster that gets no east-west gateway would
/// be silently ignored: say so instead. Needs the whole spec (networks, roles), so it runs last.
fn unused_gateway_values(file: &MeshFile, spec: &MeshSpec, issues: &mut Issues) {
    let Some(list) = &file.clusters else { return };
    for (i, (entry, cluster)) in list.value.iter().zip(&spec.clusters).enumerate() {
        let gateway = entry
            .value
            .control_plane
            .as_ref()
            .and_then(|c| c.value.values.as_ref())
            .and_then(|v| v.value.gateway.as_ref());
        if let Some(g) = gateway
            && !crate::render::Needs::of(spec, cluster).eastwest_gateway
        {
            issues.at(
                format!("clusters[{i}].controlPlane.values.gateway"),
                g.referenced,
                format!(
                    "cluster {:?} gets no east-west gateway (it is needed only to cross networks, or on a primary-remote primary), so these values would be ignored",
                    cluster.name
                ),
            );
        }
    }
}

fn keyword<T>(field: &Option<S<String>>, path: &str, issues: &mut Issues) -> T
where
    T: std::str::FromStr<Err = super::UnknownKeyword> + Default,
{
    match field {
        None => T::default(),
        Some(v) => v
            .value
            .parse()
            .unwrap_or_else(|why: super::UnknownKeyword| {
                issues.at(path, v.referenced, why.to_string());
                T::default()
            }),
    }
}

fn days(field: &Option<S<i64>>, path: &str, default: u32, issues: &mut Issues) -> u32 {
    match field {
        None => default,
        Some(v) if v.value < 1 || v.value > MAX_DAYS => {
            issues.at(
                path,
                v.referenced,
                format!("must be between 1 and {MAX_DAYS} days, got {}", v.value),
            );
            default
        }
        Some(v) => v.value as u32,
    }
}

fn required_path(
    field: &Option<S<String>>,
    path: &str,
    parent: Location,
    what: &str,
    base_dir: &Path,
    issues: &mut Issues,
) -> std::path::PathBuf {
    match field {
        None => {
            issues.at(path, parent, format!("required: {what}"));
            Default::default()
        }
        Some(v) if v.value.trim().is_empty() => {
            issues.at(path, v.referenced, format!("must not be empty: {what}"));
            Default::default()
        }
        Some(v) => resolve(base_dir, &v.value),
    }
}

fn validate_ca(ca: Option<&S<CaFile>>, base_dir: &Path, issues: &mut Issues) -> CaSpec {
    let empty = CaFile {
        dir: None,
        key: None,
        root_days: None,
        intermediate_days: None,
        root: None,
        multi_root: None,
    };
    let f = ca.map(|c| &c.value).unwrap_or(&empty);
    let dir = match &f.dir {
        None => resolve(base_dir, DEFAULT_CA_DIR),
        Some(v) if v.value.trim().is_empty() => {
            issues.at("ca.dir", v.referenced, "must not be empty");
            resolve(base_dir, DEFAULT_CA_DIR)
        }
        Some(v) => resolve(base_dir, &v.value),
    };
    let key = match &f.key {
        None => KeyAlgorithm::default(),
        Some(v) => v.value.parse().unwrap_or_else(|e: crate::pki::PkiError| {
            issues.at("ca.key", v.referenced, e.to_string());
            KeyAlgorithm::default()
        }),
    };
    let root_days = days(&f.root_days, "ca.rootDays", DEFAULT_ROOT_DAYS, issues);
    let intermediate_days = days(
        &f.intermediate_days,
        "ca.intermediateDays",
        DEFAULT_INTERMEDIATE_DAYS,
        issues,
    );
    if intermediate_days > root_days {
        let loc = f
            .intermediate_days
            .as_ref()
            .or(f.root_days.as_ref())
            .map(|v| Pos::from(v.referenced))
            .unwrap_or_else(|| parent_loc(ca));
        issues.at(
            "ca.intermediateDays",
            loc,
            format!(
                "an intermediate ({intermediate_days} days) must not outlive the root ({root_days} days)"
            ),
        );
    }
    let root = f.root.as_ref().map(|r| {
        let cert = required_path(
            &r.value.cert,
            "ca.root.cert",
            r.referenced,
            "PEM file of the root certificate",
            base_dir,
            issues,
        );
        let key = required_path(
            &r.value.key,
            "ca.root.key",
            r.referenced,
            "PEM file of the root private key",
            base_dir,
            issues,
        );
        RootSource { cert, key }
    });
    CaSpec {
        dir,
        key,
        root_days,
        intermediate_days,
        root,
        multi_root: f.multi_root.as_ref().is_some_and(|v| v.value),
    }
}

fn validate_cluster(
    i: usize,
    c: &S<ClusterFile>,
    model: Model,
    dataplane: Dataplane,
    base_dir: &Path,
    karmada: bool,
    issues: &mut Issues,
) -> ClusterSpec {
    let at = c.referenced;
    let f = &c.value;
    let p = |field: &str| format!("clusters[{i}].{field}");

    let name = match &f.name {
        None => {
            issues.at(
                p("name"),
                at,
                "required: the cluster name (a DNS-1123 label)",
            );
            String::new()
        }
        Some(v) => {
            if let Err(why) = crate::pki::validate_cluster_name(&v.value) {
                issues.at(p("name"), v.referenced, why.to_string());
            }
            v.value.clone()
        }
    };
    let network = match &f.network {
        None if karmada => String::new(),
        None => {
            issues.at(
                p("network"),
                at,
                "required: the network this cluster is on (topology.istio.io/network), e.g. network1",
            );
            String::new()
        }
        Some(v) => {
            if let Err(why) = label_value(&v.value) {
                issues.at(p("network"), v.referenced, why);
            }
            v.value.clone()
        }
    };
    let context = match &f.context {
        None if karmada => {
            if let Some(k) = &f.kubeconfig {
                issues.at(
                    p("kubeconfig"),
                    k.referenced,
                    "a kubeconfig needs a context: give clusters[].context too (or leave both out to reach a Push member with the hub's credentials)",
                );
            }
            String::new()
        }
        None => {
            issues.at(
                p("context"),
                at,
                "required: the kubeconfig context of this cluster",
            );
            String::new()
        }
        Some(v) if v.value.trim().is_empty() => {
            issues.at(p("context"), v.referenced, "must not be empty");
            String::new()
        }
        Some(v) => v.value.clone(),
    };
    let kubeconfig = match &f.kubeconfig {
        None => None,
        Some(v) if v.value.trim().is_empty() => {
            issues.at(
                p("kubeconfig"),
                v.referenced,
                "must not be empty (leave it out to use $KUBECONFIG)",
            );
            None
        }
        Some(v) => Some(resolve(base_dir, &v.value)),
    };
    let api_server = f.api_server.as_ref().map(|v| {
        if let Err(why) = api_server(&v.value) {
            issues.at(p("apiServer"), v.referenced, why);
        }
        v.value.clone()
    });
    let role = match (&f.role, model) {
        (None, Model::MultiPrimary) => Role::Primary,
        (None, Model::PrimaryRemote) => {
            issues.at(
                p("role"),
                at,
                "required with model: primary-remote: role: primary or role: remote",
            );
            Role::Primary
        }
        (Some(v), _) => match v.value.parse::<Role>() {
            Err(why) => {
                issues.at(p("role"), v.referenced, why.to_string());
                Role::Primary
            }
            Ok(Role::Remote) if model == Model::MultiPrimary => {
                issues.at(
                    p("role"),
                    v.referenced,
                    "role: remote needs model: primary-remote; in a multi-primary mesh every cluster is a primary",
                );
                Role::Primary
            }
            Ok(r) => r,
        },
    };
    if let Some(v) = &f.primary
        && role != Role::Remote
    {
        issues.at(
            p("primary"),
            v.referenced,
            "only a cluster with role: remote has a primary",
        );
    }
    let control_plane_values = super::control_plane::cluster_values(
        &p("controlPlane.values"),
        f.control_plane
            .as_ref()
            .and_then(|c| c.value.values.as_ref()),
        dataplane,
        issues,
    );
    ClusterSpec {
        name,
        network,
        context,
        kubeconfig,
        api_server,
        role,
        primary: None,
        control_plane_values,
        credentials: None,
    }
}

/// A `clusters[]` entry of a Karmada mesh file: what it does not say stays the hub's.
fn member_override(c: ClusterSpec) -> super::MemberOverride {
    let some = |s: String| (!s.is_empty()).then_some(s);
    super::MemberOverride {
        name: c.name,
        network: some(c.network),
        context: some(c.context),
        kubeconfig: c.kubeconfig,
        api_server: c.api_server,
        control_plane_values: c.control_plane_values,
    }
}

fn cross_cluster_rules(
    file: &MeshFile,
    clusters: &mut [(Location, ClusterSpec)],
    model: Model,
    dataplane: Dataplane,
    karmada: bool,
    issues: &mut Issues,
) {
    let Some(list) = &file.clusters else { return };
    let entry = |i: usize| &list.value[i].value;
    let field_loc = |i: usize, f: fn(&ClusterFile) -> &Option<S<String>>| {
        f(entry(i))
            .as_ref()
            .map(|v| v.referenced)
            .unwrap_or(list.value[i].referenced)
    };

    let mut seen_names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen_contexts: BTreeMap<(&str, Option<&Path>), usize> = BTreeMap::new();
    for (i, (_, c)) in clusters.iter().enumerate() {
        if !c.name.is_empty() {
            if let Some(first) = seen_names.get(c.name.as_str()) {
                issues.at(
                    format!("clusters[{i}].name"),
                    field_loc(i, |f| &f.name),
                    format!(
                        "duplicate cluster name {:?} (first used by clusters[{first}])",
                        c.name
                    ),
                );
            } else {
                seen_names.insert(&c.name, i);
            }
        }
        if !c.context.is_empty() {
            let key = (c.context.as_str(), c.kubeconfig.as_deref());
            if let Some(first) = seen_contexts.get(&key) {
                issues.at(
                    format!("clusters[{i}].context"),
                    field_loc(i, |f| &f.context),
                    format!(
                        "context {:?} is already used by clusters[{first}]: two entries would be the same cluster",
                        c.context
                    ),
                );
            } else {
                seen_contexts.insert(key, i);
            }
        }
    }

    if karmada {
        // The rules over networks and roles need every member: they run on the resolved fleet.
        return;
    }
    let networks: std::collections::BTreeSet<&str> =
        clusters.iter().map(|(_, c)| c.network.as_str()).collect();
    if dataplane == Dataplane::Ambient {
        let loc = file
            .dataplane
            .as_ref()
            .map(|v| Pos::from(v.referenced))
            .unwrap_or(TOP);
        if model != Model::MultiPrimary {
            issues.at(
                "dataplane",
                loc,
                "ambient needs model: multi-primary (Istio supports ambient multicluster only as multi-primary, multi-network)",
            );
        } else if clusters.len() > 1 && networks.len() < 2 {
            issues.at(
                "dataplane",
                loc,
                "ambient needs the clusters on more than one network (Istio supports ambient multicluster only as multi-primary, multi-network)",
            );
        }
    }

    if model == Model::PrimaryRemote {
        resolve_primaries(file, clusters, issues);
    }
}

/// Primary-remote: at least one primary and one remote, and every remote resolved to the primary
/// that serves it (the rule is documented on [`MeshSpec::control_plane_of`]).
fn resolve_primaries(
    file: &MeshFile,
    clusters: &mut [(Location, ClusterSpec)],
    issues: &mut Issues,
) {
    let Some(list) = &file.clusters else { return };
    if list.value.iter().any(|c| c.value.role.is_none()) {
        // Each missing role is already reported; counting roles now would add noise.
        return;
    }
    let model_loc = file
        .model
        .as_ref()
        .map(|v| Pos::from(v.referenced))
        .unwrap_or(TOP);
    let primaries: Vec<(String, String)> = clusters
        .iter()
        .filter(|(_, c)| c.role == Role::Primary)
        .map(|(_, c)| (c.name.clone(), c.network.clone()))
        .collect();
    let remotes = clusters
        .iter()
        .filter(|(_, c)| c.role == Role::Remote)
        .count();
    if primaries.is_empty() {
        issues.at(
            "model",
            model_loc,
            "primary-remote needs at least one cluster with role: primary (it runs the istiod that serves the remotes)",
        );
        return;
    }
    if remotes == 0 {
        issues.at(
            "model",
            model_loc,
            "primary-remote needs at least one cluster with role: remote; with primaries only, use model: multi-primary",
        );
        return;
    }
    for (i, (loc, c)) in clusters.iter_mut().enumerate() {
        if c.role != Role::Remote {
            continue;
        }
        let path = format!("clusters[{i}].primary");
        match &list.value[i].value.primary {
            Some(v) => match primaries.iter().find(|(n, _)| *n == v.value) {
                Some(_) => c.primary = Some(v.value.clone()),
                None => issues.at(
                    path,
                    v.referenced,
                    format!(
                        "{:?} is not a cluster with role: primary (primaries: {})",
                        v.value,
                        names(&primaries)
                    ),
                ),
            },
            None => {
                let same_net: Vec<_> = primaries.iter().filter(|(_, n)| *n == c.network).collect();
                if let [(name, _)] = same_net.as_slice() {
                    c.primary = Some(name.clone());
                } else if let [(name, _)] = primaries.as_slice() {
                    c.primary = Some(name.clone());
                } else {
                    issues.at(
                        path,
                        *loc,
                        format!(
                            "remote {:?} could be served by several primaries ({}): set primary: <name>",
                            c.name,
                            names(&primaries)
                        ),
                    );
                }
            }
        }
    }
}

fn names(primaries: &[(String, String)]) -> String {
    primaries
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 1123 label as Kubernetes checks it, for the namespace name (cluster names go through
/// [`crate::pki::validate_cluster_name`], the same rule with the PKI's wording).
pub(crate) fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty (a DNS-1123 label: lowercase letters, digits, '-')".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "{s:?} is not a valid DNS-1123 label: at most 63 characters, got {}",
            s.len()
        ));
    }
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric();
    if ok_chars && ok_ends {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

/// A SPIFFE trust domain (the `spiffe://<trust domain>/ns/...` of every workload identity):
/// lowercase letters, digits, '.', '-' and '_'.
fn trust_domain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid trust domain: lowercase letters, digits, '.', '-' and '_' (SPIFFE)"
        ))
    }
}

/// A Kubernetes label value: the network name and the mesh ID end up in labels.
pub(crate) fn label_value(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid label value: 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// `apiServer` is written into the kubeconfig other clusters' istiod use, so it must be https
/// and reachable from elsewhere: loopback and unspecified addresses never are
/// (`reference/istio.md` §8, pain point 1).
pub(crate) fn api_server(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("https://") else {
        return Err(format!(
            "{s:?} must be an https:// URL (istiod only talks TLS to remote API servers)"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!("{s:?} must not carry credentials"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("{s:?} has an unterminated IPv6 address")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Err(format!("{s:?} has an invalid port {p:?}"));
    }
    let lower = host.to_ascii_lowercase();
    let loopback_name = lower == "localhost"
        || lower == "localhost."
        || lower.ends_with(".localhost")
        || lower.ends_with(".localhost.");
    let loopback_ip = host
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback() || ip.is_unspecified())
        .unwrap_or(false);
    if loopback_name || loopback_ip {
        return Err(format!(
            "{s:?} is a loopback address the other clusters cannot reach; use the address they dial (e.g. the node or load-balancer IP)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_server_rules() {
        for ok in [
            "https://203.0.113.10:32443",
            "https://api.example.com",
            "https://[2001:db8::1]:6443/",
        ] {
            assert_eq!(api_server(ok), Ok(()), "{ok}");
        }
        for (bad, frag) in [
            ("http://203.0.113.10", "https://"),
            ("https://127.0.0.1:6443", "loopback"),
            ("https://127.8.9.1", "loopback"),
            ("https://localhost:6443", "loopback"),
            ("https://[::1]:6443", "loopback"),
            ("https://0.0.0.0", "loopback"),
            ("https://:6443", "no host"),
            ("https://h:99999", "invalid port"),
        ] {
            let err = api_server(bad).unwrap_err();
            assert!(err.contains(frag), "{bad}: {err}");
        }
    }

    #[test]
    fn trust_domains() {
        assert!(trust_domain("cluster.local").is_ok());
        assert!(trust_domain("corp_prod.example").is_ok());
        for bad in ["", "Cluster.local", "spiffe://x", "a b"] {
            assert!(trust_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_labels() {
        assert!(dns1123_label("eu-west-1").is_ok());
        for bad in ["EU", "-eu", "eu-", "e_u", "", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad}");
        }
    }
}
