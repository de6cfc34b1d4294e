//! The controllers meshboot relies on: the service-account token controller (fills
//! `kubernetes.io/service-account-token` Secrets, cleans up after deleted ServiceAccounts), the
//! `default` ServiceAccount of new namespaces, a load-balancer controller that gives
//! `type: LoadBalancer` Services a TEST-NET address after the configured delay, and a stand-in
//! for the Deployment controller that reports every generation as rolled out (there are no Pods).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::cluster::ClusterState;
use crate::ops::{self, WriteOpts};
use crate::store::Key;

/// Type of legacy service-account token Secrets.
pub const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// Annotation naming the ServiceAccount of a token Secret.
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
/// Delay of the token controller (it runs asynchronously, as the real one does).
const TOKEN_DELAY: Duration = Duration::from_millis(20);

fn controller_opts(manager: &str) -> WriteOpts {
    WriteOpts {
        dry_run: false,
        manager: manager.into(),
        force: false,
    }
}

/// Runs until every sender is gone; reacts to each changed key.
pub(crate) async fn run(st: Arc<ClusterState>, mut rx: mpsc::UnboundedReceiver<Key>) {
    let pending_lb: Arc<Mutex<HashSet<Key>>> = Arc::default();
    while let Some(key) = rx.recv().await {
        crate::istiod::on_change(&st, &key);
        if key.group == "apps" && key.plural == "deployments" {
            let st = st.clone();
            tokio::spawn(async move {
                tokio::time::sleep(TOKEN_DELAY).await;
                roll_out(&st, &key);
            });
            continue;
        }
        if key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions" {
            crate::crds::establish(&st, &key);
            continue;
        }
        if !key.group.is_empty() {
            continue;
        }
        match key.plural.as_str() {
            "secrets" => {
                let st = st.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(TOKEN_DELAY).await;
                    fill_token_secret(&st, &key);
                });
            }
            "serviceaccounts" => service_account_changed(&st, &key),
            "namespaces" => ensure_default_service_account(&st, &key.name),
            "services" => service_changed(&st, &key, &pending_lb),
            _ => {}
        }
    }
}

fn def_of(st: &ClusterState, plural: &str) -> Option<crate::resources::ResourceDef> {
    st.lock().registry.by_plural("", "v1", plural).cloned()
}

/// Gives a token Secret its `token`, `ca.crt` and `namespace` once its ServiceAccount exists.
fn fill_token_secret(st: &ClusterState, key: &Key) {
    let Some(def) = def_of(st, "secrets") else {
        return;
    };
    let mut inner = st.lock();
    let Some(secret) = inner.store.get(key).cloned() else {
        return;
    };
    if secret["type"].as_str() != Some(SA_TOKEN_TYPE) {
        return;
    }
    let Some(sa_name) = secret["metadata"]["annotations"][SA_NAME_ANNOTATION]
        .as_str()
        .map(str::to_string)
    else {
        return;
    };
    let Some(sa) = inner
        .store
        .get(&Key::new(
            "",
            "serviceaccounts",
            Some(&key.namespace),
            &sa_name,
        ))
        .cloned()
    else {
        return;
    };
    let sa_uid = sa["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let current = secret["data"]["token"]
        .as_str()
        .and_then(|t| STANDARD.decode(t).ok())
        .and_then(|t| String::from_utf8(t).ok());
    let valid = current
        .as_deref()
        .is_some_and(|t| inner.tokens.authenticate(t, &inner.store).is_some());
    let ca_ok = secret["data"]["ca.crt"].as_str() == Some(STANDARD.encode(&st.ca_pem).as_str());
    if valid && ca_ok && secret["data"]["namespace"].is_string() {
        return;
    }
    let token = match current.filter(|_| valid) {
        Some(t) => t,
        None => inner
            .tokens
            .issue_legacy(&key.namespace, &sa_name, &sa_uid, &key.name),
    };
    let mut new = secret.clone();
    new["data"]["token"] = json!(STANDARD.encode(&token));
    new["data"]["ca.crt"] = json!(STANDARD.encode(&st.ca_pem));
    new["data"]["namespace"] = json!(STANDARD.encode(&key.namespace));
    new["metadata"]["annotations"][SA_UID_ANNOTATION] = json!(sa_uid);
    if let Err(e) = ops::finish_write(
        st,
        &mut inner,
        &def,
        Some(&secret),
        new,
        &controller_opts("kube-controller-manager"),
        None,
        true,
    ) {
        tracing::warn!(cluster = %st.name, secret = %key.name, "token controller: {e}");
    }
}

/// A new ServiceAccount completes token Secrets created before it; a deleted one takes its
/// token Secrets with it (as the real token controller does).
fn service_account_changed(st: &ClusterState, key: &Key) {
    let secrets: Vec<(Key, Value)> = {
        let inner = st.lock();
        inner
            .store
            .list("", "secrets", Some(&key.namespace))
            .filter(|s| {
                s["type"].as_str() == Some(SA_TOKEN_TYPE)
                    && s["metadata"]["annotations"][SA_NAME_ANNOTATION].as_str() == Some(&key.name)
            })
            .map(|s| {
                (
                    Key::new(
                        "",
                        "secrets",
                        Some(&key.namespace),
                        s["metadata"]["name"].as_str().unwrap_or_default(),
                    ),
                    s.clone(),
                )
            })
            .collect()
    };
    let sa_exists = st.lock().store.get(key).is_some();
    for (secret_key, _) in secrets {
        if sa_exists {
            fill_token_secret(st, &secret_key);
        } else {
            let mut inner = st.lock();
            if let Some(obj) = inner.store.remove(&secret_key) {
                st.watch
                    .publish("", "secrets", "DELETED", &obj, inner.store.last_rv());
            }
        }
    }
}

fn ensure_default_service_account(st: &ClusterState, namespace: &str) {
    let Some(def) = def_of(st, "serviceaccounts") else {
        return;
    };
    let mut inner = st.lock();
    if inner
        .store
        .get(&Key::new("", "namespaces", None, namespace))
        .is_none()
        || inner
            .store
            .get(&Key::new("", "serviceaccounts", Some(namespace), "default"))
            .is_some()
    {
        return;
    }
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}});
    if let Err(e) = ops::finish_write(
        st,
        &mut inner,
        &def,
        None,
        sa,
        &controller_opts("kube-controller-manager"),
        None,
        true,
    ) {
        tracing::warn!(cluster = %st.name, namespace, "service-account controller: {e}");
    }
}

