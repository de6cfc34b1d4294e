//! The cluster operations the executor needs, as a trait: [`ClusterClient`] implements it for
//! real clusters, and the executor's tests implement it in memory.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{
    ApplyOptions, ApplyOutcome, ClusterClient, ClusterError, ObjectRef, TokenData,
};

/// What the executor does to a cluster. Every method has the meaning (and the errors) of the
/// [`ClusterClient`] method of the same name.
///
/// ```
/// use mesh_core::{cluster::ClusterClient, execute::ClusterOps};
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

    /// Lists objects of a kind in a namespace, filtered by a label selector.
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send;

    /// Reads, compares, and server-side applies only when something is missing.
    fn apply(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send;

    /// SelfSubjectAccessReview.
    fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send;

    /// Waits, bounded, for the token controller to fill a service-account token Secret.
    fn wait_for_token_secret(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<TokenData, ClusterError>> + Send;
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

    fn apply(
        &self,
        desired: &Value,
        options: &ApplyOptions,
    ) -> impl Future<Output = Result<ApplyOutcome, ClusterError>> + Send {
        ClusterClient::apply(self, desired, options)
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

    fn wait_for_token_secret(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<TokenData, ClusterError>> + Send {
        ClusterClient::wait_for_token_secret(self, namespace, name, timeout)
    }
}
