//! `meshboot rotate tokens`: the bound tokens of the remote secrets that expire within a
//! window get new ones, planned as data ([`plan_refresh`]: which pairs, and why) and run through
//! the executor as remote-secret steps, so `apply`, `rotate tokens` and `revoke` agree on when a
//! token is replaced (the same [`judge`](super::judge)) and a destination is written only when
//! its remote secret's kubeconfig changes: a second run writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::credential::Credential;
use super::judge::rfc3339;
use crate::cluster::{ClusterError, ClusterOps, KubeConnector, ObjectRef};
use crate::execute::{CaReport, EventSink, Outcome, Report};
use crate::phase::Phase;
use crate::plan::{Action, BoundReader, Plan, Step, StepId};
use crate::remote_secret::{multicluster_selector, secret_name};
use crate::rotate::{RotateError, RotateOptions};
use crate::spec::MeshSpec;

/// Which tokens to refresh.
///
/// ```
/// let r = mesh_core::tokens::RefreshRequest::default();
/// assert!(r.expiring_within.is_none(), "default: readerToken.refreshBefore");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshRequest {
    /// Refresh the tokens that expire within this; `None`: `readerToken.refreshBefore`.
    pub expiring_within: Option<Duration>,
}

/// What is done for one pair, decided before anything is written.
///
/// ```
/// use mesh_core::tokens::PairAction;
/// assert_eq!(serde_json::to_value(PairAction::LongLived).unwrap(), "long-lived");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairAction {
    /// Its token expires within the window (or has expired): a new one is minted.
    Refresh,
    /// Its token is valid beyond the window: left alone.
    Fresh,
    /// It carries a long-lived token Secret's token: `apply` with `readerToken.ttl` replaces it.
    LongLived,
    /// The destination holds no remote secret of the source (or none meshboot can read):
    /// `apply` makes it.
    Missing,
    /// The destination could not be read.
    Skipped,
}

/// One pair of the mesh and what `rotate tokens` did with it. Holds the token's expiry,
/// never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairToken {
    /// The cluster the remote secret gives access to.
    pub source: String,
    /// The cluster holding the remote secret.
    pub destination: String,
    /// What is (or, in a dry run, would be) done.
    pub action: PairAction,
    /// Why, in words.
    pub reason: String,
    /// When the live token expires (RFC 3339), when it has an expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The step's outcome, for refreshed pairs: `unchanged` when the token could stay after all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// What the step said (the new token's expiry), or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The live state of one pair's remote secret, as read from its destination.
#[derive(Debug, Clone)]
pub enum LivePair {
    /// The destination could not be read: why.
    Unreadable(String),
    /// No remote secret of the source (or no kubeconfig for it inside).
    Absent,
    /// The credential its kubeconfig holds.
    Present(Credential),
}

/// The result of [`rotate_tokens_with`].
#[derive(Debug, Clone, Serialize)]
pub struct TokensReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Every pair chosen got its new token, and every destination could be read.
    pub succeeded: bool,
    /// The window, e.g. `240h`.
    pub within: String,
    /// Every pair of the mesh, in mesh-file order.
    pub pairs: Vec<PairToken>,
    /// The remote-secret writes, as `apply` reports them.
    pub run: Report,
}

impl TokensReport {
    /// The pairs that got (or would get) a new token.
    pub fn refreshed(&self) -> impl Iterator<Item = &PairToken> {
        self.pairs
            .iter()
            .filter(|p| p.action == PairAction::Refresh)
    }
}

