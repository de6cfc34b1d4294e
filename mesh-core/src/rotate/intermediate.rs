//! Intermediate rotation: a new intermediate from the same root for the chosen clusters, pushed
//! as `cacerts` through the executor; the other clusters are not touched.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use super::annotations;
use super::live::{ClusterView, IstiodInfo, observe};
use super::{RotateError, RotateOptions};
use crate::cluster::{ClusterError, ClusterOps};
use crate::execute::{CaReport, EventSink, Report};
use crate::phase::Phase;
use crate::pki::{CaDir, CertInfo, ClusterBundle, RotationAction};
use crate::plan::{Action, Plan, Step, StepId};
use crate::spec::MeshSpec;

/// Which intermediates to rotate.
///
/// ```
/// use std::time::Duration;
/// let soon = mesh_core::rotate::IntermediateRequest {
///     expiring_within: Some(Duration::from_secs(30 * 86_400)),
///     ..Default::default()
/// };
/// assert!(soon.clusters.is_empty() && !soon.rollback);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntermediateRequest {
    /// These clusters (with [`expiring_within`](Self::expiring_within): those of them that
    /// expire within it).
    pub clusters: Vec<String>,
    /// Every cluster whose intermediate (local or live, whichever ends first) expires within
    /// this duration.
    pub expiring_within: Option<Duration>,
    /// Go back to the previous intermediate of [`clusters`](Self::clusters) instead.
    pub rollback: bool,
}

/// What is done for one chosen cluster, decided before anything is written.
///
/// ```
/// assert_eq!(mesh_core::rotate::IntermediateOutcome::Pushed.to_string(), "pushed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntermediateOutcome {
    /// A new intermediate is issued from the same root and pushed.
    Issued,
    /// The previous intermediate becomes current again and is pushed.
    RolledBack,
    /// The CA directory already holds a fresh intermediate the cluster does not have yet (an
    /// earlier rotation whose push did not happen): it is pushed as it is.
    Pushed,
    /// The cluster could not be read: nothing was issued for it.
    Skipped,
}

impl std::fmt::Display for IntermediateOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IntermediateOutcome::Issued => "issued",
            IntermediateOutcome::RolledBack => "rolled-back",
            IntermediateOutcome::Pushed => "pushed",
            IntermediateOutcome::Skipped => "skipped",
        })
    }
}

/// One chosen cluster: why, what is done, and what istiod does with it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterRotation {
    /// The cluster.
    pub cluster: String,
    /// What is (or, in a dry run, would be) done.
    pub action: IntermediateOutcome,
    /// Why it was chosen.
    pub reason: String,
    /// The intermediate it replaces, as the CA directory held it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<CertSummary>,
    /// The intermediate it gets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<CertSummary>,
    /// What istiod does with the new `cacerts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod: Option<IstiodAction>,
}

/// An intermediate, in a few words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Serial number, colon-separated hex.
    pub serial: String,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days left.
    pub days_left: i64,
}

impl From<&CertInfo> for CertSummary {
    fn from(info: &CertInfo) -> Self {
        CertSummary {
            serial: info.serial.clone(),
            not_after: info.not_after,
            days_left: info.days_left,
        }
    }
}

