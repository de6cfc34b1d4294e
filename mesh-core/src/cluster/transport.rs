//! Sending one request: bounded retries with backoff on transient answers ([`RetryPolicy`]),
//! and mapping the final answer to a [`ClusterError`] that names the cluster and the object.
//!
//! [`RetryPolicy`]: super::RetryPolicy

use kube::client::Body;
use serde_json::Value;

use super::{ClusterClient, ClusterError, ObjectRef, retry};

/// One HTTP answer, status and body, after retries.
pub(super) struct Raw {
    pub code: u16,
    pub body: bytes::Bytes,
}

impl ClusterClient {
    /// Sends a request, retrying transient answers per the policy. `build` makes a fresh
    /// request for each attempt. Returns the final answer, whatever its status.
    pub(super) async fn send<F>(&self, what: &str, build: F) -> Result<Raw, ClusterError>
    where
        F: Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    {
        self.send_into(what, build, None).await
    }

    /// [`send`](Self::send), with the body of a successful answer handed to `sink` frame by
    /// frame as it arrives instead of collected (the [`Raw`] returned then has an empty body).
    /// An answer cut off while it streams is not retried: `sink` has seen part of it.
    pub(super) async fn send_into<F>(
        &self,
        what: &str,
        build: F,
        mut sink: Option<Sink<'_>>,
    ) -> Result<Raw, ClusterError>
    where
        F: Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = build().map_err(|e| self.invalid_object(what, &e.to_string()))?;
            // Method and URL only, as client-go's `-v=6` does: never headers (credentials) or
            // bodies (Secrets).
            let (method, url) = (request.method().clone(), request.uri().clone());
            // The slots are held for this attempt only, never while waiting to retry.
            let slot = self.window.acquire().await;
            let mut streamed = false;
            let sent = std::time::Instant::now();
            let result = match self.inner.client.send(request.map(Body::from)).await {
                Ok(response) => {
                    let code = response.status().as_u16();
                    // Named as kube-rs's own request spans name them (OpenTelemetry's
                    // semantic conventions).
                    tracing::debug!(
                        cluster = %self.name(),
                        "http.method" = %method,
                        "http.url" = %format_args!("{}{url}", self.server().trim_end_matches('/')),
                        "http.status_code" = code,
                        ms = sent.elapsed().as_millis(),
                        "HTTP"
                    );
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry::parse_retry_after);
                    let body = response.into_body();
                    match sink.as_deref_mut() {
                        Some(sink) if (200..300).contains(&code) => {
                            streamed = true;
                            match stream_into(body, sink).await {
                                Ok(Ok(())) => Ok((
                                    Raw {
                                        code,
                                        body: bytes::Bytes::new(),
                                    },
                                    retry_after,
                                )),
                                Ok(Err(refused)) => {
                                    return Err(self.invalid_response(what, &refused));
                                }
                                Err(e) => Err(e),
                            }
                        }
                        _ => match body.collect_bytes().await {
                            Ok(body) => Ok((Raw { code, body }, retry_after)),
                            Err(e) => Err(e),
                        },
                    }
                }
                Err(e) => Err(e),
            };
            if !matches!(&result, Ok((raw, _)) if raw.code == 429) {
                slot.answered();
            }
            drop(slot);
            match result {
                Ok((raw, retry_after)) => {
                    let wait = self.retry.delay(attempt - 1, retry_after);
                    if raw.code == 429 {
                        // The server's max-in-flight or priority-and-fairness filter: this
                        // server, and only this one, gets a pause and a smaller window.
                        self.window.throttled(wait);
                    }
                    if retry::is_retryable_status(raw.code) && attempt < max_attempts {
                        tracing::debug!(
                            cluster = %self.name(), %what, code = raw.code, attempt,
                            "transient answer, retrying"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Ok(raw);
                }
                Err(e) if is_transport_error(&e) => {
                    if attempt < max_attempts && !streamed {
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
    pub(super) fn check(&self, what: &str, raw: &Raw) -> Result<(), ClusterError> {
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

    pub(super) fn json(&self, what: &str, raw: &Raw) -> Result<Value, ClusterError> {
        serde_json::from_slice(&raw.body)
            .map_err(|e| self.invalid_response(what, &format!("body is not JSON: {e}")))
    }

    pub(super) fn object_ref(&self, object: &Value) -> Result<ObjectRef, ClusterError> {
        ObjectRef::from_object(object).map_err(|reason| {
            let hint = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>");
            self.invalid_object(hint, &reason)
        })
    }

    pub(super) fn invalid_object(&self, object: &str, reason: &str) -> ClusterError {
        ClusterError::InvalidObject {
            cluster: self.name().to_string(),
            object: object.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(super) fn invalid_response(&self, what: &str, reason: &str) -> ClusterError {
        ClusterError::InvalidResponse {
            cluster: self.name().to_string(),
            object: what.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Where [`ClusterClient::send_into`] hands a body's bytes; an error refuses the answer.
pub(super) type Sink<'s> = &'s mut (dyn FnMut(&[u8]) -> Result<(), String> + Send);

/// Hands `body` to `sink` frame by frame: `Err` when the connection failed, `Ok(Err)` when
/// `sink` refused what it read.
async fn stream_into(mut body: Body, sink: Sink<'_>) -> Result<Result<(), String>, kube::Error> {
    use http_body_util::BodyExt;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data()
            && let Err(refused) = sink(&data)
        {
            return Ok(Err(refused));
        }
    }
    Ok(Ok(()))
}

/// True for errors of the transport (connection refused/reset, TLS, timeouts) rather than of
/// the request: worth a retry, and "unreachable" when retries run out.
fn is_transport_error(err: &kube::Error) -> bool {
    matches!(
        err,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
    )
}
