//! `karmada::resolve_fleet` against an emulated Karmada hub with emulated members, registered
//! as `karmadactl join` (Push) and `karmadactl register` (Pull) leave them
//! (`reference/karmada.md`): what the fleet is, and that a Push member is reached with the
//! hub's credentials and nothing from the user's kubeconfig.

use mesh_core::cluster::{KubeConnector, ObjectRef, RetryPolicy};
use mesh_core::execute::connect_with;
use mesh_core::karmada::{FleetOptions, KarmadaError, NetworkSource, ReachedBy, resolve_fleet};
use mesh_core::spec::MeshSpec;
use mesh_tests::TestClusters;
use mesh_tests::karmada::{Member, SyncMode};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn connector() -> KubeConnector {
    KubeConnector {
        retry: RetryPolicy::none(),
        ..KubeConnector::default()
    }
}

/// hub `karmada`; members eu (Push, eu-west), ap (Push, NotReady), us (Pull), moon (Push, not
/// labelled for the mesh).
fn fleet() -> R<TestClusters> {
    let clusters = TestClusters::start(&["karmada", "eu", "ap", "us", "moon"])?;
    let hub = clusters.cluster("karmada");
    hub.make_karmada_hub()?;
    let member = |mode| Member::new(mode).label("mesh", "mesh1");
    hub.register_karmada_member(
        clusters.cluster("eu"),
        &member(SyncMode::Push).region("eu-west"),
    )?;
    hub.register_karmada_member(
        clusters.cluster("ap"),
        &member(SyncMode::Push).region("ap-south").not_ready(),
    )?;
    hub.register_karmada_member(
        clusters.cluster("us"),
        &member(SyncMode::Pull).region("us-west"),
    )?;
    hub.register_karmada_member(
        clusters.cluster("moon"),
        &Member::new(SyncMode::Push).region("moon"),
    )?;
    Ok(clusters)
}

fn mesh(clusters: &TestClusters, overrides: &str) -> R<MeshSpec> {
    let text = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nkarmada:\n  context: karmada\n  kubeconfig: {}\n  clusterSelector: {{matchLabels: {{mesh: mesh1}}}}\n  network: region\n{overrides}",
        clusters.kubeconfig_path().display()
    );
    Ok(MeshSpec::from_yaml(
        &text,
        std::path::Path::new("."),
        "mesh.yaml",
    )?)
}

#[tokio::test]
async fn the_fleet_is_the_selected_ready_clusters_of_the_hub() -> R<()> {
    let clusters = fleet()?;
    let spec = mesh(
        &clusters,
        &format!(
            "clusters:\n  - {{name: us, context: us, kubeconfig: {}, network: network3}}\n",
            clusters.kubeconfig_path().display()
        ),
    )?;
    let fleet = resolve_fleet(&spec, &connector(), &FleetOptions::default()).await?;
    let names: Vec<&str> = fleet.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["eu", "us"], "moon is not selected, ap is NotReady");
    assert_eq!(fleet.skipped.len(), 1);
    assert_eq!(fleet.skipped[0].name, "ap");
    assert!(
        fleet.skipped[0].reason.contains("ClusterNotReachable"),
        "{:?}",
        fleet.skipped
    );

    let eu = &fleet.members[0];
    assert_eq!(
        (eu.network.as_str(), eu.network_from),
        ("eu-west", NetworkSource::Region)
    );
    assert_eq!(eu.api_server, clusters.cluster("eu").url());
    assert_eq!(
        eu.reached_by,
        ReachedBy::HubSecret {
            secret: "karmada-cluster/eu".into()
        }
    );
    let us = &fleet.members[1];
    assert_eq!(
        (us.network.as_str(), us.network_from),
        ("network3", NetworkSource::MeshFile)
    );
    assert!(matches!(&us.reached_by, ReachedBy::Context { context, .. } if context == "us"));

    // The resolved spec is what apply and verify take: every member, its apiServer the
    // Cluster's apiEndpoint.
    assert_eq!(fleet.spec.cluster_names(), ["eu", "us"]);
    let eu_spec = fleet
        .spec
        .cluster("eu")
        .map(|c| (c.context.clone(), c.api_server.clone()));
    assert_eq!(
        eu_spec,
        Some((
            String::new(),
            Some(clusters.cluster("eu").url().to_string())
        ))
    );
    assert!(!format!("{:?}", fleet.spec).contains(&join_token(&clusters, "eu")?));

    // eu is reached with the join identity's token from the hub, not the kubeconfig's admin.
    let connected = connect_with(&fleet.spec, &connector()).await;
    let mut by_name = std::collections::BTreeMap::new();
    for (name, client) in connected {
        by_name.insert(name, client?);
    }
    let eu_client = &by_name["eu"];
    assert_eq!(eu_client.server(), clusters.cluster("eu").url());
    let who = eu_client
        .get(&ObjectRef::namespaced(
            "v1",
            "ServiceAccount",
            "karmada-cluster",
            "karmada-eu",
        ))
        .await?;
    assert!(
        who.is_some(),
        "the join identity may read its own namespace"
    );
    assert!(
        eu_client
            .can_i("create", "", "secrets", Some("istio-system"))
            .await?
    );
    Ok(())
}

fn join_token(clusters: &TestClusters, member: &str) -> R<String> {
    use base64::Engine as _;
    let secret = clusters
        .cluster("karmada")
        .object("v1", "Secret", Some("karmada-cluster"), member)
        .ok_or_else(|| format!("no credentials for {member}"))?;
    let b64 = secret["data"]["token"].as_str().unwrap_or_default();
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(b64)?,
    )?)
}

