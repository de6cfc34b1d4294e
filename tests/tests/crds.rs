//! Clusters start fresh — no Istio, no Gateway API — and CustomResourceDefinitions behave as on a
//! real API server: applied by a client, they are accepted and established by the server's
//! controllers, then serve their kinds; deleted, their custom resources go with them.

mod common;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use mesh_tests::TestClusters;
use serde_json::{Value, json};

fn istio_gateway(name: &str) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"istio": "eastwestgateway"},
                 "servers": [{"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "hosts": ["*.local"]}]},
    })
}

fn gateways(client: kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "Gateway"),
        "gateways",
    );
    Api::namespaced_with(client, "default", &ar)
}

#[tokio::test]
async fn a_fresh_cluster_serves_no_istio_or_gateway_api_kinds() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    assert!(!eu.serves("networking.istio.io/v1", "Gateway"));
    assert!(!eu.serves("gateway.networking.k8s.io/v1", "Gateway"));
    assert!(
        eu.list_objects("apiextensions.k8s.io/v1", "CustomResourceDefinition", None)
            .is_empty()
    );
    let api = gateways(common::admin(&clusters, "eu").await?);
    let obj: DynamicObject = serde_json::from_value(istio_gateway("cross-network-gateway"))?;
    let (code, reason, _) = common::status_of(
        api.patch(
            "cross-network-gateway",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&obj),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    Ok(())
}

#[tokio::test]
async fn installed_istio_crds_are_established_and_serve_their_kinds() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu", "ap"])?;
    clusters.install_istio_crds()?;
    for c in clusters.clusters() {
        let crd = c
            .object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "gateways.networking.istio.io",
            )
            .unwrap_or_default();
        let conditions: Vec<(String, String, String)> = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["type"].as_str().unwrap_or_default().to_string(),
                    c["status"].as_str().unwrap_or_default().to_string(),
                    c["reason"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        // What the naming and establishing controllers of a real API server write.
        assert_eq!(
            conditions,
            vec![
                ("NamesAccepted".into(), "True".into(), "NoConflicts".into()),
                (
                    "Established".into(),
                    "True".into(),
                    "InitialNamesAccepted".into()
                ),
            ]
        );
        assert_eq!(crd["status"]["acceptedNames"]["kind"], "Gateway");
        assert_eq!(crd["status"]["acceptedNames"]["shortNames"], json!(["gw"]));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
        let managers: Vec<(String, String)> = crd["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["manager"].as_str().unwrap_or_default().to_string(),
                    m["operation"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(
            managers,
            vec![
                ("kubectl".into(), "Apply".into()),
                ("kube-apiserver".into(), "Update".into())
            ],
            "applied as `kubectl apply --server-side`, status by the server"
        );
        for v in ["v1", "v1beta1", "v1alpha3"] {
            assert!(c.serves(&format!("networking.istio.io/{v}"), "Gateway"));
        }
        assert!(c.serves("security.istio.io/v1", "PeerAuthentication"));
    }
    let api = gateways(common::admin(&clusters, "eu").await?);
    let obj: DynamicObject = serde_json::from_value(istio_gateway("g"))?;
    let stored = api
        .patch("g", &PatchParams::apply("meshboot"), &Patch::Apply(&obj))
        .await?;
    assert_eq!(stored.data["spec"]["servers"][0]["port"]["number"], 15443);
    Ok(())
}

#[tokio::test]
async fn a_crd_applied_by_a_client_is_established_by_the_server() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let crds: Api<DynamicObject> = Api::all_with(
        client,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let widget = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    });
    let obj: DynamicObject = serde_json::from_value(widget)?;
    let answer = crds
        .patch(
            "widgets.example.com",
            &PatchParams::apply("helm"),
            &Patch::Apply(&obj),
        )
        .await?;
    // The apply's own answer has no status yet: the controllers write it afterwards.
    assert!(answer.data["status"]["conditions"].is_null());
    let eu = clusters.cluster("eu");
    let established = common::eventually(|| {
        eu.object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "widgets.example.com",
        )
        .filter(|c| c["status"]["conditions"][1]["type"] == "Established")
    })
    .await;
    assert!(established.is_some(), "the CRD was never established");
    assert_eq!(
        established.unwrap_or_default()["status"]["acceptedNames"],
        json!({"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"})
    );
    assert!(eu.serves("example.com/v1", "Widget"));
    Ok(())
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_resources_and_stops_serving_the_kind() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    clusters.install_istio_crds()?;
    let client = common::admin(&clusters, "eu").await?;
    let obj: DynamicObject = serde_json::from_value(istio_gateway("g"))?;
    gateways(client.clone())
        .patch("g", &PatchParams::apply("meshboot"), &Patch::Apply(&obj))
        .await?;
    let (code, _) = common::raw(
        &client,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gateways.networking.istio.io",
        "application/json",
        &json!({}),
    )
    .await?;
    assert_eq!(code, 200);
    let eu = clusters.cluster("eu");
    assert!(!eu.serves("networking.istio.io/v1", "Gateway"));
    let (code, _, _) = common::status_of(gateways(client).get("g").await);
    assert_eq!(code, 404);
    // Reinstalled, the kind is back without the old object.
    clusters.install_istio_crds()?;
    assert!(
        eu.list_objects("networking.istio.io/v1", "Gateway", Some("default"))
            .is_empty()
    );
    Ok(())
}

#[test]
fn istios_real_crd_file_installs_and_serves_every_version() -> anyhow::Result<()> {
    let path = mesh_tests::require_shared_data!(mesh_tests::crds::REAL_ISTIO_CRDS);
    let clusters = TestClusters::start(&["eu"])?;
    clusters.install_crds_from(&path)?;
    let eu = clusters.cluster("eu");
    let crds = eu.list_objects("apiextensions.k8s.io/v1", "CustomResourceDefinition", None);
    assert_eq!(crds.len(), 15, "Istio 1.30.3 ships 15 CRDs");
    for v in ["v1", "v1beta1", "v1alpha3"] {
        assert!(eu.serves(&format!("networking.istio.io/{v}"), "Gateway"));
        assert!(eu.serves(&format!("networking.istio.io/{v}"), "VirtualService"));
    }
    assert!(eu.serves("extensions.istio.io/v1alpha1", "TrafficExtension"));
    assert!(
        crds.iter()
            .all(|c| c["status"]["conditions"][1]["type"] == "Established")
    );
    // Applying the same file again changes nothing.
    let before = eu.counters().objects;
    clusters.install_crds_from(&path)?;
    assert_eq!(eu.counters().objects, before);
    Ok(())
}
