//! Requests answered on the spot and never stored: TokenRequest, SelfSubjectAccessReview,
//! SubjectAccessReview and TokenReview.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::auth::Identity;
use crate::cluster::ClusterState;
use crate::rbac::{self, Attributes};
use crate::status::{ApiError, ApiResult, FieldCause, Subject};
use crate::store::Key;
use crate::tokens::{BoundKind, BoundObject};

fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `POST .../serviceaccounts/<name>/token`: issues a bound token as
/// `pkg/registry/core/serviceaccount/storage/token.go` does: `spec.expirationSeconds` (default one
/// hour, at least the configured minimum — 10 minutes on a real server — at most 2^32 seconds,
/// capped at the server's maximum when one is set), `spec.audiences` (default the API server's)
/// and `spec.boundObjectRef` (a Secret, a Pod running as this ServiceAccount, or a Node; it must
/// exist and match its `uid` when one is given).
pub(crate) fn token_request(
    st: &ClusterState,
    ns: &str,
    sa_name: &str,
    body: &Value,
    dry_run: bool,
) -> ApiResult<Value> {
    let mut inner = st.lock();
    let sa = inner
        .store
        .get(&Key::new("", "serviceaccounts", Some(ns), sa_name))
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(Subject {
                group: "",
                plural: "serviceaccounts",
                name: sa_name,
            })
        })?;
    let requested = body["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
    let min = i64::try_from(st.min_token_ttl.as_secs()).unwrap_or(600);
    let invalid = |detail: String| {
        ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            sa_name,
            // Go prints an integer value unquoted.
            vec![FieldCause {
                reason: "FieldValueInvalid",
                field: "spec.expirationSeconds".into(),
                message: format!("Invalid value: {requested}: {detail}"),
            }],
        )
    };
    if requested < min {
        let least = if min % 60 == 0 {
            format!("{} minutes", min / 60)
        } else {
            format!("{min} seconds")
        };
        return Err(invalid(format!(
            "may not specify a duration less than {least}"
        )));
    }
    if requested > (1 << 32) {
        return Err(invalid(
            "may not specify a duration larger than 2^32 seconds".into(),
        ));
    }
    let granted = match st.max_token_ttl {
        Some(max) => requested.min(i64::try_from(max.as_secs()).unwrap_or(i64::MAX)),
        None => requested,
    };
    let audiences: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let audiences = if audiences.is_empty() {
        inner.tokens.api_audiences()
    } else {
        audiences
    };
    let bound = match body["spec"]["boundObjectRef"].as_object() {
        Some(r) => Some(bound_object(&inner.store, ns, sa_name, r)?),
        None => None,
    };
    let uid = sa["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ttl = Duration::from_secs(granted.unsigned_abs());
    let (token, expires) = if dry_run {
        (String::new(), inner.tokens.now() + ttl)
    } else {
        inner
            .tokens
            .issue_bound(ns, sa_name, &uid, ttl, &audiences, bound)
    };
    let mut spec = match &body["spec"] {
        Value::Null => json!({}),
        Value::Object(m) => Value::Object(m.clone()),
        _ => return Err(ApiError::bad_request("TokenRequest spec must be an object")),
    };
    spec["expirationSeconds"] = json!(granted);
    spec["audiences"] = json!(audiences);
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa_name, "namespace": ns, "creationTimestamp": null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
    }))
}

