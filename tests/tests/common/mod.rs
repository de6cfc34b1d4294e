//! Helpers shared by the emulator's integration tests.
#![allow(dead_code)]

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use mesh_tests::{EmulatedCluster, TestClusters, kubeconfig};
use serde_json::Value;

/// A kube-rs client for a context of the kubeconfig the emulator wrote.
pub async fn client(kubeconfig: &Path, context: &str) -> anyhow::Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let opts = KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await?;
    // Tests look at the emulator's raw answers; kube-rs would otherwise retry 429/503 itself.
    cfg.default_retry = false;
    Ok(kube::Client::try_from(cfg)?)
}

/// A kube-rs client for `cluster` that authenticates with `token` and trusts `ca_pem`.
pub async fn client_as(
    cluster: &EmulatedCluster,
    ca_pem: &str,
    token: &str,
) -> anyhow::Result<kube::Client> {
    let text = kubeconfig::render(&[kubeconfig::Entry {
        name: cluster.name(),
        server: cluster.url(),
        ca_pem,
        token,
    }])?;
    let kc = Kubeconfig::from_yaml(&text)?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    cfg.default_retry = false;
    Ok(kube::Client::try_from(cfg)?)
}

/// A client for cluster `name` with the admin token.
pub async fn admin(clusters: &TestClusters, name: &str) -> anyhow::Result<kube::Client> {
    client(clusters.kubeconfig_path(), name).await
}

/// The API `Status` (code, reason, message) of a failed call.
pub fn status_of<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error status, got {other:?}"),
    }
}

/// Sends a raw request and returns the HTTP status code and the JSON body.
pub async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(serde_json::to_vec(body)?)?;
    match client.request::<Value>(req).await {
        Ok(v) => Ok((200, v)),
        Err(kube::Error::Api(s)) => Ok((s.code, serde_json::to_value(&*s)?)),
        Err(e) => Err(e.into()),
    }
}

/// Waits (at most 5 s, polling every 10 ms) until `f` returns Some.
pub async fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..500 {
        if let Some(v) = f() {
            return Some(v);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}
