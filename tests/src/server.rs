//! The HTTPS front of one cluster: the accept loop (with "down" = listener closed and open
//! connections dropped), fault injection, authentication, authorisation, counting, and the
//! dispatch of each request to discovery, object operations, reviews or watches.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::auth::Identity;
use crate::cluster::ClusterState;
use crate::ops::{self, PatchKind, WriteOpts};
use crate::rbac::{self, Attributes};
use crate::resources::{Behaviour, ResourceDef};
use crate::reviews;
use crate::route::{self, ResourcePath, Route};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::{openapi, table, watch as watchhub};

/// The `gitVersion` every emulated cluster reports at `/version`.
pub(crate) const GIT_VERSION: &str = "v1.33.0-meshboot-emulator";

/// Binds a listener with SO_REUSEADDR so the same port can be re-bound after "down".
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Streams one HTTP/2 connection may carry at once: Go's `http2` server default, which
/// kube-apiserver keeps unless `--http2-max-streams-per-connection` is set.
const HTTP2_MAX_STREAMS: u32 = 250;

/// Serves one cluster until `shutdown` turns true. While the cluster is down the listener is
/// closed (connections are refused) and open connections are dropped.
pub(crate) async fn serve(
    st: Arc<ClusterState>,
    first: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let addr = match first.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let router = axum::Router::new().fallback(handle).with_state(st.clone());
    let acceptor = TlsAcceptor::from(tls);
    let mut down = st.faults.watch_down();
    let mut listener = Some(first);
    let shutdown_template = shutdown.clone();
    loop {
        let Some(l) = listener.take() else {
            // Down: wait for "up" (or shutdown), then bind the same port again.
            tokio::select! {
                r = down.wait_for(|d| !*d) => if r.is_err() { return },
                _ = shutdown.wait_for(|s| *s) => return,
            }
            match bind(addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(cluster = %st.name, "cannot re-bind {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            continue;
        };
        if *down.borrow() {
            drop(l);
            continue;
        }
        tokio::select! {
            accepted = l.accept() => {
                listener = Some(l);
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let router = router.clone();
                let mut conn_down = st.faults.watch_down();
                let counted = st.clone();
                let mut conn_shutdown = shutdown_template.clone();
                tokio::spawn(async move {
                    let serve_conn = async move {
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        let protocol = match stream.get_ref().1.alpn_protocol() {
                            Some(p) => String::from_utf8_lossy(p).into_owned(),
                            None => "none".to_string(),
                        };
                        counted.counters.record_connection(&protocol);
                        let svc = TowerToHyperService::new(router);
                        let mut builder = auto::Builder::new(TokioExecutor::new());
                        // kube-apiserver keeps Go's HTTP/2 default of 250 streams per
                        // connection (--http2-max-streams-per-connection=0).
                        builder.http2().max_concurrent_streams(HTTP2_MAX_STREAMS);
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    };
                    // Biased: "down" is checked before the connection may serve another request,
                    // so nothing is answered once `set_down(true)` has returned.
                    tokio::select! {
                        biased;
                        _ = conn_down.wait_for(|d| *d) => {}
                        _ = conn_shutdown.wait_for(|s| *s) => {}
                        _ = serve_conn => {}
                    }
                });
            }
            _ = down.changed() => {
                if !*down.borrow() {
                    listener = Some(l);
                }
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Query parameters, percent-decoded.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let pairs = q
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Query(pairs)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | ""))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The verb a request is counted (and authorised) as.
fn verb_of(
    method: &Method,
    route: &Option<Route>,
    query: &Query,
    content_type: &str,
) -> &'static str {
    let Some(Route::Resource(r)) = route else {
        return "discovery";
    };
    match *method {
        Method::GET if r.name.is_some() => "get",
        Method::GET if query.flag("watch") => "watch",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH if content_type.starts_with("application/apply-patch") => "apply",
        Method::PATCH => "patch",
        Method::DELETE if r.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    }
}

/// The label and field selectors of a list, watch or deletecollection request (an empty one is
/// no selector, as on a real API server).
fn selectors(query: &Query) -> ApiResult<(Option<LabelSelector>, Option<FieldSelector>)> {
    let labels = query
        .get("labelSelector")
        .filter(|s| !s.is_empty())
        .map(LabelSelector::parse)
        .transpose()?;
    let fields = query
        .get("fieldSelector")
        .filter(|s| !s.is_empty())
        .map(FieldSelector::parse)
        .transpose()?;
    Ok((labels, fields))
}

fn json_response(code: StatusCode, v: Value) -> Response {
    (code, axum::Json(v)).into_response()
}

async fn handle(State(st): State<Arc<ClusterState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let route = route::parse(parts.uri.path());
    let query = Query::parse(parts.uri.query());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let verb = verb_of(&parts.method, &route, &query, &content_type);
    let is_write = is_stored_write(&st, verb, &route) && query.get("dryRun").is_none();
    st.counters.record(verb, is_write);
    st.counters.log_request(verb, parts.uri.path(), is_write);
    // Authentication comes before the in-flight filter, as in kube-apiserver's handler chain;
    // the latency is the request's time in the server, so it holds its in-flight seat.
    let who = authenticate(&st, &parts.headers, &route);
    let masters = matches!(&who, Ok(Some(w)) if w.groups().iter().any(|g| g == "system:masters"));
    let serving = st.faults.in_flight.enter(verb, masters);
    let latency = st.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Some(_serving) = serving else {
        return too_many_requests();
    };
    if let Some(e) = st.faults.injected_error() {
        return e.into_response();
    }
    let who = match who {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let bytes = match axum::body::to_bytes(body, 32 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!("reading the request body: {e}")).into_response();
        }
    };
    let result = match route {
        None => Err(ApiError::no_route(parts.uri.path())),
        Some(Route::Resource(r)) => {
            resource_request(
                &st,
                who.as_ref(),
                &parts.method,
                verb,
                &r,
                &query,
                &content_type,
                &parts.headers,
                bytes,
            )
            .await
        }
        Some(other) => discovery(&st, &other, parts.uri.path(), &parts.headers),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The max-in-flight filter's answer, byte for byte what `http.Error` writes: plain text, not a
/// `Status`, with `Retry-After: 1`.
fn too_many_requests() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::HeaderName::from_static("x-content-type-options"),
                "nosniff",
            ),
            (header::RETRY_AFTER, "1"),
        ],
        "Too many requests, please try again later.\n",
    )
        .into_response()
}

