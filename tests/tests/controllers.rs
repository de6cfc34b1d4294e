//! The controllers meshboot relies on: service-account token Secrets, TokenRequest with expiry,
//! access reviews, the load-balancer controller, and the namespaces present at start.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::{Value, json};

async fn create_sa(client: &kube::Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await?;
    Ok(())
}

fn token_secret(name: &str, sa: &str) -> anyhow::Result<Secret> {
    Ok(serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": sa}},
        "type": "kubernetes.io/service-account-token"}),
    )?)
}

#[tokio::test]
async fn token_secret_is_filled_with_a_working_token_and_this_clusters_ca() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu", "ap"])?;
    let eu = clusters.cluster("eu");
    let admin = common::admin(&clusters, "eu").await?;
    create_sa(&admin, "default", "istio-reader-service-account").await?;
    let secrets = Api::<Secret>::namespaced(admin.clone(), "default");
    let created = secrets
        .create(
            &PostParams::default(),
            &token_secret("reader-token", "istio-reader-service-account")?,
        )
        .await?;
    assert!(
        created.data.is_none(),
        "the controller fills the Secret asynchronously, not in the create"
    );

    let filled = common::eventually(|| {
        eu.object("v1", "Secret", Some("default"), "reader-token")
            .filter(|s| s["data"]["token"].is_string())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("token never filled"))?;
    let decode = |v: &Value| {
        STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    assert_eq!(
        decode(&filled["data"]["ca.crt"]),
        eu.ca_pem().as_bytes(),
        "ca.crt is this cluster's serving CA"
    );
    assert_ne!(
        decode(&filled["data"]["ca.crt"]),
        clusters.cluster("ap").ca_pem().as_bytes()
    );
    assert_eq!(decode(&filled["data"]["namespace"]), b"default");
    let token = String::from_utf8(decode(&filled["data"]["token"]))?;

    // The token authenticates as the service account (403, not 401, without RBAC).
    let reader = common::client_as(eu, eu.ca_pem(), &token).await?;
    let (code, _, message) = common::status_of(
        Api::<Secret>::namespaced(reader.clone(), "default")
            .list(&Default::default())
            .await,
    );
    assert_eq!(code, 403);
    assert!(
        message.contains("system:serviceaccount:default:istio-reader-service-account"),
        "{message}"
    );

    // Deleting the Secret revokes its token (how istioctl-style long-lived tokens are rotated).
    secrets
        .delete("reader-token", &DeleteParams::default())
        .await?;
    let (code, _, _) = common::status_of(
        Api::<Secret>::namespaced(reader, "default")
            .list(&Default::default())
            .await,
    );
    assert_eq!(code, 401);
    Ok(())
}

#[tokio::test]
async fn token_secret_waits_for_its_service_account_and_goes_with_it() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let admin = common::admin(&clusters, "eu").await?;
    Api::<Secret>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &token_secret("early", "late-sa")?)
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        eu.object("v1", "Secret", Some("default"), "early")
            .is_some_and(|s| s["data"]["token"].is_null()),
        "no token without the SA"
    );
    create_sa(&admin, "default", "late-sa").await?;
    common::eventually(|| {
        eu.object("v1", "Secret", Some("default"), "early")
            .filter(|s| s["data"]["token"].is_string())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("token never filled after the SA appeared"))?;
    Api::<ServiceAccount>::namespaced(admin, "default")
        .delete("late-sa", &DeleteParams::default())
        .await?;
    common::eventually(|| {
        eu.object("v1", "Secret", Some("default"), "early")
            .is_none()
            .then_some(())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("token Secret outlived its service account"))?;
    Ok(())
}

#[tokio::test]
async fn token_secret_requires_the_annotation() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let admin = common::admin(&clusters, "eu").await?;
    let bare: Secret = serde_json::from_value(
        json!({"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"}),
    )?;
    let (code, _, message) = common::status_of(
        Api::<Secret>::namespaced(admin, "default")
            .create(&PostParams::default(), &bare)
            .await,
    );
    assert_eq!(code, 422);
    assert!(
        message
            .contains("metadata.annotations[kubernetes.io/service-account.name]: Required value"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn token_request_honours_expiration_seconds() -> anyhow::Result<()> {
    let opts = EmulatorOptions {
        min_token_ttl: Duration::from_secs(1),
        ..EmulatorOptions::default()
    };
    let clusters = TestClusters::start_with(&["eu"], opts)?;
    let eu = clusters.cluster("eu");
    let admin = common::admin(&clusters, "eu").await?;
    create_sa(&admin, "default", "short").await?;
    let path = "/api/v1/namespaces/default/serviceaccounts/short/token";
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 1}});
    let (code, tr) = common::raw(&admin, "POST", path, "application/json", &body).await?;
    assert_eq!(code, 200, "{tr}");
    assert_eq!(tr["spec"]["expirationSeconds"], 1);
    assert!(tr["status"]["expirationTimestamp"].is_string());
    let token = tr["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
    let (_, answer) = common::raw(
        &admin,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        "application/json",
        &review,
    )
    .await?;
    assert_eq!(
        answer["status"]["user"]["username"],
        "system:serviceaccount:default:short"
    );

    let sa_client = common::client_as(eu, eu.ca_pem(), &token).await?;
    let (code, _, _) = common::status_of(
        Api::<Secret>::namespaced(sa_client.clone(), "default")
            .list(&Default::default())
            .await,
    );
    assert_eq!(code, 403, "valid token, no RBAC");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, reason, _) = common::status_of(
        Api::<Secret>::namespaced(sa_client, "default")
            .list(&Default::default())
            .await,
    );
    assert_eq!(
        (code, reason.as_str()),
        (401, "Unauthorized"),
        "expired token"
    );

    let (_, answer) = common::raw(
        &admin,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        "application/json",
        &review,
    )
    .await?;
    assert_eq!(answer["status"]["authenticated"], false);
    Ok(())
}

