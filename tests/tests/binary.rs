//! The `kube-emulator` binary: prints one line per cluster, writes the kubeconfig, serves until
//! SIGTERM, then prints each cluster's counters and exits cleanly.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};

#[test]
fn kube_emulator_serves_until_sigterm_and_prints_counters() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kc");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--clusters", "eu,ap", "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--latency-ms",
            "1",
            "--error-rate",
            "0",
            "--lb-delay-ms",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    );
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        lines.push(line.trim().to_string());
    }
    let result = (|| -> anyhow::Result<()> {
        assert!(
            lines[0].starts_with("eu https://127.0.0.1:")
                && lines[1].starts_with("ap https://127.0.0.1:"),
            "{lines:?}"
        );
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        assert_eq!(
            kc.contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["eu", "ap"]
        );
        let port: u16 = lines[0].rsplit(':').next().unwrap_or_default().parse()?;
        std::net::TcpStream::connect(("127.0.0.1", port))?;
        Ok(())
    })();
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    assert!(status.success());
    let exit = child.wait()?;
    result?;
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    assert!(
        rest.contains("eu: requests: ")
            && rest.contains("ap: requests: ")
            && rest.contains("objects: "),
        "{rest}"
    );
    Ok(())
}

#[test]
fn kube_emulator_rejects_bad_arguments_before_starting() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kc");
    let bad_rate = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--clusters", "eu", "--error-rate", "2", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()?;
    assert!(!bad_rate.status.success());
    assert!(String::from_utf8_lossy(&bad_rate.stderr).contains("not between 0 and 1"));
    let bad_name = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--clusters", "EU", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()?;
    assert!(!bad_name.status.success());
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("not a DNS-1123 label"));
    assert!(!kubeconfig.exists(), "nothing written");
    Ok(())
}

/// Starts the binary with `extra` flags, stops it at once, and returns its counters line.
fn counters_after_start(extra: &[&str]) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--clusters", "eu", "--kubeconfig"])
        .arg(dir.path().join("kc"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
    );
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    let exit = child.wait()?;
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    Ok(rest)
}

#[test]
fn kube_emulator_starts_fresh_unless_asked_for_istio_crds() -> anyhow::Result<()> {
    // 12 objects: four namespaces, their default ServiceAccounts and kube-root-ca.crt ConfigMaps.
    let fresh = counters_after_start(&[])?;
    assert!(fresh.contains("objects: 12"), "{fresh}");
    // + 14 Istio CRDs (istio/base's set) + 5 Gateway API CRDs.
    let with = counters_after_start(&["--istio-crds", "--gateway-api-crds"])?;
    assert!(with.contains("objects: 31"), "{with}");
    Ok(())
}
