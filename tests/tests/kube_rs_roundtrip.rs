//! kube-rs (the client meshboot uses) round-trips every kind the emulator serves through
//! discovery, server-side apply, get, list, the three patch types and delete.

mod common;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use mesh_tests::TestClusters;
use serde_json::{Value, json};

fn samples() -> Vec<Value> {
    let meta = |name: &str| json!({"name": name, "namespace": "rt", "labels": {"app": "rt"}});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rt-extra", "labels": {"app": "rt"}}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("s"), "type": "Opaque", "data": {"k": "dg=="}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm"), "data": {"k": "v"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("svc"), "spec": {"selector": {"app": "rt"}, "ports": [{"name": "http", "port": 80}]}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("sa")}),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("svc"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("dep"), "spec": {"selector": {"matchLabels": {"app": "rt"}},
            "template": {"metadata": {"labels": {"app": "rt"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("r"), "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("rb"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "rt"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "rt-reader", "labels": {"app": "rt"}},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "rt-reader", "labels": {"app": "rt"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "rt-reader"}, "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "rt"}]}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta("svc-abc"), "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"name": "http", "port": 80}]}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": meta("cross-network-gateway"),
            "spec": {"selector": {"istio": "eastwestgateway"}, "servers": [{"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.local"]}]}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta("istiod-vs"),
            "spec": {"hosts": ["*"], "gateways": ["istiod-gateway"], "tls": [{"match": [{"port": 15012, "sniHosts": ["*"]}], "route": [{"destination": {"host": "istiod.istio-system.svc.cluster.local", "port": {"number": 15012}}}]}]}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": meta("dr"), "spec": {"host": "x.rt.svc.cluster.local"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": meta("istio-eastwest"),
            "spec": {"gatewayClassName": "istio-east-west", "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("ztunnel"), "spec": {"selector": {"matchLabels": {"app": "rt"}},
            "template": {"metadata": {"labels": {"app": "rt"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("sts"), "spec": {"selector": {"matchLabels": {"app": "rt"}}, "serviceName": "svc",
            "template": {"metadata": {"labels": {"app": "rt"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("istiod"),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "istiod"}, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("istiod"),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "istiod"}}}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "istio-sidecar-injector", "labels": {"app": "rt"}},
            "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system", "path": "/inject", "port": 443}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "istiod-default-validator", "labels": {"app": "rt"}},
            "webhooks": [{"name": "validation.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system", "path": "/validate"}},
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["networking.istio.io"], "apiVersions": ["*"], "resources": ["*"]}]}]}),
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com", "labels": {"app": "rt"}},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    ]
}

async fn round_trip(client: &kube::Client, sample: &Value) -> anyhow::Result<()> {
    let obj: DynamicObject = serde_json::from_value(sample.clone())?;
    let types = obj
        .types
        .clone()
        .ok_or_else(|| anyhow::anyhow!("sample without types"))?;
    let gvk = GroupVersionKind::try_from(&types)?;
    let (ar, caps) = pinned_kind(client, &gvk).await?;
    let name = obj.metadata.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), "rt", &ar),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    let ctx = format!("{} {name}", gvk.kind);

    let applied = api
        .patch(&name, &PatchParams::apply("meshboot"), &Patch::Apply(&obj))
        .await?;
    let uid = applied.metadata.uid.clone();
    assert!(uid.is_some(), "{ctx}: uid set");
    assert!(
        applied.metadata.creation_timestamp.is_some(),
        "{ctx}: creationTimestamp set"
    );
    // Controllers (the Deployment stand-in) write status shortly after; let them settle so only
    // the second apply could change the resourceVersion.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let rv = api.get(&name).await?.metadata.resource_version;
    assert!(rv.is_some(), "{ctx}: resourceVersion set");

    let again = api
        .patch(&name, &PatchParams::apply("meshboot"), &Patch::Apply(&obj))
        .await?;
    assert_eq!(
        again.metadata.resource_version, rv,
        "{ctx}: an unchanged apply keeps the resourceVersion"
    );

    let got = api.get(&name).await?;
    assert_eq!(
        got.metadata.uid, uid,
        "{ctx}: get returns the applied object"
    );
    let managers: Vec<String> = got
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"meshboot".to_string()),
        "{ctx}: managedFields name the manager: {managers:?}"
    );

    let listed = api.list(&ListParams::default().labels("app=rt")).await?;
    assert!(
        listed
            .items
            .iter()
            .any(|o| o.metadata.name.as_deref() == Some(name.as_str())),
        "{ctx}: list by label finds it"
    );
    let by_name = api
        .list(&ListParams::default().fields(&format!("metadata.name={name}")))
        .await?;
    assert_eq!(
        by_name.items.len(),
        1,
        "{ctx}: field selector on metadata.name"
    );

    let merged = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"merge": "yes"}}})),
        )
        .await?;
    assert_eq!(
        merged
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("merge"))
            .map(String::as_str),
        Some("yes"),
        "{ctx}: merge patch"
    );
    assert_ne!(
        merged.metadata.resource_version, rv,
        "{ctx}: a change bumps the resourceVersion"
    );

    let ops: json_patch::Patch = serde_json::from_value(
        json!([{"op": "add", "path": "/metadata/annotations", "value": {"json": "yes"}}]),
    )?;
    let patched = api
        .patch(&name, &PatchParams::default(), &Patch::<Value>::Json(ops))
        .await?;
    assert_eq!(
        patched
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("json"))
            .map(String::as_str),
        Some("yes"),
        "{ctx}: JSON patch"
    );

    let smp = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"merge": null, "smp": "yes"}}})),
        )
        .await?;
    let labels = smp.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        (labels.get("smp").map(String::as_str), labels.get("merge")),
        (Some("yes"), None),
        "{ctx}: strategic merge patch"
    );

    api.delete(&name, &DeleteParams::default()).await?;
    assert!(api.get_opt(&name).await?.is_none(), "{ctx}: deleted");
    Ok(())
}

