//! `meshboot apply` with Istio's charts, end to end: the real `meshboot` and the real `helm`
//! against emulated clusters that start with no Istio, using our test charts
//! (`fixtures/charts/`, as `controlPlane.chartDir`). Each test that runs Helm prints why it
//! skips when helm is not found (CI installs it: see .ci/run).
//!
//! The five ways apply and Helm met badly (issue 8's opening list) each have a test here that
//! failed before: a fresh cluster, apply then Helm, Helm then apply, a converged re-run, and
//! the GitOps order of PLAN.md (`plan_md.rs`).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result};
use mesh_tests::charts;
use mesh_tests::tools::Helm;
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::Value;

mod common;
use common::meshboot_cmd;

const NS: &str = "istio-system";

/// Emulated clusters, a mesh file naming them, and private Helm/kube caches for every process
/// a test starts (emulator ports are reused, and client-go caches discovery per host:port).
struct Mesh {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    file: PathBuf,
    names: Vec<String>,
    helm: Option<PathBuf>,
}

impl Mesh {
    /// `clusters` are `(name, network, extra)` (`extra` is appended to the cluster's entry, e.g.
    /// `, role: remote`); `control_plane` is the `controlPlane` mapping's body.
    fn start(
        clusters: &[(&str, &str, &str)],
        model: &str,
        control_plane: &str,
        options: EmulatorOptions,
        helm: Option<PathBuf>,
    ) -> Result<Mesh> {
        let names: Vec<&str> = clusters.iter().map(|c| c.0).collect();
        let emulated = TestClusters::start_with(&names, options)?;
        let dir = tempfile::tempdir()?;
        let mut yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nmodel: {model}\n\
             ca: {{dir: ./pki, key: ecdsa-p256}}\ncontrolPlane: {{{control_plane}}}\nclusters:\n"
        );
        for (name, network, extra) in clusters {
            yaml.push_str(&format!(
                "  - {{name: {name}, network: {network}, context: {name}, kubeconfig: {}{extra}}}\n",
                emulated.kubeconfig_path().display()
            ));
        }
        let file = dir.path().join("mesh.yaml");
        std::fs::write(&file, yaml)?;
        for sub in ["helm-cache", "helm-config", "helm-data", "kube-cache"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        Ok(Mesh {
            clusters: emulated,
            dir,
            file,
            names: names.iter().map(|n| n.to_string()).collect(),
            helm,
        })
    }

    /// `install: helm` from the test charts.
    fn with_charts(
        clusters: &[(&str, &str, &str)],
        model: &str,
        options: EmulatorOptions,
        helm: PathBuf,
    ) -> Result<Mesh> {
        Mesh::start(
            clusters,
            model,
            &format!(
                "install: helm, version: {}, chartDir: {}",
                charts::VERSION,
                charts::dir().display()
            ),
            options,
            Some(helm),
        )
    }

    fn three_regions(helm: PathBuf) -> Result<Mesh> {
        Mesh::with_charts(&THREE, "multi-primary", EmulatorOptions::default(), helm)
    }

    fn rewrite(&self, from: &str, to: &str) -> Result<()> {
        let text = std::fs::read_to_string(&self.file)?;
        anyhow::ensure!(text.contains(from), "{from:?} not in the mesh file");
        std::fs::write(&self.file, text.replace(from, to))?;
        Ok(())
    }

    fn env(&self, c: &mut Command) {
        let d = self.dir.path();
        c.env_remove("KUBECONFIG")
            .env("HELM_CACHE_HOME", d.join("helm-cache"))
            .env("HELM_CONFIG_HOME", d.join("helm-config"))
            .env("HELM_DATA_HOME", d.join("helm-data"))
            .env("KUBECACHEDIR", d.join("kube-cache"));
    }

    fn meshboot(&self, args: &[&str]) -> Result<Output> {
        let mut c = meshboot_cmd();
        c.current_dir(self.dir.path())
            .args(args)
            .arg("-f")
            .arg(&self.file);
        self.env(&mut c);
        c.output().context("running meshboot")
    }

