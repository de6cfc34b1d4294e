//! `meshboot remote-secret`: a drop-in for `istioctl create-remote-secret`. The Secret goes to
//! stdout, `warn: ...` lines to stderr, so `meshboot remote-secret ... | kubectl apply -f -`
//! keeps working.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::ArgAction;
use mesh_core::cluster::ClusterClient;
use mesh_core::remote_secret::{RemoteSecretOptions, SecretType, create_remote_secret};

use crate::exit::{Exit, Usage};

/// `-o`: the Secret as YAML (istioctl's output) or JSON; both apply with `kubectl apply -f -`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ManifestFormat {
    /// A YAML document, byte-compatible with `istioctl create-remote-secret`.
    Yaml,
    /// The same Secret as one JSON object.
    Json,
}

/// Flags of `istioctl create-remote-secret`, with its defaults and its `--flag=false` syntax.
#[derive(Debug, clap::Args)]
pub struct RemoteSecretArgs {
    /// Kubeconfig context of the cluster to make the secret for (default: current context).
    #[arg(long)]
    context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Cluster name: the data key istiod registers the cluster under; must equal that
    /// cluster's `global.multiCluster.clusterName` (default: the kube-system namespace UID).
    #[arg(long)]
    name: Option<String>,
    /// API server URL written into the secret, verbatim (default: the kubeconfig's server).
    #[arg(long)]
    server: Option<String>,
    /// TLS server name to verify the API server certificate against.
    #[arg(long)]
    tls_server_name: Option<String>,
    /// Namespace of the service account and of the printed Secret. Always `istio-system`
    /// unless given: never taken from the kubeconfig context.
    #[arg(short = 'n', long, default_value = mesh_core::remote_secret::DEFAULT_NAMESPACE)]
    namespace: String,
    /// `remote` (istio-remote-secret-<name>) or `config` (istio-kubeconfig).
    #[arg(long = "type", default_value = "remote")]
    secret_type: String,
    /// Service account whose token the secret carries (default: istio-reader-service-account
    /// for remote, istiod for config).
    #[arg(long)]
    service_account: Option<String>,
    /// Create the reader service account and its RBAC when missing.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    create_service_account: bool,
    /// Name of the service-account token Secret to use.
    #[arg(long)]
    secret_name: Option<String>,
    /// How long to wait for the token controller to fill the token Secret, in seconds.
    #[arg(long, default_value_t = 10)]
    token_timeout: u64,
    /// Output format of the Secret.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        value_name = "FORMAT",
        default_value = "yaml"
    )]
    output: ManifestFormat,
}

pub async fn run(args: RemoteSecretArgs) -> anyhow::Result<Exit> {
    // Checked here rather than by clap so the messages stay istioctl's, word for word.
    let secret_type: SecretType = args
        .secret_type
        .parse()
        .map_err(|e: mesh_core::remote_secret::RemoteSecretError| Usage(e.to_string()))?;
    let options = RemoteSecretOptions {
        name: args.name.filter(|n| !n.is_empty()),
        namespace: args.namespace,
        secret_type,
        service_account: args.service_account.filter(|s| !s.is_empty()),
        create_service_account: args.create_service_account,
        secret_name: args.secret_name.filter(|s| !s.is_empty()),
        server: args.server.filter(|s| !s.is_empty()),
        tls_server_name: args.tls_server_name.filter(|s| !s.is_empty()),
        token_timeout: Duration::from_secs(args.token_timeout),
    };
    // Bad flags fail before any connection is made.
    options
        .validate()
        .map_err(|e| anyhow::Error::new(Usage(e.to_string())))?;
    let context = args.context.unwrap_or_default();
    // Errors name the cluster: by --name, else by the context it was reached through.
    let label = options
        .name
        .clone()
        .unwrap_or_else(|| match context.as_str() {
            "" => "(current context)".to_string(),
            context => context.to_string(),
        });
    let client = ClusterClient::connect(&label, args.kubeconfig.as_deref(), &context).await?;
    let made = create_remote_secret(&client, &options).await?;
    for warning in &made.warnings {
        eprintln!("warn: {warning}");
    }
    let text = match args.output {
        ManifestFormat::Yaml => made.secret.to_istioctl_yaml()?,
        ManifestFormat::Json => {
            let mut json = serde_json::to_string_pretty(&made.secret.to_object()?)?;
            json.push('\n');
            json
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the remote secret to stdout")?;
    Ok(Exit::Done)
}
