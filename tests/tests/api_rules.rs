//! The API server's rules as a client sees them: authentication, authorisation, validation,
//! conflicts and their `Status` bodies.

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use mesh_tests::TestClusters;
use serde_json::{Value, json};

fn cm(name: &str, data: Value) -> anyhow::Result<ConfigMap> {
    Ok(serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
    )?)
}

/// Server-side applies ConfigMap `c` holding `data` through `api` with `params`.
async fn apply_c(
    api: &Api<ConfigMap>,
    params: &PatchParams,
    data: Value,
) -> anyhow::Result<kube::Result<ConfigMap>> {
    let object = cm("c", data)?;
    Ok(api.patch("c", params, &Patch::Apply(object)).await)
}

#[tokio::test]
async fn unknown_token_is_401_and_wrong_ca_fails_tls() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu", "ap"])?;
    let eu = clusters.cluster("eu");
    let bad = common::client_as(eu, eu.ca_pem(), "not-a-token").await?;
    let (code, reason, _) =
        common::status_of(Api::<Namespace>::all(bad).list(&Default::default()).await);
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"));

    // ap's CA does not vouch for eu's serving certificate: the TLS handshake fails.
    let wrong_ca = common::client_as(eu, clusters.cluster("ap").ca_pem(), eu.admin_token()).await?;
    let r = Api::<Namespace>::all(wrong_ca)
        .list(&Default::default())
        .await;
    assert!(
        r.is_err() && !matches!(r, Err(kube::Error::Api(_))),
        "expected a TLS failure, got {r:?}"
    );
    Ok(())
}

