//! `meshboot revoke --from SRC --in DST`: one pair's credential taken away. The remote secret
//! of SRC leaves DST, and the credential it held stops working in SRC:
//!
//! - a bound token: its bound object (`meshboot-reader-for-DST` in SRC) is deleted; the API
//!   server refuses the token once its token cache (about 10 s) forgets it. No other pair
//!   shares that object, so nothing else changes;
//! - a long-lived token: it is the token of a `kubernetes.io/service-account-token` Secret in
//!   SRC, which every destination of SRC shares. That Secret is deleted (which revokes the
//!   token) and made again, empty, for the token controller to fill with a new token; then the
//!   remote secret of SRC in every other destination that held the old token is re-issued with
//!   the new one, through the executor.
//!
//! The credential is told from the token itself (its claims name the bound object or the token
//! Secret), never printed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::credential::{Claims, Credential};
use crate::cluster::{ClusterError, ClusterOps, KubeConnector, ObjectRef};
use crate::execute::{CaReport, EventSink, Removal, Report};
use crate::phase::Phase;
use crate::plan::{Action, Plan, ReaderToken, Step, StepId, Wait};
use crate::remote_secret::secret_name;
use crate::rotate::{RotateError, RotateOptions};
use crate::spec::MeshSpec;

/// Which pair to revoke.
///
/// ```
/// let r = mesh_core::tokens::RevokeRequest { source: "eu".into(), destination: "us".into() };
/// assert_ne!(r.source, r.destination);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeRequest {
    /// `--from`: the cluster the credential reads.
    pub source: String,
    /// `--in`: the cluster holding the remote secret.
    pub destination: String,
}

/// What kind of credential the revoked remote secret held.
///
/// ```
/// assert_eq!(serde_json::to_value(mesh_core::tokens::RevokedKind::Bound).unwrap(), "bound");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevokedKind {
    /// A bound token of its own (`readerToken.ttl`).
    Bound,
    /// The long-lived token of a token Secret, shared by every destination of the source.
    LongLived,
    /// The destination held no remote secret of the source: nothing to revoke.
    Absent,
}

/// The result of [`revoke_with`].
#[derive(Debug, Clone, Serialize)]
pub struct RevokeReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Everything below was done.
    pub succeeded: bool,
    /// `--from`.
    pub source: String,
    /// `--in`.
    pub destination: String,
    /// What the revoked remote secret held.
    pub kind: RevokedKind,
    /// What was (or would be) deleted, and why.
    pub removed: Vec<Removal>,
    /// The destinations that received (or would receive) a new remote secret of the source.
    pub reissued: Vec<String>,
    /// Errors and what is left to do.
    pub problems: Vec<String>,
    /// What happens next, for a person.
    pub notes: Vec<String>,
    /// The token Secret and re-issued remote secrets, as `apply` reports them (long-lived
    /// tokens only, not in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Report>,
}

fn check(spec: &MeshSpec, request: &RevokeRequest) -> Result<(), RotateError> {
    for name in [&request.source, &request.destination] {
        if spec.cluster(name).is_none() {
            return Err(RotateError::UnknownCluster {
                cluster: name.clone(),
                known: spec.cluster_names().join(", "),
            });
        }
    }
    if request.source == request.destination {
        return Err(RotateError::Conflict(format!(
            "--from and --in both name {}: a cluster holds no remote secret of itself",
            request.source
        )));
    }
    Ok(())
}

