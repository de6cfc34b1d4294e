//! The real Helm (v4: server-side apply, field manager `helm`) against emulated clusters with our
//! test charts (`fixtures/charts/`): install, upgrade, list, get values, uninstall, `--wait`,
//! release Secrets, CRDs that then serve their kinds, and the ways Helm and another manager
//! collide, each worded as Helm and a real API server word them. Every test prints why it skips
//! when helm is not found (CI installs it: see .ci/run).

mod common;

use std::path::PathBuf;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use mesh_tests::charts::{self, VERSION};
use mesh_tests::tools::Helm;
use mesh_tests::{EmulatedCluster, EmulatorOptions, TestClusters};
use serde_json::{Value, json};

const NS: &str = "istio-system";

fn helm_for(binary: PathBuf, clusters: &TestClusters) -> anyhow::Result<Helm> {
    Ok(Helm::new(binary, clusters.kubeconfig_path())?)
}

/// `helm upgrade --install <release> <chart dir> -n istio-system --create-namespace --wait <extra>`.
fn install(
    h: &Helm,
    ctx: &str,
    release: &str,
    chart: &str,
    extra: &[&str],
) -> anyhow::Result<String> {
    let chart = charts::chart(chart);
    let mut args: Vec<String> = vec![
        "upgrade".into(),
        "--install".into(),
        release.into(),
        chart.display().to_string(),
        "-n".into(),
        NS.into(),
        "--create-namespace".into(),
        "--wait".into(),
        "--timeout".into(),
        "30s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    h.ok(ctx, &args)
}

fn list(h: &Helm, ctx: &str) -> anyhow::Result<Vec<Value>> {
    let out = h.ok(ctx, ["list", "-n", NS, "-o", "json"])?;
    Ok(serde_json::from_str(&out)?)
}

fn release<'a>(releases: &'a [Value], name: &str) -> Option<&'a Value> {
    releases.iter().find(|r| r["name"] == name)
}

fn get(c: &EmulatedCluster, api_version: &str, kind: &str, name: &str) -> Option<Value> {
    c.object(api_version, kind, Some(NS), name)
}

fn rv(obj: &Option<Value>) -> String {
    obj.as_ref()
        .and_then(|o| o["metadata"]["resourceVersion"].as_str())
        .unwrap_or_default()
        .to_string()
}

const KINDS: [(&str, &str); 15] = [
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
];

