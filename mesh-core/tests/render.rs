//! What each cluster gets, as a user of the rendered manifests would check it: complete objects,
//! string-only labels, the network label set once, exposure only where it is needed, the right
//! Helm values per model, no private key in Debug output, and the output tree written safely.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_core::pki::ClusterBundle;
use mesh_core::plan::Phase;
use mesh_core::render::{self, ClusterRender, Needs, RenderError, helm, output};
use mesh_core::spec::MeshSpec;
use serde_json::Value;

const SECRET_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n";

fn spec(body: &str) -> MeshSpec {
    let text = format!("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\n{body}");
    MeshSpec::from_yaml(&text, Path::new("/srv"), "mesh.yaml").expect("valid spec")
}

fn bundle(c: &str) -> ClusterBundle {
    ClusterBundle {
        cluster: c.into(),
        ca_cert_pem: format!("cert of {c}"),
        ca_key_pem: SECRET_KEY.into(),
        root_cert_pem: "root".into(),
        cert_chain_pem: format!("cert of {c}\nroot"),
    }
}

fn render_all(spec: &MeshSpec) -> Vec<ClusterRender> {
    let bundles: BTreeMap<_, _> = spec
        .clusters
        .iter()
        .map(|c| (c.name.clone(), bundle(&c.name)))
        .collect();
    render::render_mesh_with(spec, &bundles, &render::RenderOptions::default()).expect("renders")
}

fn names(r: &ClusterRender) -> Vec<String> {
    r.objects.iter().map(|o| o.describe()).collect()
}

fn find<'a>(r: &'a ClusterRender, kind: &str, name: &str) -> Option<&'a Value> {
    r.objects
        .iter()
        .map(|o| &o.object)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn values<'a>(r: &'a ClusterRender, chart: &str) -> Option<&'a Value> {
    r.helm_values
        .iter()
        .find(|h| h.chart == chart)
        .map(|h| &h.values)
}

const THREE: &str = "clusters:\n  - {name: eu, network: network3, context: eu}\n  - {name: ap, network: network1, context: ap}\n  - {name: us, network: network2, context: us}\n";
const PR_ONE_NET: &str = "model: primary-remote\nclusters:\n  - {name: c1, network: n1, context: c1, role: primary}\n  - {name: c2, network: n1, context: c2, role: remote}\n";
const PR_TWO_NETS: &str = "model: primary-remote\nclusters:\n  - {name: c1, network: n1, context: c1, role: primary}\n  - {name: c2, network: n2, context: c2, role: remote}\n";
const AMBIENT: &str = "dataplane: ambient\nclusters:\n  - {name: c1, network: n1, context: c1}\n  - {name: c2, network: n2, context: c2}\n";

fn all_examples() -> Vec<MeshSpec> {
    [THREE, PR_ONE_NET, PR_TWO_NETS, AMBIENT]
        .iter()
        .map(|b| spec(b))
        .collect()
}

