//! The helm runner with the real `helm` binary against the API-server emulator, using tiny
//! charts made in a temp dir: install, a converged re-run that makes no revision and no write,
//! upgrades for changed values and chart versions, a dry run that changes nothing, Helm's error
//! in one line, and a missing or too old helm as clear errors.
//!
//! Needs `helm` (v3.14+ or v4): `MESHBOOT_HELM`, else `helm` on PATH (`mesh_tests::tools`). CI
//! installs it (`.ci/run`); without it the tests that run it print why they skip.

use std::path::Path;

use mesh_core::helm::{Decision, EnsureOptions, Helm, HelmError, Release};
use mesh_core::render::HelmValues;
use mesh_core::spec::MeshSpec;
use mesh_tests::TestClusters;
use serde_json::json;

fn chart(dir: &Path, name: &str, version: &str, template: &str) {
    let c = dir.join(name);
    std::fs::create_dir_all(c.join("templates")).expect("chart dir");
    std::fs::write(
        c.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
    )
    .expect("Chart.yaml");
    std::fs::write(c.join("values.yaml"), "msg: default\n").expect("values.yaml");
    std::fs::write(c.join("templates/probe.yaml"), template).expect("template");
}

const PROBE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n  namespace: {{ .Release.Namespace }}\ndata:\n  msg: {{ .Values.msg | quote }}\n";

fn mesh(charts: &Path, kubeconfig: &Path, version: &str) -> MeshSpec {
    let text = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\ncontrolPlane: {{install: helm, version: {version}, chartDir: {}}}\nclusters: [{{name: eu, network: n, context: eu, kubeconfig: {}}}]\n",
        charts.display(),
        kubeconfig.display()
    );
    MeshSpec::from_yaml(&text, Path::new("/"), "mesh.yaml").expect("valid spec")
}

fn release(spec: &MeshSpec, values: serde_json::Value) -> Release {
    let v = HelmValues {
        chart: "base".into(),
        values,
    };
    Release::for_chart(spec, &spec.clusters[0], &v).expect("release")
}

fn start() -> TestClusters {
    let clusters = TestClusters::start(&["eu"]).expect("emulator starts");
    clusters
        .cluster("eu")
        .insert_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        )
        .expect("namespace");
    clusters
}

