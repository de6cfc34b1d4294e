//! The controllers meshboot relies on: the service-account token controller (fills
//! `kubernetes.io/service-account-token` Secrets, cleans up after deleted ServiceAccounts), the
//! `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap of every namespace, a load-balancer controller that gives
//! `type: LoadBalancer` Services a TEST-NET address after the configured delay, stand-ins for the
//! Deployment (with its ReplicaSets), DaemonSet and StatefulSet controllers that report every
//! generation as rolled out (there are no Pods), and the CRD controllers (see [`crate::crds`]).

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
        ..Default::default()
    }
}

/// Runs until every sender is gone; reacts to each changed key.
pub(crate) async fn run(st: Arc<ClusterState>, mut rx: mpsc::UnboundedReceiver<Key>) {
    let pending_lb: Arc<Mutex<HashSet<Key>>> = Arc::default();
    while let Some(key) = rx.recv().await {
        crate::istiod::on_change(&st, &key);
        if key.group == "apps"
            && matches!(
                key.plural.as_str(),
                "deployments" | "daemonsets" | "statefulsets"
            )
        {
            let st = st.clone();
            tokio::spawn(async move {
                tokio::time::sleep(TOKEN_DELAY).await;
                match key.plural.as_str() {
                    "deployments" => roll_out(&st, &key),
                    _ => roll_out_set(&st, &key),
                }
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
            "namespaces" => {
                ensure_default_service_account(&st, &key.name);
                publish_root_ca(&st, &key.name);
            }
            "configmaps" if key.name == ROOT_CA_CONFIGMAP => publish_root_ca(&st, &key.namespace),
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
    let mut inner = st.lock();
    // Every Secret written comes here; only token Secrets are copied (a 100-cluster apply
    // writes 9,900 remote secrets of some 4 KiB each).
    let Some(secret) = inner
        .store
        .get(key)
        .filter(|secret| secret["type"].as_str() == Some(SA_TOKEN_TYPE))
        .cloned()
    else {
        return;
    };
    let Some(def) = inner.registry.by_plural("", "v1", "secrets").cloned() else {
        return;
    };
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

/// The ConfigMap kube-controller-manager's root-ca-cert-publisher keeps in every namespace:
/// the cluster CA (`ca.crt`) clients inside the cluster verify the API server with, the same
/// bundle token Secrets carry.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// `kube-root-ca.crt` of `namespace` holding `pem`, as the publisher writes it.
pub(crate) fn root_ca_configmap(namespace: &str, pem: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": ROOT_CA_CONFIGMAP, "namespace": namespace,
        "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."},
    }, "data": {"ca.crt": pem}})
}

/// Creates (or restores) `kube-root-ca.crt` in a namespace, as the root-ca-cert-publisher
/// does for every namespace that exists.
fn publish_root_ca(st: &ClusterState, namespace: &str) {
    let Some(def) = def_of(st, "configmaps") else {
        return;
    };
    let mut inner = st.lock();
    if inner
        .store
        .get(&Key::new("", "namespaces", None, namespace))
        .is_none()
    {
        return;
    }
    let key = Key::new("", "configmaps", Some(namespace), ROOT_CA_CONFIGMAP);
    let old = inner.store.get(&key).cloned();
    let pem = st.ca_pem.clone();
    if old
        .as_ref()
        .is_some_and(|cm| cm["data"]["ca.crt"].as_str() == Some(pem.as_str()))
    {
        return;
    }
    let mut cm = old
        .clone()
        .unwrap_or_else(|| root_ca_configmap(namespace, &pem));
    cm["data"] = json!({"ca.crt": pem});
    if let Err(e) = ops::finish_write(
        st,
        &mut inner,
        &def,
        old.as_ref(),
        cm,
        &controller_opts("kube-controller-manager"),
        None,
        true,
    ) {
        tracing::warn!(cluster = %st.name, namespace, "root-ca-cert-publisher: {e}");
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

/// The Deployment controller, without Pods: keeps one ReplicaSet per pod template (named
/// `<deployment>-<pod-template-hash>`, owned by the Deployment, older ones scaled to 0), numbers
/// revisions in `deployment.kubernetes.io/revision`, and reports the current generation as fully
/// rolled out, so `kubectl rollout status`, Helm's `--wait` (both strategies) and kube-rs'
/// `is_deployment_completed` finish. A deleted Deployment takes its ReplicaSets with it.
fn roll_out(st: &ClusterState, key: &Key) {
    let (Some(def), Some(rs_def)) = (
        def_in(st, "apps", "deployments"),
        def_in(st, "apps", "replicasets"),
    ) else {
        return;
    };
    let mut inner = st.lock();
    let owned: Vec<Value> = inner
        .store
        .list("apps", "replicasets", Some(&key.namespace))
        .filter(|rs| owner_uid(rs).is_some())
        .cloned()
        .collect();
    let Some(old) = inner.store.get(key).cloned() else {
        // Garbage collection of the ReplicaSets a deleted Deployment owned.
        for rs in owned {
            let still_owned = owner_uid(&rs).is_some_and(|uid| {
                inner
                    .store
                    .list("apps", "deployments", Some(&key.namespace))
                    .any(|d| d["metadata"]["uid"].as_str() == Some(uid))
            });
            if !still_owned {
                let name = rs["metadata"]["name"].as_str().unwrap_or_default();
                let k = Key::new("apps", "replicasets", Some(&key.namespace), name);
                if let Some(o) = inner.store.remove(&k) {
                    st.watch
                        .publish("apps", "replicasets", "DELETED", &o, inner.store.last_rv());
                }
            }
        }
        return;
    };
    let uid = old["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mine: Vec<Value> = owned
        .into_iter()
        .filter(|rs| owner_uid(rs) == Some(uid.as_str()))
        .collect();
    let name = key.name.as_str();
    let replicas = old["spec"]["replicas"].as_i64().unwrap_or(1);
    let template = old["spec"]["template"].clone();
    let hash = pod_template_hash(&template);
    let rs_name = format!("{name}-{hash}");
    let revision_of = |rs: &Value| {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let current = mine
        .iter()
        .find(|rs| rs["metadata"]["name"].as_str() == Some(rs_name.as_str()))
        .cloned();
    let top = mine.iter().map(revision_of).max().unwrap_or(0);
    let revision = match &current {
        Some(rs) if revision_of(rs) == top => top,
        _ => top + 1,
    };
    let opts = controller_opts("kube-controller-manager");
    // Older ReplicaSets are scaled down; the current one carries the newest revision.
    for rs in mine
        .iter()
        .filter(|rs| rs["metadata"]["name"].as_str() != Some(rs_name.as_str()))
    {
        if rs["spec"]["replicas"].as_i64() != Some(0) {
            let mut new = rs.clone();
            new["spec"]["replicas"] = json!(0);
            new["status"] =
                json!({"replicas": 0, "observedGeneration": rs["metadata"]["generation"]});
            let _ = ops::finish_write(st, &mut inner, &rs_def, Some(rs), new, &opts, None, true);
        }
    }
    let mut labels = template["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let mut rs_template = template.clone();
    rs_template["metadata"]["labels"] = labels.clone();
    let mut selector = old["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let annotations = json!({
        "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
        "deployment.kubernetes.io/max-replicas": (replicas + 1).to_string(),
        "deployment.kubernetes.io/revision": revision.to_string(),
    });
    let wanted = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name, "namespace": key.namespace, "labels": labels, "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                                 "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
    });
    let rs_now = match &current {
        Some(rs)
            if rs["spec"] == wanted["spec"]
                && rs["metadata"]["annotations"] == wanted["metadata"]["annotations"] =>
        {
            Some(rs.clone())
        }
        Some(rs) => {
            let mut new = rs.clone();
            new["spec"] = wanted["spec"].clone();
            new["metadata"]["annotations"] = wanted["metadata"]["annotations"].clone();
            ops::finish_write(st, &mut inner, &rs_def, Some(rs), new, &opts, None, true).ok()
        }
        None => ops::finish_write(st, &mut inner, &rs_def, None, wanted, &opts, None, true).ok(),
    };
    if let Some(rs) = rs_now {
        let status = json!({
            "replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas, "observedGeneration": rs["metadata"]["generation"],
        });
        ops::write_status(
            st,
            &mut inner,
            &rs_def,
            &rs,
            status,
            "kube-controller-manager",
            "deployment controller",
        );
    }

    let mut old = old;
    if old["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str()
        != Some(revision.to_string().as_str())
    {
        let mut new = old.clone();
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            json!(revision.to_string());
        match ops::finish_write(st, &mut inner, &def, Some(&old), new, &opts, None, true) {
            Ok(stored) => old = stored,
            Err(e) => {
                tracing::warn!(cluster = %st.name, deployment = %key.name, "deployment controller: {e}");
                return;
            }
        }
    }
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    let status = &old["status"];
    if status["observedGeneration"].as_i64() == Some(generation)
        && status["availableReplicas"].as_i64() == Some(replicas)
        && status["replicas"].as_i64() == Some(replicas)
    {
        return;
    }
    let now = crate::store::now_rfc3339();
    let condition = |ty: &str, reason: &str, message: String| json!({"type": ty, "status": "True", "reason": reason, "message": message, "lastUpdateTime": now, "lastTransitionTime": now});
    let status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability.".into()),
            condition("Progressing", "NewReplicaSetAvailable", format!("ReplicaSet \"{rs_name}\" has successfully progressed.")),
        ],
    });
    ops::write_status(
        st,
        &mut inner,
        &def,
        &old,
        status,
        "kube-controller-manager",
        "deployment controller",
    );
}

/// The DaemonSet and StatefulSet controllers, without Pods: every generation is reported rolled
/// out on every node (one, when the cluster has no Node objects), so Helm's `--wait` finishes.
fn roll_out_set(st: &ClusterState, key: &Key) {
    let Some(def) = def_in(st, "apps", &key.plural) else {
        return;
    };
    let mut inner = st.lock();
    let Some(old) = inner.store.get(key).cloned() else {
        return;
    };
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    let status = if key.plural == "daemonsets" {
        let nodes = inner.store.list("", "nodes", None).count().max(1) as i64;
        json!({
            "observedGeneration": generation, "desiredNumberScheduled": nodes,
            "currentNumberScheduled": nodes, "updatedNumberScheduled": nodes,
            "numberReady": nodes, "numberAvailable": nodes, "numberMisscheduled": 0,
        })
    } else {
        let replicas = old["spec"]["replicas"].as_i64().unwrap_or(1);
        let revision = format!(
            "{}-{}",
            key.name,
            pod_template_hash(&old["spec"]["template"])
        );
        json!({
            "observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas,
            "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas,
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
        })
    };
    ops::write_status(
        st,
        &mut inner,
        &def,
        &old,
        status,
        "kube-controller-manager",
        "workload controller",
    );
}

fn def_in(st: &ClusterState, group: &str, plural: &str) -> Option<crate::resources::ResourceDef> {
    st.lock().registry.by_plural(group, "v1", plural).cloned()
}

/// The uid of the Deployment controlling a ReplicaSet.
fn owner_uid(rs: &Value) -> Option<&str> {
    rs["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["controller"] == true)?["uid"]
        .as_str()
}

/// A pod template's hash in the alphabet the controllers use for generated names (FNV-1a here;
/// the value only has to be stable and change with the template).
fn pod_template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let mut out = String::new();
    for _ in 0..10 {
        out.push(ALPHABET[(h % ALPHABET.len() as u32) as usize] as char);
        h /= ALPHABET.len() as u32;
        if h == 0 {
            break;
        }
    }
    out
}

fn set_ingress(st: &ClusterState, key: &Key, load_balancer: Value) {
    let Some(def) = def_of(st, "services") else {
        return;
    };
    let mut inner = st.lock();
    let Some(old) = inner.store.get(key).cloned() else {
        return;
    };
    let mut status = old["status"].clone();
    status["loadBalancer"] = load_balancer;
    ops::write_status(
        st,
        &mut inner,
        &def,
        &old,
        status,
        "kube-controller-manager",
        "load-balancer controller",
    );
}