#[tokio::test]
async fn service_account_without_rbac_gets_403_with_the_real_message() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let admin = common::admin(&clusters, "eu").await?;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "reader"}}))?;
    Api::<ServiceAccount>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &sa)
        .await?;
    let token_request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}});
    let (code, tr) = common::raw(
        &admin,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/reader/token",
        "application/json",
        &token_request,
    )
    .await?;
    assert_eq!(code, 200);
    let token = tr["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reader = common::client_as(eu, eu.ca_pem(), &token).await?;

    let (code, reason, message) = common::status_of(
        Api::<Secret>::namespaced(reader.clone(), "x")
            .list(&Default::default())
            .await,
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "secrets is forbidden: User \"system:serviceaccount:default:reader\" cannot list resource \"secrets\" in API group \"\" in the namespace \"x\""
    );

    // Least privilege: a Role allowing get on one Secret name allows exactly that.
    let rbac =
        |v: Value| -> anyhow::Result<kube::api::DynamicObject> { Ok(serde_json::from_value(v)?) };
    let roles = kube::discovery::pinned_kind(
        &admin,
        &kube::core::GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "Role"),
    )
    .await?
    .0;
    let bindings = kube::discovery::pinned_kind(
        &admin,
        &kube::core::GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"),
    )
    .await?
    .0;
    Api::<kube::api::DynamicObject>::namespaced_with(admin.clone(), "default", &roles)
        .patch("cacerts-reader", &PatchParams::apply("t"), &Patch::Apply(rbac(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "cacerts-reader"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["cacerts"]}]}))?))
        .await?;
    Api::<kube::api::DynamicObject>::namespaced_with(admin.clone(), "default", &bindings)
        .patch("cacerts-reader", &PatchParams::apply("t"), &Patch::Apply(rbac(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "cacerts-reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cacerts-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}]}))?))
        .await?;
    let secrets = Api::<Secret>::namespaced(reader, "default");
    let (code, _, _) = common::status_of(secrets.get("cacerts").await);
    assert_eq!(code, 404, "allowed, and the Secret does not exist yet");
    let (code, _, message) = common::status_of(secrets.get("other").await);
    assert_eq!(code, 403);
    assert!(
        message.starts_with("secrets \"other\" is forbidden"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn missing_namespace_is_404_naming_it() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = Api::<ConfigMap>::namespaced(common::admin(&clusters, "eu").await?, "istio-system");
    let (code, reason, message) = common::status_of(
        api.create(&PostParams::default(), &cm("c", json!({}))?)
            .await,
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "namespaces \"istio-system\" not found")
    );
    let (code, _, _) = common::status_of(apply_c(&api, &PatchParams::apply("m"), json!({})).await?);
    assert_eq!(
        code, 404,
        "apply cannot create into a missing namespace either"
    );
    Ok(())
}

#[tokio::test]
async fn create_twice_is_409_already_exists_and_stale_update_is_409_conflict() -> anyhow::Result<()>
{
    let clusters = TestClusters::start(&["eu"])?;
    let api = Api::<ConfigMap>::namespaced(common::admin(&clusters, "eu").await?, "default");
    let first = api
        .create(&PostParams::default(), &cm("c", json!({"a": "1"}))?)
        .await?;
    let (code, reason, message) = common::status_of(
        api.create(&PostParams::default(), &cm("c", json!({}))?)
            .await,
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (409, "AlreadyExists", "configmaps \"c\" already exists")
    );

    let mut fresh = first.clone();
    fresh.data = Some([("a".to_string(), "2".to_string())].into());
    let updated = api.replace("c", &PostParams::default(), &fresh).await?;
    assert_ne!(
        updated.metadata.resource_version,
        first.metadata.resource_version
    );

    let mut stale = first;
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let (code, reason, message) =
        common::status_of(api.replace("c", &PostParams::default(), &stale).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );
    assert_eq!(
        api.get("c")
            .await?
            .data
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("2")
    );
    Ok(())
}

#[tokio::test]
async fn apply_conflicts_name_the_other_manager_and_force_takes_ownership() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = Api::<ConfigMap>::namespaced(common::admin(&clusters, "eu").await?, "default");
    apply_c(
        &api,
        &PatchParams::apply("helm"),
        json!({"mesh": "a", "other": "x"}),
    )
    .await??;

    let (code, reason, message) = common::status_of(
        apply_c(&api, &PatchParams::apply("meshboot"), json!({"mesh": "b"})).await?,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    // An applier is named alone (apimachinery's printManager); updaters get "using <version>".
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"helm\": .data.mesh"
    );

    let forced = apply_c(
        &api,
        &PatchParams::apply("meshboot").force(),
        json!({"mesh": "b"}),
    )
    .await??;
    assert_eq!(
        forced
            .data
            .clone()
            .unwrap_or_default()
            .get("mesh")
            .map(String::as_str),
        Some("b")
    );
    let owners: Vec<(String, String)> = forced
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.fields_v1
                    .as_ref()
                    .map(|f| f.0.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        owners
            .iter()
            .any(|(m, f)| m == "meshboot" && f.contains("f:mesh")),
        "{owners:?}"
    );
    assert!(
        owners
            .iter()
            .any(|(m, f)| m == "helm" && f.contains("f:other") && !f.contains("f:mesh")),
        "{owners:?}"
    );

    // The manager stops applying a field: it disappears.
    let pruned = apply_c(&api, &PatchParams::apply("helm"), json!({})).await??;
    assert_eq!(
        pruned
            .data
            .unwrap_or_default()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec!["mesh".to_string()]
    );
    Ok(())
}

#[tokio::test]
async fn names_labels_and_annotations_are_validated() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let post = |body: Value| {
        let client = client.clone();
        async move {
            common::raw(
                &client,
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                &body,
            )
            .await
        }
    };
    let (code, s) =
        post(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}))
            .await?;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    assert!(s["message"].as_str().unwrap_or_default().starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));

    let (code, s) = post(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "labels": {"enabled": true}}})).await?;
    assert_eq!(
        (code, s["reason"].as_str()),
        (400, Some("BadRequest")),
        "a bool label value is a decode error: {s}"
    );

    let (code, s) = post(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "annotations": {"n": 5}}})).await?;
    assert_eq!(code, 400, "{s}");

    let (code, s) = post(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "labels": {"topology.istio.io/network": "net 1"}}})).await?;
    assert_eq!(code, 422, "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or_default()
            .contains("metadata.labels: Invalid value: \"net 1\""),
        "{s}"
    );

    let (code, _) = common::raw(
        &client,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}),
    )
    .await?;
    assert_eq!(code, 422, "namespace names are DNS labels");

    let (code, s) = post(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok", "labels": {"topology.istio.io/network": "network1"}}})).await?;
    assert_eq!(code, 200, "{s}");
    Ok(())
}

