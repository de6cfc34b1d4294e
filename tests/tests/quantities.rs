//! Resource quantities come back as a real API server stores them (apimachinery's canonical
//! form: `2000m` → `2`, `1024Mi` → `1Gi`, `1000Mi` stays), on create, update, patch and
//! server-side apply, in quantity fields of built-in kinds only.

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use mesh_tests::TestClusters;
use serde_json::{Value, json};

fn deployment(cpu: &str, memory: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istio-eastwestgateway", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "gw"}}, "template": {
            "metadata": {"labels": {"app": "gw"}},
            "spec": {"containers": [{"name": "istio-proxy", "image": "proxyv2",
                "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": "2000m", "memory": "1000Mi"}}}]}}},
    })
}

fn resources(obj: &Value) -> Value {
    obj["spec"]["template"]["spec"]["containers"][0]["resources"].clone()
}

async fn deployments(clusters: &TestClusters) -> anyhow::Result<Api<Deployment>> {
    Ok(Api::namespaced(
        common::admin(clusters, "eu").await?,
        "default",
    ))
}

#[tokio::test]
async fn create_stores_canonical_quantities() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = deployments(&clusters).await?;
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment("0.5", "1024Mi"))?,
        )
        .await?;
    let expected = json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1000Mi"}});
    assert_eq!(resources(&serde_json::to_value(&created)?), expected);
    let stored = clusters
        .cluster("eu")
        .object(
            "apps/v1",
            "Deployment",
            Some("default"),
            "istio-eastwestgateway",
        )
        .unwrap_or_default();
    assert_eq!(resources(&stored), expected, "what a later get returns");
    Ok(())
}

#[tokio::test]
async fn update_and_patches_store_canonical_quantities() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = deployments(&clusters).await?;
    api.create(
        &PostParams::default(),
        &serde_json::from_value(deployment("100m", "128Mi"))?,
    )
    .await?;

    let mut live = serde_json::to_value(api.get("istio-eastwestgateway").await?)?;
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] =
        json!("1.5");
    let replaced = api
        .replace(
            "istio-eastwestgateway",
            &PostParams::default(),
            &serde_json::from_value(live)?,
        )
        .await?;
    assert_eq!(
        resources(&serde_json::to_value(&replaced)?)["requests"]["cpu"],
        "1500m"
    );

    let merged = api
        .patch(
            "istio-eastwestgateway",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "istio-proxy", "image": "proxyv2",
                "resources": {"requests": {"memory": "2048Mi"}}}]}}}})),
        )
        .await?;
    assert_eq!(
        resources(&serde_json::to_value(&merged)?)["requests"],
        json!({"memory": "2Gi"}),
        "a merge patch replaces the containers list"
    );

    let strategic = api
        .patch(
            "istio-eastwestgateway",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"template": {"spec": {"containers": [{"name": "istio-proxy",
                "resources": {"limits": {"cpu": 4}}}]}}}}),
            ),
        )
        .await?;
    assert_eq!(
        resources(&serde_json::to_value(&strategic)?)["limits"],
        json!({"cpu": "4"}),
        "a number is read as the quantity it spells"
    );
    Ok(())
}

#[tokio::test]
async fn server_side_apply_stores_canonical_quantities_and_a_reapply_changes_nothing()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = deployments(&clusters).await?;
    let params = PatchParams::apply("meshboot");
    let desired: Deployment = serde_json::from_value(deployment("2000m", "1024Mi"))?;
    let applied = api
        .patch("istio-eastwestgateway", &params, &Patch::Apply(&desired))
        .await?;
    assert_eq!(
        resources(&serde_json::to_value(&applied)?),
        json!({"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1000Mi"}})
    );
    // Applied again, canonical or not, it is a no-op: same resourceVersion, even a second later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before = api
        .get("istio-eastwestgateway")
        .await?
        .metadata
        .resource_version;
    let mut canonical = deployment("2", "1Gi");
    canonical["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
        json!("2");
    let canonical: Deployment = serde_json::from_value(canonical)?;
    let again = api
        .patch("istio-eastwestgateway", &params, &Patch::Apply(&canonical))
        .await?;
    assert_eq!(again.metadata.resource_version, before);
    let again = api
        .patch("istio-eastwestgateway", &params, &Patch::Apply(&desired))
        .await?;
    assert_eq!(again.metadata.resource_version, before);
    Ok(())
}

#[tokio::test]
async fn another_managers_canonical_value_conflicts_with_an_applied_spelling() -> anyhow::Result<()>
{
    // Server-side apply compares values as written: a live "2" owned by helm and an applied
    // "2000m" differ, so the apply conflicts although both mean two CPUs.
    let clusters = TestClusters::start(&["eu"])?;
    let api = deployments(&clusters).await?;
    let chart: Deployment = serde_json::from_value(deployment("2", "1Gi"))?;
    api.patch(
        "istio-eastwestgateway",
        &PatchParams::apply("helm"),
        &Patch::Apply(&chart),
    )
    .await?;
    let other: Deployment = serde_json::from_value(deployment("2000m", "1Gi"))?;
    let (code, _, message) = common::status_of(
        api.patch(
            "istio-eastwestgateway",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&other),
        )
        .await,
    );
    assert_eq!(code, 409);
    // Both cpu fields: helm applied limits.cpu as "2000m" too, but the server stored "2".
    assert_eq!(
        message,
        "Apply failed with 2 conflicts: conflicts with \"helm\":\n\
         - .spec.template.spec.containers[name=\"istio-proxy\"].resources.limits.cpu\n\
         - .spec.template.spec.containers[name=\"istio-proxy\"].resources.requests.cpu"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreadable_quantity_is_refused_as_the_decoder_refuses_it() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = deployments(&clusters).await?;
    let (code, reason, message) = common::status_of(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(deployment("lots", "1Gi"))?,
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    assert!(
        message.contains("quantities must match the regular expression"),
        "{message}"
    );
    assert!(
        clusters.cluster("eu").counters().objects == 12,
        "nothing stored"
    );
    Ok(())
}

#[tokio::test]
async fn custom_resources_keep_quantities_as_written() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    clusters.install_istio_crds()?;
    let client = common::admin(&clusters, "eu").await?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "ProxyConfig"),
        "proxyconfigs",
    );
    // Served in v1beta1 only; use that version.
    let ar = ApiResource {
        version: "v1beta1".into(),
        api_version: "networking.istio.io/v1beta1".into(),
        ..ar
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "ProxyConfig",
        "metadata": {"name": "p"}, "spec": {"concurrency": 2, "resources": {"cpu": "2000m"}},
    }))?;
    let stored = api
        .patch("p", &PatchParams::apply("meshboot"), &Patch::Apply(&obj))
        .await?;
    assert_eq!(stored.data["spec"]["resources"]["cpu"], "2000m");
    Ok(())
}
