//! An in-memory cluster for the executor's tests: objects in a map, server-side apply as a deep
//! merge, a token controller and a load-balancer controller that act at once, and switches for
//! the failures the executor must survive.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::ops::ClusterOps;
use crate::cluster::{
    ApplyOptions, ApplyOutcome, ClusterError, ObjectRef, TokenData, is_subset, normalize_secret,
    token_data,
};

type Key = (String, String, Option<String>, String);

#[derive(Clone)]
pub(crate) struct FakeCluster {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    server: String,
    objects: Mutex<BTreeMap<Key, Value>>,
    writes: AtomicUsize,
    requests: AtomicUsize,
    down: AtomicBool,
    fill_tokens: AtomicBool,
    assign_addresses: AtomicBool,
    /// `Kind/name` of objects whose apply fails.
    fail_apply: Mutex<BTreeSet<String>>,
    /// `(verb, resource)` the credentials may not do.
    denied: Mutex<BTreeSet<(String, String)>>,
}

fn key(r: &ObjectRef) -> Key {
    (
        r.api_version.clone(),
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

impl FakeCluster {
    pub fn new(name: &str) -> FakeCluster {
        FakeCluster {
            inner: Arc::new(Inner {
                name: name.to_string(),
                server: format!("https://{name}.example.com:6443"),
                objects: Mutex::new(BTreeMap::new()),
                writes: AtomicUsize::new(0),
                requests: AtomicUsize::new(0),
                down: AtomicBool::new(false),
                fill_tokens: AtomicBool::new(true),
                assign_addresses: AtomicBool::new(true),
                fail_apply: Mutex::new(BTreeSet::new()),
                denied: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    pub fn with_server(name: &str, server: &str) -> FakeCluster {
        let fake = FakeCluster::new(name);
        let inner = Inner {
            server: server.to_string(),
            ..Arc::into_inner(fake.inner).expect("fresh fake has one owner")
        };
        FakeCluster {
            inner: Arc::new(inner),
        }
    }

    pub fn writes(&self) -> usize {
        self.inner.writes.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    pub fn set_fill_tokens(&self, fill: bool) {
        self.inner.fill_tokens.store(fill, Ordering::SeqCst);
    }

    pub fn fail_apply_of(&self, kind_name: &str) {
        self.inner
            .fail_apply
            .lock()
            .unwrap()
            .insert(kind_name.to_string());
    }

    pub fn deny(&self, verb: &str, resource: &str) {
        self.inner
            .denied
            .lock()
            .unwrap()
            .insert((verb.to_string(), resource.to_string()));
    }

    pub fn insert(&self, object: Value) {
        let r = ObjectRef::from_object(&object).unwrap();
        self.inner
            .objects
            .lock()
            .unwrap()
            .insert(key(&r), normalize_secret(object));
    }

    pub fn object(&self, r: &ObjectRef) -> Option<Value> {
        self.inner.objects.lock().unwrap().get(&key(r)).cloned()
    }

    pub fn names_of(&self, kind: &str) -> Vec<String> {
        self.inner
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.1 == kind)
            .map(|k| k.3.clone())
            .collect()
    }

    fn check_up(&self, what: &str) -> Result<(), ClusterError> {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
        if self.inner.down.load(Ordering::SeqCst) {
            return Err(ClusterError::Unreachable {
                cluster: self.inner.name.clone(),
                server: self.inner.server.clone(),
                object: what.to_string(),
                attempts: 6,
                source: Box::new(kube::Error::Service(Box::new(std::io::Error::other(
                    "connection refused",
                )))),
            });
        }
        Ok(())
    }

    /// What the controllers of a real cluster add after a write.
    fn controllers(&self, object: &mut Value) {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        if kind == "Secret"
            && object["type"] == "kubernetes.io/service-account-token"
            && self.inner.fill_tokens.load(Ordering::SeqCst)
        {
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            object["data"] = json!({
                "token": b64(&format!("token-of-{}", self.inner.name)),
                "ca.crt": b64(&format!("-----BEGIN CERTIFICATE-----\nca of {}\n", self.inner.name)),
            });
        }
        if kind == "Service"
            && object["spec"]["type"] == "LoadBalancer"
            && self.inner.assign_addresses.load(Ordering::SeqCst)
        {
            object["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}});
        }
    }
}

fn merge(live: &mut Value, desired: &Value) {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            for (k, v) in d {
                match l.get_mut(k) {
                    Some(lv) if lv.is_object() && v.is_object() => merge(lv, v),
                    _ => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (l, d) => *l = d.clone(),
    }
}

impl ClusterOps for FakeCluster {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn server(&self) -> &str {
        &self.inner.server
    }

    fn get(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send {
        let result = self
            .check_up(&format!("get {object}"))
            .map(|()| self.object(object));
        async move {
            tokio::task::yield_now().await;
            result
        }
    }

    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send {
        let result = self.check_up(&format!("list {kind}")).map(|()| {
            let (label, value) = label_selector
                .and_then(|s| s.split_once('='))
                .unwrap_or(("", ""));
            self.inner
                .objects
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.0 == api_version && k.1 == kind && k.2.as_deref() == namespace)
                .filter(|(_, v)| label.is_empty() || v["metadata"]["labels"][label] == value)
                .map(|(_, v)| v.clone())
                .collect()
        });
        async move { result }
    }

    fn apply(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send {
        let result = (|| {
            let r =
                ObjectRef::from_object(desired).map_err(|reason| ClusterError::InvalidObject {
                    cluster: self.inner.name.clone(),
                    object: "?".into(),
                    reason,
                })?;
            self.check_up(&format!("apply {r}"))?;
            let desired = normalize_secret(desired.clone());
            let mut objects = self.inner.objects.lock().unwrap();
            let outcome = match objects.get(&key(&r)) {
                None => ApplyOutcome::Created,
                Some(live) if is_subset(&desired, live) => return Ok(ApplyOutcome::Unchanged),
                Some(_) => ApplyOutcome::Updated,
            };
            if options.dry_run {
                return Ok(outcome);
            }
            if self
                .inner
                .fail_apply
                .lock()
                .unwrap()
                .contains(&format!("{}/{}", r.kind, r.name))
            {
                return Err(ClusterError::Api {
                    cluster: self.inner.name.clone(),
                    object: format!("apply {r}"),
                    code: 422,
                    reason: "Invalid".into(),
                    message: "injected failure".into(),
                });
            }
            self.inner.writes.fetch_add(1, Ordering::SeqCst);
            let mut object = objects.remove(&key(&r)).unwrap_or(json!({}));
            merge(&mut object, &desired);
            self.controllers(&mut object);
            objects.insert(key(&r), object);
            Ok(outcome)
        })();
        async move {
            tokio::task::yield_now().await;
            result
        }
    }

    fn can_i(
        &self,
        verb: &str,
        _group: &str,
        resource: &str,
        _namespace: Option<&str>,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send {
        let result = self.check_up("can-i").map(|()| {
            !self
                .inner
                .denied
                .lock()
                .unwrap()
                .contains(&(verb.to_string(), resource.to_string()))
        });
        async move { result }
    }

    fn wait_for_token_secret(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<TokenData, ClusterError>> + Send {
        let r = ObjectRef::namespaced("v1", "Secret", namespace, name);
        let result = self.check_up("wait for token").and_then(|()| {
            let secret = self.object(&r).unwrap_or(Value::Null);
            token_data(&secret).map_err(|reason| ClusterError::Timeout {
                cluster: self.inner.name.clone(),
                object: format!("wait for token in {r}"),
                waited: timeout,
                reason,
            })
        });
        async move { result }
    }
}
