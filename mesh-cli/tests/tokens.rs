//! Remote-secret credentials with a lifetime (`readerToken`), end to end: the real binary
//! against emulated clusters whose TokenRequest issues bound tokens as a real API server does
//! (expiry, `boundObjectRef`, refusal once expired or once the bound object is gone).
//!
//! Every output of every run is kept and scanned at the end of each test: no token (and no key)
//! may appear in any of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mesh_tests::{EmulatorOptions, TestClusters};
use serde_json::Value;

mod common;
use common::meshboot_cmd;

const NS: &str = "istio-system";

/// Emulated clusters, a mesh file naming them, and every output meshboot printed.
struct Mesh {
    clusters: TestClusters,
    dir: tempfile::TempDir,
    outputs: Mutex<Vec<String>>,
}

impl Mesh {
    fn start(names: &[&str], options: EmulatorOptions) -> Result<Mesh> {
        let clusters = TestClusters::start_with(names, options)?;
        clusters.install_istio_crds()?;
        Ok(Mesh {
            clusters,
            dir: tempfile::tempdir()?,
            outputs: Mutex::new(Vec::new()),
        })
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("mesh.yaml")
    }

    /// Writes the mesh file: `names` on one network each, `reader_token` as the `readerToken`
    /// mapping (empty: none).
    fn write(&self, names: &[&str], reader_token: &str) -> Result<()> {
        let mut yaml = String::from(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nca: {dir: ./pki, key: ecdsa-p256}\n",
        );
        if !reader_token.is_empty() {
            yaml.push_str(&format!("readerToken: {reader_token}\n"));
        }
        yaml.push_str("clusters:\n");
        for (i, name) in names.iter().enumerate() {
            yaml.push_str(&format!(
                "  - {{name: {name}, network: network{i}, context: {name}, kubeconfig: {}}}\n",
                self.clusters.kubeconfig_path().display()
            ));
        }
        std::fs::write(self.file(), yaml)?;
        // Istio as its user installed it (`controlPlane.install: none`): the east-west gateway
        // of every cluster, each on a network of its own.
        let spec = mesh_core::spec::MeshSpec::from_file(self.file())?;
        for c in &spec.clusters {
            let cluster = self.clusters.cluster(&c.name);
            let there = cluster
                .object("v1", "Service", Some(NS), "istio-eastwestgateway")
                .is_some();
            if mesh_core::render::Needs::of(&spec, c).eastwest_gateway && !there {
                mesh_tests::charts::install_eastwest_gateway(cluster, NS, &c.network)?;
            }
        }
        Ok(())
    }

    /// Runs `meshboot <args> -f mesh.yaml` and keeps its output for the final scan.
    fn run(&self, args: &[&str]) -> Result<Output> {
        let out = meshboot_cmd()
            .args(args)
            .arg("-f")
            .arg(self.file())
            .env_remove("KUBECONFIG")
            .output()
            .context("running meshboot")?;
        self.outputs
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push(text(&out));
        Ok(out)
    }

    /// [`Mesh::run`] with `$KUBECONFIG` naming the emulator's kubeconfig (for contexts that
    /// are not in the mesh file).
    fn run_with_kubeconfig(&self, args: &[&str]) -> Result<Output> {
        let out = meshboot_cmd()
            .args(args)
            .arg("-f")
            .arg(self.file())
            .env("KUBECONFIG", self.clusters.kubeconfig_path())
            .output()
            .context("running meshboot")?;
        self.outputs
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push(text(&out));
        Ok(out)
    }

