//! The mesh file: what a valid file turns into (defaults, resolved paths, roles, remote-secret
//! pairs) for the fixtures a user starts from, and the rules that pick a remote's primary.

use std::path::{Path, PathBuf};

use mesh_core::pki::KeyAlgorithm;
use mesh_core::spec::{ChartSource, Dataplane, Install, MeshSpec, Model, Role};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
        .join("mesh.yaml")
}

fn parse(body: &str) -> Result<MeshSpec, mesh_core::spec::SpecError> {
    let text = format!("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\n{body}");
    MeshSpec::from_yaml(&text, Path::new("/srv/mesh"), "mesh.yaml")
}

fn pairs(spec: &MeshSpec) -> Vec<(&str, &str)> {
    let mut v: Vec<(&str, &str)> = Vec::new();
    for (s, d) in spec.remote_secret_pairs() {
        let s = spec.cluster(&s).map(|c| c.name.as_str()).unwrap_or("?");
        let d = spec.cluster(&d).map(|c| c.name.as_str()).unwrap_or("?");
        v.push((s, d));
    }
    v
}

#[test]
fn three_region_fixture() {
    let path = fixture("three-region");
    let spec = MeshSpec::from_file(&path).unwrap();
    assert_eq!(spec.mesh_id, "mesh1");
    assert_eq!(
        (spec.model, spec.dataplane),
        (Model::MultiPrimary, Dataplane::Sidecar)
    );
    let names: Vec<_> = spec
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.network.as_str()))
        .collect();
    assert_eq!(
        names,
        [("eu", "network3"), ("ap", "network1"), ("us", "network2")]
    );
    assert_eq!(
        spec.clusters[0].api_server.as_deref(),
        Some("https://203.0.113.10:32443")
    );
    assert_eq!(spec.clusters[1].api_server, None);
    assert!(
        spec.clusters
            .iter()
            .all(|c| c.role == Role::Primary && c.primary.is_none())
    );
    // ca.dir is relative to the mesh file, not to the working directory.
    assert_eq!(spec.ca.dir, path.parent().unwrap().join("pki"));
    assert_eq!(spec.ca.key, KeyAlgorithm::Rsa4096);
    assert_eq!(
        pairs(&spec),
        [
            ("eu", "ap"),
            ("eu", "us"),
            ("ap", "eu"),
            ("ap", "us"),
            ("us", "eu"),
            ("us", "ap")
        ]
    );
    assert!(spec.is_multi_network());
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let spec = parse("clusters: [{name: a, network: n1, context: ctx-a}]\n").unwrap();
    assert_eq!(spec.trust_domain, "cluster.local");
    assert_eq!(spec.istio_namespace, "istio-system");
    assert_eq!(
        (spec.model, spec.dataplane),
        (Model::MultiPrimary, Dataplane::Sidecar)
    );
    assert_eq!(spec.ca.dir, Path::new("/srv/mesh/pki"));
    assert_eq!(
        (spec.ca.key, spec.ca.root_days, spec.ca.intermediate_days),
        (KeyAlgorithm::Rsa4096, 3650, 730)
    );
    assert_eq!(spec.ca.root, None);
    assert_eq!(spec.clusters[0].kubeconfig, None);
    assert!(
        spec.remote_secret_pairs().is_empty(),
        "one cluster reads nobody"
    );
}

#[test]
fn paths_resolve_against_the_mesh_file_and_absolute_paths_stay() {
    let spec = parse(
        "ca:\n  dir: ../shared/pki\n  root: {cert: ./corp/root.pem, key: /etc/keys/root-key.pem}\nclusters:\n  - {name: a, network: n1, context: a, kubeconfig: ./kube/a.yaml}\n  - {name: b, network: n1, context: b, kubeconfig: /home/me/.kube/config}\n",
    )
    .unwrap();
    assert_eq!(spec.ca.dir, Path::new("/srv/mesh/../shared/pki"));
    let root = spec.ca.root.as_ref().unwrap();
    assert_eq!(root.cert, Path::new("/srv/mesh/corp/root.pem"));
    assert_eq!(root.key, Path::new("/etc/keys/root-key.pem"));
    assert_eq!(
        spec.clusters[0].kubeconfig.as_deref(),
        Some(Path::new("/srv/mesh/kube/a.yaml"))
    );
    assert_eq!(
        spec.clusters[1].kubeconfig.as_deref(),
        Some(Path::new("/home/me/.kube/config"))
    );
}

