//! [`ClusterClient`]: a connection to one API server, and the verbs meshboot uses on it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{GetParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::discovery::KindTable;
use super::{
    ApplyOptions, ApplyOutcome, ClusterError, FIELD_MANAGER, Limits, ObjectRef, RetryPolicy,
    TokenData, context, is_converged, kubeconfig, limits::Window, normalize_secret, wait,
};

/// A connection to one cluster's API server. Cheap to clone (clones share the HTTP connection
/// pool and the discovery cache).
///
/// ```no_run
/// # async fn demo() -> Result<(), mesh_core::cluster::ClusterError> {
/// use mesh_core::cluster::{ApplyOptions, ClusterClient};
/// let eu = ClusterClient::connect("eu", None, "eu-context").await?;
/// let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
///     "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": "network1"}}});
/// let outcome = eu.apply(&ns, &ApplyOptions::default()).await?;
/// println!("{} {}", eu.name(), outcome);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClusterClient {
    pub(super) inner: Arc<Inner>,
    pub(super) retry: RetryPolicy,
    /// Requests in flight to this server, and the fleet's slots ([`Limits`]).
    pub(super) window: Arc<Window>,
}

pub(super) struct Inner {
    name: String,
    server: String,
    pub(super) client: kube::Client,
    /// apiVersion → kinds, filled by discovery for non-built-in kinds.
    pub(super) discovery: Mutex<HashMap<String, Arc<KindTable>>>,
}

