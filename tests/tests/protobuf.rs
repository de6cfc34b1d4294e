//! kubectl ≥ 1.32 sends protobuf bodies for typed creates (`kubectl create deployment`,
//! `kubectl create service loadbalancer`, ...); the emulator stores what a real server would.
//! Each test runs every kubectl it finds: `kubectl` (`MESHBOOT_KUBECTL` or PATH; 1.32 on the
//! image) and `/work/tools/bin/kubectl-1.35` (or `$MESHBOOT_KUBECTL_135`); with none it prints
//! why it skips.

use std::path::PathBuf;
use std::process::Command;

use mesh_tests::TestClusters;
use serde_json::json;

/// The kubectl binaries present on this machine, each with its version line.
fn kubectls() -> Vec<PathBuf> {
    // `MESHBOOT_KUBECTL` or PATH (the shared lookup), then kubectl 1.35 beside helm.
    let mut candidates: Vec<PathBuf> = mesh_tests::tools::kubectl().into_iter().collect();
    candidates.push(
        std::env::var_os("MESHBOOT_KUBECTL_135")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/work/tools/bin/kubectl-1.35")),
    );
    let found: Vec<PathBuf> = candidates
        .into_iter()
        .filter(|k| {
            let ok = Command::new(k)
                .args(["version", "--client"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                eprintln!("skipping {}: not found or not runnable", k.display());
            }
            ok
        })
        .collect();
    if found.is_empty() {
        eprintln!("skipping: no kubectl found (PATH, /work/tools/bin/kubectl-1.35)");
    }
    found
}

fn run(kubectl: &PathBuf, clusters: &TestClusters, args: &[&str]) -> anyhow::Result<String> {
    let cache = tempfile::tempdir()?;
    let out = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(clusters.kubeconfig_path())
        .arg("--context")
        .arg("eu")
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        kubectl.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn kubectl_create_service_loadbalancer_is_stored_with_its_ports_and_gets_an_address()
-> anyhow::Result<()> {
    for kubectl in kubectls() {
        let clusters = TestClusters::start(&["eu"])?;
        let eu = clusters.cluster("eu");
        run(
            &kubectl,
            &clusters,
            &[
                "create",
                "service",
                "loadbalancer",
                "lb",
                "--tcp=80:8080,443:https",
            ],
        )?;
        let svc = eu
            .object("v1", "Service", Some("default"), "lb")
            .ok_or_else(|| anyhow::anyhow!("{}: service not stored", kubectl.display()))?;
        assert_eq!(svc["spec"]["type"], "LoadBalancer");
        let ports = &svc["spec"]["ports"];
        assert_eq!(ports[0]["port"], 80);
        assert_eq!(ports[0]["targetPort"], 8080, "int-or-string as a number");
        assert_eq!(ports[1]["targetPort"], "https", "int-or-string as a name");
        assert_eq!(ports[0]["protocol"], "TCP");
        assert_eq!(svc["spec"]["selector"], json!({"app": "lb"}));
        assert_eq!(svc["metadata"]["labels"], json!({"app": "lb"}));
        // The load-balancer controller reacts as to any Service.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let s = eu.object("v1", "Service", Some("default"), "lb");
            if s.as_ref()
                .is_some_and(|s| s["status"]["loadBalancer"]["ingress"][0]["ip"].is_string())
            {
                break;
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "no LB address");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    Ok(())
}

#[test]
fn kubectl_create_deployment_is_stored_with_its_pod_template() -> anyhow::Result<()> {
    for kubectl in kubectls() {
        let clusters = TestClusters::start(&["eu"])?;
        let eu = clusters.cluster("eu");
        run(
            &kubectl,
            &clusters,
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--port=8080",
                "--replicas=3",
            ],
        )?;
        let d = eu
            .object("apps/v1", "Deployment", Some("default"), "web")
            .ok_or_else(|| anyhow::anyhow!("{}: deployment not stored", kubectl.display()))?;
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(
            d["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        let tpl = &d["spec"]["template"];
        assert_eq!(tpl["metadata"]["labels"], json!({"app": "web"}));
        let c = &tpl["spec"]["containers"][0];
        assert_eq!(c["name"], "nginx");
        assert_eq!(c["image"], "nginx:1.27");
        // As a real server stores it: the port's protocol defaulted.
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 8080, "protocol": "TCP"}])
        );
        // `kubectl rollout status` finishes, as against a real cluster once pods are ready.
        run(
            &kubectl,
            &clusters,
            &["rollout", "status", "deployment/web", "--timeout=10s"],
        )?;
    }
    Ok(())
}

