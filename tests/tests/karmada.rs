//! An emulated cluster acts as a Karmada API server: it serves `Cluster`, holds Push members'
//! credentials in `karmada-cluster`, and validates PropagationPolicy/OverridePolicy against
//! Karmada's real CRDs (`reference/karmada.md`).

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use mesh_tests::TestClusters;
use mesh_tests::karmada::{Member, SyncMode};
use serde_json::{Value, json};

fn fleet() -> anyhow::Result<TestClusters> {
    let clusters = TestClusters::start(&["karmada", "eu", "ap", "us"])?;
    let hub = clusters.cluster("karmada");
    hub.make_karmada_hub()?;
    hub.register_karmada_member(
        clusters.cluster("eu"),
        &Member::new(SyncMode::Push)
            .region("eu-west")
            .zone("eu-west-1a")
            .label("mesh", "mesh1"),
    )?;
    hub.register_karmada_member(
        clusters.cluster("ap"),
        &Member::new(SyncMode::Push).region("ap-south").not_ready(),
    )?;
    hub.register_karmada_member(
        clusters.cluster("us"),
        &Member::new(SyncMode::Pull).region("us-west"),
    )?;
    Ok(clusters)
}

async fn get(clusters: &TestClusters, path: &str) -> anyhow::Result<(u16, Value)> {
    let admin = common::admin(clusters, "karmada").await?;
    let req = axum::http::Request::builder()
        .method("GET")
        .uri(path)
        .body(Vec::new())?;
    match admin.request::<Value>(req).await {
        Ok(v) => Ok((200, v)),
        Err(kube::Error::Api(s)) => Ok((s.code, serde_json::to_value(&*s)?)),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test]
async fn the_hub_serves_cluster_objects_with_what_karmada_records() -> anyhow::Result<()> {
    let clusters = fleet()?;
    let (code, list) = get(&clusters, "/apis/cluster.karmada.io/v1alpha1/clusters").await?;
    assert_eq!(code, 200, "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let (_, eu) = get(&clusters, "/apis/cluster.karmada.io/v1alpha1/clusters/eu").await?;
    assert_eq!(eu["spec"]["syncMode"], "Push");
    assert_eq!(eu["spec"]["apiEndpoint"], clusters.cluster("eu").url());
    assert_eq!(
        eu["spec"]["id"].as_str(),
        clusters.cluster("eu").kube_system_uid().as_deref()
    );
    assert_eq!(eu["spec"]["region"], "eu-west");
    assert_eq!(eu["spec"]["zones"], json!(["eu-west-1a"]));
    assert_eq!(
        eu["spec"]["secretRef"],
        json!({"namespace": "karmada-cluster", "name": "eu"})
    );
    assert_eq!(eu["metadata"]["labels"]["mesh"], "mesh1");
    assert_eq!(
        eu["status"]["kubernetesVersion"],
        "v1.33.0-meshboot-emulator"
    );
    assert_eq!(eu["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(eu["status"]["conditions"][0]["status"], "True");
    let (_, ap) = get(&clusters, "/apis/cluster.karmada.io/v1alpha1/clusters/ap").await?;
    assert_eq!(ap["status"]["conditions"][0]["status"], "False");
    assert_eq!(
        ap["status"]["conditions"][0]["reason"],
        "ClusterNotReachable"
    );
    let (_, us) = get(&clusters, "/apis/cluster.karmada.io/v1alpha1/clusters/us").await?;
    assert_eq!(us["spec"]["syncMode"], "Pull");
    assert!(
        us["spec"].get("secretRef").is_none(),
        "Pull members have no credentials"
    );
    let hub = clusters.cluster("karmada");
    assert!(
        hub.object("v1", "Secret", Some("karmada-cluster"), "us")
            .is_none()
    );
    // Clusters are cluster-scoped; the discovery entry says so.
    let (_, rl) = get(&clusters, "/apis/cluster.karmada.io/v1alpha1").await?;
    assert_eq!(rl["resources"][0]["namespaced"], false);
    // Readiness changes as the cluster status controller would report it.
    hub.set_karmada_member_ready("ap", true)?;
    let (_, ap) = get(&clusters, "/apis/cluster.karmada.io/v1alpha1/clusters/ap").await?;
    assert_eq!(ap["status"]["conditions"][0]["reason"], "ClusterReady");
    Ok(())
}

#[tokio::test]
async fn a_push_members_secret_really_authenticates_to_it_with_full_rights() -> anyhow::Result<()> {
    let clusters = fleet()?;
    let hub = clusters.cluster("karmada");
    let secret = hub
        .object("v1", "Secret", Some("karmada-cluster"), "eu")
        .ok_or_else(|| anyhow::anyhow!("no credentials for eu"))?;
    let token =
        String::from_utf8(STANDARD.decode(secret["data"]["token"].as_str().unwrap_or_default())?)?;
    let ca = String::from_utf8(
        STANDARD.decode(secret["data"]["caBundle"].as_str().unwrap_or_default())?,
    )?;
    let eu = clusters.cluster("eu");
    assert_eq!(ca, eu.ca_pem());
    let client = common::client_as(eu, &ca, &token).await?;
    Api::<Secret>::all(client.clone())
        .list(&Default::default())
        .await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "from-karmada"}}))?;
    Api::<Namespace>::all(client)
        .create(&Default::default(), &ns)
        .await?;
    // The same token means nothing to another member.
    let ap = clusters.cluster("ap");
    let other = common::client_as(ap, ap.ca_pem(), &token).await?;
    let (code, _, _) = common::status_of(Api::<Secret>::all(other).list(&Default::default()).await);
    assert_eq!(code, 401);
    Ok(())
}