#[tokio::test]
async fn secret_rules_base64_string_data_and_immutable_type() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let (code, s) = common::raw(&client, "POST", "/api/v1/namespaces/default/secrets", "application/json",
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64!"}})).await?;
    assert_eq!(code, 400, "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or_default()
            .contains("illegal base64 data"),
        "{s}"
    );

    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"token": "abc"}}))?;
    let created = secrets.create(&PostParams::default(), &s).await?;
    assert_eq!(
        created
            .data
            .unwrap_or_default()
            .get("token")
            .map(|b| b.0.clone()),
        Some(b"abc".to_vec())
    );
    let stored = clusters
        .cluster("eu")
        .object("v1", "Secret", Some("default"), "s")
        .unwrap_or_default();
    assert_eq!(stored["data"]["token"], "YWJj");
    assert!(stored.get("stringData").is_none());

    let (code, reason, message) = common::status_of(
        secrets
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Merge(json!({"type": "kubernetes.io/tls"})),
            )
            .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        message,
        "Secret \"s\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable"
    );

    let (code, _, message) = common::status_of(
        secrets
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"name": "t"}})),
            )
            .await,
    );
    assert_eq!(code, 422, "{message}");
    Ok(())
}

#[tokio::test]
async fn unchanged_apply_writes_nothing_visible_but_counts_as_a_write_request() -> anyhow::Result<()>
{
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let api = Api::<ConfigMap>::namespaced(common::admin(&clusters, "eu").await?, "default");
    let first = apply_c(&api, &PatchParams::apply("meshboot"), json!({"a": "1"})).await??;
    eu.reset_counters();
    let again = apply_c(&api, &PatchParams::apply("meshboot"), json!({"a": "1"})).await??;
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );
    let c = eu.counters();
    assert_eq!((c.requests("apply"), c.writes), (1, 1));

    eu.reset_counters();
    let got = api.get("c").await?;
    assert_eq!(
        got.metadata.resource_version,
        first.metadata.resource_version
    );
    assert_eq!(
        (eu.counters().requests("get"), eu.counters().writes),
        (1, 0),
        "a read is not a write"
    );

    let dry = apply_c(
        &api,
        &PatchParams::apply("meshboot").dry_run(),
        json!({"a": "2"}),
    )
    .await??;
    assert_eq!(
        dry.data.unwrap_or_default().get("a").map(String::as_str),
        Some("2"),
        "dry run answers with the result"
    );
    assert_eq!(
        api.get("c")
            .await?
            .data
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("1"),
        "dry run stores nothing"
    );
    assert_eq!(eu.counters().writes, 0);

    api.delete("c", &DeleteParams::default()).await?;
    assert_eq!(eu.counters().writes, 1);
    Ok(())
}

#[tokio::test]
async fn discovery_documents_list_the_kinds_meshboot_uses() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let req = axum::http::Request::get(path).body(Vec::new())?;
            anyhow::Ok(client.request::<Value>(req).await?)
        }
    };
    assert_eq!(get("/api").await?["versions"], json!(["v1"]));
    let groups: Vec<String> = get("/apis").await?["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str().map(str::to_string))
        .collect();
    for g in [
        "apps",
        "rbac.authorization.k8s.io",
        "discovery.k8s.io",
        "authorization.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "autoscaling",
        "policy",
    ] {
        assert!(
            groups.contains(&g.to_string()),
            "{g} missing from {groups:?}"
        );
    }
    // A fresh cluster: Istio's and the Gateway API's groups appear only with their CRDs.
    for g in ["networking.istio.io", "gateway.networking.k8s.io"] {
        assert!(
            !groups.contains(&g.to_string()),
            "{g} served before its CRDs"
        );
    }
    clusters.install_istio_crds()?;
    clusters.install_gateway_api_crds()?;
    let groups = get("/apis").await?.to_string();
    assert!(groups.contains("networking.istio.io") && groups.contains("gateway.networking.k8s.io"));
    let istio = get("/apis/networking.istio.io/v1").await?;
    let names: Vec<&str> = istio["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"gateways")
            && names.contains(&"virtualservices")
            && names.contains(&"destinationrules")
    );
    assert_eq!(get("/version").await?["major"], "1");
    assert!(get("/openapi/v3").await?["paths"]["api/v1"]["serverRelativeURL"].is_string());
    Ok(())
}

