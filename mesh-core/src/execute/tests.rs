//! The executor against in-memory clusters: ordering, idempotence, partial failure, preflight.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use serde_json::json;

use super::fake::FakeCluster;
use super::*;
use crate::cluster::ObjectRef;
use crate::pki::{CaDir, CaOptions, KeyAlgorithm};
use crate::plan::Phase;

const THREE_REGIONS: &str = "apiVersion: meshboot/v1alpha1
kind: Mesh
meshID: mesh1
ca: {dir: ./pki, key: ecdsa-p256}
clusters:
  - {name: eu, network: network3, context: eu}
  - {name: ap, network: network1, context: ap}
  - {name: us, network: network2, context: us}
";

struct World {
    dir: tempfile::TempDir,
    spec: MeshSpec,
    fakes: BTreeMap<String, FakeCluster>,
}

impl World {
    fn new(yaml: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let spec = MeshSpec::from_yaml(yaml, dir.path(), "mesh.yaml").unwrap();
        let fakes = spec
            .clusters
            .iter()
            .map(|c| (c.name.clone(), FakeCluster::new(&c.name)))
            .collect();
        World { dir, spec, fakes }
    }

    fn three() -> World {
        World::new(THREE_REGIONS)
    }

    fn fake(&self, name: &str) -> &FakeCluster {
        &self.fakes[name]
    }

    fn clients(&self) -> Vec<(String, Result<FakeCluster, ClusterError>)> {
        self.fakes
            .iter()
            .map(|(n, f)| (n.clone(), Ok(f.clone())))
            .collect()
    }

    fn writes(&self) -> usize {
        self.fakes.values().map(FakeCluster::writes).sum()
    }

    async fn apply(&self, options: &ExecuteOptions) -> Report {
        apply_with(&self.spec, self.clients(), options, &|_| {})
            .await
            .unwrap()
    }

    fn remote_secrets_in(&self, cluster: &str) -> Vec<String> {
        self.fake(cluster)
            .names_of("Secret")
            .into_iter()
            .filter(|n| n.starts_with("istio-remote-secret-"))
            .collect()
    }
}

fn step_outcomes(report: &Report) -> Vec<Outcome> {
    report
        .clusters
        .iter()
        .flat_map(|c| c.steps.iter().map(|s| s.outcome))
        .collect()
}

#[tokio::test]
async fn three_regions_converge_and_a_second_run_writes_nothing() {
    let world = World::three();
    let report = world.apply(&ExecuteOptions::default()).await;
    assert!(report.succeeded, "{report:#?}");
    assert_eq!(report.totals.failed + report.totals.skipped, 0);
    assert_eq!(report.ca.as_ref().unwrap().root, "created");

    // Every cluster holds the remote secret of each other cluster, never its own.
    assert_eq!(
        world.remote_secrets_in("eu"),
        ["istio-remote-secret-ap", "istio-remote-secret-us"]
    );
    assert_eq!(
        world.remote_secrets_in("ap"),
        ["istio-remote-secret-eu", "istio-remote-secret-us"]
    );
    // The secret carries the source's token and server, keyed by the source's name.
    let secret = world
        .fake("eu")
        .object(&ObjectRef::namespaced(
            "v1",
            "Secret",
            "istio-system",
            "istio-remote-secret-us",
        ))
        .unwrap();
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["us"].as_str().unwrap())
        .unwrap();
    let kubeconfig = String::from_utf8(kubeconfig).unwrap();
    assert!(
        kubeconfig.contains("server: https://us.example.com:6443"),
        "{kubeconfig}"
    );
    assert!(kubeconfig.contains("token: token-of-us"), "{kubeconfig}");
    assert_eq!(secret["metadata"]["labels"]["istio/multiCluster"], "true");

    let written = world.writes();
    assert!(written > 0);
    let again = world.apply(&ExecuteOptions::default()).await;
    assert!(again.succeeded);
    assert_eq!(
        world.writes(),
        written,
        "a converged mesh must see no write"
    );
    assert!(
        step_outcomes(&again)
            .iter()
            .all(|o| *o == Outcome::Unchanged)
    );
    assert_eq!(again.ca.as_ref().unwrap().root, "unchanged");
}

#[tokio::test]
async fn events_cover_every_step_and_phases_in_order() {
    let world = World::three();
    let events = Mutex::new(Vec::new());
    let record = |e: &Event<'_>| {
        let line = match e {
            Event::PhaseStarted { phase, .. } => format!("start {phase}"),
            Event::PhaseDone { phase, .. } => format!("done {phase}"),
            Event::StepDone { .. } => "step".to_string(),
            _ => return,
        };
        events.lock().unwrap().push(line);
    };
    let report = apply_with(
        &world.spec,
        world.clients(),
        &ExecuteOptions::default(),
        &record,
    )
    .await
    .unwrap();
    let events = events.into_inner().unwrap();
    let steps = events.iter().filter(|l| *l == "step").count();
    assert_eq!(steps, report.totals.total());
    let phases: Vec<&String> = events.iter().filter(|l| *l != "step").collect();
    let pos = |l: &str| phases.iter().position(|p| *p == l).unwrap();
    assert!(pos("done namespace") < pos("start cacerts"));
    assert!(pos("done cacerts") < pos("start gateways"));
    assert!(pos("done gateways") < pos("start readers"));
    assert!(pos("start remote-secrets") < pos("done remote-secrets"));
}

