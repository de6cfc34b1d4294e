//! Object operations of one cluster (get, list, create, update, patch, server-side apply,
//! delete), shared by the HTTP layer and the direct test API. Every write goes through one
//! pipeline: decode checks, normalisation, validation, server metadata, ownership, no-op
//! detection, store, watch event, controller notification.

use serde_json::{Value, json};

use crate::apply::{self, ApplyRequest};
use crate::cluster::{ClusterState, Inner, api_version_of};
use crate::fields;
use crate::resources::{Behaviour, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, Subject};
use crate::store::{Key, new_uid, now_rfc3339};
use crate::validate;

/// Options shared by every write.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOpts {
    /// `dryRun=All`: validate and answer, store nothing.
    pub(crate) dry_run: bool,
    /// `fieldManager` (or the name derived from the User-Agent).
    pub(crate) manager: String,
    /// `force=true` (server-side apply only).
    pub(crate) force: bool,
    /// `fieldValidation` (custom resources: what unknown fields cause).
    pub(crate) field_validation: crate::schema::FieldValidation,
    /// Where the write's `Warning` headers collect.
    pub(crate) warnings: crate::schema::Warnings,
}

/// The patch flavours the server accepts, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

fn subject<'a>(def: &'a ResourceDef, name: &'a str) -> Subject<'a> {
    Subject {
        group: &def.group,
        plural: &def.plural,
        name,
    }
}

fn key(def: &ResourceDef, ns: Option<&str>, name: &str) -> Key {
    Key::new(
        &def.group,
        &def.plural,
        if def.namespaced { ns } else { None },
        name,
    )
}

/// `GET` one object.
pub(crate) fn get(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    st.lock()
        .store
        .get(&key(def, ns, name))
        .cloned()
        .ok_or_else(|| ApiError::not_found(subject(def, name)))
}

/// `GET` a collection, filtered by selectors.
pub(crate) fn list(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    labels: Option<&LabelSelector>,
    fields_sel: Option<&FieldSelector>,
) -> ApiResult<Value> {
    let inner = st.lock();
    let items: Vec<Value> = inner
        .store
        .list(
            &def.group,
            &def.plural,
            if def.namespaced { ns } else { None },
        )
        .filter(|o| labels.is_none_or(|l| l.matches(o)) && fields_sel.is_none_or(|f| f.matches(o)))
        .cloned()
        .collect();
    Ok(json!({
        "apiVersion": def.api_version(),
        "kind": format!("{}List", def.kind),
        "metadata": {"resourceVersion": inner.store.current_rv()},
        "items": items,
    }))
}

/// [`list`] as the JSON the server sends, written straight from the store: a list of 99
/// remote secrets is half a megabyte, and a 100-cluster bench lists 100 of them at once on
/// the machine that runs meshboot too, so the items are not cloned first.
pub(crate) fn list_json(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    labels: Option<&LabelSelector>,
    fields_sel: Option<&FieldSelector>,
) -> ApiResult<Vec<u8>> {
    let inner = st.lock();
    let head = json!({
        "apiVersion": def.api_version(),
        "kind": format!("{}List", def.kind),
        "metadata": {"resourceVersion": inner.store.current_rv()},
    });
    let mut out = serde_json::to_vec(&head).map_err(|e| ApiError::internal(e.to_string()))?;
    // `{...}` becomes `{..., "items": [...]}`.
    out.pop();
    out.extend_from_slice(b",\"items\":[");
    let items = inner
        .store
        .list(
            &def.group,
            &def.plural,
            if def.namespaced { ns } else { None },
        )
        .filter(|o| labels.is_none_or(|l| l.matches(o)) && fields_sel.is_none_or(|f| f.matches(o)));
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, item).map_err(|e| ApiError::internal(e.to_string()))?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Checks `apiVersion`/`kind` of a body against the resource addressed by the URL.
fn check_type(def: &ResourceDef, body: &Value, required: bool) -> ApiResult<()> {
    let av = body["apiVersion"].as_str();
    let kind = body["kind"].as_str();
    if required && (av.is_none() || kind.is_none()) {
        // The real message quotes the body; ours does not, since bodies may carry Secret data.
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: Object 'Kind' is missing in the request body",
            def.kind, def.version, def.kind
        )));
    }
    if av.is_some_and(|a| a != def.api_version()) || kind.is_some_and(|k| k != def.kind) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            av.unwrap_or_default(),
            def.api_version()
        )));
    }
    Ok(())
}