#[tokio::test]
async fn services_get_the_real_defaults_and_keep_their_allocations() -> anyhow::Result<()> {
    // No load-balancer address during the test: only the applies change the Service.
    let opts = mesh_tests::EmulatorOptions {
        lb_delay: std::time::Duration::from_secs(3600),
        ..Default::default()
    };
    let clusters = TestClusters::start_with(&["eu"], opts)?;
    let api = Api::<k8s_openapi::api::core::v1::Service>::namespaced(
        common::admin(&clusters, "eu").await?,
        "default",
    );
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "istio-eastwestgateway"},
        "spec": {"type": "LoadBalancer", "selector": {"istio": "eastwestgateway"}, "ports": [{"name": "tls", "port": 15443}]}}),
    )?;
    let first = api
        .patch(
            "istio-eastwestgateway",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&svc),
        )
        .await?;
    let spec = first.spec.clone().unwrap_or_default();
    let port = spec
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or_default();
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert!(
        port.node_port.is_some_and(|n| (30000..=32767).contains(&n)),
        "{port:?}"
    );
    assert!(spec.cluster_ip.is_some());
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));

    let again = api
        .patch(
            "istio-eastwestgateway",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&svc),
        )
        .await?;
    let again_port = again
        .spec
        .clone()
        .unwrap_or_default()
        .ports
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or_default();
    assert_eq!(again_port.node_port, port.node_port, "allocations are kept");
    assert_eq!(again.spec.and_then(|s| s.cluster_ip), spec.cluster_ip);
    assert_eq!(
        again.metadata.resource_version, first.metadata.resource_version,
        "re-applying changes nothing"
    );
    let stored = clusters
        .cluster("eu")
        .object("v1", "Service", Some("default"), "istio-eastwestgateway")
        .unwrap_or_default();
    assert_eq!(
        stored["spec"]["ports"].as_array().map(Vec::len),
        Some(1),
        "the applied port merged with its defaults: {stored}"
    );
    Ok(())
}

#[tokio::test]
async fn apply_accepts_a_yaml_body() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n  labels:\n    app: mesh\ndata:\n  key: value\n";
    let req = axum::http::Request::patch(
        "/api/v1/namespaces/default/configmaps/from-yaml?fieldManager=yaml-client",
    )
    .header("content-type", "application/apply-patch+yaml")
    .body(yaml.as_bytes().to_vec())?;
    let created: Value = client.request(req).await?;
    assert_eq!(created["data"]["key"], "value");
    assert_eq!(
        created["metadata"]["managedFields"][0]["manager"],
        "yaml-client"
    );
    let bad = axum::http::Request::patch(
        "/api/v1/namespaces/default/configmaps/from-yaml?fieldManager=yaml-client",
    )
    .header("content-type", "application/apply-patch+yaml")
    .body(b"kind: [unclosed".to_vec())?;
    let (code, _, _) = common::status_of(client.request::<Value>(bad).await);
    assert_eq!(code, 400);
    Ok(())
}

#[tokio::test]
async fn malformed_bodies_get_4xx_statuses_never_a_dropped_connection() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    clusters.cluster("eu").insert_object(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"ports": [{"port": 80}]}}))?;
    let svc = "/api/v1/namespaces/default/services";
    let cases: Vec<(&str, String, &str, Value)> = vec![
        ("POST", svc.to_string(), "application/json", json!([1, 2])),
        (
            "POST",
            svc.to_string(),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": "nope"}),
        ),
        (
            "POST",
            svc.to_string(),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": ["80"]}}),
        ),
        (
            "POST",
            svc.to_string(),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": "x"}),
        ),
        (
            "POST",
            svc.to_string(),
            "application/json",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}),
        ),
        (
            "PATCH",
            format!("{svc}/svc"),
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/metadata", "value": "x"}]),
        ),
        (
            "PATCH",
            format!("{svc}/svc"),
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec", "value": 7}]),
        ),
        (
            "PATCH",
            format!("{svc}/svc"),
            "application/json-patch+json",
            json!({"not": "a list"}),
        ),
        (
            "PATCH",
            format!("{svc}/svc"),
            "application/merge-patch+json",
            json!({"status": "broken"}),
        ),
        (
            "PATCH",
            format!("{svc}/svc"),
            "application/strategic-merge-patch+json",
            json!({"metadata": {"labels": {"a": 1}}}),
        ),
        (
            "PATCH",
            format!("{svc}/svc"),
            "application/apply-patch+yaml",
            json!({"metadata": {"name": "svc"}}),
        ),
        ("PATCH", format!("{svc}/svc"), "text/plain", json!({})),
        (
            "PUT",
            format!("{svc}/svc"),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other"}}),
        ),
        (
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/default/token".to_string(),
            "application/json",
            json!({"spec": "x"}),
        ),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".to_string(),
            "application/json",
            json!({"spec": {}}),
        ),
        (
            "GET",
            format!("{svc}?labelSelector=a%20in%20b"),
            "application/json",
            Value::Null,
        ),
    ];
    for (method, path, ct, body) in cases {
        let (code, status) = common::raw(&client, method, &path, ct, &body).await?;
        assert!(
            (400..500).contains(&code),
            "{method} {path} {body}: {code} {status}"
        );
        assert_eq!(
            status["status"], "Failure",
            "{method} {path}: a Status body: {status}"
        );
    }
    // The server is still healthy afterwards.
    assert_eq!(
        common::raw(
            &client,
            "GET",
            &format!("{svc}/svc"),
            "application/json",
            &Value::Null
        )
        .await?
        .0,
        200
    );
    Ok(())
}