#[test]
fn kubectl_typed_creates_of_every_core_kind_round_trip() -> anyhow::Result<()> {
    for kubectl in kubectls() {
        let clusters = TestClusters::start(&["eu"])?;
        let eu = clusters.cluster("eu");
        let k = |args: &[&str]| run(&kubectl, &clusters, args);
        k(&["create", "namespace", "apps"])?;
        k(&["-n", "apps", "create", "serviceaccount", "reader"])?;
        k(&[
            "-n",
            "apps",
            "create",
            "configmap",
            "cfg",
            "--from-literal=a=1",
            "--from-literal=b=two",
        ])?;
        k(&[
            "-n",
            "apps",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=token=abc",
        ])?;
        k(&[
            "-n",
            "apps",
            "create",
            "role",
            "r",
            "--verb=get,list",
            "--resource=pods,secrets",
        ])?;
        k(&[
            "-n",
            "apps",
            "create",
            "rolebinding",
            "rb",
            "--role=r",
            "--serviceaccount=apps:reader",
        ])?;
        k(&[
            "create",
            "clusterrole",
            "cr",
            "--verb=get",
            "--resource=nodes",
        ])?;
        k(&[
            "create",
            "clusterrolebinding",
            "crb",
            "--clusterrole=cr",
            "--user=alice",
        ])?;
        k(&[
            "-n",
            "apps",
            "create",
            "service",
            "nodeport",
            "np",
            "--tcp=5678:8080",
        ])?;
        k(&[
            "-n",
            "apps",
            "create",
            "service",
            "externalname",
            "ext",
            "--external-name=example.com",
        ])?;
        k(&[
            "-n",
            "apps",
            "run",
            "sleep",
            "--image=busybox",
            "--labels=app=sleep",
            "--env=A=1",
            "--",
            "sleep",
            "3600",
        ])?;

        k(&[
            "-n",
            "apps",
            "create",
            "poddisruptionbudget",
            "pdb",
            "--selector=app=sleep",
            "--min-available=50%",
        ])?;
        let pdb = eu
            .object("policy/v1", "PodDisruptionBudget", Some("apps"), "pdb")
            .unwrap_or_default();
        assert_eq!(
            pdb["spec"]["minAvailable"], "50%",
            "int-or-string percentage"
        );
        assert_eq!(
            pdb["spec"]["selector"],
            json!({"matchLabels": {"app": "sleep"}})
        );

        let cm = eu
            .object("v1", "ConfigMap", Some("apps"), "cfg")
            .unwrap_or_default();
        assert_eq!(cm["data"], json!({"a": "1", "b": "two"}));
        let s = eu
            .object("v1", "Secret", Some("apps"), "s")
            .unwrap_or_default();
        assert_eq!(s["data"], json!({"token": "YWJj"}));
        let role = eu
            .object("rbac.authorization.k8s.io/v1", "Role", Some("apps"), "r")
            .unwrap_or_default();
        assert_eq!(role["rules"][0]["verbs"], json!(["get", "list"]));
        assert_eq!(role["rules"][0]["resources"], json!(["pods", "secrets"]));
        let rb = eu
            .object(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                Some("apps"),
                "rb",
            )
            .unwrap_or_default();
        assert_eq!(
            rb["subjects"],
            json!([{"kind": "ServiceAccount", "name": "reader", "namespace": "apps"}])
        );
        assert_eq!(rb["roleRef"]["name"], "r");
        let crb = eu
            .object(
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                None,
                "crb",
            )
            .unwrap_or_default();
        assert_eq!(crb["subjects"][0]["name"], "alice");
        let np = eu
            .object("v1", "Service", Some("apps"), "np")
            .unwrap_or_default();
        assert_eq!(np["spec"]["type"], "NodePort");
        assert!(np["spec"]["ports"][0]["nodePort"].is_i64());
        let ext = eu
            .object("v1", "Service", Some("apps"), "ext")
            .unwrap_or_default();
        assert_eq!(ext["spec"]["externalName"], "example.com");
        let pod = eu
            .object("v1", "Pod", Some("apps"), "sleep")
            .unwrap_or_default();
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["args"], json!(["sleep", "3600"]));
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(pod["metadata"]["labels"], json!({"app": "sleep"}));
        // What kubectl reads back agrees with what it wrote.
        let got = k(&[
            "-n",
            "apps",
            "get",
            "configmap",
            "cfg",
            "-o",
            "jsonpath={.data.b}",
        ])?;
        assert_eq!(got, "two");
    }
    Ok(())
}