/// Resolves `spec.boundObjectRef` with the real server's checks and wording.
fn bound_object(
    store: &crate::store::Store,
    ns: &str,
    sa_name: &str,
    r: &serde_json::Map<String, Value>,
) -> ApiResult<BoundObject> {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind, name, want_uid) = (s("apiVersion"), s("kind"), s("name"), s("uid"));
    let (group, version) = crate::resources::split_api_version(api_version);
    let (bound_kind, plural) = match (group, kind) {
        ("", "Secret") => (BoundKind::Secret, "secrets"),
        ("", "Pod") => (BoundKind::Pod, "pods"),
        ("", "Node") => (BoundKind::Node, "nodes"),
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    let obj_ns = (bound_kind != BoundKind::Node).then_some(ns);
    let obj = store
        .get(&Key::new("", plural, obj_ns, name))
        .ok_or_else(|| {
            ApiError::not_found(Subject {
                group: "",
                plural,
                name,
            })
        })?;
    if bound_kind == BoundKind::Pod {
        let runs_as = obj["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or_default();
        if runs_as != sa_name {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {sa_name:?} to pod running with serviceaccount {runs_as:?}"
            )));
        }
    }
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
    if !want_uid.is_empty() && want_uid != uid {
        // NewConflict over GroupResource{Resource: <Kind>}, as token.go builds it.
        let mut e = ApiError::stale(Subject {
            group: "",
            plural: kind,
            name,
        });
        e.message = format!(
            "Operation cannot be fulfilled on {kind} \"{name}\": the UID in the bound object reference ({want_uid}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
        );
        return Err(e);
    }
    // A scheduled Pod's token also names its Node (only when the Node exists).
    let node = (bound_kind == BoundKind::Pod)
        .then(|| obj["spec"]["nodeName"].as_str())
        .flatten()
        .and_then(|n| {
            let node = store.get(&Key::new("", "nodes", None, n))?;
            Some((
                n.to_string(),
                node["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ))
        });
    Ok(BoundObject {
        kind: bound_kind,
        name: name.to_string(),
        uid: uid.to_string(),
        node,
    })
}

fn attributes_from(spec: &Value) -> (Option<Attributes<'_>>, bool) {
    let ra = &spec["resourceAttributes"];
    if ra.is_object() {
        let s = |k: &str| ra[k].as_str().filter(|v| !v.is_empty());
        let attrs = Attributes {
            verb: s("verb").unwrap_or_default(),
            group: s("group").unwrap_or_default(),
            resource: s("resource").unwrap_or_default(),
            subresource: s("subresource"),
            name: s("name"),
            namespace: s("namespace"),
        };
        (Some(attrs), false)
    } else {
        (None, spec["nonResourceAttributes"].is_object())
    }
}

fn review_answer(kind: &str, body: &Value, allowed: bool, reason: &str) -> Value {
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    json!({
        "kind": kind,
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": body["spec"],
        "status": status,
    })
}

/// `POST selfsubjectaccessreviews`: answers for the caller.
pub(crate) fn self_subject_access_review(
    st: &ClusterState,
    who: &Identity,
    body: &Value,
) -> ApiResult<Value> {
    let (attrs, non_resource) = attributes_from(&body["spec"]);
    let allowed = match attrs {
        Some(a) => rbac::allowed(&st.lock().store, who, &a),
        // Discovery and health paths are open to every authenticated user (system:discovery).
        None if non_resource => true,
        None => {
            return Err(ApiError::invalid(
                "SelfSubjectAccessReview",
                "authorization.k8s.io",
                "",
                vec![FieldCause::required("spec.resourceAttributes")],
            ));
        }
    };
    let reason = match (allowed, who) {
        (true, Identity::Admin) => "",
        (true, _) => "RBAC: allowed by a role binding",
        (false, _) => "",
    };
    Ok(review_answer(
        "SelfSubjectAccessReview",
        body,
        allowed,
        reason,
    ))
}

/// `POST selfsubjectrulesreviews`: the caller's rules in `spec.namespace`.
pub(crate) fn self_subject_rules_review(
    st: &ClusterState,
    who: &Identity,
    body: &Value,
) -> ApiResult<Value> {
    let ns = body["spec"]["namespace"].as_str().unwrap_or("default");
    let rules = rbac::rules_for(&st.lock().store, who, ns);
    Ok(json!({
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"namespace": ns},
        "status": {
            "resourceRules": rules,
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/version", "/healthz", "/openapi/*"]}],
            "incomplete": false,
        },
    }))
}

/// `POST subjectaccessreviews`: answers for `spec.user` / `spec.groups`.
pub(crate) fn subject_access_review(st: &ClusterState, body: &Value) -> ApiResult<Value> {
    let spec = &body["spec"];
    let user = spec["user"].as_str().unwrap_or_default();
    let groups: Vec<&str> = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let who = if groups.contains(&"system:masters") {
        Some(Identity::Admin)
    } else {
        user.strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
            .map(|(ns, name)| Identity::ServiceAccount {
                namespace: ns.into(),
                name: name.into(),
                uid: spec["uid"].as_str().unwrap_or_default().into(),
            })
    };
    let (attrs, non_resource) = attributes_from(spec);
    let allowed = match (who, attrs) {
        (Some(w), Some(a)) => rbac::allowed(&st.lock().store, &w, &a),
        (Some(_), None) => non_resource,
        (None, _) => false,
    };
    Ok(review_answer("SubjectAccessReview", body, allowed, ""))
}

/// `POST tokenreviews`: whether `spec.token` authenticates for `spec.audiences` (default the
/// API server's), as whom, and otherwise the validator's reason in `status.error`.
pub(crate) fn token_review(st: &ClusterState, body: &Value) -> ApiResult<Value> {
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let inner = st.lock();
    let wanted: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let audiences = if wanted.is_empty() {
        inner.tokens.api_audiences()
    } else {
        wanted.clone()
    };
    let status = match inner.tokens.validate_for(token, &inner.store, &audiences) {
        Ok(w) => {
            let uid = match &w {
                Identity::ServiceAccount { uid, .. } => uid.clone(),
                Identity::Admin => String::new(),
            };
            json!({"authenticated": true, "user": {"username": w.username(), "uid": uid, "groups": w.groups()}, "audiences": audiences})
        }
        Err(reason) => json!({"authenticated": false, "error": reason}),
    };
    let mut spec = json!({"token": ""});
    if !wanted.is_empty() {
        spec["audiences"] = json!(wanted);
    }
    Ok(json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    }))
}