#[test]
fn same_context_in_different_kubeconfigs_is_two_clusters() {
    let spec = parse(
        "clusters:\n  - {name: a, network: n1, context: admin, kubeconfig: ./a.yaml}\n  - {name: b, network: n2, context: admin, kubeconfig: ./b.yaml}\n",
    )
    .unwrap();
    assert_eq!(spec.clusters.len(), 2);
}

#[test]
fn primary_remote_fixtures() {
    let one = MeshSpec::from_file(fixture("primary-remote")).unwrap();
    let remote = one.cluster("cluster2").unwrap();
    assert_eq!(remote.role, Role::Remote);
    assert_eq!(
        remote.primary.as_deref(),
        Some("cluster1"),
        "inferred: the only primary"
    );
    assert_eq!(
        one.control_plane_of(remote).map(|c| c.name.as_str()),
        Some("cluster1")
    );
    assert_eq!(pairs(&one), [("cluster2", "cluster1")]);
    assert!(!one.is_multi_network());

    let two = MeshSpec::from_file(fixture("primary-remote-multinetwork")).unwrap();
    assert_eq!(
        two.cluster("cluster2").unwrap().primary.as_deref(),
        Some("cluster1")
    );
    assert_eq!(pairs(&two), [("cluster2", "cluster1")]);
    assert!(two.is_multi_network());
}

#[test]
fn ambient_fixture() {
    let spec = MeshSpec::from_file(fixture("ambient")).unwrap();
    assert_eq!(
        (spec.model, spec.dataplane),
        (Model::MultiPrimary, Dataplane::Ambient)
    );
    assert_eq!(spec.ca.key, KeyAlgorithm::EcdsaP256);
}

#[test]
fn a_remote_is_served_by_the_primary_on_its_network() {
    let spec = parse(
        "model: primary-remote\nclusters:\n  - {name: p1, network: n1, context: p1, role: primary}\n  - {name: p2, network: n2, context: p2, role: primary}\n  - {name: r2, network: n2, context: r2, role: remote}\n  - {name: r1, network: n1, context: r1, role: remote}\n  - {name: r3, network: n3, context: r3, role: remote, primary: p1}\n",
    )
    .unwrap();
    let primary = |n: &str| spec.cluster(n).unwrap().primary.clone();
    assert_eq!(primary("r2").as_deref(), Some("p2"));
    assert_eq!(primary("r1").as_deref(), Some("p1"));
    assert_eq!(primary("r3").as_deref(), Some("p1"), "explicit");
    assert_eq!(primary("p1"), None);
    // Every cluster is read by every primary; remotes are never a destination.
    let p = pairs(&spec);
    assert!(p.iter().all(|(_, d)| *d == "p1" || *d == "p2"), "{p:?}");
    assert_eq!(p.len(), 8, "{p:?}"); // p1→p2, p2→p1, and each of the 3 remotes → both primaries
}

#[test]
fn a_remote_on_another_network_uses_the_only_primary() {
    let spec = parse(
        "model: primary-remote\nclusters:\n  - {name: p, network: n1, context: p, role: primary}\n  - {name: r, network: n2, context: r, role: remote}\n",
    )
    .unwrap();
    assert_eq!(spec.cluster("r").unwrap().primary.as_deref(), Some("p"));
}

#[test]
fn a_missing_role_is_reported_once() {
    let err = parse(
        "model: primary-remote\nclusters:\n  - {name: p, network: n1, context: p, role: primary}\n  - {name: r, network: n1, context: r}\n",
    )
    .unwrap_err();
    let issues = err.issues();
    assert_eq!(issues.len(), 1, "{err}");
    assert_eq!(issues[0].path, "clusters[1].role");
    assert_eq!((issues[0].line, issues[0].column), (7, 5));
}

#[test]
fn role_primary_is_accepted_in_multi_primary() {
    let spec = parse("clusters:\n  - {name: a, network: n, context: a, role: primary}\n").unwrap();
    assert_eq!(spec.clusters[0].role, Role::Primary);
}

