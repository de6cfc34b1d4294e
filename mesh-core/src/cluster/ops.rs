//! The one door to the clusters, as traits: [`ClusterOps`] is every read and write meshboot
//! makes to one cluster, and [`Connector`] makes a [`ClusterOps`] from a kubeconfig (a file's
//! context, or the kubeconfig a remote secret carries). [`ClusterClient`] and [`KubeConnector`]
//! implement them for real API servers; apply, verify and `remote-secret` take any
//! implementation, so one test double (or the emulator) drives them all.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::wait;
use super::{
    ApplyOptions, ApplyOutcome, ClusterClient, ClusterError, IssuedToken, Limits, ObjectRef,
    RetryPolicy, TokenData, TokenRequest,
};

/// Every request meshboot makes to one cluster. Each method has the meaning (and the errors) of
/// the [`ClusterClient`] method of the same name; the waits are written once, here, on top of
/// [`get`](ClusterOps::get).
///
/// ```
/// use mesh_core::cluster::{ClusterClient, ClusterOps};
/// fn takes_ops<C: ClusterOps>(_: &C) {}
/// fn with_client(c: &ClusterClient) { takes_ops(c) }
/// ```
pub trait ClusterOps: Clone + Send + Sync + 'static {
    /// The cluster name.
    fn name(&self) -> &str;

    /// The API server URL the kubeconfig names.
    fn server(&self) -> &str;

    /// Reads one object; `Ok(None)` when it does not exist.
    fn get(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send;

    /// Lists objects of a kind in a namespace (`None`: all), filtered by a label selector.
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send;

    /// Lists like [`list`](ClusterOps::list), handing each item to `each` as it is decoded
    /// instead of returning them all: a list of 99 remote secrets is never held whole. Returns
    /// how many items there were.
    fn list_each<F>(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        mut each: F,
    ) -> impl Future<Output = Result<usize, ClusterError>> + Send
    where
        F: FnMut(Value) + Send,
    {
        async move {
            let items = self
                .list(api_version, kind, namespace, label_selector)
                .await?;
            let n = items.len();
            items.into_iter().for_each(&mut each);
            Ok(n)
        }
    }

    /// Server-side applies `desired` without reading it first, for a caller that already knows
    /// the live object differs (it compared it from a list): one round trip instead of two.
    /// The answer says what happened: 201 is [`ApplyOutcome::Created`], 200
    /// [`ApplyOutcome::Updated`]. With `dry_run` it reads and compares as
    /// [`apply`](ClusterOps::apply) does and writes nothing.
    fn apply_unread(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send {
        self.apply(desired, options)
    }

    /// Server-side applies `desired` unless `live` (read a moment ago by the caller, `None`:
    /// absent) is already converged with it: [`apply`](ClusterOps::apply) without its read.
    /// With `dry_run` nothing is written and the outcome is judged from `live`.
    fn apply_known(
        &self,
        desired: &Value,
        live: Option<&Value>,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send {
        let _ = live;
        self.apply(desired, options)
    }

    /// Creates an object (POST); a 409 is [`ClusterError::Conflict`].
    fn create(&self, object: &Value) -> impl Future<Output = Result<Value, ClusterError>> + Send;

    /// Reads, compares ([`is_converged`](super::is_converged)), and server-side applies only
    /// when the live object differs.
    fn apply(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send;

    /// Deletes an object, only if its uid is still `uid` when given; `Ok(false)` when it did
    /// not exist.
    fn delete(
        &self,
        object: &ObjectRef,
        uid: Option<&str>,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send;

    /// TokenRequest: a token of ServiceAccount `namespace/service_account`, bound and timed as
    /// `request` says.
    fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> impl Future<Output = Result<IssuedToken, ClusterError>> + Send;

    /// SelfSubjectAccessReview: may these credentials `verb` the `resource` of `group`?
    fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send;

    /// Waits, at most `timeout`, until the token controller filled the service-account token
    /// Secret `namespace/name` with `token` and `ca.crt`.
    fn wait_for_token_secret(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<TokenData, ClusterError>> + Send {
        wait::token_secret(self, namespace, name, timeout)
    }

    /// Waits, at most `timeout`, until the Service has an address other networks can dial
    /// ([`external_addresses`](super::external_addresses)), and returns those addresses.
    fn wait_for_external_address(
        &self,
        service: &ObjectRef,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<String>, ClusterError>> + Send {
        wait::external_address(self, service, timeout)
    }
}

/// Makes clients from kubeconfigs: what apply and verify connect with, and what verify's token
/// check dials a remote secret's embedded kubeconfig with.
///
/// ```no_run
/// # async fn demo() -> Result<(), mesh_core::cluster::ClusterError> {
/// use mesh_core::cluster::{ClusterOps, Connector, KubeConnector};
/// let eu = KubeConnector::default().connect("eu", None, "eu-context").await?;
/// println!("{} at {}", eu.name(), eu.server());
/// # Ok(()) }
/// ```
pub trait Connector: Send + Sync {
    /// The clients it makes.
    type Client: ClusterOps;

    /// Connects to cluster `name` through `context` of the kubeconfig at `kubeconfig`
    /// (`None`: `$KUBECONFIG`, else `~/.kube/config`; empty `context`: the current one).
    fn connect(
        &self,
        name: &str,
        kubeconfig: Option<&Path>,
        context: &str,
    ) -> impl Future<Output = Result<Self::Client, ClusterError>> + Send;

    /// Connects with a kubeconfig held in memory (such as a remote secret's); `source` names
    /// it in errors.
    fn connect_yaml(
        &self,
        name: &str,
        yaml: &str,
        context: &str,
        source: &str,
    ) -> impl Future<Output = Result<Self::Client, ClusterError>> + Send;
}

/// The [`Connector`] of real API servers: [`ClusterClient`]s with this retry policy, within
/// these [`Limits`] (every client it makes shares the global slots).
///
/// ```
/// use mesh_core::cluster::{KubeConnector, Limits, RetryPolicy};
/// let patient = KubeConnector::default();
/// let quick = KubeConnector {
///     retry: RetryPolicy { max_attempts: 3, ..RetryPolicy::default() },
///     ..KubeConnector::default()
/// };
/// assert!(quick.retry.max_attempts < patient.retry.max_attempts);
/// let gentle = KubeConnector { limits: Limits::new(4, 64), ..KubeConnector::default() };
/// assert_eq!(gentle.limits.per_cluster(), 4);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeConnector {
    /// The retry policy of every client it makes.
    pub retry: RetryPolicy,
    /// Requests in flight per API server and across the clients it makes.
    pub limits: Limits,
}

impl KubeConnector {
    /// The default retry policy within `limits`.
    ///
    /// ```
    /// use mesh_core::cluster::{KubeConnector, Limits};
    /// assert_eq!(KubeConnector::within(Limits::new(2, 8)).limits.global(), 8);
    /// ```
    pub fn within(limits: Limits) -> KubeConnector {
        KubeConnector {
            limits,
            ..KubeConnector::default()
        }
    }
}

impl Connector for KubeConnector {
    type Client = ClusterClient;

    async fn connect(
        &self,
        name: &str,
        kubeconfig: Option<&Path>,
        context: &str,
    ) -> Result<ClusterClient, ClusterError> {
        Ok(ClusterClient::connect(name, kubeconfig, context)
            .await?
            .with_retry(self.retry)
            .with_limits(&self.limits))
    }

    async fn connect_yaml(
        &self,
        name: &str,
        yaml: &str,
        context: &str,
        source: &str,
    ) -> Result<ClusterClient, ClusterError> {
        Ok(
            ClusterClient::from_kubeconfig_yaml(name, yaml, context, source)
                .await?
                .with_retry(self.retry)
                .with_limits(&self.limits),
        )
    }
}

impl ClusterOps for ClusterClient {
    fn name(&self) -> &str {
        ClusterClient::name(self)
    }

    fn server(&self) -> &str {
        ClusterClient::server(self)
    }

    fn get(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send {
        ClusterClient::get(self, object)
    }

    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send {
        ClusterClient::list(self, api_version, kind, namespace, label_selector)
    }

    fn list_each<F>(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        each: F,
    ) -> impl Future<Output = Result<usize, ClusterError>> + Send
    where
        F: FnMut(Value) + Send,
    {
        ClusterClient::list_each(self, api_version, kind, namespace, label_selector, each)
    }

    fn apply_unread(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send {
        ClusterClient::apply_unread(self, desired, options)
    }

    fn apply_known(
        &self,
        desired: &Value,
        live: Option<&Value>,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send {
        ClusterClient::apply_known(self, desired, live, options)
    }

    fn create(&self, object: &Value) -> impl Future<Output = Result<Value, ClusterError>> + Send {
        ClusterClient::create(self, object)
    }

    fn apply(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send {
        ClusterClient::apply(self, desired, options)
    }

    fn delete(
        &self,
        object: &ObjectRef,
        uid: Option<&str>,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send {
        ClusterClient::delete(self, object, uid)
    }

    fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> impl Future<Output = Result<IssuedToken, ClusterError>> + Send {
        ClusterClient::request_token(self, namespace, service_account, request)
    }

    fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send {
        ClusterClient::can_i(self, verb, group, resource, namespace)
    }
}