    fn ok(&self, args: &[&str]) -> Result<Output> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!("meshboot {args:?} failed:\n{}", text(&out));
        }
        Ok(out)
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.run(&all)?;
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("JSON expected:\n{}", text(&out)))
    }

    fn writes(&self, names: &[&str]) -> u64 {
        names
            .iter()
            .map(|n| self.clusters.cluster(n).counters().writes)
            .sum()
    }

    fn secret(&self, cluster: &str, name: &str) -> Option<Value> {
        self.clusters
            .cluster(cluster)
            .object("v1", "Secret", Some(NS), name)
    }

    /// The token inside `dst`'s remote secret of `src`.
    fn token(&self, src: &str, dst: &str) -> Result<String> {
        let secret = self
            .secret(dst, &format!("istio-remote-secret-{src}"))
            .with_context(|| format!("no remote secret of {src} in {dst}"))?;
        let kubeconfig =
            String::from_utf8(STANDARD.decode(secret["data"][src].as_str().context("data key")?)?)?;
        kubeconfig
            .lines()
            .find_map(|l| l.trim().strip_prefix("token: "))
            .map(str::to_string)
            .context("no token in the kubeconfig")
    }

    /// Every token and private key the clusters hold, for the output scan.
    fn secrets_to_hide(&self, names: &[&str]) -> Vec<String> {
        let mut hide = Vec::new();
        for name in names {
            let cluster = self.clusters.cluster(name);
            hide.push(cluster.admin_token().to_string());
            for s in cluster.list_objects("v1", "Secret", None) {
                for (key, value) in s["data"].as_object().into_iter().flatten() {
                    let Some(decoded) = value
                        .as_str()
                        .and_then(|v| STANDARD.decode(v).ok())
                        .and_then(|b| String::from_utf8(b).ok())
                    else {
                        continue;
                    };
                    if key == "token" || key == "ca-key.pem" {
                        hide.push(decoded.trim().to_string());
                    }
                    for line in decoded.lines() {
                        if let Some(t) = line.trim().strip_prefix("token: ") {
                            hide.push(t.to_string());
                        }
                    }
                }
            }
        }
        hide.retain(|h| h.len() > 16);
        hide
    }

    /// Fails when any output so far holds a token, a key, or a fragment of one.
    fn assert_no_secret_in_outputs(&self, names: &[&str], also: &[String]) -> Result<()> {
        let mut hide = self.secrets_to_hide(names);
        hide.extend(also.iter().cloned());
        let outputs = self
            .outputs
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (i, out) in outputs.iter().enumerate() {
            assert!(!out.contains("PRIVATE KEY"), "output {i} holds a key");
            for h in &hide {
                // The signature part alone is enough to use nothing, but a JWT's payload and
                // signature must not appear either.
                let sig = h.rsplit('.').next().unwrap_or(h);
                assert!(
                    !out.contains(h.as_str()) && (sig.len() < 16 || !out.contains(sig)),
                    "output {i} of {} holds a secret",
                    outputs.len()
                );
            }
        }
        assert!(!outputs.is_empty());
        Ok(())
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

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether `cluster` accepts `token`, asked the way istiod would use it (a client built from
/// a remote-secret kubeconfig holding it).
async fn accepted(mesh: &Mesh, cluster: &str, token: &str) -> Result<bool> {
    let c = mesh.clusters.cluster(cluster);
    let kubeconfig = mesh_core::remote_secret::RemoteSecret {
        cluster: cluster.into(),
        namespace: NS.into(),
        secret_type: mesh_core::remote_secret::SecretType::Remote,
        server: c.url().into(),
        tls_server_name: None,
        ca_data: c.ca_pem().as_bytes().to_vec(),
        token: token.into(),
    }
    .kubeconfig()?;
    let client =
        mesh_core::cluster::ClusterClient::from_kubeconfig_yaml(cluster, &kubeconfig, "", "test")
            .await?
            .with_retry(mesh_core::cluster::RetryPolicy::none());
    match client.can_i("list", "", "services", None).await {
        Ok(_) => Ok(true),
        Err(mesh_core::cluster::ClusterError::Unauthorized { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn claims(token: &str) -> Result<Value> {
    mesh_tests::tokens::claims(token).context("the token is not a JWT")
}

/// Every ordered pair of `names`.
fn pairs<'a>(names: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    for src in names {
        for dst in names {
            if src != dst {
                out.push((*src, *dst));
            }
        }
    }
    out
}

const THREE: [&str; 3] = ["eu", "ap", "us"];

#[test]
fn ttl_mode_from_nothing_gives_every_pair_its_own_bound_token_and_a_rerun_writes_nothing()
-> Result<()> {
    let mesh = Mesh::start(&THREE, EmulatorOptions::default())?;
    mesh.write(&THREE, "{ttl: 24h, refreshBefore: 1h}")?;
    mesh.ok(&["apply", "--allow-loopback"])?;

    let issued_after = now();
    for (src, dst) in pairs(&THREE) {
        let token = mesh.token(src, dst)?;
        let c = claims(&token)?;
        let exp = c["exp"].as_i64().context("a bound token expires")?;
        assert!(
            exp <= issued_after + 24 * 3600 && exp > issued_after + 24 * 3600 - 120,
            "{src}→{dst}: exp {exp} is not within the 24h ttl"
        );
        let bound = format!("meshboot-reader-for-{dst}");
        assert_eq!(c["kubernetes.io"]["secret"]["name"], bound.as_str());
        let object = mesh
            .secret(src, &bound)
            .context("the pair's bound object")?;
        assert_eq!(
            c["kubernetes.io"]["secret"]["uid"], object["metadata"]["uid"],
            "{src}→{dst} is bound to its own object"
        );
    }
    for name in THREE {
        assert!(
            mesh.secret(
                name,
                "istio-reader-service-account-istio-remote-secret-token"
            )
            .is_none(),
            "no long-lived token Secret in {name}"
        );
    }
    // Every pair has its own token.
    let tokens: BTreeMap<_, _> = pairs(&THREE)
        .into_iter()
        .map(|(s, d)| Ok(((s, d), mesh.token(s, d)?)))
        .collect::<Result<_>>()?;
    let distinct: std::collections::BTreeSet<&String> = tokens.values().collect();
    assert_eq!(distinct.len(), 6);

    let verify = mesh.ok(&["verify", "--allow-loopback"])?;
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("token-expiry"), "{said}");
    assert!(
        said.contains("bound token of istio-remote-secret-ap expires"),
        "{said}"
    );

    let before = mesh.writes(&THREE);
    let again = mesh.ok(&["apply", "--allow-loopback"])?;
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing written"),
        "{}",
        text(&again)
    );
    assert_eq!(
        mesh.writes(&THREE),
        before,
        "a converged ttl mesh sees zero writes"
    );
    for ((s, d), token) in &tokens {
        assert_eq!(
            &mesh.token(s, d)?,
            token,
            "{s}→{d}: no new token was minted"
        );
    }
    mesh.assert_no_secret_in_outputs(&THREE, &[])?;
    Ok(())
}

#[tokio::test]
async fn switching_from_legacy_to_ttl_removes_meshboots_token_secrets_and_revokes_their_tokens()
-> Result<()> {
    let names = ["eu", "ap"];
    let mesh = Mesh::start(&names, EmulatorOptions::default())?;
    mesh.write(&names, "")?;
    mesh.ok(&["apply", "--allow-loopback"])?;
    let legacy = mesh.token("eu", "ap")?;
    assert!(
        claims(&legacy)?.get("exp").is_none(),
        "the default is istioctl's long-lived token"
    );
    assert!(accepted(&mesh, "eu", &legacy).await?);
    // The token Secret istioctl would make (its name, not meshboot's field manager) stays.
    let istioctls = "istio-reader-service-account-istio-remote-secret-token";
    mesh.clusters
        .cluster("ap")
        .insert_object(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": istioctls, "namespace": NS,
                "annotations": {"kubernetes.io/service-account.name": "meshboot-reader"}},
        }))?;

    mesh.write(&names, "{ttl: 720h}")?;
    let report = mesh.json(&["apply", "--allow-loopback"])?;
    assert_eq!(report["succeeded"], true, "{report}");
    let removed: Vec<(String, String)> = report["removed"]
        .as_array()
        .context("removed")?
        .iter()
        .map(|r| {
            (
                r["cluster"].as_str().unwrap_or_default().to_string(),
                r["object"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // Neither cluster runs Istio's charts: the reader is meshboot's own identity.
    let own = "meshboot-reader-token";
    assert_eq!(
        removed,
        [
            ("eu".to_string(), own.to_string()),
            ("ap".to_string(), own.to_string())
        ]
    );
    for name in names {
        assert!(mesh.secret(name, own).is_none(), "{name}");
    }
    assert!(
        mesh.secret("ap", istioctls).is_some(),
        "not meshboot's: kept"
    );
    assert!(
        !accepted(&mesh, "eu", &legacy).await?,
        "the long-lived token is revoked"
    );
    for (src, dst) in pairs(&names) {
        let token = mesh.token(src, dst)?;
        assert!(
            claims(&token)?["exp"].is_i64(),
            "{src}→{dst} carries a bound token"
        );
        assert!(accepted(&mesh, src, &token).await?);
    }
    mesh.ok(&["verify", "--allow-loopback"])?;
    mesh.assert_no_secret_in_outputs(&names, &[legacy])?;
    Ok(())
}

/// The pairs of a `rotate tokens -o json` report with the given action.
fn pairs_with(report: &Value, action: &str) -> Vec<(String, String)> {
    report["pairs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["action"] == action)
        .map(|p| {
            (
                p["source"].as_str().unwrap_or_default().to_string(),
                p["destination"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn rotate_tokens_refreshes_only_the_pairs_within_the_window_and_a_second_run_writes_nothing()
-> Result<()> {
    let mesh = Mesh::start(&THREE, EmulatorOptions::default())?;
    mesh.write(&THREE, "{ttl: 24h, refreshBefore: 1h}")?;
    mesh.ok(&["apply", "--allow-loopback"])?;
    // One pair gets a longer-lived token: a new ttl, and its remote secret made again.
    mesh.write(&THREE, "{ttl: 48h, refreshBefore: 1h}")?;
    mesh.clusters
        .cluster("us")
        .remove_object("v1", "Secret", Some(NS), "istio-remote-secret-eu");
    mesh.ok(&["apply", "--allow-loopback"])?;
    let long = mesh.token("eu", "us")?;
    let before: BTreeMap<_, _> = pairs(&THREE)
        .into_iter()
        .map(|(s, d)| Ok(((s, d), mesh.token(s, d)?)))
        .collect::<Result<_>>()?;

    // Nothing is within 23h.
    let none = mesh.json(&["rotate", "tokens", "--expiring-within", "23h"])?;
    assert_eq!(none["succeeded"], true, "{none}");
    assert_eq!(pairs_with(&none, "fresh").len(), 6, "{none}");
    assert_eq!(none["run"]["totals"]["updated"], 0);

    // A dry run says which pairs would get a new token, and writes nothing.
    let writes = mesh.writes(&THREE);
    let dry = mesh.json(&["rotate", "tokens", "--expiring-within", "30h", "--dry-run"])?;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(pairs_with(&dry, "refresh").len(), 5, "{dry}");
    assert_eq!(
        pairs_with(&dry, "fresh"),
        [("eu".to_string(), "us".to_string())]
    );
    assert_eq!(mesh.writes(&THREE), writes, "a dry run writes nothing");
    for ((s, d), token) in &before {
        assert_eq!(&mesh.token(s, d)?, token);
    }

    let real = mesh.json(&["rotate", "tokens", "--expiring-within", "30h"])?;
    assert_eq!(real["succeeded"], true, "{real}");
    assert_eq!(real["run"]["totals"]["updated"], 5, "{real}");
    let issued = now();
    for (s, d) in pairs(&THREE) {
        let token = mesh.token(s, d)?;
        let exp = claims(&token)?["exp"].as_i64().context("exp")?;
        if (s, d) == ("eu", "us") {
            assert_eq!(token, long, "outside the window: left alone");
            continue;
        }
        assert_ne!(&token, &before[&(s, d)], "{s}→{d} got a new token");
        assert!(
            exp > issued + 47 * 3600 && exp <= issued + 48 * 3600,
            "{s}→{d}: the new token has the mesh file's ttl"
        );
        assert_eq!(
            claims(&token)?["kubernetes.io"]["secret"]["name"],
            format!("meshboot-reader-for-{d}").as_str(),
            "still bound to the pair's own object"
        );
        assert!(accepted(&mesh, s, &token).await?, "{s}→{d} works");
    }
    let text = mesh.ok(&["rotate", "tokens", "--expiring-within", "30h"])?;
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(said.contains("0 of 6 pairs"), "{said}");
    let writes = mesh.writes(&THREE);
    let again = mesh.json(&["rotate", "tokens", "--expiring-within", "30h"])?;
    assert_eq!(pairs_with(&again, "fresh").len(), 6, "{again}");
    assert_eq!(mesh.writes(&THREE), writes, "a second run writes nothing");
    mesh.ok(&["verify", "--allow-loopback"])?;
    // check-expiry reports each token by its JWT exp (the window: the 48h tokens are fine,
    // the one minted before them is too).
    let expiry = mesh.json(&["check-expiry", "--warn", "1h", "--critical", "30m"])?;
    let tokens: Vec<&Value> = expiry["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            i["what"]
                .as_str()
                .is_some_and(|w| w.starts_with("token of remote secret"))
        })
        .collect();
    assert_eq!(tokens.len(), 6, "{expiry}");
    assert!(
        tokens
            .iter()
            .all(|t| t["status"] == "ok" && t["not_after"].is_string()),
        "{expiry}"
    );
    let old: Vec<String> = before.into_values().collect();
    mesh.assert_no_secret_in_outputs(&THREE, &old)?;
    Ok(())
}

#[test]
fn rotate_tokens_without_a_ttl_is_a_usage_error_that_names_the_setting() -> Result<()> {
    let names = ["eu", "ap"];
    let mesh = Mesh::start(&names, EmulatorOptions::default())?;
    mesh.write(&names, "")?;
    let out = mesh.run(&["rotate", "tokens"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readerToken.ttl"),
        "{}",
        text(&out)
    );
    assert_eq!(mesh.writes(&names), 0);
    Ok(())
}

/// `(cluster, object name)` of a report's `removed` list.
fn removed_of(report: &Value) -> Vec<(String, String)> {
    report["removed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["cluster"].as_str().unwrap_or_default().to_string(),
                r["object"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn revoking_a_bound_pair_leaves_every_other_pair_working_and_the_token_refused_after_the_cache()
-> Result<()> {
    // The real API server caches a successful token authentication for about 10 s.
    let options = EmulatorOptions {
        token_cache_ttl: std::time::Duration::from_millis(800),
        ..EmulatorOptions::default()
    };
    let mesh = Mesh::start(&THREE, options)?;
    mesh.write(&THREE, "{ttl: 24h}")?;
    mesh.ok(&["apply", "--allow-loopback"])?;
    let before: BTreeMap<_, _> = pairs(&THREE)
        .into_iter()
        .map(|(s, d)| Ok(((s, d), mesh.token(s, d)?)))
        .collect::<Result<_>>()?;
    let revoked = before[&("eu", "us")].clone();
    assert!(accepted(&mesh, "eu", &revoked).await?);

    let dry = mesh.json(&["revoke", "--from", "eu", "--in", "us", "--dry-run"])?;
    assert_eq!(dry["kind"], "bound", "{dry}");
    assert!(mesh.secret("us", "istio-remote-secret-eu").is_some());

    let report = mesh.json(&["revoke", "--from", "eu", "--in", "us"])?;
    assert_eq!(report["succeeded"], true, "{report}");
    assert_eq!(
        removed_of(&report),
        [
            ("us".to_string(), "istio-remote-secret-eu".to_string()),
            ("eu".to_string(), "meshboot-reader-for-us".to_string()),
        ]
    );
    assert_eq!(report["reissued"], serde_json::json!([]), "{report}");
    assert!(mesh.secret("us", "istio-remote-secret-eu").is_none());
    assert!(mesh.secret("eu", "meshboot-reader-for-us").is_none());
    // Cached for a moment, as on a real server; refused once the cache forgets it.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(
        !accepted(&mesh, "eu", &revoked).await?,
        "the revoked token is refused"
    );
    for ((s, d), token) in &before {
        if (*s, *d) == ("eu", "us") {
            continue;
        }
        assert_eq!(&mesh.token(s, d)?, token, "{s}→{d} untouched");
        assert!(accepted(&mesh, s, token).await?, "{s}→{d} still works");
    }
    // The pair is still in the mesh file: apply gives it a new credential.
    mesh.ok(&["apply", "--allow-loopback"])?;
    let fresh = mesh.token("eu", "us")?;
    assert_ne!(fresh, revoked);
    assert!(accepted(&mesh, "eu", &fresh).await?);
    let hide: Vec<String> = before.into_values().collect();
    mesh.assert_no_secret_in_outputs(&THREE, &hide)?;
    Ok(())
}

#[tokio::test]
async fn revoking_a_long_lived_pair_recreates_the_shared_token_and_reissues_every_other_destination()
-> Result<()> {
    let mesh = Mesh::start(&THREE, EmulatorOptions::default())?;
    mesh.write(&THREE, "")?;
    mesh.ok(&["apply", "--allow-loopback"])?;
    let shared = mesh.token("eu", "us")?;
    assert_eq!(
        mesh.token("eu", "ap")?,
        shared,
        "istioctl's model: one token"
    );
    let ap_us = mesh.token("ap", "us")?;

    let writes = mesh.writes(&THREE);
    let dry = mesh.json(&["revoke", "--from", "eu", "--in", "us", "--dry-run"])?;
    assert_eq!(dry["kind"], "long-lived", "{dry}");
    assert_eq!(dry["reissued"], serde_json::json!(["ap"]), "{dry}");
    assert_eq!(mesh.writes(&THREE), writes, "a dry run writes nothing");
    assert!(accepted(&mesh, "eu", &shared).await?);

    let report = mesh.json(&["revoke", "--from", "eu", "--in", "us"])?;
    assert_eq!(report["succeeded"], true, "{report}");
    assert_eq!(report["reissued"], serde_json::json!(["ap"]), "{report}");
    assert_eq!(
        removed_of(&report),
        [
            ("us".to_string(), "istio-remote-secret-eu".to_string()),
            ("eu".to_string(), "meshboot-reader-token".to_string()),
        ]
    );
    assert!(mesh.secret("us", "istio-remote-secret-eu").is_none());
    assert!(
        !accepted(&mesh, "eu", &shared).await?,
        "the shared token is revoked"
    );
    let reissued = mesh.token("eu", "ap")?;
    assert_ne!(reissued, shared);
    assert!(
        accepted(&mesh, "eu", &reissued).await?,
        "ap reads eu with the new token"
    );
    assert!(mesh.secret("eu", "meshboot-reader-token").is_some());
    assert_eq!(mesh.token("ap", "us")?, ap_us, "other sources untouched");
    let text = mesh.ok(&["revoke", "--from", "eu", "--in", "ap", "--dry-run"])?;
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("would re-issue"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    mesh.assert_no_secret_in_outputs(&THREE, &[shared])?;
    Ok(())
}

#[test]
fn revoke_of_a_cluster_not_in_the_mesh_file_is_a_usage_error() -> Result<()> {
    let names = ["eu", "ap"];
    let mesh = Mesh::start(&names, EmulatorOptions::default())?;
    mesh.write(&names, "")?;
    for args in [
        ["revoke", "--from", "mars", "--in", "eu"],
        ["revoke", "--from", "eu", "--in", "eu"],
    ] {
        let out = mesh.run(&args)?;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
    assert_eq!(mesh.writes(&names), 0);
    Ok(())
}

/// A remote secret made by hand (or by `istioctl create-remote-secret | kubectl apply`): not
/// meshboot's field manager.
fn hand_made(mesh: &Mesh, cluster: &str, registers: &str) -> Result<()> {
    let kubeconfig = STANDARD.encode(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {{server: https://192.0.2.9:6443}}\n  name: {registers}\n"
    ));
    mesh.clusters
        .cluster(cluster)
        .insert_object(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("istio-remote-secret-{registers}"), "namespace": NS,
                "labels": {"istio/multiCluster": "true"},
                "annotations": {"networking.istio.io/cluster": registers}},
            "data": {registers: kubeconfig},
        }))?;
    Ok(())
}

fn notices_of(report: &Value) -> Vec<String> {
    report["notices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            format!(
                "{} | {}",
                n["message"].as_str().unwrap_or_default(),
                n["hint"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn prune_removes_only_meshboots_secrets_of_a_departed_bound_cluster_and_cleans_it_through_its_context()
-> Result<()> {
    let mesh = Mesh::start(&THREE, EmulatorOptions::default())?;
    mesh.write(&THREE, "{ttl: 24h}")?;
    mesh.ok(&["apply", "--allow-loopback"])?;
    hand_made(&mesh, "eu", "legacy-dc")?;
    let us_reads_eu = mesh.token("eu", "us")?;
    let eu_reads_us = mesh.token("us", "eu")?;
    assert!(accepted(&mesh, "eu", &us_reads_eu).await?);

    let remaining = ["eu", "ap"];
    mesh.write(&remaining, "{ttl: 24h}")?;
    // Without --prune: warnings, with the command, and nothing removed.
    let report = mesh.json(&["apply", "--allow-loopback"])?;
    assert_eq!(report["succeeded"], true, "{report}");
    assert!(report.get("removed").is_none(), "{report}");
    let notices = notices_of(&report);
    for cluster in remaining {
        for stale in ["istio-remote-secret-us", "meshboot-reader-for-us"] {
            assert!(
                notices
                    .iter()
                    .any(|n| n.contains(&format!("{stale} in {cluster}")) && n.contains("--prune")),
                "no warning for {stale} in {cluster}: {notices:?}"
            );
        }
    }
    assert!(
        !notices.iter().any(|n| n.contains("legacy-dc")),
        "a hand-made remote secret is not meshboot's to prune: {notices:?}"
    );
    let verify = mesh.run(&["verify", "--allow-loopback"])?;
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        said.contains("istio-remote-secret-us registers cluster us, which is not in mesh.yaml (meshboot made it)")
            && said.contains("--prune"),
        "{said}"
    );

    // --dry-run shows what would be pruned and writes nothing.
    let writes = mesh.writes(&THREE);
    let dry = mesh.json(&["apply", "--allow-loopback", "--prune", "--dry-run"])?;
    let mut would = removed_of(&dry);
    would.sort();
    assert_eq!(
        would,
        [
            ("ap", "istio-remote-secret-us"),
            ("ap", "meshboot-reader-for-us"),
            ("eu", "istio-remote-secret-us"),
            ("eu", "meshboot-reader-for-us"),
        ]
        .map(|(c, n)| (c.to_string(), n.to_string()))
    );
    assert_eq!(mesh.writes(&THREE), writes, "a dry run writes nothing");
    let text = mesh.ok(&["apply", "--allow-loopback", "--prune", "--dry-run"])?;
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("would remove: eu Secret istio-system/istio-remote-secret-us")
    );

    let out = mesh.run_with_kubeconfig(&[
        "apply",
        "--allow-loopback",
        "--prune",
        "--prune-context",
        "us=us",
        "-o",
        "json",
    ])?;
    let report: Value = serde_json::from_slice(&out.stdout).with_context(|| text_of(&out))?;
    assert_eq!(report["succeeded"], true, "{report}");
    let mut removed = removed_of(&report);
    removed.sort();
    assert_eq!(
        removed,
        [
            ("ap", "istio-remote-secret-us"),
            ("ap", "meshboot-reader-for-us"),
            ("eu", "istio-remote-secret-us"),
            ("eu", "meshboot-reader-for-us"),
            ("us", "istio-remote-secret-ap"),
            ("us", "istio-remote-secret-eu"),
            ("us", "meshboot-reader-for-ap"),
            ("us", "meshboot-reader-for-eu"),
        ]
        .map(|(c, n)| (c.to_string(), n.to_string()))
    );
    for cluster in remaining {
        assert!(mesh.secret(cluster, "istio-remote-secret-us").is_none());
    }
    assert!(
        mesh.secret("eu", "istio-remote-secret-legacy-dc").is_some(),
        "the hand-made remote secret stays"
    );
    assert!(
        !accepted(&mesh, "eu", &us_reads_eu).await?,
        "us no longer reads eu"
    );
    assert!(
        !accepted(&mesh, "us", &eu_reads_us).await?,
        "eu's old credential for us is dead"
    );
    for (s, d) in pairs(&remaining) {
        assert!(
            accepted(&mesh, s, &mesh.token(s, d)?).await?,
            "{s}→{d} still works"
        );
    }
    // Converged: nothing stale is left to warn about.
    let again = mesh.json(&["apply", "--allow-loopback"])?;
    assert!(
        !notices_of(&again).iter().any(|n| n.contains("--prune")),
        "{again}"
    );
    mesh.assert_no_secret_in_outputs(&THREE, &[us_reads_eu, eu_reads_us])?;
    Ok(())
}

#[tokio::test]
async fn prune_of_a_departed_long_lived_cluster_without_and_then_with_its_context() -> Result<()> {
    let mesh = Mesh::start(&THREE, EmulatorOptions::default())?;
    mesh.write(&THREE, "")?;
    mesh.ok(&["apply", "--allow-loopback"])?;
    let us_token = mesh.token("us", "eu")?;
    let remaining = ["eu", "ap"];
    mesh.write(&remaining, "")?;

    let report = mesh.json(&["apply", "--allow-loopback", "--prune"])?;
    assert_eq!(report["succeeded"], true, "{report}");
    let mut removed = removed_of(&report);
    removed.sort();
    assert_eq!(
        removed,
        [
            ("ap", "istio-remote-secret-us"),
            ("eu", "istio-remote-secret-us")
        ]
        .map(|(c, n)| (c.to_string(), n.to_string()))
    );
    // Unreachable without its context: its own token Secret and remote secrets stay.
    assert!(mesh.secret("us", "meshboot-reader-token").is_some());
    assert!(accepted(&mesh, "us", &us_token).await?);

    let out = mesh.run_with_kubeconfig(&[
        "apply",
        "--allow-loopback",
        "--prune",
        "--prune-context",
        "us=us",
        "-o",
        "json",
    ])?;
    let report: Value = serde_json::from_slice(&out.stdout).with_context(|| text_of(&out))?;
    assert_eq!(report["succeeded"], true, "{report}");
    let mut removed = removed_of(&report);
    removed.sort();
    assert_eq!(
        removed,
        [
            ("us", "istio-remote-secret-ap"),
            ("us", "istio-remote-secret-eu"),
            ("us", "meshboot-reader-token"),
        ]
        .map(|(c, n)| (c.to_string(), n.to_string()))
    );
    assert!(
        !accepted(&mesh, "us", &us_token).await?,
        "the departed cluster's long-lived token is revoked"
    );
    // --prune-context is for clusters that left, and only with --prune.
    for args in [
        ["apply", "--allow-loopback", "--prune-context", "us=us"].as_slice(),
        [
            "apply",
            "--allow-loopback",
            "--prune",
            "--prune-context",
            "eu=eu",
        ]
        .as_slice(),
    ] {
        let out = mesh.run_with_kubeconfig(args)?;
        assert_eq!(out.status.code(), Some(2), "{}", text_of(&out));
    }
    mesh.assert_no_secret_in_outputs(&THREE, &[us_token])?;
    Ok(())
}

fn text_of(out: &Output) -> String {
    text(out)
}