#[tokio::test]
async fn a_cluster_with_an_unknown_sync_mode_is_rejected_by_the_cluster_schema()
-> anyhow::Result<()> {
    let clusters = fleet()?;
    let admin = common::admin(&clusters, "karmada").await?;
    let (code, st) = common::raw(
        &admin,
        "POST",
        "/apis/cluster.karmada.io/v1alpha1/clusters",
        "application/json",
        &json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "mars"}, "spec": {"syncMode": "Teleport"}}),
    )
    .await?;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "Cluster.cluster.karmada.io \"mars\" is invalid: spec.syncMode: Unsupported value: \"Teleport\": supported values: \"Push\", \"Pull\""
    );
    Ok(())
}

fn propagation_policy(weight: Value) -> Value {
    json!({
        "apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {
            "resourceSelectors": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"},
                {"apiVersion": "v1", "kind": "Service", "name": "hello"},
            ],
            "placement": {
                "clusterAffinity": {"clusterNames": ["eu", "ap", "us"]},
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"staticWeightList": [
                        {"targetCluster": {"clusterNames": ["eu"]}, "weight": weight},
                        {"targetCluster": {"clusterNames": ["us"]}, "weight": 2},
                        {"targetCluster": {"clusterNames": ["ap"]}, "weight": 1},
                    ]},
                },
            },
        },
    })
}

#[tokio::test]
async fn the_real_policy_crds_accept_a_weighted_policy_and_reject_a_wrong_one() -> anyhow::Result<()>
{
    let _ = mesh_tests::require_shared_data!(mesh_tests::karmada::POLICY_CRDS[0]);
    let _ = mesh_tests::require_shared_data!(mesh_tests::karmada::POLICY_CRDS[1]);
    let clusters = fleet()?;
    let hub = clusters.cluster("karmada");
    assert_eq!(hub.install_karmada_policy_crds()?, 2);
    let admin = common::admin(&clusters, "karmada").await?;
    let path = "/apis/policy.karmada.io/v1alpha1/namespaces/default/propagationpolicies";
    let (code, st) = common::raw(
        &admin,
        "POST",
        path,
        "application/json",
        &propagation_policy(json!(2)),
    )
    .await?;
    assert_eq!(code, 200, "{st}");
    let stored = hub
        .object(
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            Some("default"),
            "hello",
        )
        .unwrap_or_default();
    // Karmada's schema defaults what the policy left out.
    assert_eq!(stored["spec"]["conflictResolution"], "Abort", "{stored}");
    let mut wrong = propagation_policy(json!("two"));
    wrong["metadata"]["name"] = json!("wrong");
    let (code, st) = common::raw(&admin, "POST", path, "application/json", &wrong).await?;
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"].as_str().is_some_and(|m| m.contains(
            "spec.placement.replicaScheduling.weightPreference.staticWeightList[0].weight in body must be of type integer"
        )),
        "{st}"
    );
    let override_policy = json!({
        "apiVersion": "policy.karmada.io/v1alpha1", "kind": "OverridePolicy",
        "metadata": {"name": "istio-system-network", "namespace": "default"},
        "spec": {
            "resourceSelectors": [{"apiVersion": "v1", "kind": "Namespace", "name": "istio-system"}],
            "overrideRules": [{
                "targetCluster": {"clusterNames": ["eu"]},
                "overriders": {"labelsOverrider": [
                    {"operator": "add", "value": {"topology.istio.io/network": "network1"}},
                ]},
            }],
        },
    });
    let (code, st) = common::raw(
        &admin,
        "POST",
        "/apis/policy.karmada.io/v1alpha1/namespaces/default/overridepolicies?fieldValidation=Strict",
        "application/json",
        &override_policy,
    )
    .await?;
    assert_eq!(code, 200, "{st}");
    Ok(())
}