#[test]
fn unknown_fields_deep_inside_are_located() {
    let err = parse("ca:\n  root: {cert: a.pem, key: b.pem, password: x}\nclusters: [{name: a, network: n, context: a}]\n")
        .unwrap_err();
    assert_eq!(
        err.lines()[0],
        "mesh.yaml:5:35: ca.root.password: unknown field `password`; expected one of: cert, key"
    );
}

#[test]
fn the_error_of_a_missing_file_names_it() {
    let err = MeshSpec::from_file("/nonexistent/mesh.yaml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read mesh file /nonexistent/mesh.yaml:"),
        "{err}"
    );
}

#[test]
fn control_plane_defaults_to_installed_by_the_user_from_istios_repository() {
    let spec = parse("clusters: [{name: a, network: n, context: a}]\n").unwrap();
    assert_eq!(spec.control_plane.install, Install::None);
    assert_eq!(spec.control_plane.version, None);
    assert_eq!(
        spec.control_plane.source,
        ChartSource::Repo("https://istio-release.storage.googleapis.com/charts".into())
    );
    assert!(spec.control_plane.values.is_empty());
    assert!(spec.clusters[0].control_plane_values.is_empty());
}

#[test]
fn control_plane_with_a_chart_dir_and_values() {
    let spec = parse(
        "controlPlane:\n  install: helm\n  version: 1.28.2\n  chartDir: ./charts\n  values:\n    istiod: {pilot: {resources: {requests: {cpu: 200m}}}, global: {proxy: {logLevel: debug}}}\nclusters:\n  - name: a\n    network: n1\n    context: a\n    controlPlane:\n      values:\n        gateway: {service: {type: NodePort}}\n  - {name: b, network: n2, context: b}\n",
    )
    .unwrap();
    let cp = &spec.control_plane;
    assert_eq!(
        (cp.install, cp.version.as_deref()),
        (Install::Helm, Some("1.28.2"))
    );
    assert_eq!(
        cp.source,
        ChartSource::Dir(PathBuf::from("/srv/mesh/charts"))
    );
    assert_eq!(
        cp.values["istiod"],
        serde_json::json!({"pilot": {"resources": {"requests": {"cpu": "200m"}}}, "global": {"proxy": {"logLevel": "debug"}}})
    );
    assert_eq!(
        spec.clusters[0].control_plane_values["gateway"],
        serde_json::json!({"service": {"type": "NodePort"}})
    );
    assert!(spec.clusters[1].control_plane_values.is_empty());
}

#[test]
fn a_version_is_optional_without_helm_and_pins_the_commands() {
    let spec = parse(
        "controlPlane: {version: 1.28.2, repo: \"oci://registry.example.com/istio/\"}\nclusters: [{name: a, network: n, context: a}]\n",
    )
    .unwrap();
    assert_eq!(spec.control_plane.install, Install::None);
    assert_eq!(spec.control_plane.version.as_deref(), Some("1.28.2"));
    assert_eq!(
        spec.control_plane.source,
        ChartSource::Repo("oci://registry.example.com/istio".into())
    );
}

#[test]
fn every_override_of_an_owned_key_is_reported_with_its_place() {
    let err = parse(
        "model: primary-remote\ncontrolPlane:\n  values:\n    istiod:\n      global: {meshID: x, remotePilotAddress: 10.0.0.1, proxy: {a: 1}}\n      pilot: {enabled: true}\nclusters:\n  - {name: p, network: n, context: p, role: primary}\n  - {name: r, network: n, context: r, role: remote}\n",
    )
    .unwrap_err();
    let lines = err.lines();
    assert_eq!(
        lines,
        [
            "mesh.yaml:8:16: controlPlane.values.istiod.global.meshID: meshboot sets this value (from meshID); leave it out",
            "mesh.yaml:8:27: controlPlane.values.istiod.global.remotePilotAddress: meshboot sets this value (from the primary's east-west gateway address); leave it out",
            "mesh.yaml:9:15: controlPlane.values.istiod.pilot.enabled: meshboot sets this value (from role: remote); leave it out",
        ],
        "{err}"
    );
}
