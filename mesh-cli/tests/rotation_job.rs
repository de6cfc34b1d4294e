//! `meshboot render rotation-job` end to end: the rendered manifests applied to an emulated
//! management cluster (with the real kubectl when there is one), the credentials minted in the
//! emulated mesh clusters, and the CronJob's commands run exactly as the pod would run them:
//! with its mesh file, its kubeconfig (the `management` context pointed at the emulated
//! management cluster with the job's ServiceAccount token) and its CA Secret.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use mesh_core::cluster::ClusterClient;
use mesh_tests::TestClusters;
use serde_json::{Value, json};

mod common;
use common::meshboot_cmd;

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn b64d(s: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_default(),
    )
    .unwrap_or_default()
}

struct Fleet {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Fleet {
    /// eu and ap form the mesh (intermediates valid 20 days: inside the job's 30-day window);
    /// mgmt is the management cluster, not in the mesh file.
    fn start() -> Result<Fleet> {
        Fleet::start_with("")
    }

    /// [`Fleet::start`] with `extra` (top-level mesh-file lines) in the mesh file.
    fn start_with(extra: &str) -> Result<Fleet> {
        let clusters = TestClusters::start(&["eu", "ap", "mgmt"])?;
        clusters.install_istio_crds()?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("mesh.yaml");
        let kubeconfig = clusters.kubeconfig_path().display().to_string();
        std::fs::write(
            &file,
            format!(
                "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\n\
                 ca: {{dir: ./pki, key: ecdsa-p256, intermediateDays: 20}}\n{extra}clusters:\n\
                 - {{name: eu, network: n1, context: eu, kubeconfig: {kubeconfig}}}\n\
                 - {{name: ap, network: n2, context: ap, kubeconfig: {kubeconfig}}}\n"
            ),
        )?;
        let fleet = Fleet {
            clusters,
            dir,
            file,
        };
        let out = fleet.meshboot(&["apply", "--allow-loopback"])?;
        if !out.status.success() {
            bail!("apply: {}", text(&out));
        }
        // Intermediates the job issues from now on live two years.
        let yaml = std::fs::read_to_string(&fleet.file)?;
        std::fs::write(
            &fleet.file,
            yaml.replace("intermediateDays: 20", "intermediateDays: 730"),
        )?;
        Ok(fleet)
    }

    fn meshboot(&self, args: &[&str]) -> Result<Output> {
        meshboot_cmd()
            .args(args)
            .arg("-f")
            .arg(&self.file)
            .env_remove("KUBECONFIG")
            .output()
            .context("running meshboot")
    }

    fn live(&self, cluster: &str, key: &str) -> String {
        let secret = self
            .clusters
            .cluster(cluster)
            .object("v1", "Secret", Some("istio-system"), "cacerts")
            .unwrap_or(Value::Null);
        b64d(secret["data"][key].as_str().unwrap_or_default())
    }

    fn ca_secret(&self) -> Value {
        self.clusters
            .cluster("mgmt")
            .object(
                "v1",
                "Secret",
                Some("meshboot-rotation"),
                "meshboot-rotation-ca",
            )
            .unwrap_or(Value::Null)
    }
}

/// Applies every file of `dir` (sorted) to `mgmt`: with kubectl when found (the CA Secret
/// server-side with meshboot's field manager, as the rendered README says), else by inserting
/// the objects directly.
fn apply_management(fleet: &Fleet, dir: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    match common::which_kubectl() {
        Some(kubectl) => {
            for f in &files {
                let mut cmd = Command::new(&kubectl);
                cmd.arg("--kubeconfig")
                    .arg(fleet.clusters.kubeconfig_path())
                    .args(["--context", "mgmt", "apply"]);
                if f.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("ca.secret"))
                {
                    cmd.args([
                        "--server-side",
                        "--field-manager=meshboot",
                        "--force-conflicts",
                    ]);
                }
                let out = cmd.arg("-f").arg(f).output()?;
                if !out.status.success() {
                    bail!("kubectl apply -f {}: {}", f.display(), text(&out));
                }
            }
        }
        None => {
            eprintln!("note: kubectl not found; inserting the management manifests directly");
            for f in &files {
                let yaml = std::fs::read_to_string(f)?;
                for doc in yaml.split("\n---\n") {
                    let v: Value = serde_saphyr::from_str(doc)?;
                    fleet.clusters.cluster("mgmt").insert_object(v)?;
                }
            }
        }
    }
    Ok(())
}

