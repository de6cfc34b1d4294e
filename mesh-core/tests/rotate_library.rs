//! `mesh_core::rotate` as a library user drives it, against the API-server emulator, and what
//! `apply` does around rotation: an expired intermediate, one that expires soon, a `cacerts`
//! that trusts more than the mesh root.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use mesh_core::cluster::KubeConnector;
use mesh_core::execute::{ExecuteError, ExecuteOptions, apply_with, connect_with};
use mesh_core::pki::CaDir;
use mesh_core::rotate::{
    IntermediateOutcome, IntermediateRequest, RootOutcome, RootPhase, RootRequest, RotateOptions,
    rotate_intermediates_with, rotate_root_with,
};
use mesh_core::spec::MeshSpec;
use mesh_tests::TestClusters;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn spec_for(clusters: &TestClusters, dir: &std::path::Path, days: u32) -> MeshSpec {
    let kc = clusters.kubeconfig_path().display().to_string();
    let yaml = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nca: {{dir: ./pki, key: ecdsa-p256, intermediateDays: {days}}}\nclusters:\n\
         - {{name: eu, network: n1, context: eu, kubeconfig: {kc}}}\n\
         - {{name: us, network: n1, context: us, kubeconfig: {kc}}}\n"
    );
    MeshSpec::from_yaml(&yaml, dir, "mesh.yaml").expect("valid mesh file")
}

fn options() -> ExecuteOptions {
    ExecuteOptions {
        allow_loopback: true,
        timeout: Duration::from_secs(20),
        ..ExecuteOptions::default()
    }
}

fn live_file(clusters: &TestClusters, cluster: &str, key: &str) -> String {
    let s = clusters
        .cluster(cluster)
        .object("v1", "Secret", Some("istio-system"), "cacerts")
        .unwrap_or(Value::Null);
    let b = s["data"][key].as_str().unwrap_or_default();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default(),
    )
    .unwrap_or_default()
}

