//! ClusterClient against the API-server emulator: what a user of `apply` would notice —
//! nothing written on a converged cluster, transient errors ridden out, clear errors naming the
//! cluster when it is down or misconfigured.

use std::time::Duration;

use mesh_core::cluster::{
    ApplyOptions, ApplyOutcome, ClusterClient, ClusterError, ObjectRef, RetryPolicy,
};
use mesh_tests::TestClusters;
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn client(clusters: &TestClusters, name: &str) -> ClusterClient {
    ClusterClient::connect(name, Some(clusters.kubeconfig_path()), name)
        .await
        .expect("connect to the emulator")
}

fn namespace(network: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": network}}})
}

#[tokio::test]
async fn apply_creates_then_writes_nothing_then_updates() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let opts = ApplyOptions::default();

    assert_eq!(
        eu.apply(&namespace("net1"), &opts).await?,
        ApplyOutcome::Created
    );

    clusters.cluster("eu").reset_counters();
    assert_eq!(
        eu.apply(&namespace("net1"), &opts).await?,
        ApplyOutcome::Unchanged
    );
    assert_eq!(
        clusters.cluster("eu").counters().writes,
        0,
        "a converged object is not written"
    );

    assert_eq!(
        eu.apply(&namespace("net2"), &opts).await?,
        ApplyOutcome::Updated
    );
    let live = clusters
        .cluster("eu")
        .object("v1", "Namespace", None, "istio-system")
        .expect("namespace exists");
    assert_eq!(
        live["metadata"]["labels"]["topology.istio.io/network"],
        "net2"
    );
    Ok(())
}

#[tokio::test]
async fn secret_string_data_reapplied_is_unchanged() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let opts = ApplyOptions::default();
    eu.apply(&namespace("net1"), &opts).await?;
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "stringData": {"root-cert.pem": "-----BEGIN CERTIFICATE-----\n"}});
    assert_eq!(eu.apply(&secret, &opts).await?, ApplyOutcome::Created);
    clusters.cluster("eu").reset_counters();
    assert_eq!(eu.apply(&secret, &opts).await?, ApplyOutcome::Unchanged);
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    let got = eu
        .get(&ObjectRef::namespaced(
            "v1",
            "Secret",
            "istio-system",
            "cacerts",
        ))
        .await?
        .expect("secret exists");
    assert_eq!(
        got["data"]["root-cert.pem"],
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
    );
    Ok(())
}

#[tokio::test]
async fn dry_run_reports_without_writing() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let dry = ApplyOptions {
        dry_run: true,
        ..ApplyOptions::default()
    };
    clusters.cluster("eu").reset_counters();
    assert_eq!(
        eu.apply(&namespace("net1"), &dry).await?,
        ApplyOutcome::Created
    );
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    assert!(
        clusters
            .cluster("eu")
            .object("v1", "Namespace", None, "istio-system")
            .is_none()
    );

    eu.apply(&namespace("net1"), &ApplyOptions::default())
        .await?;
    clusters.cluster("eu").reset_counters();
    assert_eq!(
        eu.apply(&namespace("net9"), &dry).await?,
        ApplyOutcome::Updated
    );
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    Ok(())
}

#[tokio::test]
async fn retries_converge_under_injected_errors() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let policy = RetryPolicy {
        max_attempts: 12,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
    };
    let eu = client(&clusters, "eu").await.with_retry(policy);
    eu.apply(&namespace("net1"), &ApplyOptions::default())
        .await?;
    clusters.cluster("eu").set_error_rate(0.3);
    clusters.cluster("eu").reset_counters();
    for i in 0..15 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "istio-system"},
            "data": {"i": i.to_string()}});
        assert_eq!(
            eu.apply(&cm, &ApplyOptions::default()).await?,
            ApplyOutcome::Created
        );
    }
    let counters = clusters.cluster("eu").counters();
    // 15 reads + 15 writes without faults; the surplus are retried 429/500/503 answers.
    assert!(
        counters.total_requests() > 30,
        "no fault was injected: {counters:?}"
    );
    clusters.cluster("eu").set_error_rate(0.0);
    for i in 0..15 {
        let cm = ObjectRef::namespaced("v1", "ConfigMap", "istio-system", &format!("cm-{i}"));
        assert!(eu.get(&cm).await?.is_some(), "cm-{i} missing");
    }
    Ok(())
}

