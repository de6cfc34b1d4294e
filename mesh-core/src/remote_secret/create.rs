//! istioctl's `create-remote-secret` algorithm against a live cluster (`reference/istio.md`
//! §3.2), through the [`ClusterOps`] door (so it shares the bounded retries of every other
//! cluster call, and runs against any implementation).

use std::time::Duration;

use serde_json::{Value, json};

use super::{RemoteSecret, RemoteSecretError, SecretType, is_dns1123_label, is_loopback_server};
use crate::cluster::{ApplyOptions, ClusterError, ClusterOps, ObjectRef};
use crate::render::reader;

const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// The inputs of [`create_remote_secret`]: istioctl's flags.
///
/// ```
/// use mesh_core::remote_secret::RemoteSecretOptions;
/// let opts = RemoteSecretOptions { name: Some("eu".into()), ..Default::default() };
/// assert_eq!(opts.namespace, "istio-system");
/// assert!(opts.create_service_account);
/// opts.validate()?;
/// # Ok::<(), mesh_core::remote_secret::RemoteSecretError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSecretOptions {
    /// `--name`: the cluster name (a DNS-1123 label); `None`: the `kube-system` namespace UID.
    pub name: Option<String>,
    /// `-n/--namespace`: where the reader service account lives and the Secret is meant for.
    /// Never taken from the kubeconfig context.
    pub namespace: String,
    /// `--type`.
    pub secret_type: SecretType,
    /// `--service-account`; `None`: the type's default.
    pub service_account: Option<String>,
    /// `--create-service-account`: create the reader service account and its RBAC if missing.
    pub create_service_account: bool,
    /// `--secret-name`: the token Secret to use.
    pub secret_name: Option<String>,
    /// `--server`: the API server URL written into the kubeconfig, verbatim.
    pub server: Option<String>,
    /// `--tls-server-name`.
    pub tls_server_name: Option<String>,
    /// How long to wait for the token controller to fill the token Secret.
    pub token_timeout: Duration,
}

impl Default for RemoteSecretOptions {
    fn default() -> Self {
        RemoteSecretOptions {
            name: None,
            namespace: super::DEFAULT_NAMESPACE.to_string(),
            secret_type: SecretType::Remote,
            service_account: None,
            create_service_account: true,
            secret_name: None,
            server: None,
            tls_server_name: None,
            token_timeout: Duration::from_secs(10),
        }
    }
}

impl RemoteSecretOptions {
    /// Checks the options that need no cluster, so bad input fails before any request.
    ///
    /// ```
    /// use mesh_core::remote_secret::RemoteSecretOptions;
    /// let bad = RemoteSecretOptions { name: Some("?-invalid-name".into()), ..Default::default() };
    /// assert_eq!(bad.validate().unwrap_err().to_string(), "?-invalid-name is not a valid DNS 1123 label");
    /// ```
    pub fn validate(&self) -> Result<(), RemoteSecretError> {
        if let Some(name) = &self.name
            && !is_dns1123_label(name)
        {
            return Err(RemoteSecretError::InvalidName(name.clone()));
        }
        if !is_dns1123_label(&self.namespace) {
            return Err(RemoteSecretError::InvalidNamespace(self.namespace.clone()));
        }
        Ok(())
    }

    /// The service account used: `--service-account` or the type's default.
    ///
    /// ```
    /// use mesh_core::remote_secret::{RemoteSecretOptions, SecretType};
    /// let config = RemoteSecretOptions { secret_type: SecretType::Config, ..Default::default() };
    /// assert_eq!(config.service_account(), "istiod");
    /// ```
    pub fn service_account(&self) -> &str {
        self.service_account
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(self.secret_type.default_service_account())
    }
}