// Hand-written: kube::Client's Debug is noisy and the credentials must never be printed.
impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("name", &self.inner.name)
            .field("server", &self.inner.server)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Connects to the cluster `name` through `context` of the kubeconfig at `kubeconfig`
    /// (`None`: `$KUBECONFIG`, else `~/.kube/config`). An empty `context` means the file's
    /// current context. No request is made yet: an unreachable server shows up on first use.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), mesh_core::cluster::ClusterError> {
    /// use std::path::Path;
    /// let ap = mesh_core::cluster::ClusterClient::connect("ap", Some(Path::new("kubeconfig")), "ap").await?;
    /// assert_eq!(ap.name(), "ap");
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        name: &str,
        kubeconfig: Option<&Path>,
        context: &str,
    ) -> Result<ClusterClient, ClusterError> {
        let source = kubeconfig::read(name, kubeconfig, context)?;
        Self::from_source(name, source, context).await
    }

    /// Like [`connect`](Self::connect) for a kubeconfig held in memory, such as the one
    /// embedded in a remote secret. `source` names it in errors.
    ///
    /// ```no_run
    /// # async fn demo(yaml: &str) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use mesh_core::cluster::ClusterClient;
    /// let eu = ClusterClient::from_kubeconfig_yaml("eu", yaml, "", "remote secret istio-remote-secret-eu").await?;
    /// # Ok(()) }
    /// ```
    pub async fn from_kubeconfig_yaml(
        name: &str,
        yaml: &str,
        context: &str,
        source: &str,
    ) -> Result<ClusterClient, ClusterError> {
        let source = kubeconfig::parse(name, yaml, context, source)?;
        Self::from_source(name, source, context).await
    }

    async fn from_source(
        name: &str,
        source: kubeconfig::Source,
        context: &str,
    ) -> Result<ClusterClient, ClusterError> {
        let label = source.label.clone();
        let resolved = context::resolve(name, source, context).await?;
        let client =
            super::http::client(resolved.config).map_err(|e| ClusterError::Kubeconfig {
                cluster: name.to_string(),
                path: label,
                context: context.to_string(),
                reason: e.to_string(),
            })?;
        Ok(ClusterClient {
            inner: Arc::new(Inner {
                name: name.to_string(),
                server: resolved.server,
                client,
                discovery: Mutex::new(HashMap::new()),
            }),
            retry: RetryPolicy::default(),
            window: Arc::new(Limits::default().window()),
        })
    }

    /// The same client within other [`Limits`]: at most `limits.per_cluster()` requests in
    /// flight to this server, sharing `limits`' global slots with every client given them.
    ///
    /// ```no_run
    /// # async fn demo(eu: mesh_core::cluster::ClusterClient, ap: mesh_core::cluster::ClusterClient) {
    /// let fleet = mesh_core::cluster::Limits::new(8, 64);
    /// let (eu, ap) = (eu.with_limits(&fleet), ap.with_limits(&fleet));
    /// # }
    /// ```
    pub fn with_limits(mut self, limits: &Limits) -> ClusterClient {
        self.window = Arc::new(limits.window());
        self
    }

    /// How many times this server has answered 429 (too many requests) so far; each one
    /// paused this client for the server's `Retry-After` and halved its window.
    pub fn throttled(&self) -> usize {
        self.window.throttled_count()
    }

    /// The same client with another retry policy.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) {
    /// let impatient = c.with_retry(mesh_core::cluster::RetryPolicy::none());
    /// # }
    /// ```
    pub fn with_retry(mut self, policy: RetryPolicy) -> ClusterClient {
        self.retry = policy;
        self
    }

    /// The cluster name this client was connected as.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), mesh_core::cluster::ClusterError> {
    /// let c = mesh_core::cluster::ClusterClient::connect("eu", None, "kind-eu").await?;
    /// assert_eq!(c.name(), "eu");
    /// println!("{}", c.server()); // e.g. https://127.0.0.1:6443
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The API server URL exactly as the kubeconfig states it (what istioctl calls
    /// `restConfig.Host`).
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// Reads one object; `Ok(None)` when it does not exist.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use mesh_core::cluster::ObjectRef;
    /// let cacerts = c.get(&ObjectRef::namespaced("v1", "Secret", "istio-system", "cacerts")).await?;
    /// println!("present: {}", cacerts.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, object: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let what = format!("get {object}");
        let collection = self.collection_of(object, &what).await?;
        let raw = self
            .send(&what, || {
                kube::core::Request::new(collection.as_str())
                    .get(&object.name, &GetParams::default())
            })
            .await?;
        if raw.code == 404 {
            return Ok(None);
        }
        self.check(&what, &raw)?;
        self.json(&what, &raw).map(Some)
    }

    /// Lists objects of a kind, in `namespace` (`None`: all namespaces, or the cluster for
    /// cluster-scoped kinds), filtered by a label selector such as `istio/multiCluster=true`.
    /// Each item carries its `apiVersion` and `kind`, which the server leaves out of lists.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// let secrets = c.list("v1", "Secret", Some("istio-system"), Some("istio/multiCluster=true")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let what = match namespace {
            Some(ns) => format!("list {kind} in namespace {ns}"),
            None => format!("list {kind}"),
        };
        let collection = self
            .collection_any_scope(api_version, kind, namespace)
            .await?;
        let params = match label_selector {
            Some(sel) => ListParams::default().labels(sel),
            None => ListParams::default(),
        };
        let raw = self
            .send(&what, || {
                kube::core::Request::new(collection.as_str()).list(&params)
            })
            .await?;
        self.check(&what, &raw)?;
        let mut list = self.json(&what, &raw)?;
        match list.get_mut("items").map(Value::take) {
            Some(Value::Array(mut items)) => {
                // The API server leaves apiVersion and kind out of list items; put them back
                // so an item compares with (and reads like) the object it is.
                for item in &mut items {
                    if let Some(item) = item.as_object_mut() {
                        item.entry("apiVersion")
                            .or_insert_with(|| json!(api_version));
                        item.entry("kind").or_insert_with(|| json!(kind));
                    }
                }
                Ok(items)
            }
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(_) => Err(self.invalid_response(&what, "items is not a list")),
        }
    }

    /// [`list`](Self::list), decoding the answer item by item: each is handed to `each` and
    /// dropped before the next is decoded, so only the answer's bytes and one item are held.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// let mut names = Vec::new();
    /// c.list_each("v1", "Secret", Some("istio-system"), Some("istio/multiCluster=true"), |s| {
    ///     names.extend(s["metadata"]["name"].as_str().map(str::to_string));
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn list_each<F>(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        mut each: F,
    ) -> Result<usize, ClusterError>
    where
        F: FnMut(Value) + Send,
    {
        let what = match namespace {
            Some(ns) => format!("list {kind} in namespace {ns}"),
            None => format!("list {kind}"),
        };
        let collection = self
            .collection_any_scope(api_version, kind, namespace)
            .await?;
        let params = match label_selector {
            Some(sel) => ListParams::default().labels(sel),
            None => ListParams::default(),
        };
        let mut count = 0;
        // Each item is decoded as it arrives: the list is never held whole.
        let mut splitter = super::stream::Splitter::default();
        let mut handle = |item: &[u8]| {
            let mut item: Value = serde_json::from_slice(item).map_err(|e| e.to_string())?;
            if let Some(obj) = item.as_object_mut() {
                obj.entry("apiVersion")
                    .or_insert_with(|| json!(api_version));
                obj.entry("kind").or_insert_with(|| json!(kind));
            }
            count += 1;
            each(item);
            Ok(())
        };
        let mut sink = |chunk: &[u8]| {
            splitter
                .feed(chunk, &mut handle)
                .map_err(|e| format!("body is not a list: {e}"))
        };
        let raw = self
            .send_into(
                &what,
                || kube::core::Request::new(collection.as_str()).list(&params),
                Some(&mut sink),
            )
            .await?;
        self.check(&what, &raw)?;
        splitter
            .finish()
            .map_err(|e| self.invalid_response(&what, &format!("body is not a list: {e}")))?;
        Ok(count)
    }

    /// Server-side applies `desired` without reading it first (the caller compared it already,
    /// from a list): 201 means it was created, 200 that it existed and was updated. A dry run
    /// reads and compares instead, as [`apply`](Self::apply) does.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient, secret: serde_json::Value) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use mesh_core::cluster::ApplyOptions;
    /// let outcome = c.apply_unread(&secret, &ApplyOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn apply_unread(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome, ClusterError> {
        if options.dry_run {
            return self.apply(desired, options).await;
        }
        let (oref, desired, collection) = self.apply_target(desired).await?;
        self.apply_answered(&oref, &collection, &desired, options)
            .await
    }

    /// Server-side applies `desired` unless `live`, read a moment ago by the caller (`None`:
    /// it did not exist), is already converged with it ([`is_converged`]): what
    /// [`apply`](Self::apply) does after its read, for a caller that has read the object
    /// already (preflight reads `cacerts`, so the `cacerts` step need not read it again).
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient, desired: serde_json::Value) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use mesh_core::cluster::{ApplyOptions, ObjectRef};
    /// let live = c.get(&ObjectRef::namespaced("v1", "Secret", "istio-system", "cacerts")).await?;
    /// let outcome = c.apply_known(&desired, live.as_ref(), &ApplyOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn apply_known(
        &self,
        desired: &Value,
        live: Option<&Value>,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome, ClusterError> {
        let (oref, desired, collection) = self.apply_target(desired).await?;
        let outcome = match live {
            None => ApplyOutcome::Created,
            Some(live) if is_converged(&desired, live) => return Ok(ApplyOutcome::Unchanged),
            Some(_) => ApplyOutcome::Updated,
        };
        if options.dry_run {
            return Ok(outcome);
        }
        self.apply_answered(&oref, &collection, &desired, options)
            .await
    }

    /// One server-side apply, its outcome told by the answer (201: created), whatever was
    /// read before.
    async fn apply_answered(
        &self,
        oref: &ObjectRef,
        collection: &str,
        desired: &Value,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome, ClusterError> {
        let what = format!("apply {oref}");
        let code = self
            .patch_apply(&what, oref, collection, desired, options)
            .await?;
        Ok(if code == 201 {
            ApplyOutcome::Created
        } else {
            ApplyOutcome::Updated
        })
    }

    /// The object reference, the desired object as it is sent, and its collection URL.
    async fn apply_target(
        &self,
        desired: &Value,
    ) -> Result<(ObjectRef, Value, String), ClusterError> {
        let mut oref = self.object_ref(desired)?;
        let mut desired = normalize_secret(desired.clone());
        let what = format!("apply {oref}");
        let collection = self.collection_of(&oref, &what).await?;
        // A namespace on a cluster-scoped object is ignored by the server and never read
        // back: left in, it would make every re-apply look like a change.
        if oref.namespace.is_some() && !self.resource(&oref.api_version, &oref.kind).await?.1 {
            if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("namespace");
            }
            oref.namespace = None;
        }
        Ok((oref, desired, collection))
    }

    /// One server-side apply request; its status code.
    async fn patch_apply(
        &self,
        what: &str,
        oref: &ObjectRef,
        collection: &str,
        desired: &Value,
        options: &ApplyOptions,
    ) -> Result<u16, ClusterError> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if options.force {
            params = params.force();
        }
        let raw = self
            .send(what, || {
                kube::core::Request::new(collection).patch(
                    &oref.name,
                    &params,
                    &Patch::Apply(desired),
                )
            })
            .await?;
        self.check(what, &raw)?;
        Ok(raw.code)
    }

    /// Creates an object (POST). A 409 is [`ClusterError::Conflict`]; callers that only need
    /// the object to exist treat that as success.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
    ///     "metadata": {"name": "reader", "namespace": "istio-system"}});
    /// let created = c.create(&sa).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, object: &Value) -> Result<Value, ClusterError> {
        let oref = self.object_ref(object)?;
        let what = format!("create {oref}");
        let collection = self.collection_of(&oref, &what).await?;
        let body = serde_json::to_vec(&normalize_secret(object.clone()))
            .map_err(|e| self.invalid_object(&oref.to_string(), &e.to_string()))?;
        let raw = self
            .send(&what, || {
                kube::core::Request::new(collection.as_str())
                    .create(&PostParams::default(), body.clone())
            })
            .await?;
        self.check(&what, &raw)?;
        self.json(&what, &raw)
    }

    /// Makes the cluster hold `desired`: reads the live object; when it is already what an
    /// apply would make it (see [`is_converged`]: every desired value as the server stores it,
    /// and no field meshboot owns but no longer desires) returns [`ApplyOutcome::Unchanged`]
    /// without any write; otherwise server-side applies it with field manager
    /// [`FIELD_MANAGER`], which also removes the fields meshboot stopped setting. Secret
    /// `stringData` is sent as `data` so the comparison is exact. With `dry_run`, nothing is
    /// written and the outcome says what would happen.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient, cacerts: serde_json::Value) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use mesh_core::cluster::{ApplyOptions, ApplyOutcome};
    /// let first = c.apply(&cacerts, &ApplyOptions::default()).await?;
    /// assert_eq!(c.apply(&cacerts, &ApplyOptions::default()).await?, ApplyOutcome::Unchanged);
    /// # Ok(()) }
    /// ```
    pub async fn apply(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> Result<ApplyOutcome, ClusterError> {
        let (oref, desired, collection) = self.apply_target(desired).await?;
        let what = format!("apply {oref}");
        let get_what = format!("get {oref}");
        let raw = self
            .send(&get_what, || {
                kube::core::Request::new(collection.as_str()).get(&oref.name, &GetParams::default())
            })
            .await?;
        let outcome = if raw.code == 404 {
            ApplyOutcome::Created
        } else {
            self.check(&get_what, &raw)?;
            let live = self.json(&get_what, &raw)?;
            if is_converged(&desired, &live) {
                return Ok(ApplyOutcome::Unchanged);
            }
            ApplyOutcome::Updated
        };
        if options.dry_run {
            return Ok(outcome);
        }
        self.patch_apply(&what, &oref, &collection, &desired, options)
            .await?;
        Ok(outcome)
    }

    /// Asks the API server whether these credentials may `verb` the `resource` of API `group`
    /// (`""` for core) in `namespace` (`None`: cluster-wide), with a SelfSubjectAccessReview.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// let may_write_secrets = c.can_i("patch", "", "secrets", Some("istio-system")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<bool, ClusterError> {
        let what = match namespace {
            Some(ns) => format!("can-i {verb} {resource} in namespace {ns}"),
            None => format!("can-i {verb} {resource}"),
        };
        let mut attributes = json!({"verb": verb, "group": group, "resource": resource});
        if let Some(ns) = namespace {
            attributes["namespace"] = json!(ns);
        }
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        });
        let body = serde_json::to_vec(&review)
            .map_err(|e| self.invalid_object("SelfSubjectAccessReview", &e.to_string()))?;
        let raw = self
            .send(&what, || {
                kube::core::Request::new("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
                    .create(&PostParams::default(), body.clone())
            })
            .await?;
        self.check(&what, &raw)?;
        let answer = self.json(&what, &raw)?;
        answer
            .pointer("/status/allowed")
            .and_then(Value::as_bool)
            .ok_or_else(|| self.invalid_response(&what, "no status.allowed in the review"))
    }

    /// Waits until the service-account token Secret `namespace/name` carries both `token` and
    /// `ca.crt` (the token controller fills them asynchronously), polling with a growing
    /// interval, for at most `timeout`. A Secret that does not exist yet is waited for too.
    ///
    /// ```no_run
    /// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::cluster::ClusterError> {
    /// use std::time::Duration;
    /// let creds = c.wait_for_token_secret("istio-system",
    ///     "istio-reader-service-account-istio-remote-secret-token", Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_token_secret(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<TokenData, ClusterError> {
        wait::token_secret(self, namespace, name, timeout).await
    }
}
