//! istioctl's create-remote-secret algorithm against the API-server emulator (the cases of
//! `reference/istio.md` §3.5 that apply to Kubernetes ≥ 1.24).

use std::time::Duration;

use mesh_core::cluster::{ApplyOptions, ApplyOutcome, ClusterClient, ObjectRef};
use mesh_core::remote_secret::{
    RemoteSecretError, RemoteSecretOptions, SecretType, create_remote_secret,
};
use mesh_tests::TestClusters;
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn client(clusters: &TestClusters, name: &str) -> ClusterClient {
    ClusterClient::connect(name, Some(clusters.kubeconfig_path()), name)
        .await
        .expect("connect to the emulator")
}

fn named(name: &str) -> RemoteSecretOptions {
    RemoteSecretOptions {
        name: Some(name.into()),
        token_timeout: Duration::from_secs(5),
        ..RemoteSecretOptions::default()
    }
}

#[tokio::test]
async fn creates_reader_account_token_and_secret() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let made = create_remote_secret(&eu, &named("eu")).await?;
    let emu = clusters.cluster("eu");
    for (api, kind, ns, name) in [
        (
            "v1",
            "ServiceAccount",
            Some("istio-system"),
            "istio-reader-service-account",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "istio-reader-clusterrole-istio-system",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            "istio-reader-clusterrole-istio-system",
        ),
        (
            "v1",
            "Secret",
            Some("istio-system"),
            "istio-reader-service-account-istio-remote-secret-token",
        ),
    ] {
        assert!(
            emu.object(api, kind, ns, name).is_some(),
            "{kind} {name} was not created"
        );
    }
    let s = &made.secret;
    assert_eq!(s.name(), "istio-remote-secret-eu");
    assert_eq!(s.server, emu.url());
    assert_eq!(String::from_utf8(s.ca_data.clone())?, emu.ca_pem());
    assert!(!s.token.is_empty());
    // The kubeconfig server is 127.0.0.1: istioctl's warning, word for word.
    assert_eq!(made.warnings.len(), 1);
    assert!(made.warnings[0].starts_with(&format!(
        "server in Kubeconfig is {}. This is likely not reachable",
        emu.url()
    )));
    Ok(())
}

#[tokio::test]
async fn the_token_works_and_the_secret_reapplies_unchanged() -> TestResult {
    let clusters = TestClusters::start(&["eu", "ap"])?;
    let eu = client(&clusters, "eu").await;
    let ap = client(&clusters, "ap").await;
    let made = create_remote_secret(&eu, &named("eu")).await?;
    // istiod in ap would connect to eu with exactly this kubeconfig.
    let as_istiod =
        ClusterClient::from_kubeconfig_yaml("eu", &made.secret.kubeconfig()?, "", "test").await?;
    assert!(as_istiod.can_i("list", "", "services", None).await?);
    assert!(
        !as_istiod
            .can_i("patch", "", "secrets", Some("istio-system"))
            .await?,
        "the reader must not write"
    );

    ap.apply(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        &ApplyOptions::default(),
    )
    .await?;
    let object = made.secret.to_object()?;
    assert_eq!(
        ap.apply(&object, &ApplyOptions::default()).await?,
        ApplyOutcome::Created
    );
    clusters.cluster("ap").reset_counters();
    assert_eq!(
        ap.apply(&object, &ApplyOptions::default()).await?,
        ApplyOutcome::Unchanged
    );
    assert_eq!(clusters.cluster("ap").counters().writes, 0);
    Ok(())
}

#[tokio::test]
async fn without_name_the_kube_system_uid_names_the_cluster() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let opts = RemoteSecretOptions {
        server: Some("https://203.0.113.10:6443".into()),
        ..RemoteSecretOptions::default()
    };
    let made = create_remote_secret(&eu, &opts).await?;
    let uid = clusters
        .cluster("eu")
        .kube_system_uid()
        .expect("kube-system has a uid");
    assert_eq!(made.secret.cluster, uid);
    assert_eq!(made.secret.name(), format!("istio-remote-secret-{uid}"));
    assert!(made.warnings.is_empty(), "{:?}", made.warnings);
    Ok(())
}

#[tokio::test]
async fn missing_account_without_create_is_istioctls_error() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    clusters.cluster("eu").reset_counters();
    let opts = RemoteSecretOptions {
        create_service_account: false,
        ..named("eu")
    };
    let err = create_remote_secret(&eu, &opts)
        .await
        .expect_err("no service account");
    assert!(matches!(
        err,
        RemoteSecretError::ServiceAccountMissing { .. }
    ));
    assert!(err.to_string().contains("failed retrieving service account istio-reader-service-account.istio-system required for creating the remote secret"), "{err}");
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    Ok(())
}

#[tokio::test]
async fn config_type_uses_the_istiod_account() -> TestResult {
    let clusters = TestClusters::start(&["primary"])?;
    let c = client(&clusters, "primary").await;
    c.apply(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        &ApplyOptions::default(),
    )
    .await?;
    c.apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "istiod", "namespace": "istio-system"}}), &ApplyOptions::default()).await?;
    let opts = RemoteSecretOptions {
        secret_type: SecretType::Config,
        create_service_account: false,
        ..named("primary")
    };
    let made = create_remote_secret(&c, &opts).await?;
    assert_eq!(made.secret.name(), "istio-kubeconfig");
    assert_eq!(made.secret.data_key(), "config");
    assert!(
        c.get(&ObjectRef::namespaced(
            "v1",
            "Secret",
            "istio-system",
            "istiod-istio-remote-secret-token"
        ))
        .await?
        .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn secret_name_must_reference_the_account() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    create_remote_secret(&eu, &named("eu")).await?; // creates the account
    eu.apply(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other", "namespace": "istio-system"}, "data": {"token": "eA=="}}), &ApplyOptions::default()).await?;
    let opts = RemoteSecretOptions {
        secret_name: Some("other".into()),
        ..named("eu")
    };
    let err = create_remote_secret(&eu, &opts)
        .await
        .expect_err("not a token of the account");
    assert!(err.to_string().contains("secret istio-system/other does not reference ServiceAccount istio-reader-service-account"), "{err}");
    let opts = RemoteSecretOptions {
        secret_name: Some("absent".into()),
        ..named("eu")
    };
    let err = create_remote_secret(&eu, &opts).await.expect_err("absent");
    assert!(
        err.to_string()
            .contains("could not get specified secret istio-system/absent"),
        "{err}"
    );
    // The token Secret the first run created is found and reused by name.
    let opts = RemoteSecretOptions {
        secret_name: Some("istio-reader-service-account-istio-remote-secret-token".into()),
        ..named("eu")
    };
    create_remote_secret(&eu, &opts).await?;
    Ok(())
}

#[tokio::test]
async fn invalid_name_fails_before_any_request() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    clusters.cluster("eu").reset_counters();
    let err = create_remote_secret(&eu, &named("?-invalid-name"))
        .await
        .expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "?-invalid-name is not a valid DNS 1123 label"
    );
    assert_eq!(clusters.cluster("eu").counters().total_requests(), 0);
    Ok(())
}