fn is_stored_write(st: &ClusterState, verb: &str, route: &Option<Route>) -> bool {
    if !matches!(
        verb,
        "create" | "update" | "patch" | "apply" | "delete" | "deletecollection"
    ) {
        return false;
    }
    let Some(Route::Resource(r)) = route else {
        return false;
    };
    if r.subresource.as_deref() == Some("token") {
        return false;
    }
    st.lock()
        .registry
        .by_plural(&r.group, &r.version, &r.plural)
        .is_some_and(|d| d.behaviour == Behaviour::Stored)
}

/// `None` = anonymous (only allowed for `/version` and health checks).
fn authenticate(
    st: &ClusterState,
    headers: &HeaderMap,
    route: &Option<Route>,
) -> ApiResult<Option<Identity>> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(auth) = auth else {
        return match route {
            Some(Route::Version | Route::Health) => Ok(None),
            _ => Err(ApiError::unauthorized()),
        };
    };
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or_else(ApiError::unauthorized)?;
    let inner = st.lock();
    inner
        .tokens
        .authenticate(token.trim(), &inner.store)
        .map(Some)
        .ok_or_else(ApiError::unauthorized)
}

/// The aggregated-discovery media type a client accepts, if any (`v2`, or `v2beta1` from older
/// clients), as client-go asks for it on `/api` and `/apis`.
fn aggregated_discovery(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    accept.split(',').find_map(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        let wants = |k: &str| p.contains(&k);
        if !(wants("as=APIGroupDiscoveryList") && wants("g=apidiscovery.k8s.io")) {
            return None;
        }
        if wants("v=v2") {
            Some("v2")
        } else if wants("v=v2beta1") {
            Some("v2beta1")
        } else {
            None
        }
    })
}