fn service_changed(st: &Arc<ClusterState>, key: &Key, pending: &Arc<Mutex<HashSet<Key>>>) {
    let Some(svc) = st.lock().store.get(key).cloned() else {
        return;
    };
    let is_lb = svc["spec"]["type"].as_str() == Some("LoadBalancer");
    let has_ingress = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if !is_lb && has_ingress {
        set_ingress(st, key, json!({}));
        return;
    }
    if !is_lb || has_ingress {
        return;
    }
    if !pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone())
    {
        return;
    }
    let (st, key, pending) = (st.clone(), key.clone(), pending.clone());
    tokio::spawn(async move {
        tokio::time::sleep(st.lb_delay()).await;
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        let still_wanted = st.lock().store.get(&key).is_some_and(|s| {
            s["spec"]["type"].as_str() == Some("LoadBalancer")
                && s["status"]["loadBalancer"]["ingress"]
                    .as_array()
                    .is_none_or(Vec::is_empty)
        });
        if still_wanted {
            let ip = st.next_lb_ip();
            set_ingress(
                &st,
                &key,
                json!({"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]}),
            );
        }
    });
}

/// Reports the Deployment's current generation as fully rolled out, as the Deployment controller
/// does once its Pods are ready, so `kubectl rollout status` and kube-rs' `is_deployment_completed`
/// finish.
fn roll_out(st: &ClusterState, key: &Key) {
    let Some(def) = st
        .lock()
        .registry
        .by_plural("apps", "v1", "deployments")
        .cloned()
    else {
        return;
    };
    let mut inner = st.lock();
    let Some(old) = inner.store.get(key).cloned() else {
        return;
    };
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = old["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &old["status"];
    if status["observedGeneration"].as_i64() == Some(generation)
        && status["availableReplicas"].as_i64() == Some(replicas)
    {
        return;
    }
    let now = crate::store::now_rfc3339();
    let condition = |ty: &str, reason: &str, message: String| json!({"type": ty, "status": "True", "reason": reason, "message": message, "lastUpdateTime": now, "lastTransitionTime": now});
    let name = key.name.as_str();
    let mut new = old.clone();
    new["status"] = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability.".into()),
            condition("Progressing", "NewReplicaSetAvailable", format!("ReplicaSet \"{name}\" has successfully progressed.")),
        ],
    });
    if let Err(e) = ops::finish_write(
        st,
        &mut inner,
        &def,
        Some(&old),
        new,
        &controller_opts("kube-controller-manager"),
        Some("status"),
        true,
    ) {
        tracing::warn!(cluster = %st.name, deployment = %key.name, "deployment controller: {e}");
    }
}

fn set_ingress(st: &ClusterState, key: &Key, load_balancer: Value) {
    let Some(def) = def_of(st, "services") else {
        return;
    };
    let mut inner = st.lock();
    let Some(old) = inner.store.get(key).cloned() else {
        return;
    };
    let mut new = old.clone();
    new["status"]["loadBalancer"] = load_balancer;
    if let Err(e) = ops::finish_write(
        st,
        &mut inner,
        &def,
        Some(&old),
        new,
        &controller_opts("kube-controller-manager"),
        Some("status"),
        true,
    ) {
        tracing::warn!(cluster = %st.name, service = %key.name, "load-balancer controller: {e}");
    }
}