/// What istiod will do with a new `cacerts`, from the version its Deployment runs.
///
/// ```
/// use mesh_core::rotate::{IstiodAction, IstiodInfo};
/// let old = IstiodInfo { present: true, image: Some("docker.io/istio/pilot:1.17.2".into()), ..Default::default() };
/// let action = IstiodAction::for_intermediate("eu", "eu-ctx", "istio-system", &old);
/// assert!(!action.reloads);
/// assert_eq!(action.command.as_deref(), Some("kubectl --context eu-ctx -n istio-system rollout restart deployment/istiod"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IstiodAction {
    /// The istiod version (image tag), or `none` when no istiod runs there.
    pub version: String,
    /// True when istiod picks the change up by itself.
    pub reloads: bool,
    /// What happens, for a person.
    pub message: String,
    /// The command to run when a restart is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl IstiodAction {
    /// What istiod of `info` in `cluster` does when only its intermediate changes.
    pub fn for_intermediate(
        cluster: &str,
        context: &str,
        namespace: &str,
        info: &IstiodInfo,
    ) -> IstiodAction {
        let restart =
            format!("kubectl --context {context} -n {namespace} rollout restart deployment/istiod");
        let version = info.version_text();
        if !info.present {
            return IstiodAction {
                version: "none".into(),
                reloads: false,
                message: format!(
                    "no istiod runs in {cluster} (Deployment {namespace}/istiod not found): the new intermediate is used when istiod starts"
                ),
                command: None,
            };
        }
        if info.version() == Some((1, 27)) {
            // istio/istio#57271: 1.27's cacerts watcher reloads only when the root or CRL
            // changes, so an intermediate-only change waits for a restart (fixed in 1.28).
            return IstiodAction {
                version,
                reloads: false,
                message: format!(
                    "restart istiod in {cluster}: istiod 1.27 misses a change of the intermediate alone (istio/istio#57271, fixed in 1.28)"
                ),
                command: Some(restart),
            };
        }
        if info.reloads_plugged_certs() {
            return IstiodAction {
                version: version.clone(),
                reloads: true,
                message: format!(
                    "istiod {version} in {cluster} reloads the new intermediate by itself, about a minute after the kubelet syncs the Secret into its pod; no restart needed"
                ),
                command: None,
            };
        }
        IstiodAction {
            message: format!(
                "restart istiod in {cluster}: istiod {version} does not reload plugged certificates by itself (1.18+ does, or 1.12+ with AUTO_RELOAD_PLUGIN_CERTS=true)"
            ),
            version,
            reloads: false,
            command: Some(restart),
        }
    }
}

/// The result of [`rotate_intermediates_with`]: per chosen cluster what was done, and the run
/// through the executor.
#[derive(Debug, Clone, Serialize)]
pub struct IntermediateReport {
    /// Nothing was written (the actions say what a real run would do).
    pub dry_run: bool,
    /// Every chosen cluster got its new `cacerts`.
    pub succeeded: bool,
    /// The chosen clusters, in mesh-file order.
    pub clusters: Vec<ClusterRotation>,
    /// The clusters of the mesh that were not chosen (not touched).
    pub untouched: Vec<String>,
    /// Why workloads keep working.
    pub workloads: String,
    /// The `cacerts` writes, as `apply` reports them.
    pub run: Report,
}

/// Words on the workloads of an intermediate rotation, printed with every report.
pub const WORKLOADS_KEEP_WORKING: &str = "workloads keep working: their certificates chain to the same root, which every cluster still trusts; istiod re-issues them from the new intermediate as they renew (24 h by default)";

/// Decides, without writing anything, which clusters rotate and how: `live` is each cluster's
/// live intermediate (`None` when it has no `cacerts` or could not be read).
///
/// ```
/// use std::collections::BTreeMap;
/// use mesh_core::rotate::{IntermediateOutcome, IntermediateRequest, plan_intermediates};
/// # let dir = tempfile::tempdir()?;
/// # let spec = mesh_core::spec::MeshSpec::from_yaml("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nca: {dir: ./pki, key: ecdsa-p256}\nclusters: [{name: eu, network: n, context: eu}, {name: us, network: n, context: us}]\n", dir.path(), "m.yaml")?;
/// # mesh_core::pki::CaDir::open(&spec.ca.dir).ensure(&spec.ca_options(), &["eu", "us"])?;
/// let request = IntermediateRequest { clusters: vec!["eu".into()], ..Default::default() };
/// let plan = plan_intermediates(&spec, &request, &BTreeMap::new())?;
/// assert_eq!(plan.len(), 1);
/// assert_eq!((plan[0].cluster.as_str(), plan[0].action), ("eu", IntermediateOutcome::Issued));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_intermediates(
    spec: &MeshSpec,
    request: &IntermediateRequest,
    live: &BTreeMap<String, Option<CertInfo>>,
) -> Result<Vec<ClusterRotation>, RotateError> {
    check_request(spec, request)?;
    let ca = CaDir::open(&spec.ca.dir);
    let now = OffsetDateTime::now_utc();
    let candidates: Vec<&str> = if request.clusters.is_empty() {
        spec.cluster_names()
    } else {
        spec.cluster_names()
            .into_iter()
            .filter(|c| request.clusters.iter().any(|r| r == c))
            .collect()
    };
    let mut out = Vec::new();
    for cluster in candidates {
        let local = ca
            .bundle(cluster)
            .ok()
            .and_then(|b| crate::pki::cert_info(&b.ca_cert_pem).ok());
        let live_info = live.get(cluster).cloned().flatten();
        let entry = |action, reason: String| ClusterRotation {
            cluster: cluster.to_string(),
            action,
            reason,
            replaced: local.as_ref().map(CertSummary::from),
            current: None,
            istiod: None,
        };
        if request.rollback {
            out.push(entry(
                IntermediateOutcome::RolledBack,
                "--rollback asked for it".into(),
            ));
            continue;
        }
        let Some(within) = request.expiring_within else {
            out.push(entry(
                IntermediateOutcome::Issued,
                "--cluster asked for it".into(),
            ));
            continue;
        };
        let horizon =
            now + time::Duration::seconds(i64::try_from(within.as_secs()).unwrap_or(i64::MAX / 2));
        let Some(local) = &local else {
            // Never bootstrapped here: `apply` makes its first intermediate, not rotation.
            continue;
        };
        let local_expiring = local.not_after <= horizon;
        let live_expiring = live_info.as_ref().is_some_and(|l| l.not_after <= horizon);
        let days = |info: &CertInfo| info.days_left;
        if local_expiring {
            out.push(entry(
                IntermediateOutcome::Issued,
                format!(
                    "its intermediate expires in {} day(s), within {}",
                    days(local),
                    describe(within)
                ),
            ));
        } else if live_expiring
            && live_info
                .as_ref()
                .is_some_and(|l| l.fingerprint_sha256 != local.fingerprint_sha256)
        {
            let live_days = live_info.as_ref().map(days).unwrap_or_default();
            out.push(entry(
                IntermediateOutcome::Pushed,
                format!(
                    "its live intermediate expires in {live_days} day(s) and the CA directory already holds a newer one (expires in {} days)",
                    days(local)
                ),
            ));
        }
    }
    Ok(out)
}