    /// `meshboot apply --allow-loopback --helm <helm> <extra>`.
    fn apply(&self, extra: &[&str]) -> Result<Output> {
        let mut args = vec!["apply", "--allow-loopback"];
        let helm = self.helm.as_ref().map(|h| h.display().to_string());
        if let Some(h) = &helm {
            args.extend(["--helm", h.as_str()]);
        }
        args.extend_from_slice(extra);
        self.meshboot(&args)
    }

    fn apply_json(&self, extra: &[&str]) -> Result<(Output, Value)> {
        let mut args = vec!["-o", "json"];
        args.extend_from_slice(extra);
        let out = self.apply(&args)?;
        let report = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("JSON report expected, got: {}", text(&out)))?;
        Ok((out, report))
    }

    fn verify(&self) -> Result<Output> {
        self.meshboot(&["verify", "--allow-loopback"])
    }

    /// A helm runner of the test's own (its caches are separate from meshboot's).
    fn helm_runner(&self) -> Result<Helm> {
        let binary = self.helm.clone().context("this mesh has no helm")?;
        Ok(Helm::new(binary, self.clusters.kubeconfig_path())?)
    }

    fn writes(&self) -> u64 {
        self.names
            .iter()
            .map(|n| self.clusters.cluster(n).counters().writes)
            .sum()
    }

    fn object(&self, cluster: &str, api_version: &str, kind: &str, name: &str) -> Option<Value> {
        let ns = (kind != "ClusterRole" && kind != "ClusterRoleBinding").then_some(NS);
        self.clusters
            .cluster(cluster)
            .object(api_version, kind, ns, name)
    }

    fn remote_secrets_in(&self, cluster: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .clusters
            .cluster(cluster)
            .list_objects("v1", "Secret", Some(NS))
            .iter()
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
            .filter(|n| n.starts_with("istio-remote-secret-"))
            .collect();
        names.sort();
        names
    }

    /// Every cluster holds the remote secret of every other cluster that is a source of one.
    fn assert_fully_linked(&self) {
        for name in &self.names {
            let mut want: Vec<String> = self
                .names
                .iter()
                .filter(|n| *n != name)
                .map(|n| format!("istio-remote-secret-{n}"))
                .collect();
            want.sort();
            assert_eq!(self.remote_secrets_in(name), want, "in {name}");
        }
    }
}

const THREE: [(&str, &str, &str); 3] = [
    ("eu", "network3", ""),
    ("ap", "network1", ""),
    ("us", "network2", ""),
];

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["cluster"] == name))
        .unwrap_or(&Value::Null)
}

/// `(release, revision, status, chart)` of every release in the Istio namespace.
fn releases(h: &Helm, context: &str) -> Result<Vec<(String, String, String, String)>> {
    let out = h.ok(context, ["list", "-n", NS, "-o", "json"])?;
    let list: Vec<Value> = serde_json::from_str(&out)?;
    let mut rows: Vec<_> = list
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("revision"), s("status"), s("chart"))
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// The field managers of an object.
fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str().map(str::to_string))
        .collect()
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The objects Istio's charts own (`reference/istio.md` §9) that a sidecar multi-network mesh
/// installs, as `(apiVersion, kind, name, release)`.
const CHART_OWNED: [(&str, &str, &str, &str); 6] = [
    (
        "v1",
        "ServiceAccount",
        "istio-reader-service-account",
        "istio-base",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "istio-reader-clusterrole-istio-system",
        "istiod",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "istio-reader-clusterrole-istio-system",
        "istiod",
    ),
    ("apps/v1", "Deployment", "istiod", "istiod"),
    (
        "apps/v1",
        "Deployment",
        "istio-eastwestgateway",
        "istio-eastwestgateway",
    ),
    (
        "v1",
        "Service",
        "istio-eastwestgateway",
        "istio-eastwestgateway",
    ),
];

