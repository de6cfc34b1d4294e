//! Bound service-account tokens behave as on a real API server (TokenRequest validation and
//! binding from `pkg/registry/core/serviceaccount/storage/token.go`, claims and validation from
//! `pkg/serviceaccount/claims.go`).

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use mesh_tests::{EmulatorOptions, TestClusters, tokens};
use serde_json::{Value, json};

const SA_PATH: &str = "/api/v1/namespaces/default/serviceaccounts/reader/token";

fn setup(clusters: &TestClusters) -> anyhow::Result<()> {
    let eu = clusters.cluster("eu");
    eu.insert_object(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "reader", "namespace": "default"}}))?;
    eu.insert_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "reader-for-ap", "namespace": "default"}}))?;
    // Cluster-wide read rights, so "authenticated" shows as 200 and "rejected" as 401.
    eu.insert_object(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "reader-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}]}))?;
    eu.insert_object(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "cluster-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    )?;
    Ok(())
}

async fn token_request(clusters: &TestClusters, spec: Value) -> anyhow::Result<(u16, Value)> {
    let admin = common::admin(clusters, "eu").await?;
    common::raw(
        &admin,
        "POST",
        SA_PATH,
        "application/json",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
    )
    .await
}

async fn issue(clusters: &TestClusters, spec: Value) -> anyhow::Result<String> {
    let (code, tr) = token_request(clusters, spec).await?;
    anyhow::ensure!(code == 200, "TokenRequest failed: {tr}");
    Ok(tr["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// The HTTP status of listing namespaces with `token`.
async fn list_with(clusters: &TestClusters, token: &str) -> anyhow::Result<u16> {
    let eu = clusters.cluster("eu");
    let c = common::client_as(eu, eu.ca_pem(), token).await?;
    Ok(
        match Api::<Namespace>::all(c).list(&Default::default()).await {
            Ok(_) => 200,
            Err(kube::Error::Api(s)) => s.code,
            Err(e) => return Err(e.into()),
        },
    )
}

async fn review(clusters: &TestClusters, token: &str) -> anyhow::Result<Value> {
    let admin = common::admin(clusters, "eu").await?;
    let (_, tr) = common::raw(
        &admin,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        "application/json",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}),
    )
    .await?;
    Ok(tr["status"].clone())
}

#[tokio::test]
async fn token_request_honours_expiration_seconds_and_the_jwt_carries_the_real_claims()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let (code, tr) = token_request(&clusters, json!({"expirationSeconds": 7200})).await?;
    assert_eq!(code, 200, "{tr}");
    assert_eq!(tr["spec"]["expirationSeconds"], 7200);
    assert_eq!(
        tr["spec"]["audiences"],
        json!(["https://kubernetes.default.svc.eu"]),
        "audiences default to the API server's"
    );
    let token = tr["status"]["token"].as_str().unwrap_or_default();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");
    let c = tokens::claims(token).unwrap_or_default();
    let (iat, exp) = (
        c["iat"].as_i64().unwrap_or(0),
        c["exp"].as_i64().unwrap_or(0),
    );
    assert_eq!(exp - iat, 7200);
    assert_eq!(c["nbf"], c["iat"]);
    assert_eq!(c["sub"], "system:serviceaccount:default:reader");
    assert_eq!(c["iss"], "https://kubernetes.default.svc.eu");
    assert_eq!(c["kubernetes.io"]["namespace"], "default");
    assert_eq!(c["kubernetes.io"]["serviceaccount"]["name"], "reader");
    let ts = tr["status"]["expirationTimestamp"]
        .as_str()
        .unwrap_or_default();
    let parsed = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)?;
    assert_eq!(parsed.unix_timestamp(), exp);
    // Default lifetime: one hour.
    let default = issue(&clusters, json!({})).await?;
    let c = tokens::claims(&default).unwrap_or_default();
    assert_eq!(
        c["exp"].as_i64().unwrap_or(0) - c["iat"].as_i64().unwrap_or(0),
        3600
    );
    assert_eq!(list_with(&clusters, &default).await?, 200);
    Ok(())
}