/// Every object a release owns, by Helm's ownership annotation: (kind, name, object).
fn owned_objects(c: &EmulatedCluster, release: &str) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (av, kind) in KINDS {
        for o in c.list_objects(av, kind, None) {
            if o["metadata"]["annotations"]["meta.helm.sh/release-name"] == release {
                let name = o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                out.push((kind.to_string(), name, o));
            }
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// Every object a release owns as (kind, name, resourceVersion).
fn owned_by(c: &EmulatedCluster, release: &str) -> Vec<(String, String, String)> {
    owned_objects(c, release)
        .into_iter()
        .map(|(k, n, o)| (k, n, rv(&Some(o))))
        .collect()
}

fn names(objs: &[(String, String, String)]) -> Vec<String> {
    objs.iter().map(|(k, n, _)| format!("{k}/{n}")).collect()
}

#[test]
fn each_chart_installs_upgrades_lists_gets_values_and_uninstalls() -> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let eu = clusters.cluster("eu");
    let cases: [(&str, &str, &[&str], Value); 5] = [
        ("istio-base", "base", &[], json!(null)),
        (
            "istiod",
            "istiod",
            &[
                "--set",
                "global.meshID=mesh1",
                "--set",
                "global.multiCluster.clusterName=eu",
                "--set",
                "global.network=network1",
            ],
            json!({"global": {"meshID": "mesh1", "multiCluster": {"clusterName": "eu"}, "network": "network1"}}),
        ),
        (
            "istio-eastwestgateway",
            "gateway",
            &[
                "--set",
                "name=istio-eastwestgateway",
                "--set",
                "networkGateway=network1",
            ],
            json!({"name": "istio-eastwestgateway", "networkGateway": "network1"}),
        ),
        (
            "istio-cni",
            "cni",
            &["--set", "profile=ambient"],
            json!({"profile": "ambient"}),
        ),
        (
            "ztunnel",
            "ztunnel",
            &[
                "--set",
                "multiCluster.clusterName=eu",
                "--set",
                "global.network=network1",
            ],
            json!({"global": {"network": "network1"}, "multiCluster": {"clusterName": "eu"}}),
        ),
    ];
    for (rel, chart, args, values) in &cases {
        install(&h, "eu", rel, chart, args)?;
        let releases = list(&h, "eu")?;
        let r = release(&releases, rel).cloned().unwrap_or_default();
        assert_eq!(r["chart"], format!("{chart}-{VERSION}"), "{rel}");
        assert_eq!(r["app_version"], VERSION);
        assert_eq!(
            (r["status"].as_str(), r["revision"].as_str()),
            (Some("deployed"), Some("1"))
        );
        let got: Value =
            serde_json::from_str(&h.ok("eu", ["get", "values", rel, "-n", NS, "-o", "json"])?)?;
        assert_eq!(&got, values, "{rel}: helm get values");
        assert!(!owned_by(eu, rel).is_empty(), "{rel} owns objects");
    }
    // An upgrade with other values makes revision 2 and changes what they drive.
    install(
        &h,
        "eu",
        "istio-eastwestgateway",
        "gateway",
        &[
            "--set",
            "name=istio-eastwestgateway",
            "--set",
            "networkGateway=network2",
        ],
    )?;
    let releases = list(&h, "eu")?;
    assert_eq!(
        release(&releases, "istio-eastwestgateway").map(|r| r["revision"].clone()),
        Some(json!("2"))
    );
    let svc = get(eu, "v1", "Service", "istio-eastwestgateway").unwrap_or_default();
    assert_eq!(
        svc["metadata"]["labels"]["topology.istio.io/network"],
        "network2"
    );

    for (rel, ..) in cases.iter().rev() {
        h.ok("eu", ["uninstall", rel, "-n", NS, "--wait"])?;
    }
    assert!(list(&h, "eu")?.is_empty());
    // The Istio CRDs carry helm.sh/resource-policy: keep, so they outlive the base release.
    let left: Vec<String> = [
        "istio-base",
        "istiod",
        "istio-eastwestgateway",
        "istio-cni",
        "ztunnel",
    ]
    .iter()
    .flat_map(|r| names(&owned_by(eu, r)))
    .collect();
    assert!(
        left.iter()
            .all(|n| n.starts_with("CustomResourceDefinition/")),
        "{left:?}"
    );
    assert_eq!(left.len(), 14);
    assert!(
        eu.list_objects("v1", "Secret", Some(NS)).is_empty(),
        "release Secrets are gone"
    );
    Ok(())
}

#[tokio::test]
async fn base_installs_the_crds_which_are_established_and_serve_istio_kinds() -> anyhow::Result<()>
{
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let eu = clusters.cluster("eu");
    assert!(
        !eu.serves("networking.istio.io/v1", "Gateway"),
        "fresh cluster"
    );
    install(&h, "eu", "istio-base", "base", &[])?;
    let crd = eu
        .object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "gateways.networking.istio.io",
        )
        .unwrap_or_default();
    assert_eq!(
        crd["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(
        crd["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "istio-base"
    );
    assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    let managers: Vec<&str> = crd["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"helm"), "{managers:?}");

    // The kind is served: exactly what meshboot's exposure step writes next.
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "Gateway"),
        "gateways",
    );
    let api: Api<DynamicObject> =
        Api::namespaced_with(common::admin(&clusters, "eu").await?, NS, &ar);
    let gw: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "cross-network-gateway"},
        "spec": {"selector": {"istio": "eastwestgateway"}, "servers": [{"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.local"]}]},
    }))?;
    api.patch(
        "cross-network-gateway",
        &PatchParams::apply("meshboot"),
        &Patch::Apply(&gw),
    )
    .await?;
    assert!(
        get(
            eu,
            "networking.istio.io/v1",
            "Gateway",
            "cross-network-gateway"
        )
        .is_some()
    );
    Ok(())
}