/// Decides, without reading or writing anything, which pairs get a new token: those whose live
/// token expires within `within` of `now` (Unix seconds). `live` is keyed by (source,
/// destination); a pair missing from it counts as [`LivePair::Absent`].
///
/// ```
/// use std::{collections::BTreeMap, time::Duration};
/// use mesh_core::tokens::{PairAction, plan_refresh};
/// let spec = mesh_core::spec::MeshSpec::from_yaml("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nreaderToken: {ttl: 24h}\nclusters: [{name: eu, network: n, context: eu}, {name: us, network: n, context: us}]\n", std::path::Path::new("."), "m.yaml")?;
/// let plan = plan_refresh(&spec, &BTreeMap::new(), Duration::from_secs(3600), 0);
/// assert_eq!(plan.len(), 2);
/// assert!(plan.iter().all(|p| p.action == PairAction::Missing));
/// # Ok::<(), mesh_core::spec::SpecError>(())
/// ```
pub fn plan_refresh(
    spec: &MeshSpec,
    live: &BTreeMap<(String, String), LivePair>,
    within: Duration,
    now: i64,
) -> Vec<PairToken> {
    let window = i64::try_from(within.as_secs()).unwrap_or(i64::MAX);
    let span = crate::duration::exact(within);
    spec.remote_secret_pairs()
        .into_iter()
        .map(|(source, destination)| {
            let name = secret_name(&source);
            let (action, reason, expires) = match live.get(&(source.clone(), destination.clone()))
            {
                Some(LivePair::Unreadable(why)) => (PairAction::Skipped, why.clone(), None),
                None | Some(LivePair::Absent) => (
                    PairAction::Missing,
                    format!(
                        "{destination} holds no {name} for {source}: `meshboot apply` makes it"
                    ),
                    None,
                ),
                Some(LivePair::Present(credential)) => {
                    match credential.claims().map(|c| c.expires) {
                        None => (
                            PairAction::Missing,
                            format!(
                                "the token of {name} in {destination} is not one meshboot can read: `meshboot apply` replaces it"
                            ),
                            None,
                        ),
                        Some(None) => (
                            PairAction::LongLived,
                            format!(
                                "{name} in {destination} carries a long-lived token: `meshboot apply` gives it a bound one (readerToken.ttl)"
                            ),
                            None,
                        ),
                        Some(Some(exp)) if exp <= now => (
                            PairAction::Refresh,
                            format!("its token expired at {}", rfc3339(exp)),
                            Some(rfc3339(exp)),
                        ),
                        Some(Some(exp)) if exp - now <= window => (
                            PairAction::Refresh,
                            format!(
                                "its token expires in {}, within {span}",
                                crate::duration::human(Duration::from_secs(
                                    (exp - now).unsigned_abs()
                                ))
                            ),
                            Some(rfc3339(exp)),
                        ),
                        Some(Some(exp)) => (
                            PairAction::Fresh,
                            format!(
                                "its token expires in {}, beyond {span}",
                                crate::duration::human(Duration::from_secs(
                                    (exp - now).unsigned_abs()
                                ))
                            ),
                            Some(rfc3339(exp)),
                        ),
                    }
                }
            };
            PairToken {
                source,
                destination,
                action,
                reason,
                expires,
                outcome: None,
                detail: None,
            }
        })
        .collect()
}