#[tokio::test]
async fn a_down_cluster_is_unreachable_and_named() -> TestResult {
    let clusters = TestClusters::start(&["eu", "ap"])?;
    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    let ap = client(&clusters, "ap").await.with_retry(policy);
    clusters.cluster("ap").set_down(true);
    let err = ap
        .get(&ObjectRef::namespaced(
            "v1",
            "Secret",
            "istio-system",
            "cacerts",
        ))
        .await
        .expect_err("ap is down");
    assert!(
        matches!(err, ClusterError::Unreachable { attempts: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("cluster ap: cannot reach API server https://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("Secret istio-system/cacerts"), "{text}");
    clusters.cluster("ap").set_down(false);
    assert!(
        ap.get(&ObjectRef::cluster_scoped("v1", "Namespace", "kube-system"))
            .await?
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn unknown_context_is_a_kubeconfig_error() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let err = ClusterClient::connect("eu", Some(clusters.kubeconfig_path()), "nope")
        .await
        .expect_err("no such context");
    assert!(matches!(err, ClusterError::Kubeconfig { .. }));
    assert!(
        err.to_string()
            .contains("context \"nope\" not found (contexts: eu)"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn admin_may_write_secrets_and_unknown_kinds_are_named() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    assert!(
        eu.can_i("patch", "", "secrets", Some("istio-system"))
            .await?
    );
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                        "metadata": {"name": "w", "namespace": "istio-system"}});
    let err = eu
        .apply(&widget, &ApplyOptions::default())
        .await
        .expect_err("unknown kind");
    assert!(matches!(err, ClusterError::UnknownKind { .. }), "{err:?}");
    assert_eq!(err.cluster(), "eu");
    let nameless = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": "x"}});
    let err = eu
        .apply(&nameless, &ApplyOptions::default())
        .await
        .expect_err("no name");
    assert!(
        err.to_string().contains("metadata.name is missing"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn token_wait_is_bounded_and_says_what_is_missing() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    eu.apply(&namespace("net1"), &ApplyOptions::default())
        .await?;
    // An Opaque Secret: no token controller will ever fill it.
    let opaque = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "not-a-token", "namespace": "istio-system"},
        "data": {"ca.crt": "Y2E="}});
    eu.apply(&opaque, &ApplyOptions::default()).await?;
    let started = std::time::Instant::now();
    let err = eu
        .wait_for_token_secret("istio-system", "not-a-token", Duration::from_millis(300))
        .await
        .expect_err("never filled");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, ClusterError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("no \"token\" data found"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_namespace_on_a_cluster_scoped_object_does_not_cause_rewrites() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "reader", "namespace": "istio-system"},
        "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]});
    assert_eq!(
        eu.apply(&role, &ApplyOptions::default()).await?,
        ApplyOutcome::Created
    );
    clusters.cluster("eu").reset_counters();
    assert_eq!(
        eu.apply(&role, &ApplyOptions::default()).await?,
        ApplyOutcome::Unchanged
    );
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    Ok(())
}

/// A field another manager owns (here `kubectl apply --server-side`) is a conflict unless
/// `force` is set. Skipped when kubectl is not installed.
#[tokio::test]
async fn fields_of_another_manager_conflict_unless_forced() -> TestResult {
    let Some(kubectl) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("kubectl"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("kubectl not found: skipping");
        return Ok(());
    };
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    eu.apply(&namespace("net1"), &ApplyOptions::default())
        .await?;
    let dir = tempfile::tempdir()?;
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mesh\n  namespace: istio-system\ndata:\n  network: net1\n",
    )?;
    let out = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(clusters.kubeconfig_path())
        .args(["--context", "eu", "apply", "--server-side", "-f"])
        .arg(&manifest)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ours = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "mesh", "namespace": "istio-system"}, "data": {"network": "net2"}});
    let err = eu
        .apply(&ours, &ApplyOptions::default())
        .await
        .expect_err("kubectl owns data.network");
    assert!(matches!(err, ClusterError::Conflict { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cluster eu: conflict (apply ConfigMap istio-system/mesh)"),
        "{err}"
    );

    let forced = ApplyOptions {
        force: true,
        ..ApplyOptions::default()
    };
    assert_eq!(eu.apply(&ours, &forced).await?, ApplyOutcome::Updated);
    let live = clusters
        .cluster("eu")
        .object("v1", "ConfigMap", Some("istio-system"), "mesh")
        .expect("configmap");
    assert_eq!(live["data"]["network"], "net2");
    Ok(())
}

#[tokio::test]
async fn a_label_meshboot_stops_setting_is_removed_from_the_cluster() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let opts = ApplyOptions::default();
    let mut old = namespace("net1");
    old["metadata"]["labels"]["meshboot.io/retired"] = json!("x");
    assert_eq!(eu.apply(&old, &opts).await?, ApplyOutcome::Created);

    // The new desired state no longer has the label: every value it has is live already, but
    // meshboot owns the label, so an apply must go out and the server drops it.
    assert_eq!(
        eu.apply(&namespace("net1"), &opts).await?,
        ApplyOutcome::Updated
    );
    let live = clusters
        .cluster("eu")
        .object("v1", "Namespace", None, "istio-system")
        .expect("namespace");
    assert!(
        live["metadata"]["labels"]
            .get("meshboot.io/retired")
            .is_none(),
        "{live:#}"
    );
    clusters.cluster("eu").reset_counters();
    assert_eq!(
        eu.apply(&namespace("net1"), &opts).await?,
        ApplyOutcome::Unchanged
    );
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    Ok(())
}

#[tokio::test]
async fn quantities_stored_in_canonical_form_are_unchanged() -> TestResult {
    // A real API server stores `2000m` as `2` and `1024Mi` as `1Gi` (apimachinery's
    // resource.Quantity canonical form) and keeps `1000Mi`; the object it returns must still
    // count as converged, with no write.
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let opts = ApplyOptions::default();
    eu.apply(&namespace("net1"), &opts).await?;
    let deployment = |cpu: &str, memory: &str, limit: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "gw", "namespace": "istio-system"},
            "spec": {"selector": {"matchLabels": {"app": "gw"}},
                     "template": {"metadata": {"labels": {"app": "gw"}},
                                  "spec": {"containers": [{"name": "proxy", "image": "proxyv2",
                                      "resources": {"requests": {"cpu": cpu, "memory": memory},
                                                    "limits": {"memory": limit}}}]}}}})
    };
    let desired = deployment("2000m", "1024Mi", "1000Mi");
    assert_eq!(eu.apply(&desired, &opts).await?, ApplyOutcome::Created);
    // Store it the way a real server would, ownership untouched.
    let mut stored = clusters
        .cluster("eu")
        .object("apps/v1", "Deployment", Some("istio-system"), "gw")
        .expect("deployment");
    let resources = &mut stored["spec"]["template"]["spec"]["containers"][0]["resources"];
    resources["requests"]["cpu"] = json!("2");
    resources["requests"]["memory"] = json!("1Gi");
    clusters.cluster("eu").insert_object(stored)?;

    clusters.cluster("eu").reset_counters();
    assert_eq!(eu.apply(&desired, &opts).await?, ApplyOutcome::Unchanged);
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    // A different value is still a change.
    assert_eq!(
        eu.apply(&deployment("2000m", "1024Mi", "1Gi"), &opts)
            .await?,
        ApplyOutcome::Updated
    );
    Ok(())
}

