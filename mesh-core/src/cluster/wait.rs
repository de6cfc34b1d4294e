//! Bounded waits for what a controller fills in after a write: a service-account token, a
//! load balancer's address. One polling loop ([`poll`]) serves both, on top of
//! [`ClusterOps::get`], so every implementation of the door waits the same way.

use std::future::Future;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use super::{ClusterError, ClusterOps, ObjectRef, TokenData};

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
            .get("data")
            .and_then(|d| d.get(key))
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

/// The addresses other networks can dial a Service at: its load-balancer ingress IPs or
/// hostnames, then its `spec.externalIPs` (`reference/istio.md` §5.6). Empty when it has none.
///
/// ```
/// use mesh_core::cluster::external_addresses;
/// let svc = serde_json::json!({"spec": {"externalIPs": ["192.0.2.9"]},
///     "status": {"loadBalancer": {"ingress": [{"hostname": "gw.example.com"}, {"ip": ""}]}}});
/// assert_eq!(external_addresses(&svc), ["gw.example.com", "192.0.2.9"]);
/// assert!(external_addresses(&serde_json::json!({"spec": {"type": "LoadBalancer"}})).is_empty());
/// ```
pub fn external_addresses(service: &Value) -> Vec<String> {
    let ingress = service
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            ["ip", "hostname"]
                .iter()
                .find_map(|k| i.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        });
    let external_ips = service
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty());
    ingress.chain(external_ips).map(str::to_string).collect()
}

pub(super) async fn token_secret<C: ClusterOps>(
    client: &C,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<TokenData, ClusterError> {
    let oref = ObjectRef::namespaced("v1", "Secret", namespace, name);
    poll(
        client,
        &format!("wait for token in {oref}"),
        timeout,
        Duration::from_millis(50),
        Duration::from_millis(500),
        || async {
            Ok(match client.get(&oref).await? {
                None => Err("the Secret does not exist".to_string()),
                Some(secret) => token_data(&secret),
            })
        },
    )
    .await
    .map_err(|e| match e {
        ClusterError::Timeout {
            cluster,
            object,
            waited,
            reason,
        } => ClusterError::Timeout {
            cluster,
            object,
            waited,
            reason: format!("{reason} (is the token controller running?)"),
        },
        other => other,
    })
}

pub(super) async fn external_address<C: ClusterOps>(
    client: &C,
    service: &ObjectRef,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    poll(
        client,
        &format!("wait for an external address of {service}"),
        timeout,
        Duration::from_millis(100),
        Duration::from_secs(1),
        || async {
            Ok(match client.get(service).await? {
                None => Err("the Service does not exist".to_string()),
                Some(svc) => {
                    let addresses = external_addresses(&svc);
                    if addresses.is_empty() {
                        Err("no load-balancer ingress and no spec.externalIPs".to_string())
                    } else {
                        Ok(addresses)
                    }
                }
            })
        },
    )
    .await
}

/// Calls `attempt` until it gives a value, with a growing interval from `first` up to `max`,
/// for at most `timeout`; then [`ClusterError::Timeout`] with the last reason it gave. A
/// request error ends the wait at once (the request itself was already retried).
async fn poll<C, T, F, Fut>(
    client: &C,
    what: &str,
    timeout: Duration,
    first: Duration,
    max: Duration,
    mut attempt: F,
) -> Result<T, ClusterError>
where
    C: ClusterOps,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>, ClusterError>>,
{
    let started = Instant::now();
    let mut interval = first;
    loop {
        let missing = match attempt().await? {
            Ok(value) => return Ok(value),
            Err(missing) => missing,
        };
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(ClusterError::Timeout {
                cluster: client.name().to_string(),
                object: what.to_string(),
                waited: elapsed,
                reason: missing,
            });
        }
        tokio::time::sleep(interval.min(timeout - elapsed)).await;
        interval = (interval * 2).min(max);
    }
}