/// An intermediate for `cluster` that expired yesterday, signed by the directory's root.
fn write_expired_intermediate(ca: &CaDir, cluster: &str) -> TestResult {
    let root_pem = std::fs::read_to_string(ca.root_cert_path())?;
    let root_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(ca.root_key_path())?)?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&root_pem, &root_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Istio");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Intermediate CA");
    params
        .distinguished_name
        .push(rcgen::DnType::LocalityName, cluster);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(30);
    params.not_after = now - time::Duration::days(1);
    let cert = params.signed_by(&key, &issuer)?;
    let dir = ca.cluster_dir(cluster);
    std::fs::write(dir.join("ca-cert.pem"), cert.pem())?;
    std::fs::write(dir.join("ca-key.pem"), key.serialize_pem())?;
    std::fs::write(
        dir.join("cert-chain.pem"),
        format!("{}{root_pem}", cert.pem()),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_intermediate_stops_apply_with_the_rotate_command_and_rotation_fixes_it()
-> TestResult {
    let clusters = TestClusters::start(&["eu", "us"])?;
    clusters.install_istio_crds()?;
    let dir = tempfile::tempdir()?;
    let spec = spec_for(&clusters, dir.path(), 730);
    let connector = KubeConnector::default();
    let report = apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &options(),
        &|_| {},
    )
    .await?;
    assert!(report.succeeded, "{report:?}");
    let ca = CaDir::open(&spec.ca.dir);
    write_expired_intermediate(&ca, "eu")?;

    // Even with --force apply keeps its hands off: the error says what to run.
    let forced = ExecuteOptions {
        force: true,
        ..options()
    };
    let err = apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &forced,
        &|_| {},
    )
    .await
    .expect_err("an expired intermediate stops apply");
    assert!(
        matches!(err, ExecuteError::IntermediateNeedsRotation { ref cluster, .. } if cluster == "eu"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("meshboot rotate intermediate --cluster eu"),
        "{text}"
    );
    assert!(text.contains("not even with --force"), "{text}");

    let request = IntermediateRequest {
        expiring_within: Some(Duration::from_secs(86_400)),
        ..IntermediateRequest::default()
    };
    let rotated = rotate_intermediates_with(
        &spec,
        connect_with(&spec, &connector).await,
        &request,
        &RotateOptions::default(),
        &|_| {},
    )
    .await?;
    assert!(rotated.succeeded, "{rotated:?}");
    assert_eq!(rotated.clusters.len(), 1);
    assert_eq!(rotated.clusters[0].action, IntermediateOutcome::Issued);
    assert_eq!(rotated.untouched, ["us"]);
    let report = apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &options(),
        &|_| {},
    )
    .await?;
    assert!(report.succeeded);
    assert_eq!(report.totals.written(), 0, "the rotation already pushed it");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_reminds_of_an_intermediate_that_expires_soon() -> TestResult {
    let clusters = TestClusters::start(&["eu", "us"])?;
    clusters.install_istio_crds()?;
    let dir = tempfile::tempdir()?;
    let spec = spec_for(&clusters, dir.path(), 10);
    let connector = KubeConnector::default();
    let report = apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &options(),
        &|_| {},
    )
    .await?;
    let notices: Vec<&str> = report.notices.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices[0].contains("expires in 9 day(s)") || notices[0].contains("expires in 10 day(s)"),
        "{notices:?}"
    );
    assert_eq!(
        report.notices[0].hint.as_deref(),
        Some("meshboot rotate intermediate --cluster eu")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_holding_the_mesh_root_and_more_is_kept_not_a_conflict() -> TestResult {
    let clusters = TestClusters::start(&["eu", "us"])?;
    clusters.install_istio_crds()?;
    let dir = tempfile::tempdir()?;
    let spec = spec_for(&clusters, dir.path(), 730);
    let connector = KubeConnector::default();
    apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &options(),
        &|_| {},
    )
    .await?;
    // Someone added a second root to eu's bundle (another mesh's, or a rotation elsewhere).
    let other = tempfile::tempdir()?;
    let foreign = CaDir::open(other.path());
    foreign.ensure(&spec.ca_options(), &["x"])?;
    let extra = std::fs::read_to_string(foreign.root_cert_path())?;
    let wider = format!("{}{extra}", live_file(&clusters, "eu", "root-cert.pem"));
    let mut secret = clusters
        .cluster("eu")
        .object("v1", "Secret", Some("istio-system"), "cacerts")
        .ok_or("no cacerts")?;
    secret["data"]["root-cert.pem"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&wider));
    clusters.cluster("eu").insert_object(secret)?;

    let report = apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &options(),
        &|_| {},
    )
    .await?;
    assert!(
        report.succeeded,
        "a wider bundle is not a conflict: {:?}",
        report.stopped
    );
    assert_eq!(
        live_file(&clusters, "eu", "root-cert.pem"),
        wider,
        "apply dropped a root"
    );
    assert!(
        report
            .notices
            .iter()
            .any(|n| n.cluster == "eu" && n.message.contains("besides the mesh root"))
    );
    // A bundle without the mesh root still is one.
    let mut secret = clusters
        .cluster("us")
        .object("v1", "Secret", Some("istio-system"), "cacerts")
        .ok_or("no cacerts")?;
    secret["data"]["root-cert.pem"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&extra));
    clusters.cluster("us").insert_object(secret)?;
    let report = apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &options(),
        &|_| {},
    )
    .await?;
    assert!(report.stopped.is_some());
    // And rotate intermediate will not touch that cluster either.
    let request = IntermediateRequest {
        clusters: vec!["us".into()],
        ..IntermediateRequest::default()
    };
    let before = live_file(&clusters, "us", "ca-cert.pem");
    let rotated = rotate_intermediates_with(
        &spec,
        connect_with(&spec, &connector).await,
        &request,
        &RotateOptions::default(),
        &|_| {},
    )
    .await?;
    assert!(!rotated.succeeded);
    assert_eq!(rotated.clusters[0].action, IntermediateOutcome::Skipped);
    assert!(
        rotated.clusters[0]
            .reason
            .contains("does not trust the mesh root"),
        "{}",
        rotated.clusters[0].reason
    );
    assert_eq!(live_file(&clusters, "us", "ca-cert.pem"), before);
    assert!(
        !CaDir::open(&spec.ca.dir).previous_dir("us").exists(),
        "issued locally anyway"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_user_sees_the_same_phases_and_gates() -> TestResult {
    use mesh_tests::istiod::IstiodOptions;
    let clusters = TestClusters::start_with(
        &["eu", "us"],
        mesh_tests::EmulatorOptions {
            istiod: Some(IstiodOptions::default()),
            ..mesh_tests::EmulatorOptions::default()
        },
    )?;
    clusters.install_istio_crds()?;
    let dir = tempfile::tempdir()?;
    let spec = spec_for(&clusters, dir.path(), 730);
    let connector = KubeConnector::default();
    apply_with(
        &spec,
        connect_with(&spec, &connector).await,
        &options(),
        &|_| {},
    )
    .await?;
    for c in ["eu", "us"] {
        clusters
            .cluster(c)
            .install_istiod("1.30.3", &[("ISTIO_MULTIROOT_MESH", "true")])?;
        clusters.cluster(c).insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": "defaultConfig:\n  proxyMetadata:\n    PROXY_CONFIG_XDS_AGENT: \"true\"\n"}}))?;
    }
    let opts = RotateOptions {
        timeout: Duration::from_secs(20),
        poll: Duration::from_millis(100),
        ..RotateOptions::default()
    };
    let dry = rotate_root_with(
        &spec,
        connect_with(&spec, &connector).await,
        &RootRequest {
            new_root: Some(mesh_core::rotate::NewRoot::Generate),
            ..RootRequest::default()
        },
        &RotateOptions {
            dry_run: true,
            ..opts.clone()
        },
        &|_| {},
    )
    .await?;
    assert_eq!(dry.outcome, RootOutcome::WouldAdvance);
    assert_eq!(dry.next.as_ref().map(|n| n.to), Some(RootPhase::BothRoots));
    assert!(
        !CaDir::open(&spec.ca.dir).rotation_dir().exists(),
        "a dry run wrote the CA directory"
    );

    let counter = std::sync::Mutex::new(BTreeMap::<String, usize>::new());
    let on_event = |e: &mesh_core::execute::Event<'_>| {
        if let mesh_core::execute::Event::StepDone { step, .. } = e {
            *counter
                .lock()
                .unwrap()
                .entry(step.cluster.clone())
                .or_default() += 1;
        }
    };
    let report = rotate_root_with(
        &spec,
        connect_with(&spec, &connector).await,
        &RootRequest {
            new_root: Some(mesh_core::rotate::NewRoot::Generate),
            ..RootRequest::default()
        },
        &opts,
        &on_event,
    )
    .await?;
    // Through phases 1 and 2, then gate 2 (24 h by default) holds.
    assert_eq!(report.outcome, RootOutcome::Advanced, "{report:#?}");
    assert_eq!(
        report.steps.iter().map(|s| s.to).collect::<Vec<_>>(),
        [RootPhase::BothRoots, RootPhase::NewIntermediates]
    );
    assert!(
        report
            .clusters
            .iter()
            .all(|c| c.phase == Some(RootPhase::NewIntermediates))
    );
    assert_eq!(
        report.gate.as_ref().map(|g| (g.gate, g.open)),
        Some((mesh_core::rotate::Gate::MinPhaseAge, false))
    );
    let events = counter.lock().map(|e| e.clone()).unwrap_or_default();
    assert_eq!(
        events.get("eu"),
        Some(&2),
        "one cacerts step per phase, through the executor's events"
    );
    Ok(())
}
