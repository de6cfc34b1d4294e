//! Minting the rotation job's credentials: the narrow identity of
//! [`mesh_cluster_objects`](crate::render::rotation_job::mesh_cluster_objects) applied in every
//! mesh cluster through the executor, then the token the token controller puts into its Secret.

use std::collections::BTreeMap;

use super::intermediate::cacerts_step;
use super::{RotateError, RotateOptions};
use crate::cluster::{ClusterError, ClusterOps, ObjectRef};
use crate::execute::{CaReport, EventSink, Report};
use crate::phase::Phase;
use crate::plan::{Action, Plan, Step, StepId};
use crate::render::rotation_job::{JobOptions, TOKEN_SECRET, mesh_cluster_objects};
use crate::spec::MeshSpec;

/// What minting gives: per mesh cluster `(server, CA bundle, token)` for the job's kubeconfig,
/// and the run that applied the identities. `Debug` never shows a token.
pub struct JobCredentials {
    /// Per cluster: the server other clusters use, the cluster CA, the token.
    pub clusters: BTreeMap<String, (String, Vec<u8>, String)>,
    /// The writes, as `apply` reports them.
    pub report: Report,
    /// Clusters whose token could not be had, with why.
    pub failed: BTreeMap<String, String>,
}

impl std::fmt::Debug for JobCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCredentials")
            .field("clusters", &self.clusters.keys())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Applies the job's identity in every mesh cluster and reads its token back.
pub async fn mint_job_credentials_with<C: ClusterOps>(
    spec: &MeshSpec,
    clients: Vec<(String, Result<C, ClusterError>)>,
    job: &JobOptions,
    options: &RotateOptions,
    on_event: EventSink<'_>,
) -> Result<JobCredentials, RotateError> {
    let mut steps: Vec<Step> = Vec::new();
    for cluster in &spec.clusters {
        let mut previous: Option<StepId> = None;
        for object in mesh_cluster_objects(spec, job) {
            let id = StepId(steps.len());
            let mut step = cacerts_step(id.0, spec, &cluster.name, object.clone());
            step.phase = Phase::Readers;
            step.object = ObjectRef::from_object(&object).map_err(|reason| {
                RotateError::Conflict(format!("rendering the job identity: {reason}"))
            })?;
            step.action = Action::Apply {
                object: Box::new(object),
                wait: None,
            };
            step.needs = previous.into_iter().collect();
            previous = Some(id);
            steps.push(step);
        }
    }
    let plan = Plan {
        clusters: spec.cluster_names().into_iter().map(String::from).collect(),
        steps,
        reader_tokens: BTreeMap::new(),
        bound_readers: BTreeMap::new(),
        istio_namespace: spec.istio_namespace.clone(),
    };
    let mut usable = BTreeMap::new();
    let mut excluded = BTreeMap::new();
    for (name, client) in clients {
        match client {
            Ok(c) => {
                usable.insert(name, c);
            }
            Err(e) => {
                excluded.insert(name, e.to_string());
            }
        }
    }
    let ca = CaReport {
        dir: spec.ca.dir.display().to_string(),
        root: "unchanged".into(),
        intermediates: Vec::new(),
    };
    let report = crate::execute::run_plan(
        spec,
        &plan,
        usable.clone(),
        excluded.clone(),
        &options.execute(),
        ca,
        on_event,
    )
    .await;
    let mut clusters = BTreeMap::new();
    let mut failed = excluded;
    for cluster in &spec.clusters {
        let Some(client) = usable.get(&cluster.name) else {
            continue;
        };
        let ok = report
            .cluster(&cluster.name)
            .is_some_and(|r| r.steps.iter().all(|s| s.outcome.is_success()));
        if !ok {
            failed.insert(
                cluster.name.clone(),
                "the job identity could not be applied (see the steps)".into(),
            );
            continue;
        }
        if options.dry_run {
            continue;
        }
        match client
            .wait_for_token_secret(&spec.istio_namespace, TOKEN_SECRET, options.timeout)
            .await
        {
            Ok(token) => {
                let server = cluster
                    .api_server
                    .clone()
                    .unwrap_or_else(|| client.server().to_string());
                clusters.insert(cluster.name.clone(), (server, token.ca_crt, token.token));
            }
            Err(e) => {
                failed.insert(cluster.name.clone(), e.to_string());
            }
        }
    }
    Ok(JobCredentials {
        clusters,
        report,
        failed,
    })
}