#[test]
fn release_secrets_are_stored_as_helm_writes_them() -> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let eu = clusters.cluster("eu");
    install(
        &h,
        "eu",
        "istio-eastwestgateway",
        "gateway",
        &["--set", "name=istio-eastwestgateway"],
    )?;
    install(
        &h,
        "eu",
        "istio-eastwestgateway",
        "gateway",
        &["--set", "name=istio-eastwestgateway"],
    )?;
    let secrets = eu.list_objects("v1", "Secret", Some(NS));
    let mut seen: Vec<(String, String, String, String)> = secrets
        .iter()
        .map(|s| {
            let l = &s["metadata"]["labels"];
            (
                s["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                s["type"].as_str().unwrap_or_default().to_string(),
                format!("{} {} {}", l["owner"], l["name"], l["version"]),
                l["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "sh.helm.release.v1.istio-eastwestgateway.v1".into(),
                "helm.sh/release.v1".into(),
                r#""helm" "istio-eastwestgateway" "1""#.into(),
                "superseded".into()
            ),
            (
                "sh.helm.release.v1.istio-eastwestgateway.v2".into(),
                "helm.sh/release.v1".into(),
                r#""helm" "istio-eastwestgateway" "2""#.into(),
                "deployed".into()
            ),
        ]
    );
    // helm history finds them through a label-selected list.
    let history = h.ok(
        "eu",
        ["history", "istio-eastwestgateway", "-n", NS, "-o", "json"],
    )?;
    let history: Vec<Value> = serde_json::from_str(&history)?;
    assert_eq!(history.len(), 2);
    Ok(())
}

/// An object as stored minus what an apply that changes nothing may still touch: the
/// resourceVersion and the managers' timestamps.
fn content(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    for e in o["metadata"]["managedFields"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if let Some(e) = e.as_object_mut() {
            e.remove("time");
        }
    }
    o
}

#[test]
fn a_converged_upgrade_makes_a_new_revision_but_changes_no_object() -> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let eu = clusters.cluster("eu");
    let istiod = [
        "--set",
        "global.multiCluster.clusterName=eu",
        "--set",
        "global.network=network1",
    ];
    let gateway = [
        "--set",
        "name=istio-eastwestgateway",
        "--set",
        "networkGateway=network1",
    ];
    let releases = ["istio-base", "istiod", "istio-eastwestgateway"];
    install(&h, "eu", "istio-base", "base", &[])?;
    install(&h, "eu", "istiod", "istiod", &istiod)?;
    install(&h, "eu", "istio-eastwestgateway", "gateway", &gateway)?;
    let snapshot = || -> Vec<(String, String, String, Value)> {
        releases
            .iter()
            .flat_map(|r| owned_objects(eu, r))
            .map(|(kind, name, o)| (kind, name, rv(&Some(o.clone())), content(&o)))
            .collect()
    };
    // Controllers (rollout status, load-balancer address, CRD status) settle first: two equal
    // snapshots 200 ms apart, within 10 s.
    let mut before = snapshot();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = snapshot();
        if now == before {
            break;
        }
        before = now;
    }
    install(&h, "eu", "istio-base", "base", &[])?;
    install(&h, "eu", "istiod", "istiod", &istiod)?;
    install(&h, "eu", "istio-eastwestgateway", "gateway", &gateway)?;
    let after = snapshot();
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (&a.0, &a.1, &a.3),
            (&b.0, &b.1, &b.3),
            "{}/{} changed",
            b.0,
            b.1
        );
        // Also where Helm's apply spells what is stored differently (2000m, 2048Mi; webhook
        // rules without their defaulted scope): nothing is stored, no new resourceVersion.
        assert_eq!(a.2, b.2, "{}/{} was rewritten", a.0, a.1);
    }
    let listed = list(&h, "eu")?;
    for r in releases {
        assert_eq!(
            release(&listed, r).map(|r| r["revision"].clone()),
            Some(json!("2")),
            "{r}"
        );
    }
    Ok(())
}