#[tokio::test]
async fn every_kind_round_trips_through_kube_rs() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    clusters.install_istio_crds()?;
    clusters.install_gateway_api_crds()?;
    let client = common::admin(&clusters, "eu").await?;
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "rt"}}))?,
    )
    .await?;
    for sample in samples() {
        round_trip(&client, &sample)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", sample["kind"]))?;
    }
    Ok(())
}

#[tokio::test]
async fn a_crd_registers_a_new_kind_that_kube_rs_can_use() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let crd = samples()
        .into_iter()
        .find(|s| s["kind"] == "CustomResourceDefinition")
        .unwrap_or_default();
    let obj: DynamicObject = serde_json::from_value(crd)?;
    let (ar, _) = pinned_kind(
        &client,
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    )
    .await?;
    Api::<DynamicObject>::all_with(client.clone(), &ar)
        .patch(
            "widgets.example.com",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&obj),
        )
        .await?;
    let (widget_ar, caps) = pinned_kind(
        &client,
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
    )
    .await?;
    assert_eq!(caps.scope, Scope::Namespaced);
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_ar);
    let w: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}),
    )?;
    widgets
        .patch("w", &PatchParams::apply("meshboot"), &Patch::Apply(&w))
        .await?;
    assert_eq!(widgets.get("w").await?.data["spec"]["size"], 3);
    Ok(())
}

#[tokio::test]
async fn typed_secret_data_round_trips_as_bytes() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let secrets: Api<Secret> = Api::namespaced(common::admin(&clusters, "eu").await?, "default");
    let mut s = Secret::default();
    s.metadata.name = Some("cacerts".into());
    s.data = Some(
        [(
            "root-cert.pem".to_string(),
            ByteString(b"-----BEGIN CERTIFICATE-----\n".to_vec()),
        )]
        .into(),
    );
    s.string_data = Some([("extra".to_string(), "plain".to_string())].into());
    secrets
        .patch(
            "cacerts",
            &PatchParams::apply("meshboot").force(),
            &Patch::Apply(&s),
        )
        .await?;
    let got = secrets.get("cacerts").await?;
    let data = got.data.unwrap_or_default();
    assert_eq!(
        data.get("root-cert.pem").map(|b| b.0.clone()),
        Some(b"-----BEGIN CERTIFICATE-----\n".to_vec())
    );
    assert_eq!(
        data.get("extra").map(|b| b.0.clone()),
        Some(b"plain".to_vec()),
        "stringData is merged into data"
    );
    assert!(got.string_data.is_none(), "stringData is not stored");
    assert_eq!(got.type_.as_deref(), Some("Opaque"));
    Ok(())
}

#[tokio::test]
async fn delete_collection_honours_the_label_selector() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    for (name, app) in [("a", "mesh"), ("b", "mesh"), ("c", "other")] {
        eu.insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "labels": {"app": app}}}))?;
    }
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(common::admin(&clusters, "eu").await?, "default");
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=mesh"),
    )
    .await?;
    let left: Vec<String> = eu
        .list_objects("v1", "ConfigMap", Some("default"))
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    // kube-root-ca.crt (every namespace has it) is not labelled app=mesh either.
    assert_eq!(left, vec!["c".to_string(), "kube-root-ca.crt".to_string()]);
    Ok(())
}

#[tokio::test]
async fn a_watch_list_ends_its_initial_events_with_a_bookmark() -> anyhow::Result<()> {
    // client-go's reflector (kubectl 1.35, Helm 4's --wait) lists by watching with
    // sendInitialEvents=true and waits for the bookmark annotated k8s.io/initial-events-end.
    use futures::StreamExt as _;
    use kube::api::{WatchEvent, WatchParams};
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    for name in ["a", "b"] {
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}}))?,
            )
            .await?;
    }
    let mut stream = secrets
        .watch(&WatchParams::streaming_lists().timeout(5), "0")
        .await?
        .boxed();
    let mut added = Vec::new();
    let bookmark = loop {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(s))) => added.push(s.metadata.name.unwrap_or_default()),
            Some(Ok(WatchEvent::Bookmark(b))) => break b,
            other => anyhow::bail!("unexpected watch event {other:?}"),
        }
    };
    assert_eq!(added, ["a", "b"]);
    assert_eq!(
        bookmark
            .metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(bookmark.types.kind, "Secret");
    Ok(())
}
