//! `kube-emulator --karmada-hub` and `--istiod`: the stand-ins work from the binary, driven by
//! the real kubectl as a user of `kube-emulator` would drive them.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kubectl(
    kubectl: &Path,
    kubeconfig: &Path,
    context: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--context", context])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// `istio-system`, a real `cacerts` (root and an intermediate it signed) and an istiod
/// Deployment, as one manifest.
fn istiod_manifest() -> anyhow::Result<(String, String)> {
    let ca = |cn: &str| {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p
    };
    let root_key = rcgen::KeyPair::generate()?;
    let root_params = ca("Root CA");
    let root = root_params.self_signed(&root_key)?.pem();
    let issuer = rcgen::Issuer::new(root_params, root_key);
    let key = rcgen::KeyPair::generate()?;
    let cert = ca("Intermediate CA").signed_by(&key, &issuer)?.pem();
    let block = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let manifest = format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: v1
kind: Secret
metadata: {{name: cacerts, namespace: istio-system}}
stringData:
  ca-cert.pem: |
{cert}
  ca-key.pem: |
{key}
  cert-chain.pem: |
{chain}
  root-cert.pem: |
{root}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: istiod, namespace: istio-system, labels: {{app: istiod}}}}
spec:
  selector: {{matchLabels: {{app: istiod}}}}
  template:
    metadata: {{labels: {{app: istiod}}}}
    spec:
      containers:
      - {{name: discovery, image: 'docker.io/istio/pilot:1.28.2'}}
",
        cert = block(&cert),
        key = block(&key.serialize_pem()),
        chain = block(&format!("{cert}{root}")),
        root = block(&root),
    );
    Ok((manifest, root))
}

#[test]
fn kube_emulator_runs_a_karmada_hub_and_the_istiod_stand_in() -> anyhow::Result<()> {
    let kubectl_bin = mesh_tests::require_kubectl!();
    let dir = tempfile::tempdir()?;
    let kc = dir.path().join("kc");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args([
            "--clusters",
            "hub,eu",
            "--karmada-hub",
            "hub",
            "--istiod",
            "--istiod-delay-ms",
            "10",
            "--kubeconfig",
        ])
        .arg(&kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    );
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line)?;
    }
    let result = (|| -> anyhow::Result<()> {
        let members = kubectl(
            &kubectl_bin,
            &kc,
            "hub",
            &[
                "get",
                "clusters.cluster.karmada.io",
                "-o",
                "jsonpath={.items[*].spec.syncMode}/{.items[*].metadata.name}",
            ],
            None,
        )?;
        assert_eq!(members, "Push/eu");
        let creds = kubectl(
            &kubectl_bin,
            &kc,
            "hub",
            &["-n", "karmada-cluster", "get", "secret", "eu", "-o", "name"],
            None,
        )?;
        assert_eq!(creds.trim(), "secret/eu");

        let (manifest, root) = istiod_manifest()?;
        kubectl(
            &kubectl_bin,
            &kc,
            "eu",
            &["apply", "-f", "-"],
            Some(&manifest),
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let published = kubectl(
                &kubectl_bin,
                &kc,
                "eu",
                &[
                    "-n",
                    "default",
                    "get",
                    "configmap",
                    "istio-ca-root-cert",
                    "-o",
                    "jsonpath={.data.root-cert\\.pem}",
                    "--ignore-not-found",
                ],
                None,
            )?;
            if published.trim() == root.trim() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "istio-ca-root-cert never published"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    result
}