fn probe(clusters: &TestClusters) -> Option<String> {
    clusters
        .cluster("eu")
        .object("v1", "ConfigMap", Some("istio-system"), "probe")
        .and_then(|o| o["data"]["msg"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_converged_then_upgrades() {
    let bin = mesh_tests::require_helm!();
    let helm = Helm::locate(Some(&bin)).await.expect("a supported helm");
    let clusters = start();
    let charts = tempfile::tempdir().expect("temp dir");
    chart(charts.path(), "base", "1.28.2", PROBE);
    let spec = mesh(charts.path(), clusters.kubeconfig_path(), "1.28.2");
    let one = release(&spec, json!({"msg": "one", "n": {"on": "no"}}));

    // A dry run decides and writes nothing.
    let dry = EnsureOptions {
        dry_run: true,
        ..EnsureOptions::default()
    };
    let r = helm.ensure(&one, &dry).await.expect("dry run");
    assert_eq!((r.decision, r.applied), (Decision::Install, false));
    assert_eq!(r.reason, "release istio-base is not installed");
    assert_eq!(probe(&clusters), None, "a dry run installs nothing");

    let r = helm
        .ensure(&one, &EnsureOptions::default())
        .await
        .expect("install");
    assert_eq!((r.decision, r.applied), (Decision::Install, true));
    assert_eq!(probe(&clusters).as_deref(), Some("one"));
    let d = helm
        .deployed(&one.target, "istio-base")
        .await
        .expect("list")
        .expect("installed");
    assert_eq!(
        (d.chart.as_str(), d.revision, d.status.as_str()),
        ("base-1.28.2", 1, "deployed")
    );
    // The values reached Helm as written: JSON keeps `on`/`no` strings (YAML 1.1 would not).
    assert_eq!(d.values, json!({"msg": "one", "n": {"on": "no"}}));

    // Converged: no new revision, and nothing written to the API server.
    clusters.cluster("eu").reset_counters();
    let r = helm
        .ensure(&one, &EnsureOptions::default())
        .await
        .expect("re-run");
    assert_eq!(
        (r.decision, r.applied),
        (Decision::Unchanged, false),
        "{}",
        r.reason
    );
    assert_eq!(clusters.cluster("eu").counters().writes, 0);
    let d = helm
        .deployed(&one.target, "istio-base")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.revision, 1);

    // Other values: an upgrade that says which key changed.
    let two = release(&spec, json!({"msg": "two", "n": {"on": "no"}}));
    let r = helm.ensure(&two, &dry).await.expect("dry run");
    assert_eq!(
        (r.decision, r.reason.as_str()),
        (Decision::Upgrade, "values differ at msg")
    );
    assert_eq!(probe(&clusters).as_deref(), Some("one"));
    let r = helm
        .ensure(&two, &EnsureOptions::default())
        .await
        .expect("upgrade");
    assert!(r.applied);
    assert_eq!(probe(&clusters).as_deref(), Some("two"));

    // Another chart version: an upgrade naming both versions.
    chart(charts.path(), "base", "1.28.3", PROBE);
    let spec3 = mesh(charts.path(), clusters.kubeconfig_path(), "1.28.3");
    let three = release(&spec3, json!({"msg": "two", "n": {"on": "no"}}));
    let r = helm
        .ensure(&three, &EnsureOptions::default())
        .await
        .expect("upgrade");
    assert_eq!(
        (r.decision, r.reason.as_str()),
        (
            Decision::Upgrade,
            "chart base-1.28.2 is deployed, base-1.28.3 is wanted"
        )
    );
    let d = helm
        .deployed(&one.target, "istio-base")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.chart.as_str(), d.revision), ("base-1.28.3", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_chart_reports_helms_message_on_one_line() {
    let bin = mesh_tests::require_helm!();
    let helm = Helm::locate(Some(&bin)).await.expect("a supported helm");
    let clusters = start();
    let charts = tempfile::tempdir().expect("temp dir");
    // `required` fails rendering with the chart's own message, as a bad value would.
    chart(
        charts.path(),
        "base",
        "1.28.2",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  msg: {{ required \"values.size is required\" .Values.size | quote }}\n",
    );
    let spec = mesh(charts.path(), clusters.kubeconfig_path(), "1.28.2");
    let err = helm
        .ensure(
            &release(&spec, json!({"msg": "x"})),
            &EnsureOptions::default(),
        )
        .await
        .unwrap_err();
    let HelmError::Failed {
        context,
        action,
        release,
        message,
    } = &err
    else {
        panic!("expected a helm failure, got {err:?}");
    };
    assert_eq!(
        (context.as_str(), *action, release.as_str()),
        ("eu", "upgrade --install", "istio-base")
    );
    assert!(!message.contains('\n'), "{message:?}");
    assert!(message.contains("values.size is required"), "{message}");
    assert!(!message.starts_with("Error:"), "{message}");
    assert_eq!(probe(&clusters), None);
}

#[tokio::test]
async fn a_missing_or_too_old_helm_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("helm");
    let err = Helm::locate(Some(&missing)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "helm not found at {}: install Helm v3.14+ or v4 (https://helm.sh/docs/intro/install/), or pass its path with --helm PATH",
            missing.display()
        )
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let fake = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("script");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            p
        };
        let old = fake("old-helm", "echo v3.13.3+gc8b9489");
        let err = Helm::locate(Some(&old)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: Helm v3.13.3 is too old; meshboot needs Helm v3.14+ or v4",
                old.display()
            )
        );
        let odd = fake("not-helm", "echo hello");
        let err = Helm::locate(Some(&odd)).await.unwrap_err();
        assert!(matches!(err, HelmError::UnknownVersion { .. }), "{err}");
        let v4 = fake("helm4", "echo v4.1.4+g05fa379");
        let helm = Helm::locate(Some(&v4)).await.expect("v4 is supported");
        assert_eq!(helm.version().text, "v4.1.4");
    }
}

/// Linux refuses to exec a file still open for writing ("Text file busy"): a helm binary
/// being replaced, or one whose writer's descriptor a concurrently forked child still holds
/// (what made this file's tests flaky on CI). A moment later the same exec succeeds, so
/// meshboot tries again instead of failing the run.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_still_open_for_writing_is_run_once_its_writer_closes() {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("helm");
    let mut writer = std::fs::File::create(&path).expect("script");
    writer
        .write_all(b"#!/bin/sh\necho v3.19.0+g3d8990f\n")
        .expect("script body");
    writer.flush().expect("flush");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let busy = Helm::locate(Some(&path));
    let close = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(writer);
    };
    let (found, ()) = tokio::join!(busy, close);
    let helm = found.expect("helm runs once nobody writes it");
    assert_eq!(helm.version().text, "v3.19.0");
}