#[tokio::test]
async fn token_request_lifetime_limits_use_the_real_wording() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let (code, st) = token_request(&clusters, json!({"expirationSeconds": 599})).await?;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "TokenRequest.authentication.k8s.io \"reader\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let (code, st) =
        token_request(&clusters, json!({"expirationSeconds": 4_294_967_297i64})).await?;
    assert_eq!(code, 422);
    assert!(
        st["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("may not specify a duration larger than 2^32 seconds")),
        "{st}"
    );
    Ok(())
}

#[tokio::test]
async fn a_server_maximum_caps_the_granted_lifetime() -> anyhow::Result<()> {
    let clusters = TestClusters::start_with(
        &["eu"],
        EmulatorOptions {
            max_token_ttl: Some(Duration::from_secs(86_400)),
            ..EmulatorOptions::default()
        },
    )?;
    setup(&clusters)?;
    let (_, tr) = token_request(&clusters, json!({"expirationSeconds": 2_592_000})).await?;
    assert_eq!(tr["spec"]["expirationSeconds"], 86_400);
    Ok(())
}

#[tokio::test]
async fn an_expired_token_is_rejected_with_401_and_token_review_says_why() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let token = issue(&clusters, json!({"expirationSeconds": 600})).await?;
    assert_eq!(list_with(&clusters, &token).await?, 200);
    clusters
        .cluster("eu")
        .advance_clock(Duration::from_secs(601));
    assert_eq!(list_with(&clusters, &token).await?, 401);
    let st = review(&clusters, &token).await?;
    assert_eq!(st["authenticated"], false);
    assert_eq!(st["error"], "service account token has expired");
    Ok(())
}

#[tokio::test]
async fn a_token_bound_to_a_secret_dies_when_the_secret_is_deleted_or_recreated()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let eu = clusters.cluster("eu");
    let uid = eu
        .object("v1", "Secret", Some("default"), "reader-for-ap")
        .and_then(|s| s["metadata"]["uid"].as_str().map(str::to_string))
        .unwrap_or_default();
    let spec = json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "reader-for-ap", "uid": uid}});
    let token = issue(&clusters, spec.clone()).await?;
    let c = tokens::claims(&token).unwrap_or_default();
    assert_eq!(
        c["kubernetes.io"]["secret"],
        json!({"name": "reader-for-ap", "uid": uid})
    );
    assert_eq!(list_with(&clusters, &token).await?, 200);

    // Recreated under the same name: a new UID, so the old token is void.
    eu.remove_object("v1", "Secret", Some("default"), "reader-for-ap");
    eu.insert_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "reader-for-ap", "namespace": "default"}}))?;
    assert_eq!(list_with(&clusters, &token).await?, 401);
    let st = review(&clusters, &token).await?;
    assert!(
        st["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("secret UID (")
                && e.ends_with(&format!(
                    "does not match service account secret ref claim ({uid})"
                ))),
        "{st}"
    );

    // The old UID no longer matches: 409 with token.go's wording.
    let (code, st) = token_request(&clusters, spec).await?;
    assert_eq!(code, 409);
    assert!(
        st["message"]
            .as_str()
            .is_some_and(|m| m.contains("the UID in the bound object reference")),
        "{st}"
    );

    // Deleted: "has been invalidated".
    let fresh = issue(
        &clusters,
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "reader-for-ap"}}),
    )
    .await?;
    assert_eq!(list_with(&clusters, &fresh).await?, 200);
    let admin = common::admin(&clusters, "eu").await?;
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin, "default")
        .delete("reader-for-ap", &Default::default())
        .await?;
    assert_eq!(list_with(&clusters, &fresh).await?, 401);
    assert_eq!(
        review(&clusters, &fresh).await?["error"],
        "service account token has been invalidated"
    );
    Ok(())
}

