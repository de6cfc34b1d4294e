//! meshboot prints remote secrets byte for byte as `istioctl create-remote-secret` does
//! (golden files in `fixtures/remote-secret/`, reviewed by reading), and the Secret object it
//! applies carries the same content.

use std::io::{self, Write};
use std::path::PathBuf;

use base64::Engine as _;
use mesh_core::remote_secret::{
    RemoteSecret, RemoteSecretError, SecretDocument, SecretType, write_encoded_secret,
};

fn golden(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/remote-secret")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn secret(cluster: &str, namespace: &str, server: &str) -> RemoteSecret {
    RemoteSecret {
        cluster: cluster.into(),
        namespace: namespace.into(),
        secret_type: SecretType::Remote,
        server: server.into(),
        tls_server_name: None,
        ca_data: b"caData".to_vec(),
        token: "<token>".into(),
    }
}

#[test]
fn bearer_token_secret_matches_istioctl_output() {
    let s = secret("cluster1", "istio-system", "https://10.0.0.1:6443");
    assert_eq!(s.to_istioctl_yaml().unwrap(), golden("cluster1.yaml"));
}

#[test]
fn kube_system_uid_as_cluster_name() {
    let s = secret(
        "54643f96-eca0-11e9-bb97-42010a80000a",
        "istio-system-test",
        "server",
    );
    assert_eq!(
        s.to_istioctl_yaml().unwrap(),
        golden("kube-system-uid.yaml")
    );
}

#[test]
fn config_type_uses_istio_kubeconfig_and_key_config() {
    let mut s = secret("primary", "istio-system-test", "server");
    s.secret_type = SecretType::Config;
    assert_eq!(s.name(), "istio-kubeconfig");
    assert_eq!(s.to_istioctl_yaml().unwrap(), golden("config-primary.yaml"));
}

#[test]
fn tls_server_name_follows_server() {
    let mut s = secret("primary", "istio-system-test", "gateway");
    s.tls_server_name = Some("server".into());
    assert_eq!(
        s.to_istioctl_yaml().unwrap(),
        golden("tls-server-name.yaml")
    );
}

#[test]
fn numeric_cluster_name_is_quoted_like_go_yaml() {
    let s = secret("123", "istio-system", "https://203.0.113.10:6443");
    assert_eq!(s.to_istioctl_yaml().unwrap(), golden("numeric-name.yaml"));
}

#[test]
fn empty_secret_prints_only_its_name() {
    let mut out = Vec::new();
    let doc = SecretDocument {
        name: "foo".into(),
        ..Default::default()
    };
    write_encoded_secret(&mut out, &doc).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), golden("empty-secret.yaml"));
}

/// Fails the n-th write call, like TestWriteEncodedSecret's failing writer.
struct FailingWriter {
    calls: usize,
    fail_on: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls == self.fail_on {
            return Err(io::Error::other("injected encode error"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_fails_on_header_body_or_trailer() {
    let s = secret("cluster1", "istio-system", "https://10.0.0.1:6443");
    for fail_on in 1..=3 {
        let mut w = FailingWriter { calls: 0, fail_on };
        let err = s.write_istioctl_yaml(&mut w).unwrap_err();
        assert!(matches!(err, RemoteSecretError::Write(_)), "{err}");
        assert!(err.to_string().contains("injected encode error"));
    }
}

#[test]
fn empty_server_is_an_invalid_kubeconfig() {
    let s = secret("cluster1", "istio-system", "");
    let err = s.to_istioctl_yaml().unwrap_err();
    assert!(err.to_string().starts_with("invalid kubeconfig:"), "{err}");
}

#[test]
fn applied_object_holds_the_printed_kubeconfig_in_data() {
    let s = secret("cluster1", "istio-system", "https://10.0.0.1:6443");
    let obj = s.to_object().unwrap();
    assert_eq!(obj["metadata"]["name"], "istio-remote-secret-cluster1");
    assert_eq!(obj["metadata"]["namespace"], "istio-system");
    assert_eq!(obj["metadata"]["labels"]["istio/multiCluster"], "true");
    assert_eq!(
        obj["metadata"]["annotations"]["networking.istio.io/cluster"],
        "cluster1"
    );
    assert!(obj.get("stringData").is_none() && obj.get("type").is_none());
    let encoded = obj["data"]["cluster1"].as_str().unwrap();
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let printed = golden("cluster1.yaml");
    let block: String = printed
        .split_once("  cluster1: |\n")
        .unwrap()
        .1
        .trim_end_matches("---\n")
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(String::from_utf8(kubeconfig).unwrap(), block);
}

#[test]
fn debug_output_never_shows_the_token() {
    let mut s = secret("cluster1", "istio-system", "https://10.0.0.1:6443");
    s.token = "very-secret-token".into();
    assert!(!format!("{s:?}").contains("very-secret-token"));
}