#[tokio::test]
async fn token_request_below_the_minimum_lifetime_is_422_and_unknown_sa_is_404()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let admin = common::admin(&clusters, "eu").await?;
    create_sa(&admin, "default", "reader").await?;
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 60}});
    let (code, s) = common::raw(
        &admin,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/reader/token",
        "application/json",
        &body,
    )
    .await?;
    assert_eq!(code, 422, "{s}");
    let (code, s) = common::raw(
        &admin,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/ghost/token",
        "application/json",
        &json!({}),
    )
    .await?;
    assert_eq!(
        (code, s["message"].as_str()),
        (404, Some("serviceaccounts \"ghost\" not found"))
    );
    Ok(())
}

#[tokio::test]
async fn self_subject_access_review_answers_for_the_caller() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let admin = common::admin(&clusters, "eu").await?;
    create_sa(&admin, "default", "reader").await?;
    let (_, tr) = common::raw(
        &admin,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/reader/token",
        "application/json",
        &json!({}),
    )
    .await?;
    let reader = common::client_as(
        eu,
        eu.ca_pem(),
        tr["status"]["token"].as_str().unwrap_or_default(),
    )
    .await?;
    eu.insert_object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "secret-lister"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]}]}))?;
    eu.insert_object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "secret-lister"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-lister"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}]}))?;
    let ssar = |verb: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": "secrets", "namespace": "istio-system"}}})
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (_, list) = common::raw(&reader, "POST", path, "application/json", &ssar("list")).await?;
    let (_, create) =
        common::raw(&reader, "POST", path, "application/json", &ssar("create")).await?;
    let (_, admin_create) =
        common::raw(&admin, "POST", path, "application/json", &ssar("create")).await?;
    assert_eq!(
        (
            list["status"]["allowed"].as_bool(),
            create["status"]["allowed"].as_bool(),
            admin_create["status"]["allowed"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    Ok(())
}

#[tokio::test]
async fn load_balancer_services_get_a_distinct_test_net_address_after_the_delay()
-> anyhow::Result<()> {
    let opts = EmulatorOptions {
        lb_delay: Duration::from_millis(200),
        ..EmulatorOptions::default()
    };
    let clusters = TestClusters::start_with(&["eu", "ap"], opts)?;
    let svc = |ty: &str| -> anyhow::Result<Service> {
        Ok(serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-eastwestgateway"},
            "spec": {"type": ty, "selector": {"istio": "eastwestgateway"}, "ports": [{"name": "tls", "port": 15443}]}}),
        )?)
    };
    let mut ips = Vec::new();
    for name in ["eu", "ap"] {
        let api = Api::<Service>::namespaced(common::admin(&clusters, name).await?, "default");
        api.patch(
            "istio-eastwestgateway",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(svc("LoadBalancer")?),
        )
        .await?;
        let fresh = api.get("istio-eastwestgateway").await?;
        assert!(
            fresh
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|l| l.ingress)
                .is_none_or(|i| i.is_empty()),
            "no address before the delay"
        );
        let c = clusters.cluster(name);
        let ip = common::eventually(|| {
            c.object("v1", "Service", Some("default"), "istio-eastwestgateway")
                .and_then(|s| {
                    s["status"]["loadBalancer"]["ingress"][0]["ip"]
                        .as_str()
                        .map(str::to_string)
                })
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("{name}: no address assigned"))?;
        let addr: std::net::Ipv4Addr = ip.parse()?;
        let o = addr.octets();
        assert!(
            matches!(
                [o[0], o[1], o[2]],
                [192, 0, 2] | [198, 51, 100] | [203, 0, 113]
            ),
            "{ip} is not TEST-NET"
        );
        // Re-applying the same Service keeps the address (status is not the applier's).
        let again = api
            .patch(
                "istio-eastwestgateway",
                &PatchParams::apply("meshboot"),
                &Patch::Apply(svc("LoadBalancer")?),
            )
            .await?;
        let kept = again
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .and_then(|i| i.first().and_then(|x| x.ip.clone()));
        assert_eq!(kept.as_deref(), Some(ip.as_str()));
        ips.push(ip);
    }
    assert_ne!(ips[0], ips[1], "clusters get distinct addresses");

    let cluster_ip = Api::<Service>::namespaced(common::admin(&clusters, "eu").await?, "default");
    cluster_ip
        .patch(
            "plain",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&{
                let mut s = svc("ClusterIP")?;
                s.metadata.name = Some("plain".into());
                s
            }),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let plain = clusters
        .cluster("eu")
        .object("v1", "Service", Some("default"), "plain")
        .unwrap_or_default();
    assert!(
        plain["status"]["loadBalancer"]["ingress"].is_null(),
        "ClusterIP Services get no address"
    );
    Ok(())
}