/// Each chart-owned object is there, owned by its release, and no field of it is meshboot's.
fn assert_chart_objects_are_helms(mesh: &Mesh, cluster: &str) {
    for (av, kind, name, release) in CHART_OWNED {
        let o = mesh
            .object(cluster, av, kind, name)
            .unwrap_or_else(|| panic!("{cluster}: {kind} {name} missing"));
        assert_eq!(
            o["metadata"]["annotations"]["meta.helm.sh/release-name"], release,
            "{cluster}: {kind} {name}"
        );
        assert!(
            !managers(&o).iter().any(|m| m == "meshboot"),
            "{cluster}: meshboot manages fields of {kind} {name}: {:?}",
            managers(&o)
        );
    }
}

#[test]
fn fresh_clusters_get_istio_from_the_charts_in_order_then_verify_and_a_rerun_writes_nothing()
-> Result<()> {
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::three_regions(helm)?;
    let out = mesh.apply(&[])?;
    assert!(out.status.success(), "{}", text(&out));
    let h = mesh.helm_runner()?;
    for name in &mesh.names {
        let chart = |c: &str| format!("{c}-{}", charts::VERSION);
        assert_eq!(
            releases(&h, name)?,
            [
                (
                    "istio-base".into(),
                    "1".into(),
                    "deployed".into(),
                    chart("base")
                ),
                (
                    "istio-eastwestgateway".into(),
                    "1".into(),
                    "deployed".into(),
                    chart("gateway")
                ),
                (
                    "istiod".into(),
                    "1".into(),
                    "deployed".into(),
                    chart("istiod")
                ),
            ],
            "{name}"
        );
        assert_chart_objects_are_helms(&mesh, name);
        // cacerts was there before istiod started: it is older than istiod's Deployment.
        let cacerts = mesh
            .object(name, "v1", "Secret", "cacerts")
            .context("cacerts")?;
        let istiod = mesh
            .object(name, "apps/v1", "Deployment", "istiod")
            .context("istiod")?;
        assert!(rv(&cacerts) < rv(&istiod), "{name}: cacerts after istiod");
        // istiod got the identity values meshboot rendered.
        let values: Value = serde_json::from_str(
            &h.ok(name, ["get", "values", "istiod", "-n", NS, "-o", "json"])?,
        )?;
        assert_eq!(
            values["global"]["multiCluster"]["clusterName"],
            name.as_str()
        );
        assert_eq!(values["global"]["meshID"], "mesh1");
        // The reader is the chart's: meshboot wrote its token Secret only.
        assert!(
            mesh.object(name, "v1", "ServiceAccount", "meshboot-reader")
                .is_none()
        );
        assert!(
            mesh.object(
                name,
                "v1",
                "Secret",
                "istio-reader-service-account-istio-remote-secret-token"
            )
            .is_some()
        );
    }
    mesh.assert_fully_linked();
    let printed = stdout(&out);
    assert!(
        printed.contains("HelmRelease istio-system/istiod") && printed.contains("installed"),
        "{printed}"
    );
    let verify = mesh.verify()?;
    assert!(verify.status.success(), "{}", text(&verify));

    // Converged: no helm upgrade (no new revision) and no API write.
    let before = mesh.writes();
    let (again, report) = mesh.apply_json(&[])?;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        mesh.writes(),
        before,
        "a converged mesh must see zero writes"
    );
    assert_eq!(report["totals"]["created"], 0);
    assert_eq!(report["totals"]["updated"], 0);
    for name in &mesh.names {
        assert!(
            releases(&h, name)?.iter().all(|r| r.1 == "1"),
            "{name}: a converged re-run made a new revision"
        );
        let steps = cluster(&report, name)["steps"]
            .as_array()
            .context("steps")?;
        let istiod = steps
            .iter()
            .find(|s| s["object"]["name"] == "istiod")
            .context("istiod step")?;
        assert_eq!(istiod["action"], "helm");
        assert_eq!(istiod["outcome"], "unchanged");
        assert!(
            istiod["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("is deployed with these values (revision 1)"),
            "{istiod}"
        );
    }
    Ok(())
}