/// `istio/base` installs Istio's CRDs half-way through an apply whose preflight already asked
/// for them: the client must see the kinds once they are served, not its answer from before.
#[tokio::test]
async fn a_kind_whose_crd_appears_later_is_served_to_the_same_client() -> TestResult {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    let gateway = ObjectRef::namespaced(
        "networking.istio.io/v1",
        "Gateway",
        "istio-system",
        "cross-network-gateway",
    );
    let err = eu.get(&gateway).await.expect_err("no Istio CRDs yet");
    assert!(matches!(err, ClusterError::UnknownKind { .. }), "{err:?}");
    clusters.install_istio_crds()?;
    assert_eq!(eu.get(&gateway).await?, None);
    Ok(())
}

#[tokio::test]
async fn list_each_hands_on_what_list_returns_one_item_at_a_time() -> TestResult {
    // list_each decodes the body as it arrives: 40 Secrets of 4 KiB are some 170 KiB, many
    // more than one HTTP/2 DATA frame (16 KiB), so items are cut across frames.
    let clusters = TestClusters::start(&["eu"])?;
    let eu = client(&clusters, "eu").await;
    eu.apply(&namespace("net1"), &ApplyOptions::default())
        .await?;
    let names: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
    for name in &names {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "istio-system", "labels": {"istio/multiCluster": "true"},
                "annotations": {"note": "a \"quoted\" ]}, [ value"}},
            "data": {"k": "dmFs".repeat(1024)}});
        eu.apply(&secret, &ApplyOptions::default()).await?;
    }
    let listed = eu
        .list(
            "v1",
            "Secret",
            Some("istio-system"),
            Some("istio/multiCluster=true"),
        )
        .await?;
    let mut streamed = Vec::new();
    let n = eu
        .list_each(
            "v1",
            "Secret",
            Some("istio-system"),
            Some("istio/multiCluster=true"),
            |item| streamed.push(item),
        )
        .await?;
    assert_eq!(n, 40);
    let streamed_names: Vec<&str> = streamed
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .collect();
    assert_eq!(streamed_names, names);
    assert_eq!(
        streamed, listed,
        "same items, apiVersion and kind filled in"
    );
    assert_eq!(streamed[0]["kind"], "Secret");
    let none = eu
        .list_each(
            "v1",
            "Secret",
            Some("istio-system"),
            Some("nothing=here"),
            |_| {},
        )
        .await?;
    assert_eq!(none, 0);
    Ok(())
}
