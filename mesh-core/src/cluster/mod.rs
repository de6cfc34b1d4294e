//! The one door to the clusters: every request meshboot makes to a Kubernetes API server goes
//! through a [`ClusterClient`].
//!
//! - [`ClusterClient::connect`] picks a kubeconfig context (never the current one by accident);
//! - [`ClusterClient::apply`] reads first and writes only when the live object lacks something
//!   (server-side apply, field manager `meshboot`), so a converged cluster sees zero writes;
//! - every request is retried with backoff and jitter on 429 (honouring `Retry-After`), 500,
//!   502, 503, 504 and connection errors ([`RetryPolicy`]);
//! - every error is a [`ClusterError`] naming the cluster and the object.

mod error;
mod object;
mod retry;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::api::{GetParams, ListParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

pub use error::ClusterError;
pub use object::{ObjectRef, is_subset, normalize_secret};
pub use retry::RetryPolicy;

/// The field manager of every server-side apply meshboot makes.
pub const FIELD_MANAGER: &str = "meshboot";

/// What [`ClusterClient::apply`] did (or, with `dry_run`, would do).
///
/// ```
/// use mesh_core::cluster::ApplyOutcome;
/// assert_eq!(ApplyOutcome::Unchanged.to_string(), "unchanged");
/// assert_eq!(serde_json::to_string(&ApplyOutcome::Created).unwrap(), "\"created\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// The object did not exist.
    Created,
    /// The object existed but lacked some desired field or value.
    Updated,
    /// The live object already had every desired field: nothing was written.
    Unchanged,
}

impl ApplyOutcome {
    /// The lowercase word used in output and JSON.
    ///
    /// ```
    /// assert_eq!(mesh_core::cluster::ApplyOutcome::Updated.as_str(), "updated");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Updated => "updated",
            ApplyOutcome::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for ApplyOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of [`ClusterClient::apply`].
///
/// ```
/// use mesh_core::cluster::ApplyOptions;
/// let opts = ApplyOptions { dry_run: true, ..ApplyOptions::default() };
/// assert!(opts.dry_run && !opts.force);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Read and compare only; never send a write. The outcome says what a real apply would do.
    pub dry_run: bool,
    /// Take ownership of fields another field manager owns instead of failing with
    /// [`ClusterError::Conflict`].
    pub force: bool,
}

/// The credentials a service-account token Secret holds once the token controller filled it.
///
/// `Debug` never shows the token.
///
/// ```
/// use mesh_core::cluster::TokenData;
/// let t = TokenData { token: "s3cr3t".into(), ca_crt: b"-----BEGIN CERTIFICATE-----".to_vec() };
/// assert!(!format!("{t:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TokenData {
    /// The bearer token (`data.token`, decoded).
    pub token: String,
    /// The cluster CA bundle (`data["ca.crt"]`, decoded PEM bytes).
    pub ca_crt: Vec<u8>,
}

impl std::fmt::Debug for TokenData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenData")
            .field("token", &"<redacted>")
            .field("ca_crt_len", &self.ca_crt.len())
            .finish()
    }
}

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
    inner: Arc<Inner>,
    retry: RetryPolicy,
}