/// A remote secret and the warnings istioctl would print while making it.
///
/// ```no_run
/// # async fn demo(c: mesh_core::cluster::ClusterClient) -> Result<(), mesh_core::remote_secret::RemoteSecretError> {
/// use mesh_core::remote_secret::{create_remote_secret, RemoteSecretOptions};
/// let made = create_remote_secret(&c, &RemoteSecretOptions::default()).await?;
/// for w in &made.warnings { eprintln!("warn: {w}"); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CreatedRemoteSecret {
    /// The secret, ready to print or apply.
    pub secret: RemoteSecret,
    /// Warnings for the user (e.g. a loopback server), without the `warn: ` prefix.
    pub warnings: Vec<String>,
}

/// Builds the remote secret of the cluster `client` talks to, as `istioctl
/// create-remote-secret` does: cluster name from `--name` or the kube-system UID; the service
/// account (created with its reader RBAC when missing and allowed); the token Secret
/// (`--secret-name`, else the first token Secret of the service account, else a new
/// `<sa>-istio-remote-secret-token`); its `token` and `ca.crt` once the token controller filled
/// them; the server from `--server` or the kubeconfig.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mesh_core::{cluster::ClusterClient, remote_secret::*};
/// let eu = ClusterClient::connect("eu", None, "eu").await?;
/// let opts = RemoteSecretOptions { name: Some("eu".into()),
///     server: Some("https://203.0.113.10:6443".into()), ..Default::default() };
/// let made = create_remote_secret(&eu, &opts).await?;
/// print!("{}", made.secret.to_istioctl_yaml()?);
/// # Ok(()) }
/// ```
pub async fn create_remote_secret<C: ClusterOps>(
    client: &C,
    options: &RemoteSecretOptions,
) -> Result<CreatedRemoteSecret, RemoteSecretError> {
    options.validate()?;
    let namespace = options.namespace.as_str();
    let cluster = match &options.name {
        Some(name) => name.clone(),
        None => kube_system_uid(client).await?,
    };
    if !is_dns1123_label(&cluster) {
        return Err(RemoteSecretError::InvalidName(cluster));
    }
    let service_account = options.service_account();
    ensure_service_account(client, options, service_account).await?;
    let token_secret = find_or_create_token_secret(client, options, service_account).await?;
    let token = client
        .wait_for_token_secret(namespace, &token_secret, options.token_timeout)
        .await
        .map_err(|e| token_error(client, &e.to_string()))?;
    let mut warnings = Vec::new();
    let server = match options.server.as_deref().filter(|s| !s.is_empty()) {
        Some(server) => {
            if is_loopback_server(server) {
                warnings.push(format!(
                    "server {server} is a loopback address: other clusters cannot reach it"
                ));
            }
            server.to_string()
        }
        None => {
            let server = client.server().to_string();
            if is_loopback_server(&server) {
                warnings.push(format!(
                    "server in Kubeconfig is {server}. This is likely not reachable from inside the cluster, if you're using Kubernetes in Docker, pass --server with the container IP for the API Server"
                ));
            }
            server
        }
    };
    let secret = RemoteSecret {
        cluster,
        namespace: namespace.to_string(),
        secret_type: options.secret_type,
        server,
        tls_server_name: options.tls_server_name.clone().filter(|s| !s.is_empty()),
        ca_data: token.ca_crt,
        token: token.token,
    };
    // clientcmd.Validate's part: fail here rather than print an unusable secret.
    secret.kubeconfig()?;
    Ok(CreatedRemoteSecret { secret, warnings })
}

/// The UID of the `kube-system` Namespace: istioctl's cluster name when `--name` is not given.
async fn kube_system_uid<C: ClusterOps>(client: &C) -> Result<String, RemoteSecretError> {
    let oref = ObjectRef::cluster_scoped("v1", "Namespace", "kube-system");
    let ns = client
        .get(&oref)
        .await?
        .ok_or_else(|| ClusterError::NotFound {
            cluster: client.name().to_string(),
            object: format!("get {oref}"),
            message:
                "namespaces \"kube-system\" not found (needed for the cluster name; pass --name)"
                    .into(),
        })?;
    ns.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|uid| !uid.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ClusterError::InvalidResponse {
                cluster: client.name().to_string(),
                object: format!("get {oref}"),
                reason: "no metadata.uid".into(),
            }
            .into()
        })
}