/// [`rotate_intermediates_with`] connecting through the kubeconfigs of the mesh file.
pub async fn rotate_intermediates(
    spec: &MeshSpec,
    request: &IntermediateRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<IntermediateReport, RotateError> {
    check_request(spec, request)?;
    let clients = crate::execute::connect_with(spec, &options.connector()).await;
    rotate_intermediates_with(spec, clients, request, options, on_event).await
}

/// Rotates (or rolls back) the chosen intermediates: reads the chosen clusters, decides
/// ([`plan_intermediates`]), writes the CA directory (the previous intermediate kept in
/// `<dir>/<cluster>/previous/`), then pushes `cacerts` through the executor.
pub async fn rotate_intermediates_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    request: &IntermediateRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<IntermediateReport, RotateError> {
    check_request(spec, request)?;
    let ca = CaDir::open(&spec.ca.dir);
    if ca.rotation_dir().exists() {
        return Err(RotateError::RootRotationUnderWay {
            dir: ca.rotation_dir().display().to_string(),
        });
    }
    let wanted: Vec<&str> = if request.clusters.is_empty() {
        spec.cluster_names()
    } else {
        request.clusters.iter().map(String::as_str).collect()
    };
    let clients: BTreeMap<String, Result<C, ClusterError>> = clients.into_iter().collect();
    let views = observe_all(spec, &clients, &wanted, false, options.concurrency).await;
    let live: BTreeMap<String, Option<CertInfo>> = views
        .iter()
        .map(|(c, v)| {
            (
                c.clone(),
                v.as_ref().ok().and_then(ClusterView::intermediate),
            )
        })
        .collect();
    let mut chosen = plan_intermediates(spec, request, &live)?;

    // Only reachable clusters get a new intermediate: one issued but never pushed would be
    // a CA directory ahead of its cluster.
    let mut bundles: BTreeMap<String, ClusterBundle> = BTreeMap::new();
    let mut excluded = BTreeMap::new();
    for c in &mut chosen {
        if let Some(Err(why)) = views.get(&c.cluster) {
            c.action = IntermediateOutcome::Skipped;
            c.reason = format!("not rotated: {why}");
            excluded.insert(c.cluster.clone(), why.clone());
        }
    }
    // A cluster whose cacerts does not trust the mesh root is not this CA's to rotate: a new
    // intermediate would replace its root too, which istiod refuses (and which would break
    // every workload there).
    if let Ok(root) = ca.root_info() {
        for c in &mut chosen {
            let Some(Ok(view)) = views.get(&c.cluster) else {
                continue;
            };
            let Some(Ok(files)) = view.cacerts_files() else {
                continue;
            };
            let trusted = files
                .root_fingerprints()
                .is_ok_and(|fps| fps.contains(&root.fingerprint_sha256));
            if !trusted && c.action != IntermediateOutcome::Skipped {
                c.action = IntermediateOutcome::Skipped;
                c.reason = format!(
                    "not rotated: its cacerts does not trust the mesh root {} ({}); rotate intermediate never replaces a root (see `meshboot rotate root`)",
                    root.fingerprint_sha256.chars().take(23).collect::<String>(),
                    ca.root_cert_path().display()
                );
                excluded.insert(c.cluster.clone(), c.reason.clone());
            }
        }
    }
    let opts = spec.ca_options();
    let to_issue: Vec<&str> = chosen
        .iter()
        .filter(|c| c.action == IntermediateOutcome::Issued)
        .map(|c| c.cluster.as_str())
        .collect();
    let mut written: BTreeMap<String, (Option<CertInfo>, CertInfo)> = BTreeMap::new();
    if !to_issue.is_empty() {
        let issued = blocking(ca.clone(), {
            let names: Vec<String> = to_issue.iter().map(|s| s.to_string()).collect();
            let opts = opts.clone();
            let dry_run = options.dry_run;
            move |ca| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                ca.rotate_intermediates(&names, &opts, dry_run)
            }
        })
        .await?;
        for r in issued {
            written.insert(r.cluster.clone(), (r.replaced, r.current));
            bundles.insert(r.cluster, r.bundle);
        }
    }
    for c in &chosen {
        match c.action {
            IntermediateOutcome::RolledBack => {
                let r = ca.rollback_intermediate(&c.cluster, options.dry_run)?;
                debug_assert_eq!(r.action, RotationAction::RolledBack);
                written.insert(r.cluster.clone(), (r.replaced, r.current));
                bundles.insert(r.cluster, r.bundle);
            }
            IntermediateOutcome::Pushed => {
                let b = ca.bundle(&c.cluster)?;
                if let Ok(info) = crate::pki::cert_info(&b.ca_cert_pem) {
                    written.insert(c.cluster.clone(), (None, info));
                }
                bundles.insert(c.cluster.clone(), b);
            }
            _ => {}
        }
    }
    for c in &mut chosen {
        if let Some((replaced, current)) = written.get(&c.cluster) {
            if let Some(replaced) = replaced {
                c.replaced = Some(replaced.into());
            }
            c.current = Some(current.into());
        }
    }

    let mut steps = Vec::new();
    for c in &chosen {
        let (Some(bundle), Some(cluster)) = (bundles.get(&c.cluster), spec.cluster(&c.cluster))
        else {
            continue;
        };
        let mut object = crate::render::cacerts::cacerts(spec, cluster, bundle)
            .map_err(|e| RotateError::Execute(e.into()))?;
        if let Some(Ok(view)) = views.get(&c.cluster)
            && let Some(live) = &view.cacerts
        {
            annotations::set(&mut object, &annotations::of(live));
        }
        steps.push(cacerts_step(steps.len(), spec, &c.cluster, object));
    }
    let plan = Plan {
        clusters: spec.cluster_names().into_iter().map(String::from).collect(),
        steps,
        reader_tokens: BTreeMap::new(),
        bound_readers: BTreeMap::new(),
        istio_namespace: spec.istio_namespace.clone(),
    };
    let mut usable = BTreeMap::new();
    for (name, client) in clients {
        if let Ok(client) = client
            && plan.steps.iter().any(|s| s.cluster == name)
        {
            usable.insert(name, client);
        }
    }
    let ca_report = CaReport {
        dir: spec.ca.dir.display().to_string(),
        root: "unchanged".into(),
        intermediates: chosen
            .iter()
            .map(|c| {
                (
                    c.cluster.clone(),
                    word(c.action, options.dry_run).to_string(),
                )
            })
            .collect(),
    };
    let run = crate::execute::run_plan(
        spec,
        &plan,
        usable,
        excluded,
        &options.execute(),
        ca_report,
        on_event,
    )
    .await;
    for c in &mut chosen {
        let ok = run
            .cluster(&c.cluster)
            .is_some_and(|r| r.steps.iter().all(|s| s.outcome.is_success()) && !r.steps.is_empty());
        if !ok || c.action == IntermediateOutcome::Skipped {
            continue;
        }
        if let (Some(Ok(view)), Some(spec_cluster)) =
            (views.get(&c.cluster), spec.cluster(&c.cluster))
        {
            c.istiod = Some(IstiodAction::for_intermediate(
                &c.cluster,
                &spec_cluster.context,
                &spec.istio_namespace,
                &view.istiod,
            ));
        }
    }
    let succeeded = run.succeeded
        && chosen
            .iter()
            .all(|c| c.action != IntermediateOutcome::Skipped);
    let untouched = spec
        .cluster_names()
        .into_iter()
        .filter(|n| !chosen.iter().any(|c| c.cluster == *n))
        .map(String::from)
        .collect();
    Ok(IntermediateReport {
        dry_run: options.dry_run,
        succeeded,
        clusters: chosen,
        untouched,
        workloads: WORKLOADS_KEEP_WORKING.into(),
        run,
    })
}