#[test]
fn chart_quantities_are_stored_canonical() -> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let eu = clusters.cluster("eu");
    install(&h, "eu", "istiod", "istiod", &[])?;
    install(
        &h,
        "eu",
        "istio-eastwestgateway",
        "gateway",
        &["--set", "name=istio-eastwestgateway"],
    )?;
    let res = |name: &str| {
        get(eu, "apps/v1", "Deployment", name).unwrap_or_default()["spec"]["template"]["spec"]["containers"][0]["resources"].clone()
    };
    // The charts say 2000m / 1024Mi / 2048Mi; the server stores them canonical.
    assert_eq!(
        res("istio-eastwestgateway"),
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}})
    );
    assert_eq!(
        res("istiod"),
        json!({"requests": {"cpu": "500m", "memory": "2Gi"}})
    );
    // A values override is canonicalized the same way (controlPlane.values in a mesh file).
    install(
        &h,
        "eu",
        "istiod",
        "istiod",
        &[
            "--set",
            "pilot.resources.requests.cpu=2000m",
            "--set",
            "pilot.resources.requests.memory=1000Mi",
        ],
    )?;
    assert_eq!(
        res("istiod"),
        json!({"requests": {"cpu": "2", "memory": "1000Mi"}})
    );
    Ok(())
}

#[tokio::test]
async fn a_reader_service_account_without_helm_ownership_stops_helm_install_of_base()
-> anyhow::Result<()> {
    // Issue 8, case 2: an object another tool created under a chart's name.
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let client = common::admin(&clusters, "eu").await?;
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns_obj: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    ns.patch(NS, &PatchParams::apply("meshboot"), &Patch::Apply(&ns_obj))
        .await?;
    let sa: k8s_openapi::api::core::v1::ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "istio-reader-service-account", "namespace": NS}}))?;
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client, NS)
        .patch(
            "istio-reader-service-account",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&sa),
        )
        .await?;
    let chart = charts::chart("base");
    let err = h.fails(
        "eu",
        [
            "install",
            "istio-base",
            &chart.display().to_string(),
            "-n",
            NS,
        ],
    )?;
    assert!(
        err.contains(
            "Error: INSTALLATION FAILED: unable to continue with install: ServiceAccount \"istio-reader-service-account\" \
             in namespace \"istio-system\" exists and cannot be imported into the current release: invalid ownership metadata; \
             label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; \
             annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"istio-base\"; \
             annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"istio-system\""
        ),
        "{err}"
    );
    assert!(list(&h, "eu")?.is_empty() || list(&h, "eu")?.iter().all(|r| r["status"] == "failed"));
    Ok(())
}

