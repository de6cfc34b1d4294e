//! The machine's `kubectl` works against the emulator unchanged. Every test prints why it skips
//! when `kubectl` is not found (`MESHBOOT_KUBECTL`, else PATH).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mesh_tests::TestClusters;

struct Kubectl<'a> {
    binary: PathBuf,
    kubeconfig: &'a Path,
    cache: tempfile::TempDir,
}

impl<'a> Kubectl<'a> {
    fn new(binary: PathBuf, clusters: &'a TestClusters) -> anyhow::Result<Self> {
        Ok(Kubectl {
            binary,
            kubeconfig: clusters.kubeconfig_path(),
            cache: tempfile::tempdir()?,
        })
    }

    fn run(&self, context: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<Output> {
        use std::io::Write as _;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig)
            .arg("--context")
            .arg(context)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn()?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, context: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let out = self.run(context, args, stdin)?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }
}

const MANIFEST: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
  labels:
    topology.istio.io/network: network1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: mesh
  namespace: istio-system
  labels:
    app: meshboot
data:
  meshID: mesh1
---
apiVersion: v1
kind: Secret
metadata:
  name: istio-remote-secret-ap
  namespace: istio-system
  labels:
    istio/multiCluster: \"true\"
stringData:
  ap: kubeconfig
";

#[test]
fn client_side_apply_get_label_selector_and_delete() -> anyhow::Result<()> {
    let kubectl = mesh_tests::require_kubectl!();
    let clusters = TestClusters::start(&["eu", "ap"])?;
    let k = Kubectl::new(kubectl, &clusters)?;
    let out = k.ok("eu", &["apply", "-f", "-"], Some(MANIFEST))?;
    assert!(
        out.contains("namespace/istio-system created") && out.contains("configmap/mesh created"),
        "{out}"
    );
    let again = k.ok("eu", &["apply", "-f", "-"], Some(MANIFEST))?;
    assert!(again.contains("configmap/mesh unchanged"), "{again}");
    assert!(
        clusters
            .cluster("ap")
            .object("v1", "Namespace", None, "istio-system")
            .is_none(),
        "--context picks the cluster"
    );

    let yaml = k.ok(
        "eu",
        &[
            "get",
            "configmap",
            "mesh",
            "-n",
            "istio-system",
            "-o",
            "yaml",
        ],
        None,
    )?;
    assert!(
        yaml.contains("meshID: mesh1")
            && yaml.contains("creationTimestamp:")
            && yaml.contains("uid:"),
        "{yaml}"
    );
    let names = k.ok(
        "eu",
        &[
            "get",
            "secrets",
            "-n",
            "istio-system",
            "-l",
            "istio/multiCluster=true",
            "-o",
            "name",
        ],
        None,
    )?;
    assert_eq!(names.trim(), "secret/istio-remote-secret-ap");
    let none = k.ok(
        "eu",
        &[
            "get",
            "secrets",
            "-n",
            "istio-system",
            "-l",
            "istio/multiCluster=false",
            "-o",
            "name",
        ],
        None,
    )?;
    assert_eq!(none.trim(), "");

    let table = k.ok("eu", &["get", "secrets", "-n", "istio-system"], None)?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "TYPE", "DATA", "AGE"], "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("istio-remote-secret-ap") && l.contains("Opaque")),
        "{table}"
    );

    let stored = clusters
        .cluster("eu")
        .object(
            "v1",
            "Secret",
            Some("istio-system"),
            "istio-remote-secret-ap",
        )
        .unwrap_or_default();
    assert_eq!(
        stored["data"]["ap"], "a3ViZWNvbmZpZw==",
        "stringData arrives as base64 data"
    );

    k.ok(
        "eu",
        &["delete", "configmap", "mesh", "-n", "istio-system"],
        None,
    )?;
    assert!(
        clusters
            .cluster("eu")
            .object("v1", "ConfigMap", Some("istio-system"), "mesh")
            .is_none()
    );
    let missing = k.run(
        "eu",
        &["get", "configmap", "mesh", "-n", "istio-system"],
        None,
    )?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("configmaps \"mesh\" not found"));
    Ok(())
}