#[test]
fn a_dry_run_lists_the_releases_it_would_install_or_upgrade_and_why() -> Result<()> {
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::three_regions(helm)?;
    let out = mesh.apply(&["--dry-run"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mesh.writes(), 0);
    let printed = stdout(&out);
    for release in ["istio-base", "istiod", "istio-eastwestgateway"] {
        let line = printed
            .lines()
            .find(|l| {
                l.contains(&format!("HelmRelease istio-system/{release} ")) && l.contains(" eu ")
            })
            .with_context(|| format!("no line for {release}:\n{printed}"))?;
        assert!(
            line.contains(&format!(
                "would install (release {release} is not installed)"
            )),
            "{line}"
        );
    }
    // The exposure's kind is not served yet (istio/base installs it): it would be created.
    assert!(
        printed.contains("Gateway istio-system/cross-network-gateway")
            && printed.contains("would create (Gateway is served once istio/base"),
        "{printed}"
    );
    let h = mesh.helm_runner()?;
    assert!(releases(&h, "eu")?.is_empty());

    assert!(mesh.apply(&[])?.status.success());
    // A value changed in the mesh file: the dry run says which release and which key.
    mesh.rewrite(
        &format!("install: helm, version: {}", charts::VERSION),
        &format!(
            "install: helm, version: {}, values: {{istiod: {{pilot: {{replicaCount: 2}}}}}}",
            charts::VERSION
        ),
    )?;
    let before = mesh.writes();
    let out = mesh.apply(&["--dry-run"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mesh.writes(), before);
    let printed = stdout(&out);
    let line = printed
        .lines()
        .find(|l| l.contains("HelmRelease istio-system/istiod ") && l.contains(" ap "))
        .with_context(|| printed.clone())?;
    assert!(
        line.contains("would upgrade (values differ at pilot)"),
        "{line}"
    );
    let base = printed
        .lines()
        .find(|l| l.contains("HelmRelease istio-system/istio-base ") && l.contains(" ap "))
        .with_context(|| printed.clone())?;
    assert!(base.contains("unchanged"), "{base}");
    assert!(releases(&h, "ap")?.iter().all(|r| r.1 == "1"));
    Ok(())
}

/// `helm upgrade --install RELEASE <test chart> -n istio-system --create-namespace --wait ...`,
/// as a user installs Istio by hand.
fn helm_install(h: &Helm, context: &str, release: &str, chart: &str, set: &[&str]) -> Result<()> {
    let mut args: Vec<String> = vec![
        "upgrade".into(),
        "--install".into(),
        release.into(),
        charts::chart(chart).display().to_string(),
        "-n".into(),
        NS.into(),
        "--create-namespace".into(),
        "--wait".into(),
        "--timeout".into(),
        "60s".into(),
    ];
    for s in set {
        args.push("--set".into());
        args.push(s.to_string());
    }
    h.ok(context, &args)?;
    Ok(())
}

/// Istio installed by hand on each cluster, the documented way (§6.2 B).
fn install_istio_by_hand(mesh: &Mesh, h: &Helm) -> Result<()> {
    for (name, network, _) in THREE {
        helm_install(h, name, "istio-base", "base", &[])?;
        helm_install(
            h,
            name,
            "istiod",
            "istiod",
            &[
                "global.meshID=mesh1",
                &format!("global.multiCluster.clusterName={name}"),
                &format!("global.network={network}"),
            ],
        )?;
        helm_install(
            h,
            name,
            "istio-eastwestgateway",
            "gateway",
            &[
                "name=istio-eastwestgateway",
                &format!("networkGateway={network}"),
            ],
        )?;
    }
    let _ = mesh;
    Ok(())
}

#[test]
fn helm_first_then_apply_with_install_none_never_takes_over_a_chart_field() -> Result<()> {
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::start(
        &THREE,
        "multi-primary",
        "install: none",
        EmulatorOptions::default(),
        Some(helm),
    )?;
    let h = mesh.helm_runner()?;
    install_istio_by_hand(&mesh, &h)?;

    // --force would take over fields of another manager: meshboot must not even write them.
    let (out, report) = mesh.apply_json(&["--force"])?;
    assert!(out.status.success(), "{}", text(&out));
    for name in &mesh.names {
        let c = cluster(&report, name);
        assert_eq!(c["detected"]["istioCrds"], true);
        assert_eq!(
            c["detected"]["istiod"],
            "Helm release istiod (namespace istio-system)"
        );
        assert_eq!(
            c["detected"]["reader"]["serviceAccount"],
            "istio-reader-service-account"
        );
        assert!(
            c["detected"]["reader"]["why"]
                .as_str()
                .unwrap_or_default()
                .contains("Helm release istio-base"),
            "{c}"
        );
        assert_chart_objects_are_helms(&mesh, name);
        // Helm-first istiod ran on its own CA before cacerts: restart it.
        assert!(
            report["notices"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|n| n["cluster"] == name.as_str()
                    && n["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("must be restarted")),
            "{report}"
        );
        assert!(
            mesh.object(name, "v1", "ServiceAccount", "meshboot-reader")
                .is_none()
        );
    }
    mesh.assert_fully_linked();
    let verify = mesh.verify()?;
    assert!(verify.status.success(), "{}", text(&verify));

    // The charts upgrade later without a conflict with anything meshboot wrote.
    for (name, network, _) in THREE {
        helm_install(
            &h,
            name,
            "istiod",
            "istiod",
            &[
                "global.meshID=mesh1",
                &format!("global.multiCluster.clusterName={name}"),
                &format!("global.network={network}"),
                "pilot.replicaCount=2",
            ],
        )?;
        helm_install(
            &h,
            name,
            "istio-eastwestgateway",
            "gateway",
            &[
                "name=istio-eastwestgateway",
                &format!("networkGateway={network}"),
                "service.annotations.example=upgraded",
            ],
        )?;
    }
    let before = mesh.writes();
    let again = mesh.apply(&[])?;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(mesh.writes(), before, "nothing of meshboot's changed");
    Ok(())
}

#[test]
fn apply_with_install_none_then_helm_install_of_the_charts_succeeds() -> Result<()> {
    let helm = mesh_tests::require_helm!();
    // The CRDs applied on their own (as a platform team or GitOps does), nothing else of Istio.
    let mesh = Mesh::start(
        &THREE,
        "multi-primary",
        &format!(
            "install: none, version: {}, chartDir: {}",
            charts::VERSION,
            charts::dir().display()
        ),
        EmulatorOptions::default(),
        Some(helm),
    )?;
    mesh.clusters.install_istio_crds()?;
    let (out, report) = mesh.apply_json(&[])?;
    assert!(out.status.success(), "{}", text(&out));
    for name in &mesh.names {
        // No chart made a reader: meshboot's own, under names no chart uses.
        assert_eq!(
            cluster(&report, name)["detected"]["reader"]["serviceAccount"],
            "meshboot-reader"
        );
        assert!(
            mesh.object(name, "v1", "ServiceAccount", "istio-reader-service-account")
                .is_none()
        );
    }
    mesh.assert_fully_linked();
    // The missing east-west gateway is a notice with the command that installs it.
    let hints: Vec<(String, String)> = report["notices"]
        .as_array()
        .context("notices")?
        .iter()
        .filter_map(|n| {
            Some((
                n["cluster"].as_str()?.to_string(),
                n["hint"].as_str()?.to_string(),
            ))
        })
        .filter(|(_, hint)| hint.starts_with("helm upgrade --install istio-eastwestgateway"))
        .collect();
    assert_eq!(hints.len(), 3, "{report}");

    // Then Istio's charts, the order the mission needs (cacerts is already there): every
    // install succeeds, none meets an object meshboot made.
    let h = mesh.helm_runner()?;
    for (name, network, _) in THREE {
        helm_install(
            &h,
            name,
            "istio-base",
            "base",
            &["base.enableCRDTemplates=false"],
        )?;
        helm_install(
            &h,
            name,
            "istiod",
            "istiod",
            &[
                "global.meshID=mesh1",
                &format!("global.multiCluster.clusterName={name}"),
                &format!("global.network={network}"),
            ],
        )?;
        // The gateway exactly as the notice says.
        let hint = &hints.iter().find(|(c, _)| c == name).context("hint")?.1;
        let words: Vec<&str> = hint.split_whitespace().skip(1).collect();
        let installed = h.command().args(&words).output()?;
        assert!(installed.status.success(), "{hint}: {}", text(&installed));
    }
    // And meshboot's own reader is kept: a re-run changes nothing.
    let before = mesh.writes();
    let (again, report) = mesh.apply_json(&[])?;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(mesh.writes(), before);
    assert_eq!(
        cluster(&report, "eu")["detected"]["reader"]["serviceAccount"],
        "meshboot-reader"
    );
    let verify = mesh.verify()?;
    assert!(verify.status.success(), "{}", text(&verify));
    Ok(())
}

#[test]
fn a_primary_remote_remote_gets_its_primarys_gateway_address_as_remote_pilot_address() -> Result<()>
{
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::with_charts(
        &[
            ("hub", "network1", ", role: primary"),
            ("edge", "network2", ", role: remote"),
        ],
        "primary-remote",
        EmulatorOptions::default(),
        helm,
    )?;
    let out = mesh.apply(&[])?;
    assert!(out.status.success(), "{}", text(&out));
    let address = mesh
        .object("hub", "v1", "Service", "istio-eastwestgateway")
        .and_then(|s| {
            s["status"]["loadBalancer"]["ingress"][0]["ip"]
                .as_str()
                .map(str::to_string)
        })
        .context("hub's gateway address")?;
    let h = mesh.helm_runner()?;
    let values: Value =
        serde_json::from_str(&h.ok("edge", ["get", "values", "istiod", "-n", NS, "-o", "json"])?)?;
    assert_eq!(values["global"]["remotePilotAddress"], address.as_str());
    assert_eq!(values["profile"], "remote");
    assert_eq!(values["global"]["configCluster"], true);
    // The remote's istiod Service points at the primary through it (the remote profile).
    let slices = mesh.clusters.cluster("edge").list_objects(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        Some(NS),
    );
    assert!(
        slices
            .iter()
            .any(|s| s["endpoints"][0]["addresses"][0] == address.as_str()),
        "{slices:?}"
    );
    assert_eq!(mesh.remote_secrets_in("hub"), ["istio-remote-secret-edge"]);
    assert!(mesh.remote_secrets_in("edge").is_empty());
    let verify = mesh.verify()?;
    assert!(verify.status.success(), "{}", text(&verify));
    // Converged, the address included.
    let before = mesh.writes();
    let again = mesh.apply(&[])?;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(mesh.writes(), before);
    assert!(releases(&h, "edge")?.iter().all(|r| r.1 == "1"));
    Ok(())
}

#[test]
fn a_chart_that_fails_stops_that_cluster_with_helms_message_and_the_others_finish() -> Result<()> {
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::with_charts(
        &[
            ("eu", "network3", ""),
            (
                "ap",
                "network1",
                ", controlPlane: {values: {istiod: {pilot: {replicaCount: two}}}}",
            ),
            ("us", "network2", ""),
        ],
        "multi-primary",
        EmulatorOptions::default(),
        helm,
    )?;
    let (out, report) = mesh.apply_json(&[])?;
    assert!(!out.status.success(), "{}", text(&out));
    let ap = cluster(&report, "ap");
    assert_eq!(ap["status"], "failed");
    let steps = ap["steps"].as_array().context("steps")?;
    let failed: Vec<&Value> = steps.iter().filter(|s| s["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{ap}");
    assert_eq!(failed[0]["object"]["name"], "istiod");
    let error = failed[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("context ap: helm upgrade --install istiod: ")
            && error.contains("replicaCount")
            && !error.contains('\n'),
        "{error}"
    );
    // What needs istiod on ap was not attempted, and says why; ap's reader (istio/base's) and
    // every remote secret did not need it.
    for s in steps {
        match s["object"]["name"].as_str().unwrap_or_default() {
            "istiod" => {}
            "istio-eastwestgateway" | "cross-network-gateway" => {
                assert_eq!(s["outcome"], "skipped", "{s}");
                assert!(
                    s["error"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("needs HelmRelease istio-system/istiod, which failed on ap"),
                    "{s}"
                );
            }
            _ => assert!(
                ["created", "unchanged"].contains(&s["outcome"].as_str().unwrap_or_default()),
                "{s}"
            ),
        }
    }
    assert_eq!(cluster(&report, "eu")["status"], "ok");
    assert_eq!(cluster(&report, "us")["status"], "ok");
    mesh.assert_fully_linked();
    // The text summary has Helm's message on one line.
    let text_out = mesh.apply(&[])?;
    let printed = stdout(&text_out);
    let line = printed
        .lines()
        .find(|l| l.starts_with("error: ap control-plane HelmRelease istio-system/istiod: "))
        .with_context(|| printed.clone())?;
    assert!(line.contains("replicaCount"), "{line}");
    Ok(())
}

#[test]
fn a_gateway_without_a_load_balancer_address_fails_the_gateway_steps_only() -> Result<()> {
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::three_regions(helm)?;
    mesh.clusters
        .cluster("ap")
        .set_lb_delay(Duration::from_secs(60));
    let (out, report) = mesh.apply_json(&["--timeout", "3s"])?;
    assert!(!out.status.success());
    let ap = cluster(&report, "ap");
    assert_eq!(ap["status"], "failed");
    for s in ap["steps"].as_array().context("steps")? {
        match s["object"]["name"].as_str().unwrap_or_default() {
            "istio-eastwestgateway" => {
                assert_eq!(s["outcome"], "failed");
                let error = s["error"].as_str().unwrap_or_default();
                assert!(
                    error.contains("has no external address")
                        && error.contains("only the gateway steps of ap fail")
                        && error.contains("readers and remote secrets do not need"),
                    "{error}"
                );
            }
            "cross-network-gateway" => assert_eq!(s["outcome"], "skipped"),
            _ => assert_eq!(s["outcome"], "created", "{s}"),
        }
    }
    mesh.assert_fully_linked();
    Ok(())
}

#[test]
fn install_helm_refuses_an_istiod_installed_another_way_before_any_write() -> Result<()> {
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::three_regions(helm)?;
    // istioctl install: no Helm ownership on istiod.
    mesh.clusters.cluster("us").install_istiod("1.28.2", &[])?;
    mesh.clusters.cluster("us").reset_counters();
    let out = mesh.apply(&[])?;
    assert!(!out.status.success());
    let printed = stdout(&out);
    assert!(
        printed.contains("Deployment istio-system/istiod exists, installed without Helm")
            && printed.contains("set controlPlane.install: none"),
        "{printed}"
    );
    assert!(
        printed.contains("nothing was written to any cluster"),
        "{printed}"
    );
    assert_eq!(mesh.writes(), 0);
    let h = mesh.helm_runner()?;
    assert!(releases(&h, "eu")?.is_empty());
    Ok(())
}

#[test]
fn no_istio_crds_with_install_none_stops_before_any_write_with_the_command_to_run() -> Result<()> {
    let mesh = Mesh::start(
        &THREE,
        "multi-primary",
        "install: none",
        EmulatorOptions::default(),
        None,
    )?;
    let (out, report) = mesh.apply_json(&[])?;
    assert!(!out.status.success());
    assert_eq!(mesh.writes(), 0);
    assert!(!mesh.dir.path().join("pki").exists(), "not even the CA");
    let eu = cluster(&report, "eu");
    assert_eq!(eu["problem"], "istio-missing");
    let error = eu["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "`helm upgrade --install istio-base base --repo https://istio-release.storage.googleapis.com/charts -n istio-system --kube-context eu --kubeconfig "
        ) && error.contains("controlPlane.install: helm"),
        "{error}"
    );
    assert!(
        report["stopped"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was written to any cluster")
    );
    Ok(())
}

#[test]
fn a_missing_or_too_old_helm_stops_apply_before_any_cluster_is_touched() -> Result<()> {
    let mesh = Mesh::with_charts(
        &THREE,
        "multi-primary",
        EmulatorOptions::default(),
        PathBuf::from("/nonexistent/helm"),
    )?;
    let out = mesh.apply(&[])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: ")
            && err.contains("helm not found at /nonexistent/helm: install Helm v3.14+ or v4")
            && err.contains("--helm PATH"),
        "{err}"
    );
    // Not on PATH either.
    let empty = tempfile::tempdir()?;
    let mut c = meshboot_cmd();
    c.args(["apply", "--allow-loopback", "-f"])
        .arg(&mesh.file)
        .env("PATH", empty.path());
    mesh.env(&mut c);
    let out = c.output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("helm not found on PATH"),
        "{}",
        text(&out)
    );
    // Too old.
    let old = empty.path().join("helm");
    std::fs::write(&old, "#!/bin/sh\necho v3.13.3+gc8b9489\n")?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755))?;
    }
    let out = mesh.meshboot(&[
        "apply",
        "--allow-loopback",
        "--helm",
        old.to_str().context("path")?,
    ])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Helm v3.13.3 is too old"),
        "{}",
        text(&out)
    );
    for name in &mesh.names {
        assert_eq!(
            mesh.clusters.cluster(name).counters().total_requests(),
            0,
            "{name} was contacted"
        );
    }
    assert!(!mesh.dir.path().join("pki").exists());
    Ok(())
}

/// Ambient (`reference/istio.md` §5.4): the charts are base, istiod, cni and ztunnel, and the
/// east-west gateway is a Gateway API `Gateway` of class `istio-east-west`, which no chart
/// makes. The Gateway API CRDs come from the user (no Istio chart has them): without them the
/// cluster stops before any write with the command to install them.
#[test]
fn ambient_installs_cni_and_ztunnel_and_its_east_west_gateway_is_a_gateway_api_gateway()
-> Result<()> {
    let helm = mesh_tests::require_helm!();
    let mesh = Mesh::with_charts(
        &[("eu", "network1", ""), ("ap", "network2", "")],
        "multi-primary\ndataplane: ambient",
        EmulatorOptions::default(),
        helm,
    )?;
    // No Gateway API yet: stopped before anything is written, with the install command.
    let before = mesh.writes();
    let out = mesh.apply(&[])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Gateway API CRDs"), "{}", text(&out));
    assert!(
        text(&out).contains("standard-install.yaml"),
        "{}",
        text(&out)
    );
    assert_eq!(
        mesh.writes(),
        before,
        "written before the Gateway API check"
    );

    mesh.clusters.install_gateway_api_crds()?;
    let out = mesh.apply(&[])?;
    assert!(out.status.success(), "{}", text(&out));
    let h = mesh.helm_runner()?;
    for name in &mesh.names {
        let names: Vec<String> = releases(&h, name)?.into_iter().map(|r| r.0).collect();
        assert_eq!(
            names,
            ["istio-base", "istio-cni", "istiod", "ztunnel"],
            "{name}"
        );
        let gw = mesh
            .object(
                name,
                "gateway.networking.k8s.io/v1",
                "Gateway",
                "istio-eastwestgateway",
            )
            .or_else(|| {
                mesh.clusters
                    .cluster(name)
                    .list_objects("gateway.networking.k8s.io/v1", "Gateway", Some(NS))
                    .into_iter()
                    .next()
            })
            .context("the east-west Gateway")?;
        assert_eq!(gw["spec"]["gatewayClassName"], "istio-east-west", "{name}");
        // The chart-made gateway objects of the sidecar path are not there.
        assert!(
            mesh.object(name, "apps/v1", "Deployment", "istio-eastwestgateway")
                .is_none()
        );
    }
    mesh.assert_fully_linked();
    Ok(())
}