/// The pod's view, materialised locally: its mesh file and a kubeconfig whose `management`
/// context reaches the emulated management cluster as the job's ServiceAccount.
fn pod_files(fleet: &Fleet, work: &Path) -> Result<(PathBuf, PathBuf)> {
    let mgmt = fleet.clusters.cluster("mgmt");
    let mesh = mgmt
        .object(
            "v1",
            "ConfigMap",
            Some("meshboot-rotation"),
            "meshboot-rotation-mesh",
        )
        .context("mesh ConfigMap")?;
    let secret = mgmt
        .object(
            "v1",
            "Secret",
            Some("meshboot-rotation"),
            "meshboot-rotation-kubeconfig",
        )
        .context("kubeconfig Secret")?;
    let config = match secret["data"]["config"].as_str() {
        Some(b) => b64d(b),
        None => secret["stringData"]["config"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    // The job's own ServiceAccount token, as the pod would get it.
    mgmt.insert_object(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "job-token", "namespace": "meshboot-rotation",
                     "annotations": {"kubernetes.io/service-account.name": "meshboot-rotation"}}}),
    )?;
    let started = std::time::Instant::now();
    let token = loop {
        let s = mgmt.object("v1", "Secret", Some("meshboot-rotation"), "job-token");
        if let Some(t) = s.as_ref().and_then(|s| s["data"]["token"].as_str()) {
            break b64d(t);
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("no token for the job's ServiceAccount");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut kubeconfig: Value = serde_saphyr::from_str(&config)?;
    for c in kubeconfig["clusters"].as_array_mut().into_iter().flatten() {
        if c["name"] == "management" {
            c["cluster"] = json!({"server": mgmt.url(),
                "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(mgmt.ca_pem())});
        }
    }
    for u in kubeconfig["users"].as_array_mut().into_iter().flatten() {
        if u["name"] == "management" {
            u["user"] = json!({"token": token});
        }
    }
    let kubeconfig_path = work.join("kubeconfig");
    std::fs::write(&kubeconfig_path, serde_json::to_string(&kubeconfig)?)?;
    let mesh_path = work.join("mesh.yaml");
    let mesh_yaml = mesh["data"]["mesh.yaml"]
        .as_str()
        .unwrap_or_default()
        .replace(
            "/etc/meshboot/kubeconfig/config",
            &kubeconfig_path.display().to_string(),
        );
    std::fs::write(&mesh_path, mesh_yaml)?;
    Ok((mesh_path, kubeconfig_path))
}

/// Runs one of the CronJob's containers as the pod would.
fn run_container(container: &Value, mesh: &Path, kubeconfig: &Path) -> Result<Output> {
    let args: Vec<String> = container["args"]
        .as_array()
        .context("args")?
        .iter()
        .filter_map(|a| a.as_str())
        .map(|a| {
            if a == "/etc/meshboot/mesh/mesh.yaml" {
                mesh.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    Ok(meshboot_cmd()
        .args(&args)
        .env("KUBECONFIG", kubeconfig)
        .output()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_job_runs_rotation_with_narrow_rights_and_keeps_the_ca_secret() -> Result<()> {
    // The emulator serves from its own runtime, so blocking here is fine.
    let fleet = Fleet::start()?;
    let out_dir = fleet.dir.path().join("job");
    let out = fleet.meshboot(&[
        "render",
        "rotation-job",
        "--out-dir",
        &out_dir.display().to_string(),
        "--credentials",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    for f in [
        "management/03-ca.secret.yaml",
        "management/04-kubeconfig.secret.yaml",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out_dir.join(f))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} holds keys or tokens");
    }
    assert!(out_dir.join("mesh-clusters/eu.yaml").is_file());
    assert!(!text(&out).contains("BEGIN"), "key material printed");

    // The minted identity may do the job's work in istio-system and nothing else.
    let kubeconfig_secret: Value = serde_saphyr::from_str(&std::fs::read_to_string(
        out_dir.join("management/04-kubeconfig.secret.yaml"),
    )?)?;
    let config = kubeconfig_secret["stringData"]["config"]
        .as_str()
        .unwrap_or_default();
    let eu = ClusterClient::from_kubeconfig_yaml("eu", config, "eu", "job kubeconfig").await?;
    assert!(
        eu.can_i("list", "", "secrets", Some("istio-system"))
            .await?
    );
    assert!(!eu.can_i("create", "", "namespaces", None).await?);
    assert!(!eu.can_i("list", "", "secrets", Some("kube-system")).await?);
    assert!(
        !eu.can_i("delete", "", "secrets", Some("istio-system"))
            .await?
    );

    let mgmt_dir = out_dir.join("management");
    apply_management(&fleet, &mgmt_dir)?;
    let cronjob = fleet
        .clusters
        .cluster("mgmt")
        .object(
            "batch/v1",
            "CronJob",
            Some("meshboot-rotation"),
            "meshboot-rotation",
        )
        .context("the CronJob")?;
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let rotate = &pod["initContainers"][0];
    let check = &pod["containers"][0];
    let words = |c: &Value| {
        c["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    assert_eq!(
        words(rotate),
        "rotate intermediate -f /etc/meshboot/mesh/mesh.yaml --expiring-within 30d --ca-secret management/meshboot-rotation/meshboot-rotation-ca"
    );
    assert!(
        words(check)
            .starts_with("check-expiry -f /etc/meshboot/mesh/mesh.yaml --warn 30d --critical 7d")
    );

    // What the job would run, run: the intermediates (20 days left) rotate, the CA Secret
    // keeps the result, the check after it is OK.
    let work = tempfile::tempdir()?;
    let (mesh, kubeconfig) = pod_files(&fleet, work.path())?;
    let before = (
        fleet.live("eu", "ca-cert.pem"),
        fleet.live("ap", "ca-cert.pem"),
    );
    let out = run_container(rotate, &mesh, &kubeconfig)?;
    assert!(out.status.success(), "{}", text(&out));
    let after = (
        fleet.live("eu", "ca-cert.pem"),
        fleet.live("ap", "ca-cert.pem"),
    );
    assert_ne!(after.0, before.0);
    assert_ne!(after.1, before.1);
    let stored = fleet.ca_secret();
    assert_eq!(
        b64d(
            stored["data"]["eu__ca-cert.pem"]
                .as_str()
                .unwrap_or_default()
        ),
        after.0
    );
    assert_eq!(
        b64d(
            stored["data"]["eu__previous__ca-cert.pem"]
                .as_str()
                .unwrap_or_default()
        ),
        before.0
    );
    let out = run_container(check, &mesh, &kubeconfig)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The next night: nothing to do, nothing written.
    let out = run_container(rotate, &mesh, &kubeconfig)?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no cluster needs a new intermediate"),
        "{}",
        text(&out)
    );
    assert_eq!(fleet.live("eu", "ca-cert.pem"), after.0);

    // The workstation fetches the CA directory of record back; a dry run first names the files
    // and writes nothing.
    let pulled = fleet.dir.path().join("pulled");
    let out = meshboot_cmd()
        .args([
            "ca",
            "pull",
            "--dry-run",
            "--from",
            "mgmt/meshboot-rotation/meshboot-rotation-ca",
            "--dir",
        ])
        .arg(&pulled)
        .env("KUBECONFIG", fleet.clusters.kubeconfig_path())
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("would write") && text(&out).contains("eu/ca-cert.pem"),
        "{}",
        text(&out)
    );
    assert!(
        !pulled.exists(),
        "ca pull --dry-run created {}",
        pulled.display()
    );
    let out = meshboot_cmd()
        .args([
            "ca",
            "pull",
            "--from",
            "mgmt/meshboot-rotation/meshboot-rotation-ca",
            "--dir",
        ])
        .arg(&pulled)
        .env("KUBECONFIG", fleet.clusters.kubeconfig_path())
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(pulled.join("eu/ca-cert.pem"))?,
        after.0
    );
    Ok(())
}

#[test]
fn alert_only_keeps_every_key_out_and_only_checks() -> Result<()> {
    let fleet = Fleet::start()?;
    let out_dir = fleet.dir.path().join("alert");
    // A dry run, even with --credentials, lists the files and contacts no cluster.
    let requests_before: Vec<u64> = ["eu", "ap"]
        .iter()
        .map(|c| fleet.clusters.cluster(c).counters().total_requests())
        .collect();
    let out = fleet.meshboot(&[
        "render",
        "rotation-job",
        "--alert-only",
        "--credentials",
        "--dry-run",
        "--out-dir",
        &out_dir.display().to_string(),
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("would write") && text(&out).contains("05-cronjob.yaml"),
        "{}",
        text(&out)
    );
    assert!(!out_dir.exists(), "a dry run wrote the job");
    let requests_after: Vec<u64> = ["eu", "ap"]
        .iter()
        .map(|c| fleet.clusters.cluster(c).counters().total_requests())
        .collect();
    assert_eq!(
        requests_before, requests_after,
        "a dry run contacted a mesh cluster"
    );
    let out = fleet.meshboot(&[
        "render",
        "rotation-job",
        "--alert-only",
        "--out-dir",
        &out_dir.display().to_string(),
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("--credentials"),
        "says how to mint: {}",
        text(&out)
    );
    let ca = std::fs::read_to_string(out_dir.join("management/03-ca.secret.yaml"))?;
    let ca: Value = serde_saphyr::from_str(&ca)?;
    let keys: Vec<&String> = ca["data"].as_object().context("data")?.keys().collect();
    assert!(
        keys.iter().any(|k| k.as_str() == "root-cert.pem"),
        "{keys:?}"
    );
    assert!(
        keys.iter().all(|k| !k.ends_with("key.pem")),
        "a key in alert-only: {keys:?}"
    );
    let cronjob: Value = serde_saphyr::from_str(&std::fs::read_to_string(
        out_dir.join("management/05-cronjob.yaml"),
    )?)?;
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"], json!([]));
    assert_eq!(pod["containers"][0]["args"][0], "check-expiry");
    let rbac = std::fs::read_to_string(out_dir.join("mesh-clusters/eu.yaml"))?;
    assert!(
        !rbac.contains("patch") && !rbac.contains("create"),
        "{rbac}"
    );
    // Nothing was sent to a cluster without --credentials.
    assert!(
        fleet
            .clusters
            .cluster("eu")
            .object(
                "v1",
                "ServiceAccount",
                Some("istio-system"),
                "meshboot-rotation"
            )
            .is_none()
    );
    assert!(
        !out_dir
            .join("management/04-kubeconfig.secret.yaml")
            .exists()
    );
    Ok(())
}

/// The image: built where a container builder works, else skipped with the reason.
#[test]
fn the_containerfile_builds_a_static_non_root_image() -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let containerfile = std::fs::read_to_string(repo.join("Containerfile"))?;
    let user = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .context("the Containerfile sets USER")?;
    // The CronJob's runAsUser must be the image's user, or runAsNonRoot is a lie.
    assert_eq!(
        user.split(':').next(),
        Some(mesh_core::render::rotation_job::RUN_AS.to_string().as_str())
    );
    let builder = ["podman", "buildah", "docker"].into_iter().find(|b| {
        Command::new(b)
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(builder) = builder else {
        eprintln!(
            "skipping the image build: no working container builder (podman, buildah, or docker with a reachable daemon)"
        );
        return Ok(());
    };
    let tag = "localhost/meshboot-test:latest";
    let build_args: Vec<&str> = if builder == "buildah" {
        vec!["bud", "-f", "Containerfile", "-t", tag, "."]
    } else {
        vec!["build", "-f", "Containerfile", "-t", tag, "."]
    };
    let out = Command::new(builder)
        .args(&build_args)
        .current_dir(&repo)
        .output()?;
    assert!(out.status.success(), "{builder} build: {}", text(&out));
    if builder != "buildah" {
        let out = Command::new(builder)
            .args(["run", "--rm", tag, "--version"])
            .output()?;
        assert!(out.status.success(), "{}", text(&out));
        let out = Command::new(builder)
            .args([
                "run",
                "--rm",
                "--entrypoint",
                "/usr/local/bin/meshboot",
                tag,
                "--version",
            ])
            .output()?;
        assert!(String::from_utf8_lossy(&out.stdout).contains("meshboot"));
    }
    Ok(())
}

/// The token of `src`'s remote secret in `dst`.
fn remote_token(fleet: &Fleet, src: &str, dst: &str) -> String {
    let secret = fleet
        .clusters
        .cluster(dst)
        .object(
            "v1",
            "Secret",
            Some("istio-system"),
            &format!("istio-remote-secret-{src}"),
        )
        .unwrap_or_default();
    b64d(secret["data"][src].as_str().unwrap_or_default())
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: ").map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn with_bound_tokens_the_job_also_runs_rotate_tokens_with_rights_named_one_by_one() -> Result<()> {
    let fleet = Fleet::start_with("readerToken: {ttl: 24h, refreshBefore: 1h}\n")?;
    let out_dir = fleet.dir.path().join("job");
    let out = fleet.meshboot(&[
        "render",
        "rotation-job",
        "--out-dir",
        &out_dir.display().to_string(),
        "--credentials",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    let role: Vec<Value> = serde_saphyr::from_str_multiple(&std::fs::read_to_string(
        out_dir.join("mesh-clusters/eu.yaml"),
    )?)?;
    let rules = role
        .iter()
        .find(|o| o["kind"] == "Role")
        .map(|r| r["rules"].to_string())
        .unwrap_or_default();
    for name in [
        "istio-remote-secret-ap",
        "meshboot-reader-for-ap",
        "kube-root-ca.crt",
        "serviceaccounts/token",
    ] {
        assert!(rules.contains(name), "{name} not granted: {rules}");
    }
    let mgmt_dir = out_dir.join("management");
    apply_management(&fleet, &mgmt_dir)?;
    let cronjob = fleet
        .clusters
        .cluster("mgmt")
        .object(
            "batch/v1",
            "CronJob",
            Some("meshboot-rotation"),
            "meshboot-rotation",
        )
        .context("the CronJob")?;
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let tokens = pod["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "rotate-tokens")
        .context("a rotate-tokens step")?
        .clone();
    let args: Vec<&str> = tokens["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        args,
        ["rotate", "tokens", "-f", "/etc/meshboot/mesh/mesh.yaml"]
    );
    let work = tempfile::tempdir()?;
    let (mesh, kubeconfig) = pod_files(&fleet, work.path())?;
    assert!(
        std::fs::read_to_string(&mesh)?.contains("refreshBefore: 1h"),
        "the job's mesh file carries the token lifetime"
    );
    // Tonight nothing is within refreshBefore: nothing is written.
    let before = remote_token(&fleet, "eu", "ap");
    let writes = fleet.clusters.cluster("ap").counters().writes;
    let out = run_container(&tokens, &mesh, &kubeconfig)?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fleet.clusters.cluster("ap").counters().writes, writes);
    // A wider window, with the job's own identity: every pair gets a new token.
    let mut wider = tokens.clone();
    wider["args"] = serde_json::json!([
        "rotate",
        "tokens",
        "-f",
        "/etc/meshboot/mesh/mesh.yaml",
        "--expiring-within",
        "30h"
    ]);
    let out = run_container(&wider, &mesh, &kubeconfig)?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 of 2 pairs"), "{}", text(&out));
    let after = remote_token(&fleet, "eu", "ap");
    assert!(
        !after.is_empty() && after != before,
        "eu's token in ap was refreshed"
    );
    assert!(!text(&out).contains(&after) && !text(&out).contains(&before));
    Ok(())
}