fn discovery(
    st: &ClusterState,
    route: &Route,
    path: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let inner = st.lock();
    let ok = |v: Value| -> ApiResult<Response> { Ok(json_response(StatusCode::OK, v)) };
    if let (Route::Api | Route::Apis, Some(version)) = (route, aggregated_discovery(headers)) {
        let mut body = inner.registry.aggregated(*route == Route::Api);
        body["apiVersion"] = json!(format!("apidiscovery.k8s.io/{version}"));
        let content_type =
            format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::VARY, "Accept")
            .body(Body::from(body.to_string()))
            .unwrap_or_else(|_| {
                ApiError::internal("building the discovery response").into_response()
            }));
    }
    match route {
        Route::Version => ok(json!({
            "major": "1", "minor": "33", "gitVersion": GIT_VERSION,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
            "platform": "linux/amd64", "emulationMajor": "1", "emulationMinor": "33",
        })),
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::Api => ok(inner.registry.api_versions()),
        Route::Apis => ok(inner.registry.api_group_list()),
        Route::Group(g) => inner
            .registry
            .api_group(g)
            .map(|v| json_response(StatusCode::OK, v))
            .ok_or_else(|| ApiError::no_route(path)),
        Route::ResourceList { group, version } => inner
            .registry
            .resource_list(group, version)
            .map(|v| json_response(StatusCode::OK, v))
            .ok_or_else(|| ApiError::no_route(path)),
        Route::OpenApiRoot => ok(openapi::root(&inner.registry)),
        Route::OpenApiGroupVersion(gv) => openapi::group_version(&inner.registry, gv)
            .map(|v| json_response(StatusCode::OK, v))
            .ok_or_else(|| ApiError::no_route(path)),
        Route::Resource(_) => Err(ApiError::no_route(path)),
    }
}

fn decode_body(bytes: &Bytes, content_type: &str) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return crate::proto::decode(bytes);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            if content_type.contains("yaml") {
                serde_saphyr::from_str::<Value>(text)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
            } else {
                Err(ApiError::bad_request(format!(
                    "couldn't get version/kind; json parse error: {json_err}"
                )))
            }
        }
    }
}

fn manager_of(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    // The API server names an unnamed manager after the User-Agent's program part.
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .chars()
        .take(128)
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn resource_request(
    st: &Arc<ClusterState>,
    who: Option<&Identity>,
    method: &Method,
    verb: &str,
    r: &ResourcePath,
    query: &Query,
    content_type: &str,
    headers: &HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let Some(who) = who else {
        return Err(ApiError::unauthorized());
    };
    let def: ResourceDef = st
        .lock()
        .registry
        .by_plural(&r.group, &r.version, &r.plural)
        .cloned()
        .ok_or_else(|| ApiError::no_route(&format!("{}/{}/{}", r.group, r.version, r.plural)))?;
    if !def.namespaced && r.namespace.is_some() {
        return Err(ApiError::no_route(&r.plural));
    }
    let ns = r.namespace.as_deref();
    let rbac_verb = if verb == "apply" { "patch" } else { verb };
    let attrs = Attributes {
        verb: rbac_verb,
        group: &def.group,
        resource: &def.plural,
        subresource: r.subresource.as_deref(),
        name: r.name.as_deref(),
        namespace: ns,
    };
    if !rbac::allowed(&st.lock().store, who, &attrs) {
        return Err(ApiError::forbidden(
            &who.username(),
            rbac_verb,
            &def.group,
            &def.plural,
            r.subresource.as_deref(),
            r.name.as_deref(),
            ns,
        ));
    }
    let opts = WriteOpts {
        dry_run: query.get("dryRun").is_some_and(|d| d == "All"),
        manager: manager_of(query, headers),
        force: query.flag("force"),
        field_validation: crate::schema::FieldValidation::parse(query.get("fieldValidation"))?,
        warnings: Default::default(),
    };
    let created = |v: Value| -> ApiResult<Response> { Ok(json_response(StatusCode::CREATED, v)) };

    if def.behaviour == Behaviour::Review {
        if *method != Method::POST || r.name.is_some() {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                def.plural
            )));
        }
        let body = decode_body(&bytes, content_type)?;
        return match def.plural.as_str() {
            "selfsubjectaccessreviews" => {
                created(reviews::self_subject_access_review(st, who, &body)?)
            }
            "subjectaccessreviews" => created(reviews::subject_access_review(st, &body)?),
            "selfsubjectrulesreviews" => {
                created(reviews::self_subject_rules_review(st, who, &body)?)
            }
            _ => created(reviews::token_review(st, &body)?),
        };
    }

    let result = match (r.subresource.as_deref(), r.name.as_deref()) {
        (Some("token"), Some(name))
            if def.group.is_empty()
                && def.plural == "serviceaccounts"
                && *method == Method::POST =>
        {
            let body = if bytes.is_empty() {
                json!({})
            } else {
                decode_body(&bytes, content_type)?
            };
            let ns = ns.ok_or_else(|| ApiError::no_route("serviceaccounts/token"))?;
            created(reviews::token_request(st, ns, name, &body, opts.dry_run)?)
        }
        (Some("status"), Some(_)) if def.has_status => {
            object_request(
                st,
                &def,
                method,
                r,
                query,
                content_type,
                bytes,
                &opts,
                Some("status"),
                false,
            )
            .await
        }
        (Some(_), _) => Err(ApiError::no_route(&format!(
            "{}/{}",
            def.plural,
            r.subresource.as_deref().unwrap_or_default()
        ))),
        (None, _) => {
            let table = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(table::wanted);
            object_request(
                st,
                &def,
                method,
                r,
                query,
                content_type,
                bytes,
                &opts,
                None,
                table,
            )
            .await
        }
    };
    with_warnings(result, &opts.warnings)
}