#[tokio::test]
async fn include_not_ready_uses_the_not_ready_members_too() -> R<()> {
    let clusters = fleet()?;
    let spec = mesh(&clusters, "clusters: [{name: us, context: us}]\n")?;
    let options = FleetOptions {
        include_not_ready: true,
    };
    let fleet = resolve_fleet(&spec, &connector(), &options).await?;
    assert_eq!(fleet.spec.cluster_names(), ["ap", "eu", "us"]);
    assert!(fleet.skipped.is_empty());
    assert!(!fleet.members[0].ready);
    Ok(())
}

#[tokio::test]
async fn a_pull_member_without_a_context_stops_resolution_and_names_it() -> R<()> {
    let clusters = fleet()?;
    let spec = mesh(&clusters, "")?;
    let before = clusters.cluster("eu").counters();
    let err = match resolve_fleet(&spec, &connector(), &FleetOptions::default()).await {
        Err(e) => e,
        Ok(f) => return Err(format!("resolved {:?}", f.spec.cluster_names()).into()),
    };
    let KarmadaError::Fleet { problems, .. } = &err else {
        return Err(format!("{err}").into());
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("member us joined in Pull mode"),
        "{}",
        problems[0]
    );
    // Nothing was asked of any member, let alone written.
    assert_eq!(clusters.cluster("eu").counters(), before);
    Ok(())
}

#[tokio::test]
async fn a_push_member_whose_hub_secret_is_gone_is_named_without_any_secret() -> R<()> {
    let clusters = fleet()?;
    clusters
        .cluster("karmada")
        .remove_object("v1", "Secret", Some("karmada-cluster"), "eu")
        .ok_or_else(|| "no Secret to remove".to_string())?;
    let spec = mesh(&clusters, "clusters: [{name: us, context: us}]\n")?;
    let err = match resolve_fleet(&spec, &connector(), &FleetOptions::default()).await {
        Err(e) => e.to_string(),
        Ok(f) => return Err(format!("resolved {:?}", f.spec.cluster_names()).into()),
    };
    assert!(
        err.contains("member eu: its spec.secretRef names Secret karmada-cluster/eu, which does not exist in the hub"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_context_that_is_no_karmada_hub_says_so() -> R<()> {
    let clusters = fleet()?;
    let text = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nkarmada: {{context: eu, kubeconfig: {}, network: region}}\n",
        clusters.kubeconfig_path().display()
    );
    let spec = MeshSpec::from_yaml(&text, std::path::Path::new("."), "mesh.yaml")?;
    let err = match resolve_fleet(&spec, &connector(), &FleetOptions::default()).await {
        Err(e) => e.to_string(),
        Ok(f) => return Err(format!("resolved {:?}", f.spec.cluster_names()).into()),
    };
    assert!(
        err.starts_with("the Karmada API server (karmada.context eu) could not be read"),
        "{err}"
    );
    assert!(err.contains("cluster.karmada.io/v1alpha1"), "{err}");
    Ok(())
}

#[test]
fn the_local_karmada_fixture_is_a_valid_mesh_file() -> R<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/local-karmada/mesh.yaml");
    let spec = MeshSpec::from_file(&path)?;
    let karmada = spec.karmada.as_ref().ok_or("no karmada section")?;
    assert_eq!(karmada.context, "karmada");
    assert_eq!(karmada.network, mesh_core::spec::NetworkFrom::Cluster);
    assert!(spec.clusters.is_empty());
    Ok(())
}

#[tokio::test]
async fn gateway_values_for_a_member_without_an_east_west_gateway_are_an_error() -> R<()> {
    let clusters = fleet()?;
    // One network for every member: nobody gets an east-west gateway.
    let text = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nkarmada:\n  context: karmada\n  kubeconfig: {}\n  clusterSelector: {{matchLabels: {{mesh: mesh1}}}}\n  network: region\nclusters:\n  - {{name: eu, network: flat, controlPlane: {{values: {{gateway: {{replicaCount: 2}}}}}}}}\n  - {{name: us, network: flat, context: us}}\n",
        clusters.kubeconfig_path().display()
    );
    let spec = MeshSpec::from_yaml(&text, std::path::Path::new("."), "mesh.yaml")?;
    let err = match resolve_fleet(&spec, &connector(), &FleetOptions::default()).await {
        Err(e) => e.to_string(),
        Ok(f) => return Err(format!("resolved {:?}", f.spec.cluster_names()).into()),
    };
    assert!(
        err.contains(
            "clusters[0].controlPlane.values.gateway: cluster \"eu\" gets no east-west gateway"
        ),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn match_expressions_select_members_as_a_list_selector_does() -> R<()> {
    let clusters = fleet()?;
    // moon has no mesh label: NotIn keeps it (a missing label is "not in"), DoesNotExist too.
    let text = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nkarmada:\n  context: karmada\n  kubeconfig: {}\n  clusterSelector:\n    matchExpressions:\n      - {{key: mesh, operator: NotIn, values: [mesh2]}}\n      - {{key: retired, operator: DoesNotExist}}\n  network: cluster\nclusters: [{{name: us, context: us}}]\n",
        clusters.kubeconfig_path().display()
    );
    let spec = MeshSpec::from_yaml(&text, std::path::Path::new("."), "mesh.yaml")?;
    let fleet = resolve_fleet(&spec, &connector(), &FleetOptions::default()).await?;
    assert_eq!(fleet.spec.cluster_names(), ["eu", "moon", "us"]);
    let text = text.replace("operator: NotIn, values: [mesh2]", "operator: Exists");
    let spec = MeshSpec::from_yaml(&text, std::path::Path::new("."), "mesh.yaml")?;
    let fleet = resolve_fleet(&spec, &connector(), &FleetOptions::default()).await?;
    assert_eq!(fleet.spec.cluster_names(), ["eu", "us"]);
    Ok(())
}
