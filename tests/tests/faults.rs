//! Fault injection, counters and lifecycle: what tests of meshboot's retries and idempotency
//! rely on.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::json;

fn port_of(url: &str) -> anyhow::Result<u16> {
    Ok(url.rsplit(':').next().unwrap_or_default().parse()?)
}

#[tokio::test]
async fn injected_errors_are_429_500_503_status_bodies_and_can_be_switched_off()
-> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let api = Api::<Namespace>::all(common::admin(&clusters, "eu").await?);
    eu.set_error_rate(1.0);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let (code, reason, _) = common::status_of(api.get("default").await);
        assert!(
            matches!(
                (code, reason.as_str()),
                (429, "TooManyRequests") | (500, "InternalError") | (503, "ServiceUnavailable")
            ),
            "{code} {reason}"
        );
        seen.insert(code);
    }
    assert_eq!(seen.len(), 3, "all three kinds appear: {seen:?}");
    eu.set_error_rate(0.0);
    api.get("default").await?;
    assert_eq!(
        eu.counters().requests("get"),
        61,
        "refused requests are counted too"
    );
    Ok(())
}

#[tokio::test]
async fn latency_delays_every_answer() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let api = Api::<Namespace>::all(common::admin(&clusters, "eu").await?);
    api.get("default").await?;
    eu.set_latency(Duration::from_millis(150));
    let t = Instant::now();
    api.get("default").await?;
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_down_cluster_refuses_connections_and_comes_back_on_the_same_port() -> anyhow::Result<()>
{
    let clusters = TestClusters::start(&["eu", "ap"])?;
    let eu = clusters.cluster("eu");
    let port = port_of(eu.url())?;
    let api = Api::<Namespace>::all(common::admin(&clusters, "eu").await?);
    api.get("default").await?;

    eu.set_down(true);
    let refused = common::eventually(|| {
        TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    })
    .await;
    assert!(refused.is_some(), "the port still accepts connections");
    let r = api.get("default").await;
    assert!(
        r.is_err() && !matches!(r, Err(kube::Error::Api(_))),
        "a down cluster answers nothing: {r:?}"
    );
    // The other cluster is unaffected.
    Api::<Namespace>::all(common::admin(&clusters, "ap").await?)
        .get("default")
        .await?;

    eu.set_down(false);
    common::eventually(|| {
        TcpStream::connect(("127.0.0.1", port))
            .is_ok()
            .then_some(())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("eu did not come back"))?;
    api.get("default").await?;
    Ok(())
}

#[test]
fn dropping_the_clusters_stops_the_servers() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let port = port_of(clusters.cluster("eu").url())?;
    let kubeconfig = clusters.kubeconfig_path().to_path_buf();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(clusters);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after drop"
    );
    assert!(!kubeconfig.exists(), "the temporary kubeconfig is removed");
    Ok(())
}

#[test]
fn kubeconfig_has_one_context_per_cluster_and_is_private() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu", "ap", "us"])?;
    let text = std::fs::read_to_string(clusters.kubeconfig_path())?;
    let kc = kube::config::Kubeconfig::from_yaml(&text)?;
    let contexts: Vec<(String, Option<String>)> = kc
        .contexts
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.context.as_ref().map(|x| x.cluster.clone()),
            )
        })
        .collect();
    assert_eq!(
        contexts,
        vec![
            ("eu".into(), Some("eu".into())),
            ("ap".into(), Some("ap".into())),
            ("us".into(), Some("us".into()))
        ]
    );
    for c in clusters.clusters() {
        assert!(text.contains(c.url()), "{} server", c.name());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(clusters.kubeconfig_path())?
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the kubeconfig holds admin tokens");
    }
    Ok(())
}

#[test]
fn bad_cluster_names_are_refused_before_anything_starts() {
    for names in [&["EU"][..], &["eu", "eu"][..], &[][..], &["a.b"][..]] {
        assert!(TestClusters::start(names).is_err(), "{names:?}");
    }
}

#[tokio::test]
async fn start_options_apply_to_every_cluster() -> anyhow::Result<()> {
    let opts = EmulatorOptions {
        error_rate: 1.0,
        ..EmulatorOptions::default()
    };
    let clusters = TestClusters::start_with(&["eu", "ap"], opts)?;
    for name in ["eu", "ap"] {
        let api = Api::<ConfigMap>::namespaced(common::admin(&clusters, name).await?, "default");
        let cm: ConfigMap = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )?;
        let (code, _, _) = common::status_of(
            api.patch("c", &PatchParams::apply("m"), &Patch::Apply(&cm))
                .await,
        );
        assert!(matches!(code, 429 | 500 | 503));
        assert!(
            clusters
                .cluster(name)
                .object("v1", "ConfigMap", Some("default"), "c")
                .is_none(),
            "a refused write stores nothing"
        );
    }
    Ok(())
}

#[test]
fn direct_object_api_works_without_a_runtime() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    let before = eu.counters().objects;
    let stored = eu.insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}}))?;
    assert!(
        stored["metadata"]["uid"].is_string() && stored["metadata"]["resourceVersion"].is_string()
    );
    assert_eq!(eu.counters().objects, before + 1);
    // Beside kube-root-ca.crt, which every namespace has.
    assert_eq!(eu.list_objects("v1", "ConfigMap", Some("default")).len(), 2);
    assert_eq!(
        eu.object("v1", "ConfigMap", Some("default"), "c")
            .map(|o| o["data"]["a"].clone()),
        Some(json!("1"))
    );
    assert_eq!(
        eu.counters().writes,
        0,
        "direct set-up is not counted as API writes"
    );
    assert!(
        eu.insert_object(json!({"apiVersion": "v9", "kind": "Nope", "metadata": {"name": "x"}}))
            .is_err()
    );
    assert!(
        eu.remove_object("v1", "ConfigMap", Some("default"), "c")
            .is_some()
    );
    Ok(())
}