#[tokio::test]
async fn another_manager_applying_the_reader_clusterrole_conflicts_with_helm() -> anyhow::Result<()>
{
    // Issue 8, case 3: Helm first, then a different manager applies the chart's reader role.
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    install(&h, "eu", "istiod", "istiod", &[])?;
    let client = common::admin(&clusters, "eu").await?;
    let api: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client);
    let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "istio-reader-clusterrole-istio-system"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
    }))?;
    let (code, reason, message) = common::status_of(
        api.patch(
            "istio-reader-clusterrole-istio-system",
            &PatchParams::apply("meshboot"),
            &Patch::Apply(&role),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"helm\": .rules"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_side_edit_of_the_reader_role_makes_the_next_helm_upgrade_fail()
-> anyhow::Result<()> {
    // Issue 8, case 5: `kubectl apply -f` (client-side: an update by kubectl-client-side-apply)
    // of the chart's reader role, then `helm upgrade istiod`.
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    install(&h, "eu", "istiod", "istiod", &[])?;
    let client = common::admin(&clusters, "eu").await?;
    let api: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client);
    let params = PatchParams {
        field_manager: Some("kubectl-client-side-apply".into()),
        ..PatchParams::default()
    };
    api.patch(
        "istio-reader-clusterrole-istio-system",
        &params,
        &Patch::Strategic(
            json!({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        ),
    )
    .await?;
    let chart = charts::chart("istiod");
    let err = h.fails(
        "eu",
        ["upgrade", "istiod", &chart.display().to_string(), "-n", NS],
    )?;
    assert!(
        err.contains(
            "Error: UPGRADE FAILED: conflict occurred while applying object /istio-reader-clusterrole-istio-system \
             rbac.authorization.k8s.io/v1, Kind=ClusterRole: Apply failed with 1 conflict: \
             conflict with \"kubectl-client-side-apply\" using rbac.authorization.k8s.io/v1: .rules"
        ),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_remote_profile_points_a_remote_cluster_at_its_primary() -> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["ip", "host"])?;
    let h = helm_for(helm, &clusters)?;
    let remote = |addr: &str| {
        vec![
            "--set".to_string(),
            "profile=remote".into(),
            "--set".into(),
            "pilot.enabled=false".into(),
            "--set".into(),
            format!("global.remotePilotAddress={addr}"),
            "--set".into(),
            "global.multiCluster.clusterName=remote".into(),
            "--set".into(),
            "istiodRemote.injectionPath=/inject/cluster/remote/net/network1".into(),
        ]
    };
    let ip_args = remote("192.0.2.10");
    let ip_refs: Vec<&str> = ip_args.iter().map(String::as_str).collect();
    install(&h, "ip", "istiod", "istiod", &ip_refs)?;
    let ip = clusters.cluster("ip");
    assert!(
        get(ip, "apps/v1", "Deployment", "istiod").is_none(),
        "pilot.enabled=false: no istiod workload"
    );
    let svc = get(ip, "v1", "Service", "istiod").unwrap_or_default();
    assert!(svc["spec"]["selector"].is_null(), "{svc}");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    let slice = get(ip, "discovery.k8s.io/v1", "EndpointSlice", "istiod").unwrap_or_default();
    assert_eq!(slice["endpoints"][0]["addresses"], json!(["192.0.2.10"]));
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "istiod"
    );
    let hook = ip
        .object(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            None,
            "istio-sidecar-injector",
        )
        .unwrap_or_default();
    assert_eq!(
        hook["webhooks"][0]["clientConfig"]["url"],
        "https://192.0.2.10:15017/inject/cluster/remote/net/network1"
    );
    let reader = ip
        .object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "istio-reader-clusterrole-istio-system",
        )
        .unwrap_or_default();
    assert!(
        reader["rules"]
            .to_string()
            .contains("mutatingwebhookconfigurations"),
        "remote extras"
    );

    let host_args = remote("eastwest.example.com");
    let host_refs: Vec<&str> = host_args.iter().map(String::as_str).collect();
    install(&h, "host", "istiod", "istiod", &host_refs)?;
    let host = clusters.cluster("host");
    let svc = get(host, "v1", "Service", "istiod").unwrap_or_default();
    assert_eq!(
        (
            svc["spec"]["type"].as_str(),
            svc["spec"]["externalName"].as_str()
        ),
        (Some("ExternalName"), Some("eastwest.example.com"))
    );
    assert!(get(host, "discovery.k8s.io/v1", "EndpointSlice", "istiod").is_none());
    Ok(())
}

#[test]
fn the_east_west_gateway_chart_makes_a_network_gateway() -> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let eu = clusters.cluster("eu");
    install(
        &h,
        "eu",
        "istio-eastwestgateway",
        "gateway",
        &[
            "--set",
            "name=istio-eastwestgateway",
            "--set",
            "networkGateway=network1",
            "--set",
            "podDisruptionBudget.minAvailable=1",
        ],
    )?;
    assert_eq!(
        names(&owned_by(eu, "istio-eastwestgateway")),
        [
            "Deployment/istio-eastwestgateway",
            "HorizontalPodAutoscaler/istio-eastwestgateway",
            "PodDisruptionBudget/istio-eastwestgateway",
            "Role/istio-eastwestgateway",
            "RoleBinding/istio-eastwestgateway",
            "Service/istio-eastwestgateway",
            "ServiceAccount/istio-eastwestgateway",
        ]
    );
    let svc = get(eu, "v1", "Service", "istio-eastwestgateway").unwrap_or_default();
    assert_eq!(
        svc["metadata"]["labels"]["topology.istio.io/network"],
        "network1"
    );
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app": "istio-eastwestgateway", "istio": "eastwestgateway"})
    );
    let ports: Vec<(i64, String)> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["port"].as_i64().unwrap_or_default(),
                p["protocol"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (15021, "TCP".into()),
            (15443, "TCP".into()),
            (15012, "TCP".into()),
            (15017, "TCP".into())
        ]
    );
    // The load-balancer controller gives it an address (Helm's default --wait does not wait for
    // one: see wait_strategies_differ_on_a_load_balancer_without_an_address).
    let mut addressed = false;
    for _ in 0..500 {
        let s = get(eu, "v1", "Service", "istio-eastwestgateway").unwrap_or_default();
        if s["status"]["loadBalancer"]["ingress"][0]["ip"].is_string() {
            addressed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(addressed, "no load-balancer address");
    let dep = get(eu, "apps/v1", "Deployment", "istio-eastwestgateway").unwrap_or_default();
    let pod = &dep["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"]["topology.istio.io/network"],
        "network1"
    );
    assert_eq!(
        pod["spec"]["containers"][0]["env"][0],
        json!({"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": "network1"})
    );
    let pdb = get(
        eu,
        "policy/v1",
        "PodDisruptionBudget",
        "istio-eastwestgateway",
    )
    .unwrap_or_default();
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    Ok(())
}