#[tokio::test]
async fn bound_object_refs_are_checked_as_the_real_server_checks_them() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let eu = clusters.cluster("eu");
    let (code, st) = token_request(
        &clusters,
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "absent"}}),
    )
    .await?;
    assert_eq!(
        (code, st["message"].clone()),
        (404, json!("secrets \"absent\" not found"))
    );
    let (code, st) = token_request(
        &clusters,
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}}),
    )
    .await?;
    assert_eq!(code, 400);
    assert_eq!(
        st["message"],
        "cannot bind token to object of type /v1, Kind=ConfigMap"
    );
    eu.insert_object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"serviceAccountName": "default", "containers": [{"name": "c", "image": "x"}]}}))?;
    let (code, st) = token_request(
        &clusters,
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web"}}),
    )
    .await?;
    assert_eq!(code, 400);
    assert_eq!(
        st["message"],
        "cannot bind token for serviceaccount \"reader\" to pod running with serviceaccount \"default\""
    );
    let node = eu.insert_object(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}),
    )?;
    eu.insert_object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "reader-pod", "namespace": "default"},
        "spec": {"serviceAccountName": "reader", "nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]}}))?;
    let token = issue(
        &clusters,
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "reader-pod"}}),
    )
    .await?;
    let c = tokens::claims(&token).unwrap_or_default();
    assert_eq!(c["kubernetes.io"]["pod"]["name"], "reader-pod");
    assert_eq!(
        c["kubernetes.io"]["node"],
        json!({"name": "node-1", "uid": node["metadata"]["uid"]}),
        "a scheduled pod's token names its node"
    );
    eu.remove_object("v1", "Pod", Some("default"), "reader-pod");
    assert_eq!(list_with(&clusters, &token).await?, 401);
    Ok(())
}

#[tokio::test]
async fn a_token_for_another_audience_cannot_call_the_api_server() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let token = issue(&clusters, json!({"audiences": ["vault"]})).await?;
    assert_eq!(
        tokens::claims(&token).unwrap_or_default()["aud"],
        json!(["vault"])
    );
    assert_eq!(list_with(&clusters, &token).await?, 401);
    Ok(())
}

#[tokio::test]
async fn the_token_cache_delay_keeps_a_revoked_token_working_until_it_lapses() -> anyhow::Result<()>
{
    let clusters = TestClusters::start_with(
        &["eu"],
        EmulatorOptions {
            token_cache_ttl: Duration::from_millis(300),
            ..EmulatorOptions::default()
        },
    )?;
    setup(&clusters)?;
    let token = issue(
        &clusters,
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "reader-for-ap"}}),
    )
    .await?;
    assert_eq!(list_with(&clusters, &token).await?, 200);
    clusters
        .cluster("eu")
        .remove_object("v1", "Secret", Some("default"), "reader-for-ap");
    assert_eq!(list_with(&clusters, &token).await?, 200, "still cached");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(list_with(&clusters, &token).await?, 401);
    Ok(())
}

#[tokio::test]
async fn legacy_token_secrets_hold_long_lived_tokens_without_exp() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let eu = clusters.cluster("eu");
    eu.insert_object(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "reader-token", "namespace": "default",
            "annotations": {"kubernetes.io/service-account.name": "reader"}}}),
    )?;
    let secret = common::eventually(|| {
        eu.object("v1", "Secret", Some("default"), "reader-token")
            .filter(|s| s["data"]["token"].is_string())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("token controller did not fill the Secret"))?;
    let b64 = secret["data"]["token"].as_str().unwrap_or_default();
    use base64::Engine as _;
    let token = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64)?)?;
    let c = tokens::claims(&token).unwrap_or_default();
    assert_eq!(c["iss"], "kubernetes/serviceaccount");
    assert!(c.get("exp").is_none(), "legacy tokens never expire: {c}");
    eu.advance_clock(Duration::from_secs(10 * 365 * 86_400));
    assert_eq!(list_with(&clusters, &token).await?, 200);
    Ok(())
}

#[test]
fn kubectl_create_token_bound_to_a_secret_gets_a_bound_expiring_token() -> anyhow::Result<()> {
    let kubectl = mesh_tests::require_kubectl!();
    let clusters = TestClusters::start(&["eu"])?;
    setup(&clusters)?;
    let out = std::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(clusters.kubeconfig_path())
        .args([
            "--context",
            "eu",
            "create",
            "token",
            "reader",
            "--duration=20m",
            "--bound-object-kind=Secret",
            "--bound-object-name=reader-for-ap",
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl create token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)?.trim().to_string();
    let c = tokens::claims(&token).unwrap_or_default();
    assert_eq!(
        c["exp"].as_i64().unwrap_or(0) - c["iat"].as_i64().unwrap_or(0),
        1200
    );
    assert_eq!(c["kubernetes.io"]["secret"]["name"], "reader-for-ap");
    Ok(())
}
