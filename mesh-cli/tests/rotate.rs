//! `meshboot rotate intermediate|root` and `check-expiry` end to end: the real binary against
//! emulated clusters whose istiod stand-in loads `cacerts`, refuses root changes it would
//! refuse, and publishes `istio-ca-root-cert` after a delay (`mesh_tests::istiod`).
//!
//! Chains are checked with the real `openssl verify`, leaves issued by `openssl x509` from each
//! cluster's live intermediate, as istiod would issue workload certificates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use mesh_tests::istiod::IstiodOptions;
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::{Value, json};

mod common;
use common::meshboot_cmd;

const MESH_CONFIG: &str =
    "defaultConfig:\n  proxyMetadata:\n    PROXY_CONFIG_XDS_AGENT: \"true\"\n";

/// Emulated clusters bootstrapped by `meshboot apply`, with istiod running in each.
struct Rot {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    file: PathBuf,
    names: Vec<String>,
}

struct Setup<'a> {
    names: &'a [&'a str],
    istiod_delay: Duration,
    intermediate_days: u32,
    /// Per cluster: istiod version and whether multi-root is on.
    istiod: &'a dyn Fn(&str) -> (&'static str, bool),
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            names: &["eu", "ap", "us"],
            istiod_delay: Duration::from_millis(100),
            intermediate_days: 730,
            istiod: &|_| ("1.28.2", true),
        }
    }
}