#[tokio::test]
async fn a_cacerts_from_another_root_stops_everything_before_any_write() {
    let world = World::three();
    let other = tempfile::tempdir().unwrap();
    let opts = CaOptions {
        key: KeyAlgorithm::EcdsaP256,
        ..CaOptions::default()
    };
    let foreign = CaDir::open(other.path()).ensure(&opts, &["ap"]).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    world.fake("ap").insert(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "data": {"root-cert.pem": b64(&foreign[0].root_cert_pem)},
    }));

    let report = world.apply(&ExecuteOptions::default()).await;
    assert!(!report.succeeded);
    let stopped = report.stopped.as_deref().unwrap();
    assert!(stopped.contains("ap"), "{stopped}");
    let ap = report.cluster("ap").unwrap();
    assert_eq!(ap.status, ClusterStatus::Failed);
    assert!(ap.error.as_deref().unwrap().contains("cacerts"), "{ap:?}");
    assert_eq!(world.writes(), 0);
    assert!(
        !world.dir.path().join("pki").exists(),
        "not even the local CA is written"
    );
    assert_eq!(
        report.cluster("eu").unwrap().status,
        ClusterStatus::NotAttempted
    );
}

#[tokio::test]
async fn a_cacerts_from_the_mesh_root_is_not_a_conflict() {
    let world = World::three();
    assert!(world.apply(&ExecuteOptions::default()).await.succeeded);
    let report = world.apply(&ExecuteOptions::default()).await;
    assert!(report.succeeded, "{:?}", report.stopped);
}

#[tokio::test]
async fn an_unreachable_cluster_stops_the_run_unless_skipped() {
    let world = World::three();
    world.fake("us").set_down(true);
    let report = world.apply(&ExecuteOptions::default()).await;
    assert!(report.stopped.is_some());
    assert_eq!(
        report.cluster("us").unwrap().status,
        ClusterStatus::Unreachable
    );
    assert_eq!(world.writes(), 0);

    let skip = ExecuteOptions {
        skip_unreachable: true,
        ..ExecuteOptions::default()
    };
    let report = world.apply(&skip).await;
    assert!(!report.succeeded);
    assert!(report.stopped.is_none());
    assert_eq!(
        report.cluster("us").unwrap().status,
        ClusterStatus::Unreachable
    );
    assert_eq!(
        report.cluster("eu").unwrap().status,
        ClusterStatus::Incomplete
    );
    // eu and ap are linked to each other; nothing involving us was attempted.
    assert_eq!(world.remote_secrets_in("eu"), ["istio-remote-secret-ap"]);
    assert_eq!(world.remote_secrets_in("ap"), ["istio-remote-secret-eu"]);
    let eu = report.cluster("eu").unwrap();
    let from_us = eu
        .steps
        .iter()
        .find(|s| s.source.as_deref() == Some("us"))
        .unwrap();
    assert_eq!(from_us.outcome, Outcome::Skipped);

    // Back up: a re-run finishes the job and leaves the rest unchanged.
    world.fake("us").set_down(false);
    let report = world.apply(&skip).await;
    assert!(report.succeeded, "{report:#?}");
    assert_eq!(report.cluster("eu").unwrap().totals.created, 1);
    assert_eq!(
        world.remote_secrets_in("eu"),
        ["istio-remote-secret-ap", "istio-remote-secret-us"]
    );
}

#[tokio::test]
async fn a_failing_cluster_only_fails_what_depends_on_it() {
    let world = World::three();
    world
        .fake("ap")
        .fail_apply_of("Service/istio-eastwestgateway");
    let report = world.apply(&ExecuteOptions::default()).await;
    assert!(!report.succeeded);
    let ap = report.cluster("ap").unwrap();
    assert_eq!(ap.status, ClusterStatus::Failed);
    let failed: Vec<_> = ap
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .error
            .as_deref()
            .unwrap()
            .contains("injected failure")
    );
    // Everything after the failure on ap was not attempted, and says why.
    let after: Vec<_> = ap
        .steps
        .iter()
        .skip_while(|s| s.outcome != Outcome::Failed)
        .skip(1)
        .collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|s| s.outcome == Outcome::Skipped
        && s.error.as_deref().unwrap().contains("failed earlier on ap")));
    // eu and us are fully linked with each other.
    assert_eq!(world.remote_secrets_in("eu"), ["istio-remote-secret-us"]);
    assert_eq!(world.remote_secrets_in("us"), ["istio-remote-secret-eu"]);
    assert_eq!(
        report.cluster("eu").unwrap().status,
        ClusterStatus::Incomplete
    );
}