/// The cacerts step of a rotation plan.
pub(crate) fn cacerts_step(
    id: usize,
    spec: &MeshSpec,
    cluster: &str,
    object: serde_json::Value,
) -> Step {
    Step {
        id: StepId(id),
        phase: Phase::CaCerts,
        cluster: cluster.to_string(),
        object: crate::cluster::ObjectRef::namespaced(
            "v1",
            "Secret",
            &spec.istio_namespace,
            crate::render::cacerts::SECRET_NAME,
        ),
        action: Action::Apply {
            object: Box::new(object),
            wait: None,
        },
        source: None,
        needs: Vec::new(),
    }
}

/// Reads `wanted` clusters, a few at a time; a cluster that cannot be read keeps its error,
/// worded for the report.
pub(crate) async fn observe_all<C: ClusterOps>(
    spec: &MeshSpec,
    clients: &BTreeMap<String, Result<C, ClusterError>>,
    wanted: &[&str],
    full: bool,
    concurrency: usize,
) -> BTreeMap<String, Result<ClusterView, String>> {
    let ns = spec.istio_namespace.as_str();
    futures::stream::iter(wanted.iter().copied())
        .map(|name| async move {
            let view = match clients.get(name) {
                Some(Ok(client)) => observe(client, ns, full).await.map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err(format!("cluster {name}: not connected")),
            };
            (name.to_string(), view)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

fn check_request(spec: &MeshSpec, request: &IntermediateRequest) -> Result<(), RotateError> {
    if request.clusters.is_empty() && request.expiring_within.is_none() {
        return Err(if request.rollback {
            RotateError::Conflict(
                "--rollback needs the clusters to roll back: --cluster NAME".into(),
            )
        } else {
            RotateError::NothingChosen
        });
    }
    if request.rollback && request.expiring_within.is_some() {
        return Err(RotateError::Conflict(
            "--rollback goes back to the previous intermediate of the named clusters; it does not combine with --expiring-within".into(),
        ));
    }
    for c in &request.clusters {
        if spec.cluster(c).is_none() {
            return Err(RotateError::UnknownCluster {
                cluster: c.clone(),
                known: spec.cluster_names().join(", "),
            });
        }
    }
    Ok(())
}

fn word(action: IntermediateOutcome, dry_run: bool) -> &'static str {
    match (action, dry_run) {
        (IntermediateOutcome::Issued, false) => "rotated",
        (IntermediateOutcome::Issued, true) => "would rotate",
        (IntermediateOutcome::RolledBack, false) => "rolled back",
        (IntermediateOutcome::RolledBack, true) => "would roll back",
        (IntermediateOutcome::Pushed, _) => "unchanged",
        (IntermediateOutcome::Skipped, _) => "skipped",
    }
}

/// `30d`, `12h`, `90s`: a duration as the flags spell it.
pub(crate) fn describe(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) && s > 0 {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else {
        format!("{s}s")
    }
}

/// Runs blocking CA work (key generation, file writes) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    ca: CaDir,
    work: impl FnOnce(&CaDir) -> Result<T, crate::pki::PkiError> + Send + 'static,
) -> Result<T, RotateError> {
    match tokio::task::spawn_blocking(move || work(&ca)).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(RotateError::Pki(crate::pki::PkiError::Crypto {
            what: "the CA task".into(),
            reason: e.to_string(),
        })),
    }
}