#[test]
fn server_side_apply_conflicts_and_force() -> anyhow::Result<()> {
    let kubectl = mesh_tests::require_kubectl!();
    let clusters = TestClusters::start(&["eu"])?;
    let k = Kubectl::new(kubectl, &clusters)?;
    let out = k.ok("eu", &["apply", "--server-side", "-f", "-"], Some(MANIFEST))?;
    assert!(out.contains("configmap/mesh serverside-applied"), "{out}");
    let rv = clusters
        .cluster("eu")
        .object("v1", "ConfigMap", Some("istio-system"), "mesh")
        .map(|o| o["metadata"]["resourceVersion"].clone());
    k.ok("eu", &["apply", "--server-side", "-f", "-"], Some(MANIFEST))?;
    let rv_again = clusters
        .cluster("eu")
        .object("v1", "ConfigMap", Some("istio-system"), "mesh")
        .map(|o| o["metadata"]["resourceVersion"].clone());
    assert_eq!(
        rv, rv_again,
        "re-applying the same manifest changes nothing"
    );

    let changed = MANIFEST.replace("meshID: mesh1", "meshID: mesh2");
    let conflict = k.run(
        "eu",
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "meshboot",
            "-f",
            "-",
        ],
        Some(&changed),
    )?;
    assert!(!conflict.status.success());
    let err = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        err.contains("conflict with \"kubectl\"") && err.contains(".data.meshID"),
        "{err}"
    );
    k.ok(
        "eu",
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "meshboot",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&changed),
    )?;
    let cm = clusters
        .cluster("eu")
        .object("v1", "ConfigMap", Some("istio-system"), "mesh")
        .unwrap_or_default();
    assert_eq!(cm["data"]["meshID"], "mesh2");
    Ok(())
}

#[test]
fn create_token_and_auth_can_i_follow_rbac() -> anyhow::Result<()> {
    let kubectl = mesh_tests::require_kubectl!();
    let clusters = TestClusters::start(&["eu"])?;
    let k = Kubectl::new(kubectl, &clusters)?;
    assert_eq!(
        k.ok("eu", &["auth", "can-i", "list", "secrets"], None)?
            .trim(),
        "yes",
        "admin can"
    );
    k.ok(
        "eu",
        &["create", "serviceaccount", "reader", "-n", "default"],
        None,
    )?;
    let token = k.ok(
        "eu",
        &[
            "create",
            "token",
            "reader",
            "-n",
            "default",
            "--duration",
            "15m",
        ],
        None,
    )?;
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT-shaped token");

    let as_reader = |args: &[&str]| -> anyhow::Result<Output> {
        let mut all = vec!["--token", token];
        all.extend_from_slice(args);
        k.run("eu", &all, None)
    };
    let denied = as_reader(&["auth", "can-i", "list", "secrets", "-n", "default"])?;
    assert_eq!(String::from_utf8_lossy(&denied.stdout).trim(), "no");
    let forbidden = as_reader(&["get", "secrets", "-n", "default"])?;
    assert!(String::from_utf8_lossy(&forbidden.stderr).contains(
        "User \"system:serviceaccount:default:reader\" cannot list resource \"secrets\""
    ));

    k.ok(
        "eu",
        &[
            "create",
            "role",
            "secret-reader",
            "-n",
            "default",
            "--verb=get,list",
            "--resource=secrets",
        ],
        None,
    )?;
    k.ok(
        "eu",
        &[
            "create",
            "rolebinding",
            "secret-reader",
            "-n",
            "default",
            "--role=secret-reader",
            "--serviceaccount=default:reader",
        ],
        None,
    )?;
    let allowed = as_reader(&["auth", "can-i", "list", "secrets", "-n", "default"])?;
    assert_eq!(String::from_utf8_lossy(&allowed.stdout).trim(), "yes");
    let other_ns = as_reader(&["auth", "can-i", "list", "secrets", "-n", "kube-system"])?;
    assert_eq!(String::from_utf8_lossy(&other_ns.stdout).trim(), "no");
    assert!(
        as_reader(&["get", "secrets", "-n", "default"])?
            .status
            .success()
    );
    let list = as_reader(&["auth", "can-i", "--list", "-n", "default"])?;
    let rules = String::from_utf8_lossy(&list.stdout);
    assert!(
        rules
            .lines()
            .any(|l| l.starts_with("secrets") && l.contains("[get list]")),
        "{rules}"
    );

    let bogus = k.run("eu", &["--token", "bogus", "get", "namespaces"], None)?;
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("Unauthorized"));
    Ok(())
}