#[test]
fn standard_namespaces_exist_at_start_and_kube_system_has_a_uid() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu", "ap"])?;
    let eu = clusters.cluster("eu");
    for ns in ["default", "kube-system"] {
        assert!(eu.object("v1", "Namespace", None, ns).is_some(), "{ns}");
    }
    assert_eq!(
        eu.counters().objects,
        12,
        "four namespaces, their default ServiceAccounts and kube-root-ca.crt ConfigMaps"
    );
    assert!(
        eu.object("v1", "ServiceAccount", Some("kube-system"), "default")
            .is_some()
    );
    let a = eu.kube_system_uid();
    let b = clusters.cluster("ap").kube_system_uid();
    assert!(
        a.is_some() && a != b,
        "each cluster has its own kube-system UID"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects_and_protected_namespaces_stay()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let admin = common::admin(&clusters, "eu").await?;
    let namespaces = Api::<Namespace>::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "istio-system"}}))?,
        )
        .await?;
    create_sa(&admin, "istio-system", "reader").await?;
    namespaces
        .delete("istio-system", &DeleteParams::default())
        .await?;
    assert!(
        clusters
            .cluster("eu")
            .list_objects("v1", "ServiceAccount", Some("istio-system"))
            .is_empty()
    );
    let (code, _, message) = common::status_of(
        namespaces
            .delete("kube-system", &DeleteParams::default())
            .await,
    );
    assert_eq!(code, 403, "{message}");
    Ok(())
}