#[tokio::test]
async fn a_token_that_never_comes_fails_with_a_clear_timeout() {
    let world = World::three();
    world.fake("us").set_fill_tokens(false);
    let report = world.apply(&ExecuteOptions::default()).await;
    let us = report.cluster("us").unwrap();
    let failed = us
        .steps
        .iter()
        .find(|s| s.outcome == Outcome::Failed)
        .unwrap();
    assert_eq!(failed.phase, Phase::Readers);
    let error = failed.error.as_deref().unwrap();
    assert!(
        error.contains("timed out") && error.contains("no remote secret of us"),
        "{error}"
    );
    assert_eq!(world.remote_secrets_in("eu"), ["istio-remote-secret-ap"]);
}

#[tokio::test]
async fn a_loopback_server_is_refused_unless_allowed() {
    let mut world = World::three();
    world.fakes.insert(
        "ap".into(),
        FakeCluster::with_server("ap", "https://127.0.0.1:6443"),
    );
    let report = world.apply(&ExecuteOptions::default()).await;
    assert!(report.stopped.is_some());
    let error = report.cluster("ap").unwrap().error.clone().unwrap();
    assert!(
        error.contains("loopback") && error.contains("apiServer"),
        "{error}"
    );
    assert_eq!(world.writes(), 0);

    let allow = ExecuteOptions {
        allow_loopback: true,
        ..ExecuteOptions::default()
    };
    assert!(world.apply(&allow).await.succeeded);
}

#[tokio::test]
async fn dry_run_writes_nothing_and_predicts_the_outcomes() {
    let world = World::three();
    let dry = ExecuteOptions {
        dry_run: true,
        ..ExecuteOptions::default()
    };
    let report = world.apply(&dry).await;
    assert!(report.succeeded && report.dry_run);
    assert!(
        step_outcomes(&report)
            .iter()
            .all(|o| *o == Outcome::Created)
    );
    assert_eq!(report.ca.as_ref().unwrap().root, "would create");
    assert_eq!(world.writes(), 0);
    assert!(!world.dir.path().join("pki").exists());

    assert!(world.apply(&ExecuteOptions::default()).await.succeeded);
    let written = world.writes();
    let report = world.apply(&dry).await;
    assert!(
        step_outcomes(&report)
            .iter()
            .all(|o| *o == Outcome::Unchanged)
    );
    assert_eq!(world.writes(), written);
}

#[tokio::test]
async fn a_cacerts_created_under_a_running_istiod_asks_for_a_restart() {
    let world = World::three();
    world.fake("eu").insert(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": "istio-system"},
    }));
    let report = world.apply(&ExecuteOptions::default()).await;
    assert_eq!(report.notices.len(), 1);
    assert_eq!(report.notices[0].cluster, "eu");
    assert!(
        report.notices[0]
            .message
            .contains("istiod in eu must be restarted to pick it up")
    );
    assert!(
        report.notices[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("rollout restart deployment/istiod")
    );
    // Once cacerts is there, a re-run does not ask again.
    assert!(
        world
            .apply(&ExecuteOptions::default())
            .await
            .notices
            .is_empty()
    );
}

#[tokio::test]
async fn missing_permissions_stop_the_run_before_any_cluster_write() {
    let world = World::three();
    world.fake("us").deny("patch", "secrets");
    let report = world.apply(&ExecuteOptions::default()).await;
    let error = report.cluster("us").unwrap().error.clone().unwrap();
    assert!(
        error.contains("patch secrets in namespace istio-system"),
        "{error}"
    );
    assert!(report.stopped.is_some());
    assert_eq!(world.writes(), 0);
}

#[tokio::test]
async fn primary_remote_links_remotes_to_their_primary_only() {
    let world = World::new(
        "apiVersion: meshboot/v1alpha1
kind: Mesh
meshID: mesh1
model: primary-remote
ca: {dir: ./pki, key: ecdsa-p256}
clusters:
  - {name: hub, network: n1, context: hub, role: primary}
  - {name: edge1, network: n1, context: edge1, role: remote}
  - {name: edge2, network: n1, context: edge2, role: remote}
",
    );
    let report = world.apply(&ExecuteOptions::default()).await;
    assert!(report.succeeded, "{report:#?}");
    assert_eq!(
        world.remote_secrets_in("hub"),
        ["istio-remote-secret-edge1", "istio-remote-secret-edge2"]
    );
    assert!(world.remote_secrets_in("edge1").is_empty());
    assert!(world.remote_secrets_in("edge2").is_empty());
}

#[tokio::test]
async fn the_report_serialises_without_secret_material() {
    let world = World::three();
    let report = world.apply(&ExecuteOptions::default()).await;
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("token-of-"));
    assert!(!json.contains("PRIVATE KEY"));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["clusters"][0]["cluster"], "eu");
    assert_eq!(value["clusters"][0]["steps"][0]["outcome"], "created");
    assert_eq!(
        value["clusters"][0]["steps"][0]["object"]["kind"],
        "Namespace"
    );
    assert_eq!(value["totals"]["failed"], 0);
}