/// Every label / annotation / selector map in an object, with where it is.
fn string_maps(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{path}.{k}");
                if matches!(k.as_str(), "labels" | "annotations" | "matchLabels")
                    || (k == "selector" && child.get("matchLabels").is_none())
                {
                    out.push((p.clone(), child.clone()));
                }
                string_maps(child, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                string_maps(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_object_is_complete() {
    const CLUSTER_SCOPED: [&str; 3] = ["Namespace", "ClusterRole", "ClusterRoleBinding"];
    for spec in all_examples() {
        for r in render_all(&spec) {
            for o in &r.objects {
                let obj = &o.object;
                let what = format!("{}: {}", r.cluster, o.describe());
                assert!(
                    obj["apiVersion"].as_str().is_some_and(|s| !s.is_empty()),
                    "{what}: apiVersion"
                );
                let kind = obj["kind"].as_str().unwrap_or_default();
                assert!(!kind.is_empty(), "{what}: kind");
                assert!(
                    obj["metadata"]["name"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{what}: name"
                );
                if CLUSTER_SCOPED.contains(&kind) {
                    assert!(
                        obj["metadata"].get("namespace").is_none(),
                        "{what}: cluster-scoped"
                    );
                } else {
                    assert_eq!(
                        obj["metadata"]["namespace"], "istio-system",
                        "{what}: namespace"
                    );
                }
            }
        }
    }
}

#[test]
fn label_and_annotation_values_are_always_strings() {
    for spec in all_examples() {
        for r in render_all(&spec) {
            for o in &r.objects {
                let mut maps = Vec::new();
                string_maps(&o.object, "", &mut maps);
                for (path, m) in maps {
                    let Some(m) = m.as_object() else { continue };
                    for (k, v) in m {
                        assert!(
                            v.is_string(),
                            "{}: {}{path}.{k} = {v} is not a string",
                            r.cluster,
                            o.describe()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn objects_come_in_apply_order() {
    for spec in all_examples() {
        for r in render_all(&spec) {
            let phases: Vec<Phase> = r.objects.iter().map(|o| o.phase).collect();
            let mut sorted = phases.clone();
            sorted.sort();
            assert_eq!(phases, sorted, "{}", r.cluster);
            let stems: Vec<&str> = r.objects.iter().map(|o| o.file_stem.as_str()).collect();
            let mut sorted = stems.clone();
            sorted.sort();
            assert_eq!(
                stems, sorted,
                "{}: file names sort in apply order",
                r.cluster
            );
            assert_eq!(r.objects[0].object["kind"], "Namespace");
        }
    }
}

#[test]
fn three_region_gets_gateways_exposure_and_readers_everywhere() {
    let spec = spec(THREE);
    for r in render_all(&spec) {
        let net = &spec.cluster(&r.cluster).unwrap().network;
        let ns = find(&r, "Namespace", "istio-system").unwrap();
        assert_eq!(&ns["metadata"]["labels"]["topology.istio.io/network"], net);
        assert!(ns["metadata"].get("annotations").is_none());
        // The gateway itself is the istio/gateway chart's: no Service, Deployment or RBAC of
        // it is rendered, only the values that make it a network gateway.
        for kind in [
            "Service",
            "Deployment",
            "ServiceAccount",
            "Role",
            "RoleBinding",
        ] {
            assert!(find(&r, kind, "istio-eastwestgateway").is_none(), "{kind}");
        }
        // The selector the exposure Gateways use is the one the chart derives from the name
        // (istio-eastwestgateway without `istio-`).
        let gw = find(&r, "Gateway", "cross-network-gateway")
            .expect("multi-network: cross-network-gateway");
        assert_eq!(gw["spec"]["selector"]["istio"], "eastwestgateway");
        assert_eq!(gw["spec"]["servers"][0]["port"]["number"], 15443);
        assert_eq!(gw["spec"]["servers"][0]["hosts"][0], "*.local");
        assert!(
            find(&r, "Gateway", "istiod-gateway").is_none(),
            "multi-primary exposes no istiod"
        );
        assert!(find(&r, "ServiceAccount", "istio-reader-service-account").is_none());
        assert!(
            find(
                &r,
                "Secret",
                "istio-reader-service-account-istio-remote-secret-token"
            )
            .is_some()
        );
        // Helm: identity values and the gateway through networkGateway only.
        let istiod = values(&r, "istiod").unwrap();
        assert_eq!(istiod["global"]["meshID"], "mesh1");
        assert_eq!(
            istiod["global"]["multiCluster"]["clusterName"],
            r.cluster.as_str()
        );
        assert_eq!(&istiod["global"]["network"], net);
        assert_eq!(
            values(&r, "gateway").unwrap(),
            &serde_json::json!({"name": "istio-eastwestgateway", "networkGateway": net})
        );
        assert_eq!(values(&r, "base").unwrap(), &serde_json::json!({}));
    }
}

#[test]
fn one_network_multi_primary_needs_no_gateway() {
    let spec = spec(
        "clusters:\n  - {name: a, network: n1, context: a}\n  - {name: b, network: n1, context: b}\n",
    );
    for r in render_all(&spec) {
        assert_eq!(
            names(&r),
            [
                "Namespace/istio-system",
                "Secret/istio-system/cacerts",
                "Secret/istio-system/istio-reader-service-account-istio-remote-secret-token",
            ]
        );
        assert!(values(&r, "gateway").is_none());
    }
}

#[test]
fn primary_remote_on_one_network() {
    let spec = spec(PR_ONE_NET);
    let r = render_all(&spec);
    let (primary, remote) = (&r[0], &r[1]);
    assert!(find(primary, "Gateway", "istiod-gateway").is_some());
    assert!(find(primary, "VirtualService", "istiod-vs").is_some());
    assert_eq!(
        values(primary, "gateway").unwrap()["name"],
        "istio-eastwestgateway",
        "istiod is exposed through it"
    );
    assert!(
        find(primary, "Gateway", "cross-network-gateway").is_none(),
        "one network"
    );
    assert!(
        find(primary, "ServiceAccount", "istio-reader-service-account").is_none(),
        "nobody reads the primary"
    );
    assert_eq!(
        values(primary, "istiod").unwrap()["global"]["externalIstiod"],
        true
    );
    assert_eq!(
        values(primary, "istiod").unwrap()["pilot"]["env"]["EXTERNAL_ISTIOD"],
        "true"
    );
    assert_eq!(
        values(primary, "base").unwrap()["global"]["externalIstiod"],
        true
    );

    let ns = find(remote, "Namespace", "istio-system").unwrap();
    assert_eq!(
        ns["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"],
        "c1"
    );
    assert!(
        find(remote, "Service", "istio-eastwestgateway").is_none(),
        "one network: no remote gateway"
    );
    assert!(find(remote, "Gateway", "istiod-gateway").is_none());
    let v = values(remote, "istiod").unwrap();
    assert_eq!(v["profile"], "remote");
    assert_eq!(
        v["istiodRemote"]["injectionPath"],
        "/inject/cluster/c2/net/n1"
    );
    assert_eq!(v["global"]["configCluster"], true);
    assert_eq!(v["pilot"]["enabled"], false);
    assert!(
        v["global"].get("remotePilotAddress").is_none(),
        "unknown offline"
    );
    assert_eq!(values(remote, "base").unwrap()["profile"], "remote");
    // The primary's istiod reads the remote through the charts' reader: its RBAC (with the
    // remote extras) is istio/istiod's, so only the token is meshboot's.
    assert!(
        find(
            remote,
            "ClusterRole",
            "istio-reader-clusterrole-istio-system"
        )
        .is_none()
    );
    assert!(
        find(
            remote,
            "Secret",
            "istio-reader-service-account-istio-remote-secret-token"
        )
        .is_some()
    );
}

#[test]
fn a_known_discovery_address_goes_into_the_remote_values() {
    let spec = spec(PR_ONE_NET);
    let remote = &spec.clusters[1];
    let v = helm::values(&spec, remote, Needs::of(&spec, remote), Some("203.0.113.5")).unwrap();
    assert_eq!(v[1].values["global"]["remotePilotAddress"], "203.0.113.5");
}

#[test]
fn primary_remote_on_two_networks() {
    let spec = spec(PR_TWO_NETS);
    let r = render_all(&spec);
    let (primary, remote) = (&r[0], &r[1]);
    assert!(find(primary, "Gateway", "cross-network-gateway").is_some());
    assert!(find(primary, "Gateway", "istiod-gateway").is_some());
    assert_eq!(
        values(remote, "gateway").unwrap()["networkGateway"],
        "n2",
        "remote crosses networks through its own gateway"
    );
    // Istio config lives on the primary only (docs: expose-services in cluster1 only).
    assert!(find(remote, "Gateway", "cross-network-gateway").is_none());
    assert_eq!(
        values(remote, "istiod").unwrap()["istiodRemote"]["injectionPath"],
        "/inject/cluster/c2/net/n2"
    );
}

#[test]
fn ambient_uses_gateway_api_and_ztunnel() {
    let spec = spec(AMBIENT);
    for r in render_all(&spec) {
        let gw = find(&r, "Gateway", "istio-eastwestgateway").expect("ambient east-west Gateway");
        assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(gw["spec"]["gatewayClassName"], "istio-east-west");
        assert_eq!(gw["spec"]["listeners"][0]["port"], 15008);
        assert_eq!(gw["spec"]["listeners"][0]["protocol"], "HBONE");
        assert!(find(&r, "Deployment", "istio-eastwestgateway").is_none());
        assert!(
            find(&r, "Gateway", "cross-network-gateway").is_none(),
            "15443 passthrough is for sidecars"
        );
        let istiod = values(&r, "istiod").unwrap();
        assert_eq!(istiod["profile"], "ambient");
        assert_eq!(istiod["env"]["AMBIENT_ENABLE_MULTI_NETWORK"], "true");
        assert_eq!(values(&r, "cni").unwrap()["profile"], "ambient");
        let z = values(&r, "ztunnel").unwrap();
        assert_eq!(z["multiCluster"]["clusterName"], r.cluster.as_str());
        assert!(
            values(&r, "gateway").is_none(),
            "the istio/gateway chart is wrong for ambient"
        );
        let charts: Vec<_> = r.helm_values.iter().map(|h| h.chart.as_str()).collect();
        assert_eq!(charts, ["base", "istiod", "cni", "ztunnel"]);
    }
}

#[test]
fn a_custom_namespace_and_trust_domain_flow_everywhere() {
    let spec = spec(
        "istioNamespace: mesh-system\ntrustDomain: corp.example\nmodel: primary-remote\nclusters:\n  - {name: c1, network: n1, context: c1, role: primary}\n  - {name: c2, network: n2, context: c2, role: remote}\n",
    );
    let r = render_all(&spec);
    assert!(find(&r[0], "Namespace", "mesh-system").is_some());
    let vs = find(&r[0], "VirtualService", "istiod-vs").unwrap();
    assert_eq!(
        vs["spec"]["tls"][0]["route"][0]["destination"]["host"],
        "istiod.mesh-system.svc.cluster.local"
    );
    assert_eq!(
        find(
            &r[1],
            "Secret",
            "istio-reader-service-account-istio-remote-secret-token"
        )
        .unwrap()["metadata"]["namespace"],
        "mesh-system"
    );
    assert_eq!(
        values(&r[0], "istiod").unwrap()["meshConfig"]["trustDomain"],
        "corp.example"
    );
}

#[test]
fn cacerts_is_opaque_with_the_four_files() {
    let spec = spec(THREE);
    let r = render_all(&spec);
    let s = find(&r[0], "Secret", "cacerts").unwrap();
    assert_eq!(s["type"], "Opaque");
    let keys: Vec<_> = s["data"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem"
        ]
    );
    assert!(
        r[0].objects
            .iter()
            .find(|o| o.object["metadata"]["name"] == "cacerts")
            .unwrap()
            .is_sensitive()
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    let spec = spec(THREE);
    let r = render_all(&spec);
    let debug = format!("{r:?}");
    assert!(debug.contains("Secret/istio-system/cacerts"), "{debug}");
    assert!(
        !debug.contains("TOP-SECRET") && !debug.contains("VE9QLVNFQ1JFVC"),
        "key material in Debug output"
    );
    let files = output::files(&spec, &r, output::Format::Files, &ctx()).unwrap();
    assert!(!format!("{files:?}").contains("VE9QLVNFQ1JFVC"));
}

#[test]
fn a_bundle_for_another_cluster_is_refused() {
    let spec = spec(THREE);
    let err = render::render_cluster_with(
        &spec,
        &spec.clusters[0],
        &bundle("us"),
        &render::RenderOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::BundleMismatch { .. }));
    assert_eq!(
        err.to_string(),
        "cluster eu: the CA bundle given is cluster us's"
    );
}

#[test]
fn rendering_is_deterministic() {
    let spec = spec(THREE);
    let a = output::files(&spec, &render_all(&spec), output::Format::Kustomize, &ctx()).unwrap();
    let b = output::files(&spec, &render_all(&spec), output::Format::Kustomize, &ctx()).unwrap();
    assert_eq!(a, b);
}

fn ctx() -> output::PlanContext {
    output::PlanContext {
        mesh_file: "mesh.yaml".into(),
        out_dir: "out".into(),
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn writing_the_tree_is_safe_to_repeat() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec3 = spec(THREE);
    let files = output::files(&spec3, &render_all(&spec3), output::Format::Files, &ctx()).unwrap();

    let first = output::write(&out, &files).unwrap();
    assert_eq!(first.written.len(), files.len());
    assert!(first.stale.is_empty());
    assert_eq!(
        mode(&out.join("eu/02-cacerts.yaml")),
        0o600,
        "the key file is private"
    );
    assert_eq!(mode(&out.join("eu/01-namespace.yaml")), 0o644);
    let leftovers: Vec<_> = std::fs::read_dir(out.join("eu"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    // A file a user keeps next to the output is never touched.
    std::fs::write(out.join("eu/README.md"), "mine").unwrap();
    let second = output::write(&out, &files).unwrap();
    assert!(second.written.is_empty(), "{:?}", second.written);
    assert_eq!(second.unchanged.len(), files.len());

    // A loosened key file is rewritten with 0600 even though its bytes are the same.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            out.join("eu/02-cacerts.yaml"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let third = output::write(&out, &files).unwrap();
    assert_eq!(third.written, [out.join("eu/02-cacerts.yaml")]);
    assert_eq!(mode(&out.join("eu/02-cacerts.yaml")), 0o600);

    // Drop `us` and move to one network: its folder and the gateway files become stale, and
    // are reported, not deleted.
    let spec2 = spec(
        "clusters:\n  - {name: eu, network: n1, context: eu}\n  - {name: ap, network: n1, context: ap}\n",
    );
    let files2 = output::files(&spec2, &render_all(&spec2), output::Format::Files, &ctx()).unwrap();
    let fourth = output::write(&out, &files2).unwrap();
    let stale: Vec<String> = fourth
        .stale
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        stale.contains(&"us/02-cacerts.yaml".to_string()),
        "{stale:?}"
    );
    assert!(
        stale.contains(&"eu/04-expose-services.yaml".to_string()),
        "{stale:?}"
    );
    assert!(
        stale.contains(&"eu/helm/gateway-values.yaml".to_string()),
        "{stale:?}"
    );
    assert!(!stale.iter().any(|s| s.ends_with("README.md")), "{stale:?}");
    assert!(
        out.join("us/02-cacerts.yaml").exists(),
        "stale files are not deleted"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("eu/README.md")).unwrap(),
        "mine"
    );
}

// --- What `meshboot render` writes (render_mesh_with): no object a chart owns. ---

fn render_new(spec: &MeshSpec, opts: &render::RenderOptions) -> Vec<ClusterRender> {
    let bundles: BTreeMap<_, _> = spec
        .clusters
        .iter()
        .map(|c| (c.name.clone(), bundle(&c.name)))
        .collect();
    render::render_mesh_with(spec, &bundles, opts).expect("renders")
}

/// `Kind/namespace/name` of the objects written to `stem`.yaml.
fn stem_objects(r: &ClusterRender, stem: &str) -> Vec<String> {
    r.objects
        .iter()
        .filter(|o| o.file_stem == stem)
        .map(|o| o.describe())
        .collect()
}

/// `reference/istio.md` §9: what istio/base, istio/istiod and istio/gateway (with
/// name=istio-eastwestgateway) install, by kind and name.
fn chart_owned(kind: &str, name: &str) -> bool {
    match kind {
        "ServiceAccount" => [
            "istio-reader-service-account",
            "istiod",
            "istio-eastwestgateway",
        ]
        .contains(&name),
        "ClusterRole" | "ClusterRoleBinding" => {
            name.starts_with("istio-reader-clusterrole-")
                || name.starts_with("istiod-clusterrole-")
                || name.starts_with("istiod-gateway-controller-")
        }
        "Deployment" | "Service" | "Role" | "RoleBinding" | "HorizontalPodAutoscaler" => {
            ["istiod", "istio-eastwestgateway"].contains(&name)
        }
        "ConfigMap" => ["istio", "istio-sidecar-injector", "values"].contains(&name),
        "CustomResourceDefinition"
        | "MutatingWebhookConfiguration"
        | "ValidatingWebhookConfiguration" => true,
        _ => false,
    }
}

#[test]
fn render_never_writes_an_object_a_chart_owns() {
    for spec in all_examples() {
        for r in render_new(&spec, &render::RenderOptions::default()) {
            for o in &r.objects {
                let (kind, name) = (
                    o.object["kind"].as_str().unwrap_or_default(),
                    o.object["metadata"]["name"].as_str().unwrap_or_default(),
                );
                assert!(
                    !chart_owned(kind, name),
                    "{}: {kind}/{name} belongs to one of Istio's charts",
                    r.cluster
                );
            }
        }
    }
}

#[test]
fn the_sidecar_gateway_is_the_charts_and_the_reader_only_a_token() {
    let spec = spec(THREE);
    for r in render_new(&spec, &render::RenderOptions::default()) {
        assert_eq!(
            values(&r, "gateway").expect("gateway chart values"),
            &serde_json::json!({"name": "istio-eastwestgateway", "networkGateway": spec.cluster(&r.cluster).unwrap().network})
        );
        assert!(
            !r.objects
                .iter()
                .any(|o| o.file_stem == "03-eastwest-gateway")
        );
        assert_eq!(
            stem_objects(&r, "06-reader"),
            ["Secret/istio-system/istio-reader-service-account-istio-remote-secret-token"]
        );
        // Still everything else meshboot owns, in order.
        let stems: Vec<_> = r.objects.iter().map(|o| o.file_stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "01-namespace",
                "02-cacerts",
                "04-expose-services",
                "06-reader"
            ]
        );
    }
}

#[test]
fn meshboots_own_reader_uses_names_no_chart_uses() {
    let spec = spec(PR_TWO_NETS);
    let mut opts = render::RenderOptions::default();
    opts.readers
        .insert("c2".into(), render::ReaderIdentity::Meshboot);
    let r = render_new(&spec, &opts);
    let remote = &r[1];
    assert_eq!(
        stem_objects(remote, "06-reader"),
        [
            "ServiceAccount/istio-system/meshboot-reader",
            "ClusterRole/meshboot-reader-istio-system",
            "ClusterRoleBinding/meshboot-reader-istio-system",
            "Secret/istio-system/meshboot-reader-token",
        ]
    );
    let binding = find(remote, "ClusterRoleBinding", "meshboot-reader-istio-system").unwrap();
    assert_eq!(binding["subjects"][0]["name"], "meshboot-reader");
    let token = find(remote, "Secret", "meshboot-reader-token").unwrap();
    assert_eq!(
        token["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        "meshboot-reader"
    );
    // A primary-remote remote lets its primary's istiod manage its webhooks (§3.4 extras).
    let role = find(remote, "ClusterRole", "meshboot-reader-istio-system").unwrap();
    let rules = role["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["resources"][0] == "mutatingwebhookconfigurations")
    );
    for o in &remote.objects {
        assert!(!chart_owned(
            o.object["kind"].as_str().unwrap(),
            o.object["metadata"]["name"].as_str().unwrap()
        ));
    }
}

#[test]
fn remote_secret_creates_exactly_istioctls_reader_set() {
    // The objects `meshboot remote-secret --create-service-account` creates are the charts'
    // reader account and RBAC with the charts' names and labels, as istioctl renders them from
    // the charts; `meshboot apply` never creates them (it uses the charts' or its own).
    let istioctl = mesh_core::render::reader::istioctl_objects("istio-system");
    let names: Vec<String> = istioctl
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "Namespace/istio-system",
            "ServiceAccount/istio-reader-service-account",
            "ClusterRole/istio-reader-clusterrole-istio-system",
            "ClusterRoleBinding/istio-reader-clusterrole-istio-system",
        ]
    );
    assert_eq!(istioctl[1]["metadata"]["labels"]["release"], "istio-base");
    assert_eq!(istioctl[2]["metadata"]["labels"]["release"], "istiod");
}

#[test]
fn user_values_merge_mesh_wide_then_per_cluster() {
    let spec = spec(
        "controlPlane:\n  values:\n    istiod:\n      pilot: {resources: {requests: {cpu: 200m, memory: 1Gi}}, tolerations: [{key: a}]}\n      global: {proxy: {resources: {requests: {cpu: 50m}}}}\nclusters:\n  - name: eu\n    network: n1\n    context: eu\n    controlPlane:\n      values:\n        istiod: {pilot: {resources: {requests: {cpu: 1}}, tolerations: [{key: b}]}}\n        gateway: {service: {type: NodePort}}\n  - {name: us, network: n2, context: us}\n",
    );
    let r = render_new(&spec, &render::RenderOptions::default());
    let eu = values(&r[0], "istiod").unwrap();
    assert_eq!(
        eu["pilot"],
        serde_json::json!({"resources": {"requests": {"cpu": 1, "memory": "1Gi"}}, "tolerations": [{"key": "b"}]}),
        "maps merge key by key; a list is replaced"
    );
    // meshboot's keys and the user's sit side by side under `global`.
    assert_eq!(eu["global"]["meshID"], "mesh1");
    assert_eq!(eu["global"]["proxy"]["resources"]["requests"]["cpu"], "50m");
    assert_eq!(
        values(&r[0], "gateway").unwrap(),
        &serde_json::json!({"name": "istio-eastwestgateway", "networkGateway": "n1", "service": {"type": "NodePort"}})
    );
    let us = values(&r[1], "istiod").unwrap();
    assert_eq!(us["pilot"]["resources"]["requests"]["cpu"], "200m");
    assert_eq!(
        values(&r[1], "gateway").unwrap(),
        &serde_json::json!({"name": "istio-eastwestgateway", "networkGateway": "n2"})
    );
}

/// Every leaf path of a values tree.
fn leaves(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                at.push(k.clone());
                leaves(child, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

#[test]
fn every_value_meshboot_renders_is_one_the_mesh_file_may_not_override() {
    let mut specs = all_examples();
    specs.push(spec(
        "trustDomain: corp.example\nmodel: primary-remote\nclusters:\n  - {name: c1, network: n1, context: c1, role: primary}\n  - {name: c2, network: n2, context: c2, role: remote}\n",
    ));
    let mut opts = render::RenderOptions::default();
    opts.eastwest_addresses
        .insert("c1".into(), "203.0.113.5".into());
    for spec in &specs {
        for r in render_new(spec, &opts) {
            for h in &r.helm_values {
                let mut paths = Vec::new();
                leaves(&h.values, &mut Vec::new(), &mut paths);
                for p in paths.iter().filter(|p| !p.is_empty()) {
                    assert!(
                        helm::OWNED_VALUES
                            .iter()
                            .any(|o| o.chart == h.chart && o.path == p.as_slice()),
                        "{}: {} value {} is rendered but not in OWNED_VALUES",
                        r.cluster,
                        h.chart,
                        p.join(".")
                    );
                }
            }
        }
    }
}

#[test]
fn a_primarys_gateway_address_reaches_only_its_remotes() {
    let spec = spec(
        "model: primary-remote\nclusters:\n  - {name: p1, network: n1, context: p1, role: primary}\n  - {name: p2, network: n2, context: p2, role: primary}\n  - {name: r1, network: n1, context: r1, role: remote}\n  - {name: r2, network: n3, context: r2, role: remote, primary: p2}\n",
    );
    let mut opts = render::RenderOptions::default();
    opts.eastwest_addresses
        .insert("p1".into(), "203.0.113.1".into());
    let r = render_new(&spec, &opts);
    let addr = |i: usize| values(&r[i], "istiod").unwrap()["global"]["remotePilotAddress"].clone();
    assert_eq!(addr(2), "203.0.113.1");
    assert_eq!(addr(0), Value::Null, "a primary runs its own istiod");
    assert_eq!(addr(3), Value::Null, "p2's address is not known yet");
}

#[test]
fn ca_multi_root_gives_istiod_and_the_proxies_what_a_root_rotation_needs() {
    let with = spec(
        "model: primary-remote\nca: {multiRoot: true}\nclusters:\n  - {name: c1, network: n1, context: c1, role: primary}\n  - {name: c2, network: n1, context: c2, role: remote}\n",
    );
    let r = render_new(&with, &render::RenderOptions::default());
    let primary = values(&r[0], "istiod").unwrap();
    // reference/istio.md §2: env values are strings.
    assert_eq!(primary["pilot"]["env"]["ISTIO_MULTIROOT_MESH"], "true");
    for (i, c) in r.iter().enumerate() {
        let v = values(c, "istiod").unwrap();
        assert_eq!(
            v["meshConfig"]["defaultConfig"]["proxyMetadata"]["PROXY_CONFIG_XDS_AGENT"], "true",
            "cluster {i}: proxies need the trust bundle over PCDS"
        );
    }
    // A remote runs no istiod of its own: nothing to set there.
    let remote = values(&r[1], "istiod").unwrap();
    assert!(
        remote["pilot"]["env"].get("ISTIO_MULTIROOT_MESH").is_none(),
        "{remote:#}"
    );
    let without = spec("clusters:\n  - {name: c1, network: n1, context: c1}\n");
    let r = render_new(&without, &render::RenderOptions::default());
    let plain = values(&r[0], "istiod").unwrap();
    assert!(plain.pointer("/pilot/env/ISTIO_MULTIROOT_MESH").is_none());
    assert!(plain.pointer("/meshConfig/defaultConfig").is_none());
}
