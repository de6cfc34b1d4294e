//! Requests in flight against the API-server emulator: a bound per API server and one across
//! the fleet, and a server's 429 (its max-in-flight / priority-and-fairness filter, which
//! answers `Retry-After: 1`) slowing down only the client of that server.

use std::time::Duration;

use mesh_core::cluster::{ClusterClient, Connector, KubeConnector, Limits, ObjectRef};
use mesh_tests::{EmulatorOptions, TestClusters};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn kube_system() -> ObjectRef {
    ObjectRef::cluster_scoped("v1", "Namespace", "kube-system")
}

static KUBE_SYSTEM: std::sync::LazyLock<ObjectRef> = std::sync::LazyLock::new(kube_system);

async fn connect(
    clusters: &TestClusters,
    connector: &KubeConnector,
    name: &str,
) -> Result<ClusterClient, Box<dyn std::error::Error>> {
    Ok(connector
        .connect(name, Some(clusters.kubeconfig_path()), name)
        .await?)
}

#[tokio::test]
async fn no_api_server_sees_more_requests_at_once_than_the_per_cluster_bound() -> TestResult {
    let clusters = TestClusters::start_with(
        &["eu", "us"],
        EmulatorOptions {
            latency: Duration::from_millis(40),
            ..EmulatorOptions::default()
        },
    )?;
    let connector = KubeConnector::within(Limits::new(3, 100));
    let eu = connect(&clusters, &connector, "eu").await?;
    let us = connect(&clusters, &connector, "us").await?;
    clusters.cluster("eu").reset_counters();
    clusters.cluster("us").reset_counters();
    let gets = (0..12).flat_map(|_| [eu.get(&KUBE_SYSTEM), us.get(&KUBE_SYSTEM)]);
    for got in futures::future::join_all(gets).await {
        assert!(got?.is_some());
    }
    for name in ["eu", "us"] {
        let peak = clusters.cluster(name).peak_in_flight();
        assert!(
            (1..=3).contains(&peak),
            "{name} served {peak} requests at once"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_global_bound_is_shared_by_every_client_of_a_connector() -> TestResult {
    let names = ["a", "b", "c", "d"];
    let clusters = TestClusters::start_with(
        &names,
        EmulatorOptions {
            latency: Duration::from_millis(40),
            ..EmulatorOptions::default()
        },
    )?;
    let connector = KubeConnector::within(Limits::new(8, 2));
    let mut clients = Vec::new();
    for name in names {
        clients.push(connect(&clusters, &connector, name).await?);
        clusters.cluster(name).reset_counters();
    }
    let gets = clients
        .iter()
        .flat_map(|c| (0..4).map(move |_| c.get(&KUBE_SYSTEM)));
    for got in futures::future::join_all(gets).await {
        assert!(got?.is_some());
    }
    let busiest: usize = names
        .iter()
        .map(|n| clusters.cluster(n).peak_in_flight())
        .sum();
    assert!(
        busiest <= 2 * names.len(),
        "per cluster at most the 2 global slots"
    );
    assert!(
        names
            .iter()
            .all(|n| clusters.cluster(n).peak_in_flight() <= 2)
    );
    Ok(())
}

/// kube-apiserver answers a request over its in-flight limit with 429 and `Retry-After: 1`:
/// that cluster's client waits the second out, while the other cluster goes on at full speed,
/// holding the global slots the throttled one gave back.
#[tokio::test]
async fn a_429_with_retry_after_slows_only_the_cluster_that_sent_it() -> TestResult {
    let clusters = TestClusters::start(&["busy", "calm"])?;
    // system:masters is exempt from the limits, as on a real server.
    clusters.use_operator_identity()?;
    let busy_server = clusters.cluster("busy");
    busy_server.set_latency(Duration::from_millis(150));
    busy_server.set_max_in_flight(1, 1);
    let connector = KubeConnector::within(Limits::new(4, 4));
    let busy = connect(&clusters, &connector, "busy").await?;
    let calm = connect(&clusters, &connector, "calm").await?;
    busy_server.reset_counters();
    clusters.cluster("calm").reset_counters();

    let throttled = tokio::spawn({
        let busy = busy.clone();
        async move {
            let gets = (0..4).map(|_| busy.get(&KUBE_SYSTEM));
            futures::future::join_all(gets).await
        }
    });
    // The first answers are in once the 150 ms of the first attempts have passed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while busy.throttled() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "busy never answered 429"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let requests_at_the_429 = busy_server.counters().total_requests();
    for _ in 0..20 {
        assert!(calm.get(&kube_system()).await?.is_some());
    }
    assert_eq!(
        busy_server.counters().total_requests(),
        requests_at_the_429,
        "busy is paused for its Retry-After: nothing more was sent to it while calm answered 20 requests"
    );

    for got in throttled.await? {
        assert!(
            got?.is_some(),
            "every throttled request succeeds in the end"
        );
    }
    assert!(busy_server.rejected_in_flight() >= 1);
    assert_eq!(calm.throttled(), 0);
    assert_eq!(clusters.cluster("calm").rejected_in_flight(), 0);
    Ok(())
}

#[tokio::test]
async fn system_masters_is_never_limited() -> TestResult {
    let clusters = TestClusters::start_with(
        &["eu"],
        EmulatorOptions {
            latency: Duration::from_millis(40),
            ..EmulatorOptions::default()
        },
    )?;
    clusters.cluster("eu").set_max_in_flight(1, 1);
    let connector = KubeConnector::within(Limits::new(8, 8));
    let eu = connect(&clusters, &connector, "eu").await?;
    clusters.cluster("eu").reset_counters();
    let gets = (0..8).map(|_| eu.get(&KUBE_SYSTEM));
    for got in futures::future::join_all(gets).await {
        assert!(got?.is_some());
    }
    assert_eq!(clusters.cluster("eu").rejected_in_flight(), 0);
    assert_eq!(eu.throttled(), 0);
    assert!(clusters.cluster("eu").peak_in_flight() > 1);
    Ok(())
}

/// client-go offers `h2` and multiplexes every request to a server over one connection; so
/// does meshboot's client: sixteen requests at once to one server are one TLS connection, not
/// sixteen handshakes (the emulator, like kube-apiserver, offers `h2` and `http/1.1` by ALPN).
#[tokio::test]
async fn requests_in_flight_to_one_server_share_one_http2_connection() -> TestResult {
    let clusters = TestClusters::start_with(
        &["eu"],
        EmulatorOptions {
            latency: Duration::from_millis(40),
            ..EmulatorOptions::default()
        },
    )?;
    clusters.cluster("eu").reset_counters();
    let connector = KubeConnector::within(Limits::new(16, 100));
    let eu = connect(&clusters, &connector, "eu").await?;
    assert!(eu.get(&KUBE_SYSTEM).await?.is_some());
    let gets = (0..16).map(|_| eu.get(&KUBE_SYSTEM));
    for got in futures::future::join_all(gets).await {
        assert!(got?.is_some());
    }
    let eu_counters = clusters.cluster("eu").counters();
    assert_eq!(eu_counters.requests("get"), 17);
    assert!(
        clusters.cluster("eu").peak_in_flight() > 1,
        "the requests were not in flight together"
    );
    assert_eq!(
        eu_counters.connections_by_protocol,
        [("h2".to_string(), 1)].into_iter().collect(),
        "{eu_counters}"
    );
    Ok(())
}