/// [`rotate_tokens_with`] connecting through the kubeconfigs of the mesh file.
pub async fn rotate_tokens(
    spec: &MeshSpec,
    request: &RefreshRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<TokensReport, RotateError> {
    lifetime(spec)?;
    let clients = crate::execute::connect_with(spec, &KubeConnector::default()).await;
    rotate_tokens_with(spec, clients, request, options, on_event).await
}

fn lifetime(spec: &MeshSpec) -> Result<crate::spec::ReaderTokenSpec, RotateError> {
    spec.reader_token.ok_or_else(|| {
        RotateError::Conflict(
            "the mesh file sets no readerToken.ttl: its remote secrets carry long-lived tokens, \
             which never expire and so are never refreshed; set readerToken.ttl and run \
             `meshboot apply` to give every pair an expiring token, or revoke one pair's \
             credential with `meshboot revoke --from SRC --in DST`"
                .into(),
        )
    })
}

/// Reads every destination's remote secrets (one list each), decides ([`plan_refresh`]) and
/// mints new tokens for the chosen pairs through the executor.
pub async fn rotate_tokens_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    request: &RefreshRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<TokensReport, RotateError> {
    let lifetime = lifetime(spec)?;
    let within = request.expiring_within.unwrap_or(lifetime.refresh_before);
    let clients: BTreeMap<String, Result<C, ClusterError>> = clients.into_iter().collect();
    let namespace = spec.istio_namespace.as_str();
    let live = read_pairs(spec, &clients, options.concurrency).await;
    let mut pairs = plan_refresh(spec, &live, within, super::now_unix());

    let mut steps = Vec::new();
    let mut bound_readers = BTreeMap::new();
    let mut servers = BTreeMap::new();
    for pair in pairs.iter().filter(|p| p.action == PairAction::Refresh) {
        let Some(LivePair::Present(credential)) =
            live.get(&(pair.source.clone(), pair.destination.clone()))
        else {
            continue;
        };
        let service_account = credential
            .claims()
            .and_then(|c| c.service_account)
            .unwrap_or_else(|| crate::render::reader::MESHBOOT_SERVICE_ACCOUNT.to_string());
        bound_readers
            .entry(pair.source.clone())
            .or_insert_with(|| BoundReader {
                namespace: namespace.to_string(),
                service_account,
            });
        // The server the destinations dial: the mesh file's when it names one, else the one
        // `apply` wrote (the job's kubeconfig may reach the source at another address).
        let server = spec
            .cluster(&pair.source)
            .and_then(|c| c.api_server.clone())
            .unwrap_or_else(|| credential.server.clone());
        servers.entry(pair.source.clone()).or_insert(server);
        steps.push(Step {
            id: StepId(steps.len()),
            phase: Phase::RemoteSecrets,
            cluster: pair.destination.clone(),
            object: ObjectRef::namespaced("v1", "Secret", namespace, &secret_name(&pair.source)),
            action: Action::RemoteSecret {
                source: pair.source.clone(),
            },
            source: Some(pair.source.clone()),
            needs: Vec::new(),
        });
    }
    let plan = Plan {
        clusters: spec.cluster_names().into_iter().map(String::from).collect(),
        steps,
        reader_tokens: BTreeMap::new(),
        bound_readers,
        istio_namespace: spec.istio_namespace.clone(),
    };
    let mut usable = BTreeMap::new();
    let mut istiod_images = BTreeMap::new();
    for (name, client) in &clients {
        let Ok(client) = client else { continue };
        let destination = plan.steps.iter().any(|s| &s.cluster == name);
        if destination && let Ok(Some(image)) = super::istiod_image(client, namespace).await {
            istiod_images.insert(name.clone(), image);
        }
        if destination || plan.bound_readers.contains_key(name) {
            usable.insert(name.clone(), client.clone());
        }
    }
    let ca = CaReport {
        dir: spec.ca.dir.display().to_string(),
        root: "unchanged".into(),
        intermediates: Vec::new(),
    };
    let context = crate::execute::PairContext {
        servers,
        istiod_images,
        refresh_within: Some(within),
    };
    let run = crate::execute::run_plan_with(
        spec,
        &plan,
        usable,
        BTreeMap::new(),
        context,
        &options.execute(),
        ca,
        on_event,
    )
    .await;
    for pair in pairs.iter_mut().filter(|p| p.action == PairAction::Refresh) {
        let step = run.cluster(&pair.destination).and_then(|c| {
            c.steps
                .iter()
                .find(|s| s.source.as_deref() == Some(pair.source.as_str()))
        });
        if let Some(step) = step {
            pair.outcome = Some(step.outcome);
            pair.detail = step.error.clone().or_else(|| step.detail.clone());
        }
    }
    let succeeded = run.succeeded && pairs.iter().all(|p| p.action != PairAction::Skipped);
    Ok(TokensReport {
        dry_run: options.dry_run,
        succeeded,
        within: crate::duration::exact(within),
        pairs,
        run,
    })
}

/// Every destination's remote secrets, one list each, as the credential of each pair.
pub(crate) async fn read_pairs<C: ClusterOps>(
    spec: &MeshSpec,
    clients: &BTreeMap<String, Result<C, ClusterError>>,
    concurrency: usize,
) -> BTreeMap<(String, String), LivePair> {
    let namespace = spec.istio_namespace.as_str();
    let selector = multicluster_selector();
    let selector = selector.as_str();
    let destinations: Vec<&str> = spec.primaries().map(|c| c.name.as_str()).collect();
    let listed: Vec<(&str, Result<Vec<Value>, String>)> = futures::stream::iter(destinations)
        .map(|dst| async move {
            let items = match clients.get(dst) {
                Some(Ok(client)) => client
                    .list("v1", "Secret", Some(namespace), Some(selector))
                    .await
                    .map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err(format!("cluster {dst}: not connected")),
            };
            (dst, items)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let listed: BTreeMap<&str, Result<Vec<Value>, String>> = listed.into_iter().collect();
    let mut live = BTreeMap::new();
    for (source, destination) in spec.remote_secret_pairs() {
        let state = match listed.get(destination.as_str()) {
            Some(Err(why)) => LivePair::Unreadable(why.clone()),
            Some(Ok(items)) => {
                let name = secret_name(&source);
                items
                    .iter()
                    .find(|s| s.pointer("/metadata/name").and_then(Value::as_str) == Some(&name))
                    .and_then(|s| Credential::of_secret(s, &source))
                    .map_or(LivePair::Absent, LivePair::Present)
            }
            None => LivePair::Unreadable(format!("cluster {destination}: not read")),
        };
        live.insert((source, destination), state);
    }
    live
}
