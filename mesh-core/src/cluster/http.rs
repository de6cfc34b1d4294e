//! The HTTP client of one API server: HTTP/2 when the server offers it, as client-go does.
//!
//! kube's own client speaks HTTP/1.1 only, so every request in flight to a server holds a TCP
//! and TLS connection of its own: sixteen requests at once to each of 200 clusters are 3,200
//! handshakes and as many sets of buffers. client-go (kubectl, istiod, controllers) offers
//! `h2` by ALPN and multiplexes every request to a server over one connection
//! (`k8s.io/apimachinery/pkg/util/net.SetTransportDefaults`), and kube-apiserver allows
//! hundreds of streams per connection (`--http2-max-streams-per-connection`). This client does
//! the same: one connection per server, HTTP/1.1 only when the server does not offer `h2`.
//! Idle connections are checked with pings like client-go's (`ReadIdleTimeout` 30 s,
//! `PingTimeout` 15 s), so a dead one is noticed instead of hanging a request.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use tower::{BoxError, ServiceBuilder};

/// client-go's `ReadIdleTimeout`: a ping after this long without a frame from the server.
const PING_AFTER: Duration = Duration::from_secs(30);
/// client-go's `PingTimeout`: the connection is closed when a ping is not answered in time.
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A kube client for `config` whose connections offer `h2` first. A proxy in the kubeconfig
/// is left to kube's own client (which says what it does not support).
pub(super) fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    if config.proxy_url.is_some() {
        return kube::Client::try_from(config);
    }
    // `enable_all_versions` below offers `h2` then `http/1.1` by ALPN.
    let tls = config.rustls_client_config()?;
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(config.connect_timeout);
    tcp.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
    let https = match config.tls_server_name.as_deref() {
        Some(name) => {
            let name = rustls_pki_types::ServerName::try_from(name.to_string())
                .map_err(|e| kube::Error::Service(Box::new(e)))?;
            https
                .https_or_http()
                .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => https.https_or_http(),
    };
    let https = https.enable_all_versions().wrap_connector(tcp);
    let mut timed = hyper_timeout::TimeoutConnector::new(https);
    timed.set_connect_timeout(config.connect_timeout);
    timed.set_read_timeout(config.read_timeout);
    timed.set_write_timeout(config.write_timeout);
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(PING_AFTER)
        .http2_keep_alive_timeout(PING_TIMEOUT)
        .build(timed);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(kube::Client::new(service, config.default_namespace))
}