async fn ensure_service_account<C: ClusterOps>(
    client: &C,
    options: &RemoteSecretOptions,
    service_account: &str,
) -> Result<(), RemoteSecretError> {
    let namespace = options.namespace.as_str();
    let oref = ObjectRef::namespaced("v1", "ServiceAccount", namespace, service_account);
    let missing = |client: &C| RemoteSecretError::ServiceAccountMissing {
        cluster: client.name().to_string(),
        namespace: namespace.to_string(),
        service_account: service_account.to_string(),
        source: Box::new(ClusterError::NotFound {
            cluster: client.name().to_string(),
            object: format!("get {oref}"),
            message: format!("serviceaccounts \"{service_account}\" not found"),
        }),
    };
    if client.get(&oref).await?.is_some() {
        return Ok(());
    }
    if !options.create_service_account {
        return Err(missing(client));
    }
    // Like istioctl: only the reader account and its RBAC are created, whatever
    // --service-account says; a missing custom account is still an error below.
    for object in reader::istioctl_objects(namespace) {
        client.apply(&object, &ApplyOptions::default()).await?;
    }
    match client.get(&oref).await? {
        Some(_) => Ok(()),
        None => Err(missing(client)),
    }
}

/// Step 4 of istioctl's algorithm (Kubernetes ≥ 1.24): the token Secret's name.
async fn find_or_create_token_secret<C: ClusterOps>(
    client: &C,
    options: &RemoteSecretOptions,
    service_account: &str,
) -> Result<String, RemoteSecretError> {
    let namespace = options.namespace.as_str();
    let references_sa = |secret: &Value| {
        secret.get("type").and_then(Value::as_str) == Some(TOKEN_TYPE)
            && secret
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SA_ANNOTATION))
                .and_then(Value::as_str)
                == Some(service_account)
    };
    if let Some(name) = options.secret_name.as_deref().filter(|s| !s.is_empty()) {
        let oref = ObjectRef::namespaced("v1", "Secret", namespace, name);
        let secret = client
            .get(&oref)
            .await
            .map_err(|e| token_error(client, &format!("could not get specified secret {namespace}/{name}: {e}")))?
            .ok_or_else(|| {
                token_error(
                    client,
                    &format!(
                        "could not get specified secret {namespace}/{name}: secrets \"{name}\" not found"
                    ),
                )
            })?;
        if !references_sa(&secret) {
            return Err(token_error(
                client,
                &format!(
                    "secret {namespace}/{name} does not reference ServiceAccount {service_account}"
                ),
            ));
        }
        return Ok(name.to_string());
    }
    let secrets = client
        .list("v1", "Secret", Some(namespace), None)
        .await
        .map_err(|e| token_error(client, &e.to_string()))?;
    if let Some(name) = secrets
        .iter()
        .filter(|s| references_sa(s))
        .find_map(|s| s.pointer("/metadata/name").and_then(Value::as_str))
    {
        return Ok(name.to_string());
    }
    let name = format!("{service_account}-istio-remote-secret-token");
    let token_secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {SA_ANNOTATION: service_account}},
        "type": TOKEN_TYPE,
    });
    match client.create(&token_secret).await {
        // Someone (or our own retried request) created it first: just as good.
        Ok(_) | Err(ClusterError::Conflict { .. }) => Ok(name),
        Err(e) => Err(token_error(client, &e.to_string())),
    }
}

fn token_error<C: ClusterOps>(client: &C, reason: &str) -> RemoteSecretError {
    RemoteSecretError::Token {
        cluster: client.name().to_string(),
        reason: reason.to_string(),
    }
}