/// [`revoke_with`] connecting through the kubeconfigs of the mesh file.
pub async fn revoke(
    spec: &MeshSpec,
    request: &RevokeRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<RevokeReport, RotateError> {
    check(spec, request)?;
    let clients = crate::execute::connect_with(spec, &KubeConnector::default()).await;
    revoke_with(spec, clients, request, options, on_event).await
}

/// Revokes the credential of `request.source`'s remote secret in `request.destination`.
pub async fn revoke_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    request: &RevokeRequest,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<RevokeReport, RotateError> {
    check(spec, request)?;
    let mut clients: BTreeMap<String, Result<C, ClusterError>> = clients.into_iter().collect();
    let ns = spec.istio_namespace.as_str();
    let (src, dst) = (&request.source, &request.destination);
    // Both ends must be reachable: the remote secret leaves one, the credential dies in the other.
    for name in [src, dst] {
        match clients.remove(name) {
            Some(Err(e)) => return Err(RotateError::Cluster(e)),
            Some(Ok(c)) => {
                clients.insert(name.clone(), Ok(c));
            }
            None => {
                return Err(RotateError::Conflict(format!(
                    "cluster {name}: not connected"
                )));
            }
        }
    }
    let (Some(Ok(source)), Some(Ok(destination))) = (clients.get(src), clients.get(dst)) else {
        return Err(RotateError::Conflict("not connected".into()));
    };
    let remote_ref = ObjectRef::namespaced("v1", "Secret", ns, &secret_name(src));
    let live = destination.get(&remote_ref).await?;
    let credential = live.as_ref().and_then(|s| Credential::of_secret(s, src));
    let claims = credential.as_ref().and_then(Credential::claims);
    let mut report = RevokeReport {
        dry_run: options.dry_run,
        succeeded: true,
        source: src.clone(),
        destination: dst.clone(),
        kind: RevokedKind::Absent,
        removed: Vec::new(),
        reissued: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
        run: None,
    };
    let Some(live) = live else {
        report.notes.push(format!(
            "{dst} holds no {} of {src}: there is nothing to revoke",
            remote_ref.name
        ));
        return Ok(report);
    };
    let Some(claims) = claims else {
        return Err(RotateError::Conflict(format!(
            "cluster {dst}: {remote_ref} holds no token meshboot can read (no kubeconfig for {src}, \
             or a token that is not a service-account JWT): revoke it where it was made"
        )));
    };
    let kind = match (&claims.bound_secret, &claims.legacy_secret) {
        (Some(_), _) => RevokedKind::Bound,
        (None, Some(_)) => RevokedKind::LongLived,
        (None, None) => {
            return Err(RotateError::Conflict(format!(
                "cluster {dst}: the token of {remote_ref} is bound to no Secret and comes from no \
                 token Secret of {src}: meshboot cannot invalidate it alone (delete or recreate \
                 its ServiceAccount in {src})"
            )));
        }
    };
    report.kind = kind;

    // 1. The remote secret leaves the destination first: istiod there drops the source now,
    //    not when the token stops working.
    let uid = live.pointer("/metadata/uid").and_then(Value::as_str);
    let _ = remove(
        destination,
        &remote_ref,
        uid,
        options.dry_run,
        format!("the remote secret of {src}: revoked"),
        &mut report,
    )
    .await;

    match kind {
        RevokedKind::Bound => {
            let (name, _) = claims.bound_secret.clone().unwrap_or_default();
            if !name.starts_with(super::BOUND_OBJECT_PREFIX) {
                // Another tool's object: deleting it could break whatever else it backs.
                report.problems.push(format!(
                    "the token of {} in {dst} is bound to Secret {ns}/{name} in {src}, which is not \
                     a meshboot bound object: delete it yourself if nothing else needs it",
                    remote_ref.name
                ));
                report.succeeded = false;
                return Ok(report);
            }
            let bound = ObjectRef::namespaced("v1", "Secret", ns, &name);
            let live_uid = source
                .get(&bound)
                .await?
                .and_then(|b| b.pointer("/metadata/uid")?.as_str().map(str::to_string));
            match live_uid {
                Some(uid) => {
                    let _ = remove(
                        source,
                        &bound,
                        Some(&uid),
                        options.dry_run,
                        format!(
                            "what the token of {} in {dst} is bound to: {src}'s API server \
                             refuses that token once its token cache (about 10 s) forgets it",
                            remote_ref.name
                        ),
                        &mut report,
                    )
                    .await;
                }
                None => report.notes.push(format!(
                    "{bound} is already gone from {src}: the token it backed is refused already"
                )),
            }
            report
                .notes
                .push("no other pair shares that token: nothing else was re-issued".into());
        }
        RevokedKind::LongLived => {
            let token_secret = claims.legacy_secret.clone().unwrap_or_default();
            let server = spec
                .cluster(src)
                .and_then(|c| c.api_server.clone())
                .or_else(|| credential.as_ref().map(|c| c.server.clone()))
                .unwrap_or_else(|| source.server().to_string());
            long_lived(
                spec,
                &clients,
                request,
                &claims,
                &token_secret,
                server,
                options,
                on_event,
                &mut report,
            )
            .await?;
        }
        RevokedKind::Absent => {}
    }
    report.notes.push(format!(
        "{src} → {dst} is still a pair of the mesh file: the next `meshboot apply` gives {dst} a \
         new credential for {src}; remove {src} (or {dst}) from the mesh file to keep it out"
    ));
    report.succeeded =
        report.problems.is_empty() && report.run.as_ref().is_none_or(|r| r.succeeded);
    Ok(report)
}

async fn remove<C: ClusterOps>(
    client: &C,
    object: &ObjectRef,
    uid: Option<&str>,
    dry_run: bool,
    reason: String,
    report: &mut RevokeReport,
) -> bool {
    if !dry_run && let Err(e) = client.delete(object, uid).await {
        report.problems.push(e.to_string());
        return false;
    }
    report.removed.push(Removal {
        cluster: client.name().to_string(),
        object: object.clone(),
        reason,
    });
    true
}

/// The shared token Secret made again, and every other destination that held its token
/// re-issued with the new one.
#[allow(clippy::too_many_arguments)]
async fn long_lived<C: ClusterOps>(
    spec: &MeshSpec,
    clients: &BTreeMap<String, Result<C, ClusterError>>,
    request: &RevokeRequest,
    claims: &Claims,
    token_secret: &str,
    server: String,
    options: &RotateOptions,
    on_event: EventSink<'_>,
    report: &mut RevokeReport,
) -> Result<(), RotateError> {
    let ns = spec.istio_namespace.as_str();
    let (src, dst) = (&request.source, &request.destination);
    let Some(Ok(source)) = clients.get(src) else {
        return Ok(());
    };
    let secret_ref = ObjectRef::namespaced("v1", "Secret", ns, token_secret);
    let live_secret = source.get(&secret_ref).await?;
    let service_account = live_secret
        .as_ref()
        .and_then(|s| s.pointer("/metadata/annotations/kubernetes.io~1service-account.name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| claims.service_account.clone())
        .unwrap_or_default();
    // The other destinations whose remote secret of the source holds a token of that Secret.
    let live = super::refresh::read_pairs(spec, clients, options.concurrency).await;
    let mut others = Vec::new();
    for (s, d) in spec.remote_secret_pairs() {
        if &s != src || &d == dst {
            continue;
        }
        match live.get(&(s.clone(), d.clone())) {
            Some(super::LivePair::Present(c))
                if c.claims().and_then(|c| c.legacy_secret).as_deref() == Some(token_secret) =>
            {
                others.push(d)
            }
            Some(super::LivePair::Unreadable(why)) => report.problems.push(format!(
                "{d} could not be read, so its remote secret of {src} was not re-issued: {why}; \
                 run `meshboot apply` once it is reachable (the old token no longer works)"
            )),
            _ => {}
        }
    }
    let reason = format!(
        "the token Secret of {src}'s long-lived reader token, which every destination of {src} \
         shared: deleting it revokes that token; it is made again for a new one"
    );
    let deleted = match &live_secret {
        Some(secret) => {
            let uid = secret.pointer("/metadata/uid").and_then(Value::as_str);
            remove(source, &secret_ref, uid, options.dry_run, reason, report).await
        }
        None => {
            report.notes.push(format!(
                "{secret_ref} is already gone from {src}: the token it held is refused already"
            ));
            true
        }
    };
    if !deleted {
        // The old token still works: re-issuing would hand out the same one.
        return Ok(());
    }
    if options.dry_run {
        report.reissued = others;
        return Ok(());
    }
    // The Secret again, as the token controller wants it: type, ServiceAccount annotation and
    // meshboot's labels; the controller fills a new token.
    let labels = live_secret
        .as_ref()
        .and_then(|s| s.pointer("/metadata/labels").cloned())
        .unwrap_or_else(|| json!({"app.kubernetes.io/managed-by": "meshboot"}));
    let object = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": token_secret,
            "namespace": ns,
            "labels": labels,
            "annotations": {"kubernetes.io/service-account.name": service_account},
        },
    });
    let mut steps = vec![Step {
        id: StepId(0),
        phase: Phase::Readers,
        cluster: src.clone(),
        object: secret_ref.clone(),
        action: Action::Apply {
            object: Box::new(object),
            wait: Some(Wait::Token),
        },
        source: None,
        needs: Vec::new(),
    }];
    for d in &others {
        steps.push(Step {
            id: StepId(steps.len()),
            phase: Phase::RemoteSecrets,
            cluster: d.clone(),
            object: ObjectRef::namespaced("v1", "Secret", ns, &secret_name(src)),
            action: Action::RemoteSecret {
                source: src.clone(),
            },
            source: Some(src.clone()),
            needs: vec![StepId(0)],
        });
    }
    let plan = Plan {
        clusters: spec.cluster_names().into_iter().map(String::from).collect(),
        steps,
        reader_tokens: [(
            src.clone(),
            ReaderToken {
                namespace: ns.to_string(),
                secret: token_secret.to_string(),
                service_account,
            },
        )]
        .into(),
        bound_readers: BTreeMap::new(),
        istio_namespace: spec.istio_namespace.clone(),
    };
    let usable: BTreeMap<String, C> = clients
        .iter()
        .filter(|(name, _)| plan.steps.iter().any(|s| &s.cluster == *name))
        .filter_map(|(name, c)| c.as_ref().ok().map(|c| (name.clone(), c.clone())))
        .collect();
    let context = crate::execute::PairContext {
        servers: [(src.clone(), server)].into(),
        ..Default::default()
    };
    let ca = CaReport {
        dir: spec.ca.dir.display().to_string(),
        root: "unchanged".into(),
        intermediates: Vec::new(),
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
    report.reissued = others
        .iter()
        .filter(|d| {
            run.cluster(d).is_some_and(|c| {
                c.steps
                    .iter()
                    .any(|s| s.source.as_deref() == Some(src.as_str()) && s.outcome.is_success())
            })
        })
        .cloned()
        .collect();
    report.run = Some(run);
    Ok(())
}