#[tokio::test]
async fn kube_runtime_await_condition_sees_the_load_balancer_address_through_watch()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = Api::<Service>::namespaced(common::admin(&clusters, "eu").await?, "default");
    let svc: Service = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 15443}]}}),
    )?;
    api.patch("gw", &PatchParams::apply("meshboot"), &Patch::Apply(&svc))
        .await?;
    let has_address = |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref())
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .is_some_and(|i| !i.is_empty())
    };
    let ready = tokio::time::timeout(
        Duration::from_secs(10),
        kube::runtime::wait::await_condition(api.clone(), "gw", has_address),
    )
    .await??;
    assert!(has_address(ready.as_ref()));
    Ok(())
}

#[tokio::test]
async fn a_watch_resumed_from_a_list_misses_no_change() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let client = common::admin(&clusters, "eu").await?;
    let (_, list) = common::raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        &Value::Null,
    )
    .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A change lands between the list and the watch.
    clusters.cluster("eu").insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "between", "namespace": "default"}}))?;
    let req = axum::http::Request::get(format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    ))
    .body(Vec::new())?;
    let text = client.request_text(req).await?;
    let first: Value = serde_json::from_str(text.lines().next().unwrap_or("null"))?;
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("between"))
    );
    Ok(())
}

#[tokio::test]
async fn a_watch_from_before_the_kept_history_is_410_expired() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    for i in 0..1100 {
        eu.insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}"), "namespace": "default"}}))?;
    }
    let client = common::admin(&clusters, "eu").await?;
    let req = axum::http::Request::get(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1",
    )
    .body(Vec::new())?;
    let (code, reason, _) = common::status_of(client.request_text(req).await);
    assert_eq!((code, reason.as_str()), (410, "Expired"));
    Ok(())
}

#[tokio::test]
async fn deployments_report_their_rollout_complete() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let api = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(
        common::admin(&clusters, "eu").await?,
        "default",
    );
    let dep: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istio-eastwestgateway"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "gw"}},
            "template": {"metadata": {"labels": {"app": "gw"}}, "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}}}),
    )?;
    api.patch(
        "istio-eastwestgateway",
        &PatchParams::apply("meshboot"),
        &Patch::Apply(&dep),
    )
    .await?;
    let done = kube::runtime::wait::await_condition(
        api.clone(),
        "istio-eastwestgateway",
        kube::runtime::wait::conditions::is_deployment_completed(),
    );
    let ready = tokio::time::timeout(Duration::from_secs(10), done).await??;
    let status = ready.and_then(|d| d.status).unwrap_or_default();
    assert_eq!(
        (status.ready_replicas, status.observed_generation),
        (Some(2), Some(1))
    );
    Ok(())
}

/// kube-controller-manager's root-ca-cert-publisher: every namespace, new ones included, holds
/// `kube-root-ca.crt` with the cluster CA (what bound-token clients verify the server with), and
/// a deleted or edited one comes back.
#[tokio::test]
async fn every_namespace_gets_the_cluster_ca_as_kube_root_ca_crt() -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let admin = common::admin(&clusters, "eu").await?;
    let ca_of = |ns: &str| {
        eu.object("v1", "ConfigMap", Some(ns), "kube-root-ca.crt")
            .and_then(|cm| cm["data"]["ca.crt"].as_str().map(str::to_string))
    };
    assert_eq!(ca_of("kube-system").as_deref(), Some(eu.ca_pem()));
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "istio-system"}}))?;
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    common::eventually(|| ca_of("istio-system").filter(|ca| ca == eu.ca_pem()))
        .await
        .ok_or_else(|| anyhow::anyhow!("a new namespace got no kube-root-ca.crt"))?;
    let cms = Api::<ConfigMap>::namespaced(admin, "istio-system");
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await?;
    common::eventually(|| ca_of("istio-system").filter(|ca| ca == eu.ca_pem()))
        .await
        .ok_or_else(|| anyhow::anyhow!("a deleted kube-root-ca.crt was not published again"))?;
    Ok(())
}