#[tokio::test]
async fn wait_strategies_differ_on_a_load_balancer_without_an_address() -> anyhow::Result<()> {
    // Helm 4's default --wait ("watcher", kstatus) counts a LoadBalancer Service with a cluster
    // IP as ready; only --wait=legacy also waits for the load balancer's address.
    let helm = mesh_tests::require_helm!();
    let opts = EmulatorOptions {
        lb_delay: std::time::Duration::from_secs(3600),
        ..EmulatorOptions::default()
    };
    let clusters = TestClusters::start_with(&["eu"], opts)?;
    let h = helm_for(helm, &clusters)?;
    let chart = charts::chart("gateway").display().to_string();
    let base = [
        "upgrade",
        "--install",
        "istio-eastwestgateway",
        chart.as_str(),
        "-n",
        NS,
        "--create-namespace",
        "--set",
        "name=istio-eastwestgateway",
        "--timeout",
        "3s",
    ];
    let mut watcher = base.to_vec();
    watcher.push("--wait");
    h.ok("eu", &watcher)?;
    let mut legacy = base.to_vec();
    legacy.push("--wait=legacy");
    let err = h.fails("eu", &legacy)?;
    assert!(err.contains("context deadline exceeded"), "{err}");
    // The legacy waiter reads the Deployment's ReplicaSets; with an address it succeeds.
    // A cloud controller's write of the address.
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(common::admin(&clusters, "eu").await?, NS);
    services
        .patch_status(
            "istio-eastwestgateway",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.99", "ipMode": "VIP"}]}}})),
        )
        .await?;
    h.ok("eu", &legacy)?;
    Ok(())
}

#[test]
fn a_wrongly_typed_value_fails_install_with_helms_schema_message_and_writes_nothing()
-> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let eu = clusters.cluster("eu");
    eu.reset_counters();
    let chart = charts::chart("gateway");
    let err = h.fails(
        "eu",
        [
            "install",
            "istio-eastwestgateway",
            &chart.display().to_string(),
            "-n",
            NS,
            "--set-json",
            "networkGateway=5",
        ],
    )?;
    assert!(
        err.contains("Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following chart(s):\ngateway:\n- at '/networkGateway': got number, want string"),
        "{err}"
    );
    assert_eq!(
        eu.counters().writes,
        0,
        "refused before anything was written"
    );
    Ok(())
}

#[test]
fn packaged_charts_install_at_the_requested_version() -> anyhow::Result<()> {
    let helm = mesh_tests::require_helm!();
    let clusters = TestClusters::start(&["eu"])?;
    let h = helm_for(helm, &clusters)?;
    let dir = tempfile::tempdir()?;
    let archives = charts::package_all(&h, dir.path(), "1.28.3")?;
    assert_eq!(archives[2], dir.path().join("gateway-1.28.3.tgz"));
    h.ok(
        "eu",
        [
            "upgrade",
            "--install",
            "istio-eastwestgateway",
            &archives[2].display().to_string(),
            "--version",
            "1.28.3",
            "-n",
            NS,
            "--create-namespace",
            "--set",
            "name=istio-eastwestgateway",
        ],
    )?;
    let releases = list(&h, "eu")?;
    assert_eq!(
        release(&releases, "istio-eastwestgateway").map(|r| r["chart"].clone()),
        Some(json!("gateway-1.28.3"))
    );
    Ok(())
}