impl Rot {
    fn start(setup: Setup<'_>) -> Result<Rot> {
        let options = EmulatorOptions {
            istiod: Some(IstiodOptions {
                delay: Duration::from_millis(100),
                compare: None,
            }),
            ..EmulatorOptions::default()
        };
        let clusters = TestClusters::start_with(setup.names, options)?;
        clusters.install_istio_crds()?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("mesh.yaml");
        let rot = Rot {
            clusters,
            dir,
            file,
            names: setup.names.iter().map(|s| s.to_string()).collect(),
        };
        rot.write_mesh(setup.intermediate_days)?;
        let out = rot.meshboot(&["apply", "--allow-loopback"])?;
        if !out.status.success() {
            bail!("apply failed: {}", text(&out));
        }
        for name in setup.names {
            let (version, multiroot) = (setup.istiod)(name);
            let env: &[(&str, &str)] = if multiroot {
                &[("ISTIO_MULTIROOT_MESH", "true")]
            } else {
                &[]
            };
            let c = rot.clusters.cluster(name);
            c.install_istiod(version, env)?;
            c.insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system"},
                "data": {"mesh": MESH_CONFIG}}))?;
            c.insert_object(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            )?;
        }
        let first_root = rot.live(setup.names[0], "root-cert.pem");
        rot.wait_published(&first_root, Duration::from_secs(20))?;
        // From here on istiod takes as long as the test wants to act on a change.
        for name in setup.names {
            rot.clusters.cluster(name).enable_istiod(IstiodOptions {
                delay: setup.istiod_delay,
                compare: None,
            });
        }
        Ok(rot)
    }

    fn write_mesh(&self, intermediate_days: u32) -> Result<()> {
        let mut yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\n\
             ca: {{dir: ./pki, key: ecdsa-p256, intermediateDays: {intermediate_days}, multiRoot: true}}\nclusters:\n"
        );
        // One network: no east-west gateway is needed, so verify judges the CA alone.
        for name in &self.names {
            yaml.push_str(&format!(
                "  - {{name: {name}, network: network1, context: {name}, kubeconfig: {}}}\n",
                self.clusters.kubeconfig_path().display()
            ));
        }
        std::fs::write(&self.file, yaml)?;
        Ok(())
    }

    fn meshboot(&self, args: &[&str]) -> Result<Output> {
        meshboot_cmd()
            .args(args)
            .arg("-f")
            .arg(&self.file)
            .env_remove("KUBECONFIG")
            .env_remove("RUST_LOG")
            .output()
            .context("running meshboot")
    }

    fn spawn(&self, args: &[&str]) -> Result<std::process::Child> {
        meshboot_cmd()
            .args(args)
            .arg("-f")
            .arg(&self.file)
            .env_remove("KUBECONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("spawning meshboot")
    }

    fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    fn cacerts(&self, cluster: &str) -> Value {
        self.clusters
            .cluster(cluster)
            .object("v1", "Secret", Some("istio-system"), "cacerts")
            .unwrap_or(Value::Null)
    }

    /// A decoded file of the live `cacerts`.
    fn live(&self, cluster: &str, key: &str) -> String {
        let secret = self.cacerts(cluster);
        let b64 = secret["data"][key].as_str().unwrap_or_default();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    }

    fn phase(&self, cluster: &str) -> String {
        self.cacerts(cluster)["metadata"]["annotations"]["rotation.meshboot.io/phase"]
            .as_str()
            .unwrap_or("none")
            .to_string()
    }

    /// Waits until every cluster's istiod published exactly `bundle` in istio-system and shop.
    fn wait_published(&self, bundle: &str, limit: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let done = self.names.iter().all(|c| {
                ["istio-system", "shop"].iter().all(|ns| {
                    self.clusters
                        .cluster(c)
                        .object("v1", "ConfigMap", Some(ns), "istio-ca-root-cert")
                        .is_some_and(|cm| cm["data"]["root-cert.pem"].as_str() == Some(bundle))
                })
            });
            if done {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!("istiod did not publish the bundle within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn istiod_refusals(&self) -> Vec<String> {
        self.names
            .iter()
            .flat_map(|c| {
                self.clusters
                    .cluster(c)
                    .istiod_log()
                    .into_iter()
                    .filter(|l| l.contains("not supported"))
                    .map(move |l| format!("{c}: {l}"))
            })
            .collect()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json_of(out: &Output) -> Result<Value> {
    serde_json::from_slice(&out.stdout).with_context(|| format!("JSON expected: {}", text(out)))
}

fn openssl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("openssl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!(
            "skipping chain checks: openssl not found on PATH (Debian: apt-get install openssl)"
        );
    }
    found
}

/// A workload leaf issued from `ca_cert`/`ca_key` as istiod would: its chain is the leaf then
/// the intermediate's `cert-chain.pem`. Returns (leaf, chain) file paths.
fn issue_leaf(
    dir: &Path,
    name: &str,
    ca_cert: &str,
    ca_key: &str,
    chain: &str,
) -> Result<(PathBuf, PathBuf)> {
    let openssl = openssl().context("openssl")?;
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    std::fs::write(p("ca.pem"), ca_cert)?;
    std::fs::write(p("ca-key.pem"), ca_key)?;
    std::fs::write(p("chain.pem"), chain)?;
    std::fs::write(
        p("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://cluster.local/ns/shop/sa/default\n",
    )?;
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new(&openssl).args(args).output()?;
        if !out.status.success() {
            bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    let s = |p: PathBuf| p.display().to_string();
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/O=workload",
        "-keyout",
        &s(p("leaf-key.pem")),
        "-out",
        &s(p("leaf.csr")),
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        &s(p("leaf.csr")),
        "-CA",
        &s(p("ca.pem")),
        "-CAkey",
        &s(p("ca-key.pem")),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &s(p("ext.cnf")),
        "-out",
        &s(p("leaf.pem")),
    ])?;
    Ok((p("leaf.pem"), p("chain.pem")))
}

/// `openssl verify` of a leaf with its chain against a bundle.
fn verifies(dir: &Path, label: &str, leaf: &Path, chain: &Path, bundle: &str) -> Result<bool> {
    let openssl = openssl().context("openssl")?;
    let ca = dir.join(format!("{label}-bundle.pem"));
    std::fs::write(&ca, bundle)?;
    let out = Command::new(openssl)
        .arg("verify")
        .arg("-CAfile")
        .arg(&ca)
        .arg("-untrusted")
        .arg(chain)
        .arg(leaf)
        .output()?;
    Ok(out.status.success())
}

/// Issues a leaf from every cluster's live intermediate.
fn leaves_from_live(rot: &Rot, tag: &str) -> Result<Vec<(String, PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    for c in &rot.names {
        let (leaf, chain) = issue_leaf(
            rot.dir.path(),
            &format!("{tag}-{c}"),
            &rot.live(c, "ca-cert.pem"),
            &rot.live(c, "ca-key.pem"),
            &rot.live(c, "cert-chain.pem"),
        )?;
        out.push((c.clone(), leaf, chain));
    }
    Ok(out)
}

/// Every leaf verifies against every cluster's live bundle (cross-cluster mTLS holds).
fn assert_all_trusted(rot: &Rot, leaves: &[(String, PathBuf, PathBuf)], phase: &str) -> Result<()> {
    for (from, leaf, chain) in leaves {
        for c in &rot.names {
            let bundle = rot.live(c, "root-cert.pem");
            assert!(
                verifies(
                    rot.dir.path(),
                    &format!("{phase}-{from}-in-{c}"),
                    leaf,
                    chain,
                    &bundle
                )?,
                "{phase}: a workload of {from} is not trusted by {c}"
            );
        }
    }
    Ok(())
}

fn roots_in(pem: &str) -> usize {
    pem.matches("BEGIN CERTIFICATE").count()
}

#[test]
fn rotating_one_intermediate_touches_that_cluster_only_and_rolls_back() -> Result<()> {
    let rot = Rot::start(Setup {
        istiod: &|c| {
            if c == "ap" {
                ("1.17.8", false)
            } else {
                ("1.28.2", true)
            }
        },
        ..Setup::default()
    })?;
    let before: Vec<Value> = rot.names.iter().map(|c| rot.cacerts(c)).collect();
    let eu_before = rot.live("eu", "ca-cert.pem");

    // Neither --cluster nor --expiring-within: a usage error, nothing written.
    let out = rot.meshboot(&["rotate", "intermediate"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--expiring-within"), "{}", text(&out));

    let dry = rot.meshboot(&["rotate", "intermediate", "--cluster", "eu", "--dry-run"])?;
    assert!(dry.status.success(), "{}", text(&dry));
    assert_eq!(rot.live("eu", "ca-cert.pem"), eu_before, "a dry run wrote");
    assert!(
        !rot.pki().join("eu/previous").exists(),
        "a dry run wrote the CA directory"
    );

    let out = rot.meshboot(&["rotate", "intermediate", "--cluster", "eu"])?;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let eu_after = rot.live("eu", "ca-cert.pem");
    assert_ne!(eu_after, eu_before);
    assert_eq!(
        rot.live("eu", "root-cert.pem"),
        before[0]["data"]["root-cert.pem"]
            .as_str()
            .map(|b| String::from_utf8(
                base64::engine::general_purpose::STANDARD.decode(b).unwrap()
            )
            .unwrap())
            .unwrap()
    );
    assert_eq!(rot.cacerts("ap"), before[1], "ap was touched");
    assert_eq!(rot.cacerts("us"), before[2], "us was touched");
    // The previous intermediate is kept beside the new one.
    let previous = std::fs::read_to_string(rot.pki().join("eu/previous/ca-cert.pem"))?;
    assert_eq!(previous, eu_before);
    assert_eq!(
        std::fs::read_to_string(rot.pki().join("eu/ca-cert.pem"))?,
        eu_after
    );
    assert!(
        all.contains("istiod 1.28.2 in eu reloads the new intermediate by itself"),
        "{all}"
    );
    assert!(all.contains("workloads keep working"), "{all}");
    assert!(all.contains("--rollback --cluster eu"), "{all}");
    assert!(all.contains("not touched: ap, us"), "{all}");
    // The stand-in hot-reloaded it (same root, so no refusal).
    let started = Instant::now();
    while !rot
        .clusters
        .cluster("eu")
        .istiod_log()
        .iter()
        .any(|l| l.contains("newly added intermediate"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "istiod in eu did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        rot.istiod_refusals().is_empty(),
        "{:?}",
        rot.istiod_refusals()
    );

    // An old istiod: the report says to restart it, with the command.
    let out = rot.meshboot(&["rotate", "intermediate", "--cluster", "ap", "-o", "json"])?;
    assert!(out.status.success(), "{}", text(&out));
    let report = json_of(&out)?;
    let ap = &report["clusters"][0];
    assert_eq!(ap["cluster"], "ap");
    assert_eq!(ap["istiod"]["reloads"], false);
    assert_eq!(
        ap["istiod"]["command"],
        "kubectl --context ap -n istio-system rollout restart deployment/istiod"
    );
    assert!(
        ap["istiod"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("restart istiod in ap")
    );
    assert!(
        !out.stdout.windows(11).any(|w| w == b"PRIVATE KEY"),
        "a key reached the report"
    );

    // Roll back: the old intermediate is live again, the bad one kept in history.
    let out = rot.meshboot(&["rotate", "intermediate", "--rollback", "--cluster", "eu"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(rot.live("eu", "ca-cert.pem"), eu_before);
    let history: Vec<_> = std::fs::read_dir(rot.pki().join("eu/history"))?.collect();
    assert_eq!(history.len(), 1, "the replaced intermediate is kept");
    // verify is content with the result.
    let out = rot.meshboot(&["verify", "--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}

#[test]
fn everything_expiring_within_a_window_is_rotated_and_nothing_else() -> Result<()> {
    let rot = Rot::start(Setup {
        intermediate_days: 5,
        ..Setup::default()
    })?;
    // From now on new intermediates are long-lived; eu gets one explicitly.
    rot.write_mesh(730)?;
    let out = rot.meshboot(&["rotate", "intermediate", "--cluster", "eu"])?;
    assert!(out.status.success(), "{}", text(&out));
    let eu = rot.cacerts("eu");

    // check-expiry sees ap and us critical (5 days < 7) and eu fine.
    let out = rot.meshboot(&["check-expiry", "-o", "json"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report = json_of(&out)?;
    assert_eq!(report["status"], "critical");
    let critical: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "critical")
        .filter_map(|i| i["cluster"].as_str())
        .collect();
    assert!(
        critical.contains(&"ap") && critical.contains(&"us") && !critical.contains(&"eu"),
        "{report:#}"
    );

    let out = rot.meshboot(&[
        "rotate",
        "intermediate",
        "--expiring-within",
        "30d",
        "-o",
        "json",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    let report = json_of(&out)?;
    let chosen: Vec<&str> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["cluster"].as_str())
        .collect();
    assert_eq!(chosen, ["ap", "us"]);
    assert_eq!(report["untouched"], json!(["eu"]));
    assert_eq!(rot.cacerts("eu"), eu, "eu was not expiring");
    for c in ["ap", "us"] {
        let info = mesh_core::pki::cert_info(&rot.live(c, "ca-cert.pem"))?;
        assert!(
            info.days_left > 700,
            "{c} still expires soon: {}",
            info.days_left
        );
    }
    // Nothing expires any more: a second run writes nothing, and check-expiry is OK.
    let out = rot.meshboot(&["rotate", "intermediate", "--expiring-within", "30d"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no cluster needs a new intermediate"),
        "{}",
        text(&out)
    );
    let out = rot.meshboot(&["check-expiry"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

#[test]
fn a_root_rotates_through_every_phase_and_every_chain_verifies_at_each() -> Result<()> {
    let Some(_) = openssl() else { return Ok(()) };
    let rot = Rot::start(Setup {
        istiod_delay: Duration::from_secs(3),
        ..Setup::default()
    })?;
    let old_root = rot.live("eu", "root-cert.pem");
    let old_leaves = leaves_from_live(&rot, "old")?;
    assert_all_trusted(&rot, &old_leaves, "phase 0")?;

    // Phase 1 everywhere; istiod takes 3 s to publish, so a run that waits 0 s stops at gate 1.
    let out = rot.meshboot(&[
        "rotate",
        "root",
        "--new-root",
        "generate",
        "--timeout",
        "0s",
        "-o",
        "json",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    let report = json_of(&out)?;
    assert_eq!(report["outcome"], "advanced", "{report:#}");
    assert_eq!(report["gate"]["gate"], "published");
    assert_eq!(report["gate"]["open"], false);
    for c in &rot.names {
        assert_eq!(rot.phase(c), "1", "{c}");
        let bundle = rot.live(c, "root-cert.pem");
        assert_eq!(roots_in(&bundle), 2);
        assert!(
            bundle.starts_with(&old_root),
            "{c}: old root first, byte for byte"
        );
        assert_eq!(
            rot.live(c, "ca-cert.pem"),
            mesh_core::pki::CaDir::open(rot.pki())
                .bundle(c)?
                .ca_cert_pem
        );
    }
    assert_all_trusted(&rot, &old_leaves, "phase 1")?;
    // The dry run names the phase of each cluster and the gate.
    let dry = rot.meshboot(&["rotate", "root", "--dry-run"])?;
    let all = text(&dry);
    assert!(
        all.contains("eu: phase 1 (old + new root, old intermediate)"),
        "{all}"
    );
    assert!(all.contains("gate 1 (bundle published)"), "{all}");

    // Gate 1 opens once istiod published both roots; phase 2 then waits for --min-phase-age.
    let both = rot.live("eu", "root-cert.pem");
    rot.wait_published(&both, Duration::from_secs(20))?;
    let out = rot.meshboot(&["rotate", "root", "--min-phase-age", "1h", "-o", "json"])?;
    assert!(out.status.success(), "{}", text(&out));
    let report = json_of(&out)?;
    assert_eq!(report["gate"]["gate"], "min-phase-age", "{report:#}");
    assert!(report["gate"]["opens_at"].is_string());
    for c in &rot.names {
        assert_eq!(rot.phase(c), "2", "{c}");
        assert_eq!(rot.live(c, "root-cert.pem"), both);
    }
    let new_leaves = leaves_from_live(&rot, "new")?;
    assert_all_trusted(&rot, &old_leaves, "phase 2 (old workloads)")?;
    assert_all_trusted(&rot, &new_leaves, "phase 2 (new workloads)")?;

    // Phase 3 with the age gate at zero: the new root alone; new workloads still verify.
    let out = rot.meshboot(&["rotate", "root", "--min-phase-age", "0s"])?;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("root rotation complete"), "{all}");
    let new_root = rot.live("eu", "root-cert.pem");
    assert_eq!(roots_in(&new_root), 1);
    assert!(both.ends_with(&new_root));
    for c in &rot.names {
        assert_eq!(rot.phase(c), "3", "{c}");
    }
    assert_all_trusted(&rot, &new_leaves, "phase 3")?;
    let (leaf, chain) = (&old_leaves[0].1, &old_leaves[0].2);
    assert!(
        !verifies(rot.dir.path(), "old-after", leaf, chain, &new_root)?,
        "the old root is still trusted"
    );
    // istiod accepted every change, and ends up serving the new root.
    rot.wait_published(&new_root, Duration::from_secs(20))?;
    assert!(
        rot.istiod_refusals().is_empty(),
        "{:?}",
        rot.istiod_refusals()
    );
    // The CA directory's root is the new one; the rotation folder is retired.
    assert_eq!(
        std::fs::read_to_string(rot.pki().join("root-cert.pem"))?,
        new_root
    );
    assert!(!rot.pki().join("rotation").exists());
    assert_eq!(std::fs::read_dir(rot.pki().join("retired"))?.count(), 1);
    // A converged re-apply changes nothing, and a re-run does not start another rotation.
    let out = rot.meshboot(&["apply", "--allow-loopback", "-o", "json"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json_of(&out)?["totals"]["updated"], 0);
    let out = rot.meshboot(&["rotate", "root"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--new-root generate"), "{}", text(&out));
    Ok(())
}

#[test]
fn apply_and_verify_understand_a_mesh_in_mid_rotation() -> Result<()> {
    let rot = Rot::start(Setup {
        istiod_delay: Duration::from_secs(30),
        ..Setup::default()
    })?;
    let out = rot.meshboot(&[
        "rotate",
        "root",
        "--new-root",
        "generate",
        "--timeout",
        "0s",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    let at_one: Vec<Value> = rot.names.iter().map(|c| rot.cacerts(c)).collect();
    // apply pushes what the CA directory holds (the step's bundle): nothing changes, the
    // rotation annotations stay.
    let out = rot.meshboot(&["apply", "--allow-loopback", "-o", "json"])?;
    assert!(out.status.success(), "{}", text(&out));
    for (c, before) in rot.names.iter().zip(&at_one) {
        assert_eq!(
            &rot.cacerts(c),
            before,
            "apply changed {c}'s cacerts mid-rotation"
        );
    }
    // verify reports the phase instead of mismatched roots.
    let out = rot.meshboot(&["verify", "--allow-loopback"])?;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("root rotation under way"), "{all}");
    assert!(all.contains("eu, ap, us in phase 1"), "{all}");
    // Intermediates do not rotate on their own meanwhile.
    let out = rot.meshboot(&["rotate", "intermediate", "--cluster", "eu"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("a root rotation is under way"),
        "{}",
        text(&out)
    );
    Ok(())
}

#[test]
fn a_crash_between_phases_and_inside_a_phase_is_resumed() -> Result<()> {
    let rot = Rot::start(Setup {
        istiod_delay: Duration::from_secs(4),
        ..Setup::default()
    })?;
    // Inside a phase: us answers slowly, the process is killed once eu has its bundle.
    rot.clusters
        .cluster("us")
        .set_latency(Duration::from_millis(700));
    let mut child = rot.spawn(&[
        "rotate",
        "root",
        "--new-root",
        "generate",
        "--min-phase-age",
        "0s",
    ])?;
    let started = Instant::now();
    while roots_in(&rot.live("eu", "root-cert.pem")) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "eu never reached phase 1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    assert_eq!(
        roots_in(&rot.live("us", "root-cert.pem")),
        1,
        "us was written before the kill"
    );
    rot.clusters.cluster("us").set_latency(Duration::ZERO);
    // The run after it finishes phase 1 for us (no cluster left behind) and then waits at
    // gate 1 for istiod, being killed there: between phases.
    let mut child = rot.spawn(&["rotate", "root", "--min-phase-age", "0s", "--timeout", "2m"])?;
    let started = Instant::now();
    while rot.names.iter().any(|c| rot.phase(c) != "1") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "phase 1 was not finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    assert!(rot.names.iter().all(|c| rot.phase(c) == "1"));
    // A third run, as from another machine with a copy of the CA directory, completes.
    let copy = tempfile::tempdir()?;
    copy_dir(&rot.pki(), &copy.path().join("pki"))?;
    std::fs::copy(&rot.file, copy.path().join("mesh.yaml"))?;
    let out = meshboot_cmd()
        .args([
            "rotate",
            "root",
            "--min-phase-age",
            "0s",
            "--timeout",
            "2m",
            "-f",
        ])
        .arg(copy.path().join("mesh.yaml"))
        .output()?;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("root rotation complete"), "{all}");
    assert!(rot.names.iter().all(|c| rot.phase(c) == "3"));
    assert!(
        rot.istiod_refusals().is_empty(),
        "{:?}",
        rot.istiod_refusals()
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[test]
fn a_cluster_down_in_phase_1_stops_everyone_until_it_is_back() -> Result<()> {
    // istiod takes 2 s to publish, so the first run (waiting 0 s) surely stops at gate 1.
    let rot = Rot::start(Setup {
        istiod_delay: Duration::from_secs(2),
        ..Setup::default()
    })?;
    let out = rot.meshboot(&[
        "rotate",
        "root",
        "--new-root",
        "generate",
        "--timeout",
        "0s",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        rot.names.iter().all(|c| rot.phase(c) == "1"),
        "phase 1 everywhere first"
    );
    let both = rot.live("eu", "root-cert.pem");
    rot.wait_published(&both, Duration::from_secs(20))?;
    rot.clusters.cluster("ap").set_down(true);
    let out = rot.meshboot(&["rotate", "root", "--min-phase-age", "0s", "-o", "json"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json_of(&out)?;
    assert_eq!(report["outcome"], "blocked");
    let blocked = report["blocked"].to_string();
    assert!(blocked.contains("ap: cannot be read"), "{blocked}");
    for c in ["eu", "us"] {
        assert_eq!(rot.phase(c), "1", "{c} advanced while ap was down");
    }
    rot.clusters.cluster("ap").set_down(false);
    let out = rot.meshboot(&["rotate", "root", "--min-phase-age", "0s"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(rot.names.iter().all(|c| rot.phase(c) == "3"));
    Ok(())
}

#[test]
fn abort_returns_every_cluster_to_the_old_root_and_intermediates() -> Result<()> {
    let rot = Rot::start(Setup::default())?;
    let before: Vec<(String, String)> = rot
        .names
        .iter()
        .map(|c| (rot.live(c, "ca-cert.pem"), rot.live(c, "root-cert.pem")))
        .collect();
    let out = rot.meshboot(&[
        "rotate",
        "root",
        "--new-root",
        "generate",
        "--min-phase-age",
        "1h",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        rot.names.iter().all(|c| rot.phase(c) == "2"),
        "{}",
        text(&out)
    );
    // Back from phase 2 the old intermediates return first (abort-1); the old root alone
    // follows once --min-phase-age passed.
    let out = rot.meshboot(&["rotate", "root", "--abort", "--min-phase-age", "1h"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        rot.names.iter().all(|c| rot.phase(c) == "abort-1"),
        "{}",
        text(&out)
    );
    for (c, (ca, _)) in rot.names.iter().zip(&before) {
        assert_eq!(
            &rot.live(c, "ca-cert.pem"),
            ca,
            "{c}: old intermediate back"
        );
        assert_eq!(roots_in(&rot.live(c, "root-cert.pem")), 2);
    }
    // Forward is refused while the abort is under way.
    let out = rot.meshboot(&["rotate", "root"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = rot.meshboot(&["rotate", "root", "--abort", "--min-phase-age", "0s"])?;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("root rotation aborted"), "{all}");
    for (c, (ca, root)) in rot.names.iter().zip(&before) {
        assert_eq!(&rot.live(c, "ca-cert.pem"), ca, "{c}");
        assert_eq!(&rot.live(c, "root-cert.pem"), root, "{c}");
    }
    assert!(
        rot.istiod_refusals().is_empty(),
        "{:?}",
        rot.istiod_refusals()
    );
    assert!(!rot.pki().join("rotation").exists());
    let out = rot.meshboot(&["verify", "--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}

#[test]
fn a_missing_multi_root_prerequisite_stops_with_the_change_to_make() -> Result<()> {
    let rot = Rot::start(Setup {
        istiod: &|c| ("1.28.2", c != "us"),
        ..Setup::default()
    })?;
    let before: Vec<Value> = rot.names.iter().map(|c| rot.cacerts(c)).collect();
    let out = rot.meshboot(&["rotate", "root", "--new-root", "generate"])?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("us: istiod 1.28.2 runs without ISTIO_MULTIROOT_MESH=true"),
        "{all}"
    );
    assert!(
        all.contains("--set pilot.env.ISTIO_MULTIROOT_MESH=true"),
        "{all}"
    );
    assert!(all.contains("ca: {multiRoot: true}"), "{all}");
    for (c, b) in rot.names.iter().zip(&before) {
        assert_eq!(&rot.cacerts(c), b, "{c} was written");
    }
    assert!(
        !rot.pki().join("rotation").exists(),
        "the rotation started anyway"
    );
    Ok(())
}

#[test]
fn check_expiry_exit_codes_follow_the_monitoring_convention() -> Result<()> {
    let rot = Rot::start(Setup {
        names: &["eu", "ap"],
        intermediate_days: 20,
        ..Setup::default()
    })?;
    // 20 days left: a warning at the default 30d, fine at --warn 10d.
    let out = rot.meshboot(&["check-expiry"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("EXPIRY WARNING"), "{}", text(&out));
    let out = rot.meshboot(&[
        "check-expiry",
        "--warn",
        "10d",
        "--critical",
        "5d",
        "-o",
        "json",
    ])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json_of(&out)?;
    assert_eq!(report["status"], "ok");
    let items = report["items"].as_array().unwrap();
    // Local root + 2 intermediates, and per cluster the live intermediate and bundle root.
    assert_eq!(items.len(), 3 + 2 * 2, "{report:#}");
    assert!(
        items
            .iter()
            .all(|i| i["days_left"].is_i64() && i["not_after"].is_string())
    );
    let out = rot.meshboot(&["check-expiry", "--critical", "25d"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Bad usage is 3, not 2 (which would read as critical).
    let out = rot.meshboot(&["check-expiry", "--warn", "soon"])?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = rot.meshboot(&["check-expiry", "--warn", "5d", "--critical", "6d"])?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // An unreachable cluster: unknown.
    rot.clusters.cluster("ap").set_down(true);
    let out = rot.meshboot(&[
        "check-expiry",
        "--warn",
        "10d",
        "--critical",
        "5d",
        "-o",
        "json",
    ])?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report = json_of(&out)?;
    assert!(
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["cluster"] == "ap" && i["status"] == "unknown")
    );
    // ca inspect judges the local directory alone with the same thresholds.
    let pki = rot.pki().display().to_string();
    let out = meshboot_cmd()
        .args(["ca", "inspect", "--dir", &pki])
        .output()?;
    assert_eq!(out.status.code(), Some(0), "no thresholds: exit as before");
    let out = meshboot_cmd()
        .args(["ca", "inspect", "--dir", &pki, "--warn", "30d"])
        .output()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = meshboot_cmd()
        .args([
            "ca",
            "inspect",
            "--dir",
            &pki,
            "--critical",
            "25d",
            "--warn",
            "30d",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    Ok(())
}

/// Every Secret of every cluster, decoded, as one text (to look for key material).
fn all_secret_bytes(rot: &Rot) -> String {
    let mut all = String::new();
    for c in &rot.names {
        for secret in rot.clusters.cluster(c).list_objects("v1", "Secret", None) {
            if let Some(data) = secret["data"].as_object() {
                for v in data.values() {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap_or_default();
                    all.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
    }
    all
}

#[test]
fn a_brought_new_root_ends_up_in_every_cluster_and_its_key_in_none() -> Result<()> {
    let Some(_) = openssl() else { return Ok(()) };
    let rot = Rot::start(Setup::default())?;
    // The new root comes from elsewhere (a corporate CA hands over a certificate and key).
    let corp = tempfile::tempdir()?;
    let corp_ca = mesh_core::pki::CaDir::open(corp.path());
    corp_ca.init(
        &mesh_core::pki::CaOptions {
            key: mesh_core::pki::KeyAlgorithm::EcdsaP256,
            org: "Brought Corp".into(),
            ..mesh_core::pki::CaOptions::default()
        },
        false,
    )?;
    let (cert, key) = (corp_ca.root_cert_path(), corp_ca.root_key_path());
    let brought_pem = std::fs::read_to_string(&cert)?;
    let brought_key = std::fs::read_to_string(&key)?;
    let arg = format!("{},{}", cert.display(), key.display());
    let old_root = rot.live("eu", "root-cert.pem");
    let old_leaves = leaves_from_live(&rot, "old")?;
    let before: Vec<Value> = rot.names.iter().map(|c| rot.cacerts(c)).collect();

    // A dry run names the brought root and writes nothing, locally or in a cluster.
    let dry = rot.meshboot(&["rotate", "root", "--new-root", &arg, "--dry-run"])?;
    assert!(dry.status.success(), "{}", text(&dry));
    for (c, b) in rot.names.iter().zip(&before) {
        assert_eq!(&rot.cacerts(c), b, "a dry run wrote {c}");
    }
    assert!(
        !rot.pki().join("rotation").exists(),
        "a dry run wrote the CA"
    );

    // Phases 1 and 2 in one run (istiod publishes within the wait); the age gate stops it.
    let out = rot.meshboot(&[
        "rotate",
        "root",
        "--new-root",
        &arg,
        "--min-phase-age",
        "1h",
        "--timeout",
        "1m",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    let both = format!("{old_root}{brought_pem}");
    for c in &rot.names {
        assert_eq!(rot.phase(c), "2", "{c}: {}", text(&out));
        assert_eq!(
            rot.live(c, "root-cert.pem"),
            both,
            "{c}: old root, then the brought one"
        );
        // The new intermediate is signed by the brought root and named after its O=.
        let info = mesh_core::pki::cert_info(&rot.live(c, "ca-cert.pem"))?;
        assert_eq!(
            info.subject,
            format!("O=Brought Corp, CN=Intermediate CA, L={c}")
        );
    }
    let new_leaves = leaves_from_live(&rot, "brought")?;
    assert_all_trusted(&rot, &old_leaves, "phase 2 (old workloads)")?;
    assert_all_trusted(&rot, &new_leaves, "phase 2 (new workloads)")?;
    for (c, leaf, chain) in &new_leaves {
        assert!(
            verifies(
                rot.dir.path(),
                &format!("brought-only-{c}"),
                leaf,
                chain,
                &brought_pem
            )?,
            "{c}: the new chain does not end at the brought root"
        );
    }
    // Another new root while this one is under way is refused, and nothing changes.
    let other = tempfile::tempdir()?;
    let other_ca = mesh_core::pki::CaDir::open(other.path());
    other_ca.init(
        &mesh_core::pki::CaOptions {
            key: mesh_core::pki::KeyAlgorithm::EcdsaP256,
            ..mesh_core::pki::CaOptions::default()
        },
        false,
    )?;
    let other_arg = format!(
        "{},{}",
        other_ca.root_cert_path().display(),
        other_ca.root_key_path().display()
    );
    let at_two: Vec<Value> = rot.names.iter().map(|c| rot.cacerts(c)).collect();
    let out = rot.meshboot(&[
        "rotate",
        "root",
        "--new-root",
        &other_arg,
        "--min-phase-age",
        "0s",
    ])?;
    // A flag value that cannot be used now: the usage code, as without a rotation to continue.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("another new root"), "{}", text(&out));
    for (c, b) in rot.names.iter().zip(&at_two) {
        assert_eq!(&rot.cacerts(c), b, "{c} was written for another root");
    }

    // Naming the same root again is fine: phase 3 leaves the brought root alone everywhere.
    let out = rot.meshboot(&[
        "rotate",
        "root",
        "--new-root",
        &arg,
        "--min-phase-age",
        "0s",
    ])?;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("root rotation complete"), "{all}");
    for c in &rot.names {
        assert_eq!(rot.phase(c), "3", "{c}");
        assert_eq!(rot.live(c, "root-cert.pem"), brought_pem, "{c}");
    }
    assert_all_trusted(&rot, &new_leaves, "phase 3")?;
    let (leaf, chain) = (&old_leaves[0].1, &old_leaves[0].2);
    assert!(
        !verifies(
            rot.dir.path(),
            "old-after-brought",
            leaf,
            chain,
            &brought_pem
        )?,
        "the old root is still trusted"
    );
    rot.wait_published(&brought_pem, Duration::from_secs(20))?;
    assert!(
        rot.istiod_refusals().is_empty(),
        "{:?}",
        rot.istiod_refusals()
    );
    // The CA directory now holds the brought root and its key; no cluster ever got the key.
    assert_eq!(
        std::fs::read_to_string(rot.pki().join("root-cert.pem"))?,
        brought_pem
    );
    assert_eq!(
        std::fs::read_to_string(rot.pki().join("root-key.pem"))?,
        brought_key
    );
    let key_body: String = brought_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(
        !all_secret_bytes(&rot).replace('\n', "").contains(&key_body),
        "the brought root key reached a mesh cluster"
    );
    let out = rot.meshboot(&["verify", "--allow-loopback"])?;
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}