#[tokio::test]
async fn conflicts_with_updaters_and_several_fields_are_worded_as_the_real_server_words_them()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let api = Api::<ConfigMap>::namespaced(client.clone(), "default");
    // `kubectl apply` (client-side) writes with an update as manager kubectl-client-side-apply.
    api.create(
        &PostParams {
            field_manager: Some("kubectl-client-side-apply".into()),
            ..Default::default()
        },
        &cm("c", json!({"a": "1", "b": "1"}))?,
    )
    .await?;
    let (code, _, message) =
        common::status_of(apply_c(&api, &PatchParams::apply("helm"), json!({"a": "2"})).await?);
    assert_eq!(code, 409);
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.a"
    );
    let (_, body) = common::raw(
        &client,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=helm",
        "application/apply-patch+yaml",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2", "b": "2"}}),
    )
    .await?;
    assert_eq!(
        body["message"],
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using v1:\n- .data.a\n- .data.b"
    );
    assert_eq!(
        body["details"]["causes"],
        json!([
            {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using v1", "field": ".data.a"},
            {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using v1", "field": ".data.b"},
        ])
    );
    Ok(())
}

#[tokio::test]
async fn aggregated_discovery_lists_every_group_version_and_resource_in_one_answer()
-> anyhow::Result<()> {
    // client-go (kubectl, Helm) asks /api and /apis for apidiscovery.k8s.io/v2 first and falls
    // back to one request per group-version only when the server answers plain JSON.
    let clusters = TestClusters::start(&["eu"])?;
    clusters.install_istio_crds()?;
    let client = common::admin(&clusters, "eu").await?;
    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let req = axum::http::Request::get(path)
                .header("accept", accept)
                .body(Vec::new())?;
            anyhow::Ok(client.request::<Value>(req).await?)
        }
    };
    let apis = get("/apis").await?;
    assert_eq!(apis["kind"], "APIGroupDiscoveryList");
    assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2");
    let group = |name: &str| {
        apis["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["metadata"]["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    let istio = group("networking.istio.io");
    let versions: Vec<&str> = istio["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(versions, ["v1", "v1alpha3", "v1beta1"]);
    let deployments = group("apps")["versions"][0]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["resource"] == "deployments")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        deployments["responseKind"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    assert_eq!(deployments["scope"], "Namespaced");
    assert_eq!(deployments["categories"], json!(["all"]));
    assert_eq!(deployments["subresources"][0]["subresource"], "status");

    let core = get("/api").await?;
    let sa = core["items"][0]["versions"][0]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["resource"] == "serviceaccounts")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        sa["subresources"][0],
        json!({"subresource": "token", "verbs": ["create"],
               "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}})
    );
    // Without the media type, the legacy document.
    let req = axum::http::Request::get("/apis").body(Vec::new())?;
    assert_eq!(client.request::<Value>(req).await?["kind"], "APIGroupList");
    Ok(())
}

/// A real server stores nothing for a no-op apply, whatever second it lands in: the
/// managedFields timestamp is not a change. (The webhook's atomic `rules` make the merged object
/// differ from the stored one until defaulting, which once let the clock decide.)
#[tokio::test]
async fn an_unchanged_apply_keeps_the_resource_version_across_a_second_boundary()
-> anyhow::Result<()> {
    use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let ar = ApiResource {
        group: "admissionregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: "ValidatingWebhookConfiguration".into(),
        plural: "validatingwebhookconfigurations".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "istiod-default-validator"},
        "webhooks": [{"name": "validation.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system", "path": "/validate"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": ["networking.istio.io"], "apiVersions": ["*"], "resources": ["*"]}]}]}))?;
    let pp = PatchParams::apply("meshboot");
    let first = api
        .patch("istiod-default-validator", &pp, &Patch::Apply(&obj))
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = api
        .patch("istiod-default-validator", &pp, &Patch::Apply(&obj))
        .await?;
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );
    assert_eq!(again.metadata.managed_fields, first.metadata.managed_fields);
    Ok(())
}