struct Inner {
    name: String,
    server: String,
    client: kube::Client,
    /// apiVersion → kinds, filled by discovery for non-built-in kinds.
    discovery: Mutex<HashMap<String, Arc<KindTable>>>,
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

/// kind → (plural, namespaced) for one apiVersion.
type KindTable = HashMap<String, (String, bool)>;

/// One HTTP answer, status and body, after retries.
struct Raw {
    code: u16,
    body: Vec<u8>,
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
        let path_label = match kubeconfig {
            Some(p) => p.display().to_string(),
            None => std::env::var("KUBECONFIG")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "~/.kube/config".to_string()),
        };
        let kc = match kubeconfig {
            Some(p) => Kubeconfig::read_from(p),
            None => Kubeconfig::read(),
        }
        .map_err(|e| kubeconfig_error(name, &path_label, context, &e))?;
        Self::from_kubeconfig(name, kc, context, &path_label).await
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
        let kc =
            Kubeconfig::from_yaml(yaml).map_err(|e| kubeconfig_error(name, source, context, &e))?;
        Self::from_kubeconfig(name, kc, context, source).await
    }

    async fn from_kubeconfig(
        name: &str,
        kc: Kubeconfig,
        context: &str,
        path_label: &str,
    ) -> Result<ClusterClient, ClusterError> {
        let bad = |reason: String| ClusterError::Kubeconfig {
            cluster: name.to_string(),
            path: path_label.to_string(),
            context: context.to_string(),
            reason,
        };
        let context_name = if context.is_empty() {
            kc.current_context
                .clone()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| bad("no context given and no current-context set".into()))?
        } else {
            context.to_string()
        };
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.as_ref())
            .ok_or_else(|| {
                let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                bad(format!(
                    "context {context_name:?} not found (contexts: {})",
                    known.join(", ")
                ))
            })?;
        let server = kc
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(format!("cluster entry {:?} has no server", ctx.cluster)))?;
        let opts = KubeConfigOptions {
            context: Some(context_name.clone()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| bad(describe_kubeconfig_error(&e)))?;
        // Our own retry loop honours Retry-After and reports attempts; kube's would hide both.
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(60));
        let client = kube::Client::try_from(config).map_err(|e| bad(e.to_string()))?;
        Ok(ClusterClient {
            inner: Arc::new(Inner {
                name: name.to_string(),
                server,
                client,
                discovery: Mutex::new(HashMap::new()),
            }),
            retry: RetryPolicy::default(),
        })
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
        let collection = self
            .collection(
                &object.api_version,
                &object.kind,
                object.namespace.as_deref(),
                &what,
            )
            .await?;
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
            Some(Value::Array(items)) => Ok(items),
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(_) => Err(self.invalid_response(&what, "items is not a list")),
        }
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
        let collection = self
            .collection(
                &oref.api_version,
                &oref.kind,
                oref.namespace.as_deref(),
                &what,
            )
            .await?;
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

    /// Makes the cluster hold `desired`: reads the live object; when it already has every
    /// desired field (see [`is_subset`]) returns [`ApplyOutcome::Unchanged`] without any write;
    /// otherwise server-side applies it with field manager [`FIELD_MANAGER`]. Secret
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
        let mut oref = self.object_ref(desired)?;
        let mut desired = normalize_secret(desired.clone());
        let what = format!("apply {oref}");
        let collection = self
            .collection(
                &oref.api_version,
                &oref.kind,
                oref.namespace.as_deref(),
                &what,
            )
            .await?;
        // A namespace on a cluster-scoped object is ignored by the server and never read
        // back: left in, it would make every re-apply look like a change.
        if oref.namespace.is_some() && !self.resource(&oref.api_version, &oref.kind).await?.1 {
            if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("namespace");
            }
            oref.namespace = None;
        }
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
            if is_subset(&desired, &live) {
                return Ok(ApplyOutcome::Unchanged);
            }
            ApplyOutcome::Updated
        };
        if options.dry_run {
            return Ok(outcome);
        }
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if options.force {
            params = params.force();
        }
        let raw = self
            .send(&what, || {
                kube::core::Request::new(collection.as_str()).patch(
                    &oref.name,
                    &params,
                    &Patch::Apply(&desired),
                )
            })
            .await?;
        self.check(&what, &raw)?;
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
        let oref = ObjectRef::namespaced("v1", "Secret", namespace, name);
        let started = Instant::now();
        let mut interval = Duration::from_millis(50);
        loop {
            let missing = match self.get(&oref).await? {
                None => "the Secret does not exist".to_string(),
                Some(secret) => match token_data(&secret) {
                    Ok(data) => return Ok(data),
                    Err(missing) => missing,
                },
            };
            let elapsed = started.elapsed();
            if elapsed >= timeout {
                return Err(ClusterError::Timeout {
                    cluster: self.name().to_string(),
                    object: format!("wait for token in {oref}"),
                    waited: elapsed,
                    reason: format!("{missing} (is the token controller running?)"),
                });
            }
            tokio::time::sleep(interval.min(timeout - elapsed)).await;
            interval = (interval * 2).min(Duration::from_millis(500));
        }
    }

    /// The URL path of the collection holding `kind`, checking the scope against `namespace`.
    async fn collection(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        what: &str,
    ) -> Result<String, ClusterError> {
        let (plural, namespaced) = self.resource(api_version, kind).await?;
        match (namespaced, namespace) {
            (true, None) => Err(self.invalid_object(
                what,
                &format!("{kind} is namespaced but metadata.namespace is not set"),
            )),
            (false, Some(_)) => Ok(object::collection_path(api_version, &plural, None)),
            (true, Some(ns)) => Ok(object::collection_path(api_version, &plural, Some(ns))),
            (false, None) => Ok(object::collection_path(api_version, &plural, None)),
        }
    }

    /// Like [`collection`](Self::collection), but a namespaced kind without namespace means
    /// "all namespaces" (lists only).
    async fn collection_any_scope(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<String, ClusterError> {
        let (plural, namespaced) = self.resource(api_version, kind).await?;
        let ns = if namespaced { namespace } else { None };
        Ok(object::collection_path(api_version, &plural, ns))
    }

    /// Plural name and scope of a kind: built-in table first, then discovery (cached).
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(String, bool), ClusterError> {
        if let Some((plural, namespaced)) = object::builtin_resource(api_version, kind) {
            return Ok((plural.to_string(), namespaced));
        }
        let cached = self
            .inner
            .discovery
            .lock()
            .ok()
            .and_then(|cache| cache.get(api_version).cloned());
        let kinds = match cached {
            Some(kinds) => kinds,
            None => {
                let kinds = Arc::new(self.discover(api_version).await?);
                if let Ok(mut cache) = self.inner.discovery.lock() {
                    cache.insert(api_version.to_string(), kinds.clone());
                }
                kinds
            }
        };
        kinds
            .get(kind)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownKind {
                cluster: self.name().to_string(),
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })
    }

    async fn discover(&self, api_version: &str) -> Result<KindTable, ClusterError> {
        let what = format!("discover {api_version}");
        let path = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let raw = self
            .send(&what, || {
                http::Request::get(path.as_str())
                    .header(http::header::ACCEPT, "application/json")
                    .body(Vec::new())
                    .map_err(kube::core::request::Error::BuildRequest)
            })
            .await?;
        if raw.code == 404 {
            // The whole group/version is not served: every kind in it is unknown.
            return Ok(HashMap::new());
        }
        self.check(&what, &raw)?;
        let list = self.json(&what, &raw)?;
        let mut kinds = HashMap::new();
        for resource in list
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(kind)) = (
                resource.get("name").and_then(Value::as_str),
                resource.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            if name.contains('/') {
                continue; // a subresource such as secrets/status
            }
            let namespaced = resource
                .get("namespaced")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            kinds.insert(kind.to_string(), (name.to_string(), namespaced));
        }
        Ok(kinds)
    }

    /// Sends a request, retrying transient answers per the policy. `build` makes a fresh
    /// request for each attempt. Returns the final answer, whatever its status.
    async fn send<F>(&self, what: &str, build: F) -> Result<Raw, ClusterError>
    where
        F: Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = build().map_err(|e| self.invalid_object(what, &e.to_string()))?;
            let result = match self.inner.client.send(request.map(Body::from)).await {
                Ok(response) => {
                    let code = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry::parse_retry_after);
                    match response.into_body().collect_bytes().await {
                        Ok(body) => Ok((
                            Raw {
                                code,
                                body: body.to_vec(),
                            },
                            retry_after,
                        )),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match result {
                Ok((raw, retry_after)) => {
                    if retry::is_retryable_status(raw.code) && attempt < max_attempts {
                        tracing::debug!(
                            cluster = %self.name(), %what, code = raw.code, attempt,
                            "transient answer, retrying"
                        );
                        tokio::time::sleep(self.retry.delay(attempt - 1, retry_after)).await;
                        continue;
                    }
                    return Ok(raw);
                }
                Err(e) if is_transport_error(&e) => {
                    if attempt < max_attempts {
                        tracing::debug!(
                            cluster = %self.name(), %what, attempt, error = %e,
                            "connection error, retrying"
                        );
                        tokio::time::sleep(self.retry.delay(attempt - 1, None)).await;
                        continue;
                    }
                    return Err(ClusterError::Unreachable {
                        cluster: self.name().to_string(),
                        server: self.server().to_string(),
                        object: what.to_string(),
                        attempts: attempt,
                        source: Box::new(e),
                    });
                }
                Err(kube::Error::Auth(e)) => {
                    return Err(ClusterError::Unauthorized {
                        cluster: self.name().to_string(),
                        object: what.to_string(),
                        message: format!("client credentials: {e}"),
                    });
                }
                Err(e) => {
                    return Err(ClusterError::Api {
                        cluster: self.name().to_string(),
                        object: what.to_string(),
                        code: 0,
                        reason: "ClientError".into(),
                        message: e.to_string(),
                    });
                }
            }
        }
    }

    /// Maps a non-2xx answer to the matching [`ClusterError`].
    fn check(&self, what: &str, raw: &Raw) -> Result<(), ClusterError> {
        if (200..300).contains(&raw.code) {
            return Ok(());
        }
        let status: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
        let message = status
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&raw.body)
                    .trim()
                    .chars()
                    .take(300)
                    .collect()
            });
        let reason = status
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let cluster = self.name().to_string();
        let object = what.to_string();
        Err(match raw.code {
            401 => ClusterError::Unauthorized {
                cluster,
                object,
                message,
            },
            403 => ClusterError::Forbidden {
                cluster,
                object,
                message,
            },
            404 => ClusterError::NotFound {
                cluster,
                object,
                message,
            },
            409 => ClusterError::Conflict {
                cluster,
                object,
                message,
            },
            code => ClusterError::Api {
                cluster,
                object,
                code,
                reason,
                message,
            },
        })
    }

    fn json(&self, what: &str, raw: &Raw) -> Result<Value, ClusterError> {
        serde_json::from_slice(&raw.body)
            .map_err(|e| self.invalid_response(what, &format!("body is not JSON: {e}")))
    }

    fn object_ref(&self, object: &Value) -> Result<ObjectRef, ClusterError> {
        ObjectRef::from_object(object).map_err(|reason| {
            let hint = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>");
            self.invalid_object(hint, &reason)
        })
    }

    fn invalid_object(&self, object: &str, reason: &str) -> ClusterError {
        ClusterError::InvalidObject {
            cluster: self.name().to_string(),
            object: object.to_string(),
            reason: reason.to_string(),
        }
    }

    fn invalid_response(&self, what: &str, reason: &str) -> ClusterError {
        ClusterError::InvalidResponse {
            cluster: self.name().to_string(),
            object: what.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Reads `token` and `ca.crt` out of a service-account token Secret; the error says which is
/// missing, in istioctl's words.
///
/// ```
/// use mesh_core::cluster::token_data;
/// let s = serde_json::json!({"data": {"ca.crt": "Y2E=", "token": "dA=="}});
/// assert_eq!(token_data(&s).unwrap().token, "t");
/// let e = token_data(&serde_json::json!({"data": {"ca.crt": "Y2E="}})).unwrap_err();
/// assert_eq!(e, "no \"token\" data found");
/// ```
pub fn token_data(secret: &Value) -> Result<TokenData, String> {
    let decode = |key: &str| -> Result<Vec<u8>, String> {
        let encoded = secret
            .pointer(&format!(
                "/data/{}",
                key.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("no {key:?} data found"))?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| format!("{key:?} data is not valid base64"))
    };
    let ca_crt = decode("ca.crt")?;
    let token = decode("token")?;
    let token = String::from_utf8(token).map_err(|_| "\"token\" data is not UTF-8".to_string())?;
    Ok(TokenData { token, ca_crt })
}

/// True for errors of the transport (connection refused/reset, TLS, timeouts) rather than of
/// the request: worth a retry, and "unreachable" when retries run out.
fn is_transport_error(err: &kube::Error) -> bool {
    matches!(
        err,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
    )
}

fn kubeconfig_error(
    cluster: &str,
    path: &str,
    context: &str,
    err: &kube::config::KubeconfigError,
) -> ClusterError {
    ClusterError::Kubeconfig {
        cluster: cluster.to_string(),
        path: path.to_string(),
        context: context.to_string(),
        reason: describe_kubeconfig_error(err),
    }
}

/// A kubeconfig error in words that cannot carry the file's content: YAML parse errors may
/// quote the offending line, which can hold a token.
fn describe_kubeconfig_error(err: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as E;
    match err {
        E::Parse(_) => "not valid kubeconfig YAML".to_string(),
        E::ReadConfig(io, path) => format!("cannot read {}: {io}", path.display()),
        E::FindPath => "no kubeconfig found ($KUBECONFIG unset and no ~/.kube/config)".into(),
        other => other.to_string(),
    }
}