/// Adds one `Warning: 299 - "<text>"` header per warning the write produced (as the real
/// server's warning recorder does), on success and failure alike.
fn with_warnings(
    result: ApiResult<Response>,
    warnings: &crate::schema::Warnings,
) -> ApiResult<Response> {
    let texts = warnings.take();
    if texts.is_empty() {
        return result;
    }
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    for t in texts {
        let escaped = t.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
async fn object_request(
    st: &Arc<ClusterState>,
    def: &ResourceDef,
    method: &Method,
    r: &ResourcePath,
    query: &Query,
    content_type: &str,
    bytes: Bytes,
    opts: &WriteOpts,
    sub: Option<&str>,
    table: bool,
) -> ApiResult<Response> {
    let ns = r.namespace.as_deref();
    if def.namespaced && ns.is_none() && r.name.is_some() {
        return Err(ApiError::no_route(&def.plural));
    }
    let ok = |v: Value| -> ApiResult<Response> { Ok(json_response(StatusCode::OK, v)) };
    match (method.clone(), r.name.as_deref()) {
        (Method::GET, Some(name)) if table && sub.is_none() => {
            let obj = ops::get(st, def, ns, name)?;
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            ok(table::render(def, &[obj], &rv))
        }
        (Method::GET, Some(name)) => ok(ops::get(st, def, ns, name)?),
        (Method::GET, None) => {
            let (labels, fields) = selectors(query)?;
            if query.flag("watch") {
                return watch_response(st, def, ns, labels, fields, query);
            }
            if table {
                let list = ops::list(st, def, ns, labels.as_ref(), fields.as_ref())?;
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let rv = list["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default();
                return ok(table::render(def, &items, rv));
            }
            let body = ops::list_json(st, def, ns, labels.as_ref(), fields.as_ref())?;
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response())
        }
        (Method::POST, None) => {
            let body = decode_body(&bytes, content_type)?;
            Ok(json_response(
                StatusCode::CREATED,
                ops::create(st, def, ns, body, opts)?,
            ))
        }
        (Method::PUT, Some(name)) => {
            let body = decode_body(&bytes, content_type)?;
            ok(ops::replace(st, def, ns, name, body, opts, sub)?)
        }
        (Method::PATCH, Some(name)) => {
            let kind = match content_type.split(';').next().unwrap_or_default().trim() {
                "application/merge-patch+json" => PatchKind::Merge,
                "application/json-patch+json" => PatchKind::Json,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml"
                | "application/apply-patch+json"
                | "application/apply-patch+cbor" => PatchKind::Apply,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let body = decode_body(&bytes, content_type)?;
            let (obj, was_created) = ops::patch(st, def, ns, name, kind, &body, opts, sub)?;
            Ok(json_response(
                if was_created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                obj,
            ))
        }
        (Method::DELETE, Some(name)) => {
            // DeleteOptions may carry preconditions: the object is deleted only if it is
            // still the one the client judged (its uid), as `storage.Preconditions.Check` does.
            // Only JSON DeleteOptions are read; a protobuf one (helm's) carries no
            // preconditions meshboot's tests need, and a real server accepts it either way.
            let delete_options = if bytes.is_empty() || !content_type.contains("json") {
                Value::Null
            } else {
                decode_body(&bytes, content_type)?
            };
            if let Some(want) = delete_options["preconditions"]["uid"].as_str() {
                ops::check_uid_precondition(st, def, ns, name, want)?;
            }
            ok(ops::delete(st, def, ns, name, opts)?)
        }
        (Method::DELETE, None) if sub.is_none() => {
            let (labels, fields) = selectors(query)?;
            let doomed = ops::list(st, def, ns, labels.as_ref(), fields.as_ref())?;
            let mut deleted = Vec::new();
            for item in doomed["items"].as_array().into_iter().flatten() {
                let name = item["metadata"]["name"].as_str().unwrap_or_default();
                let item_ns = item["metadata"]["namespace"].as_str();
                match ops::delete(st, def, item_ns, name, opts) {
                    Ok(o) => deleted.push(o),
                    // Raced with another delete, or a protected namespace: skip it as the real
                    // server's best-effort collection delete does.
                    Err(e) if e.code == 404 || e.code == 403 => {}
                    Err(e) => return Err(e),
                }
            }
            ok(
                json!({"apiVersion": def.api_version(), "kind": format!("{}List", def.kind), "metadata": {}, "items": deleted}),
            )
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            def.plural
        ))),
    }
}

/// A `?watch=true` stream. Without a resourceVersion it starts with the current objects as
/// `ADDED`; with one (from a list or an earlier event) it replays what happened since, so a
/// list-then-watch client misses nothing. Ends after `timeoutSeconds` (default 30 min).
fn watch_response(
    st: &Arc<ClusterState>,
    def: &ResourceDef,
    ns: Option<&str>,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    query: &Query,
) -> ApiResult<Response> {
    let ns = if def.namespaced {
        ns.map(str::to_string)
    } else {
        None
    };
    let (group, plural) = (def.group.clone(), def.plural.clone());
    let matches = move |o: &Value| {
        ns.as_deref()
            .is_none_or(|n| o["metadata"]["namespace"].as_str() == Some(n))
            && labels.as_ref().is_none_or(|l| l.matches(o))
            && fields.as_ref().is_none_or(|f| f.matches(o))
    };
    let ours = {
        let (group, plural) = (group.clone(), plural.clone());
        move |ev: &watchhub::Event| ev.group == group && ev.plural == plural
    };
    // `sendInitialEvents=true` (the WatchList client, on by default since client-go 1.35) asks
    // for the current objects, then a bookmark annotated `k8s.io/initial-events-end`.
    let send_initial = query.flag("sendInitialEvents");
    let from = query
        .get("resourceVersion")
        .filter(|rv| !rv.is_empty() && *rv != "0" && !send_initial);
    let bookmark_kind = (def.api_version(), def.kind.clone());
    let (rx, mut initial, last): (_, VecDeque<Value>, u64) = match from {
        Some(rv) => {
            let since: u64 = rv.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {rv:?} for watch"))
            })?;
            let (rx, replay) = st
                .watch
                .resume(since)
                .map_err(|_| ApiError::expired(since))?;
            let last = replay.last().map_or(since, |e| e.rv);
            let initial = replay
                .iter()
                .filter(|e| ours(e) && matches(&e.object))
                .map(|e| e.to_json())
                .collect();
            (rx, initial, last)
        }
        None => {
            let inner = st.lock();
            let rx = st.watch.subscribe();
            let initial = inner
                .store
                .list(&group, &plural, None)
                .filter(|o| matches(o))
                .map(|o| json!({"type": "ADDED", "object": o}))
                .collect();
            (rx, initial, inner.store.last_rv())
        }
    };
    if send_initial {
        initial.push_back(json!({"type": "BOOKMARK", "object": {
            "apiVersion": bookmark_kind.0, "kind": bookmark_kind.1,
            "metadata": {"resourceVersion": last.to_string(), "creationTimestamp": null,
                "annotations": {"k8s.io/initial-events-end": "true"}},
        }}));
    }
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let stream = futures::stream::unfold(
        (initial, rx, last),
        move |(mut initial, mut rx, mut last)| {
            let matches = matches.clone();
            let ours = ours.clone();
            async move {
                if let Some(ev) = initial.pop_front() {
                    return Some((
                        Ok::<_, std::convert::Infallible>(line(&ev)),
                        (initial, rx, last),
                    ));
                }
                loop {
                    let ev: Arc<watchhub::Event> =
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Ok(ev)) => ev,
                            // Lagged or closed: end the stream; the client re-watches from the last
                            // resourceVersion it saw and the history fills the gap.
                            _ => return None,
                        };
                    if ev.rv <= last {
                        continue;
                    }
                    last = ev.rv;
                    if ours(&ev) && matches(&ev.object) {
                        return Some((Ok(line(&ev.to_json())), (initial, rx, last)));
                    }
                }
            }
        },
    );
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| ApiError::internal("building the watch response").into_response()))
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_percent_decoded_and_tolerates_leading_ampersand() {
        let q = Query::parse(Some(
            "&labelSelector=istio%2FmultiCluster%3Dtrue&force=true&fieldManager=meshboot",
        ));
        assert_eq!(q.get("labelSelector"), Some("istio/multiCluster=true"));
        assert!(q.flag("force"));
        assert!(!q.flag("watch"), "an absent flag is false");
        assert!(!Query::parse(Some("force=false")).flag("force"));
        assert_eq!(q.get("fieldManager"), Some("meshboot"));
        assert_eq!(percent_decode("100%"), "100%");
    }
}