fn check_namespace(def: &ResourceDef, body: &mut Value, ns: Option<&str>) -> ApiResult<()> {
    if !def.namespaced {
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        return Ok(());
    }
    let Some(ns) = ns else {
        return Err(ApiError::bad_request(
            "the namespace of the object must be set in the request path",
        ));
    };
    match body["metadata"]["namespace"].as_str() {
        Some(b) if !b.is_empty() && b != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            body["metadata"]["namespace"] = json!(ns);
            Ok(())
        }
    }
}

fn check_name(body: &Value, name: &str) -> ApiResult<()> {
    match body["metadata"]["name"].as_str() {
        Some(b) if b != name => Err(ApiError::bad_request(format!(
            "the name of the object ({b}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

/// `POST` a new object.
pub(crate) fn create(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    mut body: Value,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    if def.behaviour != Behaviour::Stored {
        return Err(ApiError::method_not_allowed(
            "reviews are answered, not stored",
        ));
    }
    validate::decode_checks(def, &body)?;
    check_type(def, &body, false)?;
    check_namespace(def, &mut body, ns)?;
    let generate = body["metadata"]["generateName"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    if let (true, Some(prefix)) = (
        body["metadata"]["name"].as_str().is_none_or(str::is_empty),
        generate,
    ) {
        body["metadata"]["name"] = json!(format!("{prefix}{}", random_suffix()));
    }

    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut inner = st.lock();
    if !name.is_empty() && inner.store.get(&key(def, ns, &name)).is_some() {
        return Err(ApiError::already_exists(subject(def, &name)));
    }
    finish_write(st, &mut inner, def, None, body, opts, None, true)
}

/// `PUT` a replacement (or `/status`).
pub(crate) fn replace(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    mut body: Value,
    opts: &WriteOpts,
    sub: Option<&str>,
) -> ApiResult<Value> {
    validate::decode_checks(def, &body)?;
    check_type(def, &body, false)?;
    check_name(&body, name)?;
    check_namespace(def, &mut body, ns)?;
    body["metadata"]["name"] = json!(name);
    let mut inner = st.lock();
    let old = inner
        .store
        .get(&key(def, ns, name))
        .cloned()
        .ok_or_else(|| ApiError::not_found(subject(def, name)))?;
    check_precondition(def, &old, &body, name)?;
    finish_write(st, &mut inner, def, Some(&old), body, opts, sub, true)
}

fn check_precondition(def: &ResourceDef, old: &Value, new: &Value, name: &str) -> ApiResult<()> {
    match new["metadata"]["resourceVersion"].as_str() {
        Some(rv) if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() => {
            Err(ApiError::stale(subject(def, name)))
        }
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
/// `PATCH` with any of the four patch types; apply creates missing objects. Returns the object
/// and whether it was created.
pub(crate) fn patch(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    kind: PatchKind,
    body: &Value,
    opts: &WriteOpts,
    sub: Option<&str>,
) -> ApiResult<(Value, bool)> {
    let mut inner = st.lock();
    let old = inner.store.get(&key(def, ns, name)).cloned();
    if kind == PatchKind::Apply {
        return apply_locked(st, &mut inner, def, ns, name, old, body, opts, sub);
    }
    let old = old.ok_or_else(|| ApiError::not_found(subject(def, name)))?;
    let mut new = old.clone();
    match kind {
        PatchKind::Merge => json_patch::merge(&mut new, body),
        PatchKind::Strategic => fields::strategic_merge(&mut new, body),
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(body.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            json_patch::patch(&mut new, &ops).map_err(|e| {
                let mut err = ApiError::invalid(&def.kind, &def.group, name, Vec::new());
                err.message =
                    format!("the server rejected our request due to an error in our request: {e}");
                err
            })?;
        }
        PatchKind::Apply => {}
    }
    validate::decode_checks(def, &new)?;
    check_precondition(def, &old, &new, name)?;
    if new["metadata"]["resourceVersion"].is_null() {
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    }
    finish_write(st, &mut inner, def, Some(&old), new, opts, sub, true).map(|o| (o, false))
}

#[allow(clippy::too_many_arguments)]
fn apply_locked(
    st: &ClusterState,
    inner: &mut Inner,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    old: Option<Value>,
    body: &Value,
    opts: &WriteOpts,
    sub: Option<&str>,
) -> ApiResult<(Value, bool)> {
    let mut applied = body.clone();
    validate::decode_checks(def, &applied)?;
    check_type(def, &applied, true)?;
    check_name(&applied, name)?;
    check_namespace(def, &mut applied, ns)?;
    applied["metadata"]["name"] = json!(name);
    if let Some(old) = &old {
        check_precondition(def, old, &applied, name)?;
    }
    validate::normalize(def, &mut applied);
    if opts.manager.is_empty() {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let status_only = sub == Some("status");
    let applied_for_merge = if status_only {
        json!({"apiVersion": applied["apiVersion"], "kind": applied["kind"], "metadata": {"name": name}, "status": applied["status"]})
    } else {
        applied
    };
    let req = ApplyRequest {
        manager: &opts.manager,
        force: opts.force,
        api_version: &def.api_version(),
        ignore_status: def.has_status && !status_only,
    };
    let result =
        apply::server_side_apply(old.as_ref(), &applied_for_merge, req).map_err(|conflicts| {
            let pairs: Vec<(String, String)> = conflicts
                .into_iter()
                .map(|c| (c.owner(), c.field))
                .collect();
            ApiError::apply_conflict(&pairs)
        })?;
    let created = old.is_none();
    if !result.changed {
        return Ok((result.object, false));
    }
    finish_write(
        st,
        inner,
        def,
        old.as_ref(),
        result.object,
        opts,
        sub,
        false,
    )
    .map(|o| (o, created))
}

/// 409 when the object's uid is not `want` (a DELETE's `preconditions.uid`), worded as
/// apimachinery's `Preconditions.Check` error reaches the client.
pub(crate) fn check_uid_precondition(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    want: &str,
) -> ApiResult<()> {
    let inner = st.lock();
    let Some(obj) = inner.store.get(&key(def, ns, name)) else {
        return Err(ApiError::not_found(subject(def, name)));
    };
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
    if uid == want {
        return Ok(());
    }
    let mut e = ApiError::stale(subject(def, name));
    e.message = format!(
        "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {want}, UID in object meta: {uid}",
        subject(def, name).qualified()
    );
    Err(e)
}

/// `DELETE` an object (a namespace takes its contents with it).
pub(crate) fn delete(
    st: &ClusterState,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let mut inner = st.lock();
    let k = key(def, ns, name);
    let Some(obj) = inner.store.get(&k).cloned() else {
        return Err(ApiError::not_found(subject(def, name)));
    };
    let is_namespace = def.group.is_empty() && def.plural == "namespaces";
    if is_namespace && matches!(name, "default" | "kube-system" | "kube-public") {
        let mut e = ApiError::forbidden("", "delete", "", "namespaces", None, Some(name), None);
        e.message =
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted");
        return Err(e);
    }
    if opts.dry_run {
        return Ok(obj);
    }
    if is_namespace {
        for inside in inner.store.keys_in_namespace(name) {
            if let Some(o) = inner.store.remove(&inside) {
                st.watch.publish(
                    &inside.group,
                    &inside.plural,
                    "DELETED",
                    &o,
                    inner.store.last_rv(),
                );
                let _ = st.controller_tx.send(inside);
            }
        }
    }
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        // The CRD's finalizer deletes every custom resource of it before the kind stops being
        // served.
        let group = obj["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = obj["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let doomed: Vec<Key> = inner
            .store
            .list(&group, &plural, None)
            .filter_map(|o| {
                Some(Key::new(
                    &group,
                    &plural,
                    o["metadata"]["namespace"].as_str(),
                    o["metadata"]["name"].as_str()?,
                ))
            })
            .collect();
        for ck in doomed {
            if let Some(o) = inner.store.remove(&ck) {
                st.watch
                    .publish(&group, &plural, "DELETED", &o, inner.store.last_rv());
            }
        }
        inner.registry.unregister_crd(&group, &plural);
    }
    inner.store.remove(&k);
    st.watch.publish(
        &def.group,
        &def.plural,
        "DELETED",
        &obj,
        inner.store.last_rv(),
    );
    let _ = st.controller_tx.send(k);
    Ok(obj)
}

/// What a write must change to be stored: everything but the resourceVersion and the
/// managedFields timestamps (a no-op write does not bump them on a real server; comparing them
/// made an unchanged apply that crossed a second boundary look like a change).
fn content(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        if let Some(entries) = m.get_mut("managedFields").and_then(Value::as_array_mut) {
            for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                e.remove("time");
            }
        }
    }
    o
}

fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

/// The write pipeline. `old` is the stored object (None on create); `track_update` records
/// ownership for non-apply writes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_write(
    st: &ClusterState,
    inner: &mut Inner,
    def: &ResourceDef,
    old: Option<&Value>,
    mut new: Value,
    opts: &WriteOpts,
    sub: Option<&str>,
    track_update: bool,
) -> ApiResult<Value> {
    validate::decode_checks(def, &new)?;
    validate::normalize(def, &mut new);
    // After the merge, not before: server-side apply compares the applied spelling with the
    // live one (another manager's "2" and an applied "2000m" conflict, as on a real server).
    validate::canonicalize_quantities(def, &mut new)?;
    new["apiVersion"] = json!(def.api_version());
    new["kind"] = json!(def.kind);
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    if let Some(old) = old {
        // Only the status changes through /status; only the rest through the main resource.
        if sub == Some("status") {
            let status = new["status"].clone();
            new = old.clone();
            new["status"] = status;
        } else if def.has_status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        validate::validate_update(def, old, &new)?;
    } else if def.has_status
        && let Some(m) = new.as_object_mut()
    {
        m.remove("status");
    }
    // Custom resources: prune, default and validate against the CRD schema. Server-side apply is
    // the one path that records ownership itself (`track_update` false), and words Strict
    // refusals its own way.
    crate::schema::check(
        inner,
        def,
        &mut new,
        opts.field_validation,
        &opts.warnings,
        !track_update,
    )?;
    validate::validate_object(def, &new)?;
    let name = new["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = new["metadata"]["namespace"].as_str().map(str::to_string);
    if def.namespaced {
        let ns_name = ns.clone().unwrap_or_default();
        if inner
            .store
            .get(&Key::new("", "namespaces", None, &ns_name))
            .is_none()
        {
            return Err(ApiError::not_found(Subject {
                group: "",
                plural: "namespaces",
                name: &ns_name,
            }));
        }
    }
    // Defaults before the generation: a write that only omits defaulted fields changes nothing.
    apply_defaults(def, &mut new, old);
    match old {
        Some(old) => {
            for f in ["uid", "creationTimestamp", "resourceVersion"] {
                new["metadata"][f] = old["metadata"][f].clone();
            }
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let bumped = if spec_part(old) != spec_part(&new) {
                generation + 1
            } else {
                generation
            };
            if tracks_generation(def) {
                new["metadata"]["generation"] = json!(bumped);
            }
        }
        None => {
            new["metadata"]["uid"] = json!(new_uid());
            new["metadata"]["creationTimestamp"] = json!(now_rfc3339());
            if tracks_generation(def) {
                new["metadata"]["generation"] = json!(1);
            }
        }
    }
    if track_update {
        apply::record_update(old, &mut new, &opts.manager, &def.api_version(), sub);
    }
    if let Some(old) = old.filter(|o| content(o) == content(&new)) {
        return Ok(old.clone());
    }
    if opts.dry_run {
        return Ok(new);
    }
    let k = Key::new(&def.group, &def.plural, ns.as_deref(), &name);
    Ok(store_and_notify(st, inner, def, k, new, old.is_some()))
}

/// A controller's write of an object's status through the `status` subresource (as manager
/// `manager`); a failure is logged as `what` and reported to the caller. Nothing is written when
/// the status is already `status`.
pub(crate) fn write_status(
    st: &ClusterState,
    inner: &mut Inner,
    def: &ResourceDef,
    old: &Value,
    status: Value,
    manager: &str,
    what: &str,
) -> Option<Value> {
    if old["status"] == status {
        return Some(old.clone());
    }
    let mut new = old.clone();
    new["status"] = status;
    let opts = WriteOpts {
        dry_run: false,
        manager: manager.into(),
        force: false,
        ..Default::default()
    };
    match finish_write(st, inner, def, Some(old), new, &opts, Some("status"), true) {
        Ok(stored) => Some(stored),
        Err(e) => {
            let name = old["metadata"]["name"].as_str().unwrap_or_default();
            tracing::warn!(cluster = %st.name, object = %name, "{what}: {e}");
            None
        }
    }
}

/// The one place an object is stored: registers a CRD's kind, tells watchers, wakes the
/// controllers. Every write path (HTTP and test set-up) goes through it so none forgets a step.
fn store_and_notify(
    st: &ClusterState,
    inner: &mut Inner,
    def: &ResourceDef,
    k: Key,
    obj: Value,
    existed: bool,
) -> Value {
    let stored = inner.store.put(k.clone(), obj);
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        inner.registry.register_crd(&stored);
    }
    st.watch.publish(
        &def.group,
        &def.plural,
        if existed { "MODIFIED" } else { "ADDED" },
        &stored,
        inner.store.last_rv(),
    );
    let _ = st.controller_tx.send(k);
    stored
}

/// Whether the kind has `metadata.generation` (workloads and custom resources do; core, RBAC and
/// discovery objects do not).
fn tracks_generation(def: &ResourceDef) -> bool {
    !(def.group.is_empty()
        || def.group == "rbac.authorization.k8s.io"
        || def.group == "discovery.k8s.io")
}

/// Fields the API server fills in: Namespace phase and name label; Service type, cluster IP,
/// port protocol and target port, node ports for NodePort/LoadBalancer, traffic policies.
/// Allocated values (cluster IP, node ports) carry over from the stored object.
fn apply_defaults(def: &ResourceDef, obj: &mut Value, old: Option<&Value>) {
    crate::defaults::apply(&def.group, &def.plural, obj);
    if !def.group.is_empty() {
        return;
    }
    match def.plural.as_str() {
        "namespaces" => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            if obj["spec"]["finalizers"].is_null() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            if obj["status"]["phase"].is_null() {
                obj["status"]["phase"] = json!("Active");
            }
        }
        "services" => service_defaults(obj, old),
        _ => {}
    }
}

fn service_defaults(obj: &mut Value, old: Option<&Value>) {
    let spec = &mut obj["spec"];
    if spec["type"].is_null() {
        spec["type"] = json!("ClusterIP");
    }
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty == "ExternalName" {
        return;
    }
    if spec["clusterIP"].is_null() {
        let ip = match old.and_then(|o| o["spec"]["clusterIP"].as_str()) {
            Some(ip) => ip.to_string(),
            None => {
                let b: [u8; 2] = rand::random();
                format!("10.96.{}.{}", b[0], b[1].max(1))
            }
        };
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
    }
    for (k, v) in [
        ("sessionAffinity", json!("None")),
        ("ipFamilies", json!(["IPv4"])),
        ("ipFamilyPolicy", json!("SingleStack")),
        ("internalTrafficPolicy", json!("Cluster")),
    ] {
        if spec[k].is_null() {
            spec[k] = v;
        }
    }
    let external = ty == "NodePort" || ty == "LoadBalancer";
    if external && spec["externalTrafficPolicy"].is_null() {
        spec["externalTrafficPolicy"] = json!("Cluster");
    }
    if ty == "LoadBalancer" && spec["allocateLoadBalancerNodePorts"].is_null() {
        spec["allocateLoadBalancerNodePorts"] = json!(true);
    }
    let old_ports = old
        .and_then(|o| o["spec"]["ports"].as_array().cloned())
        .unwrap_or_default();
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports.iter_mut() {
            if p["protocol"].is_null() {
                p["protocol"] = json!("TCP");
            }
            if p["targetPort"].is_null() {
                p["targetPort"] = p["port"].clone();
            }
            if external && p["nodePort"].is_null() {
                let kept = old_ports
                    .iter()
                    .find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"])
                    .map(|o| o["nodePort"].clone());
                p["nodePort"] = match kept.filter(|n| !n.is_null()) {
                    Some(n) => n,
                    None => json!(rand::random_range(30000..=32767)),
                };
            }
        }
    }
    if old.is_none() && obj["status"].is_null() {
        obj["status"] = json!({"loadBalancer": {}});
    }
}

/// Stores an object without HTTP (test set-up): upsert, no validation.
pub(crate) fn insert_direct(st: &ClusterState, mut obj: Value) -> anyhow::Result<Value> {
    let (group, version) = api_version_of(&obj);
    let av = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let mut inner = st.lock();
    let def =
        inner.registry.by_kind(&av, &kind).cloned().ok_or_else(|| {
            anyhow::anyhow!("cluster {}: no resource serves {av} {kind}", st.name)
        })?;
    let name = obj["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow::anyhow!("cluster {}: {kind} without metadata.name", st.name))?
        .to_string();
    let ns = if def.namespaced {
        Some(
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        )
    } else {
        None
    };
    if let Some(ns) = &ns {
        obj["metadata"]["namespace"] = json!(ns);
    }
    validate::decode_checks(&def, &obj).map_err(|e| anyhow::anyhow!("cluster {}: {e}", st.name))?;
    validate::normalize(&def, &mut obj);
    validate::canonicalize_quantities(&def, &mut obj)
        .map_err(|e| anyhow::anyhow!("cluster {}: {e}", st.name))?;
    let k = key(&def, ns.as_deref(), &name);
    let old = inner.store.get(&k).cloned();
    match &old {
        Some(o) => {
            obj["metadata"]["uid"] = o["metadata"]["uid"].clone();
            obj["metadata"]["creationTimestamp"] = o["metadata"]["creationTimestamp"].clone();
        }
        None => {
            if obj["metadata"]["uid"].is_null() {
                obj["metadata"]["uid"] = json!(new_uid());
            }
            obj["metadata"]["creationTimestamp"] = json!(now_rfc3339());
        }
    }
    if obj["metadata"]["generation"].is_null() && tracks_generation(&def) {
        obj["metadata"]["generation"] = json!(1);
    }
    apply_defaults(&def, &mut obj, old.as_ref());
    Ok(store_and_notify(
        st,
        &mut inner,
        &def,
        k,
        obj,
        old.is_some(),
    ))
}
