//! Requests answered on the spot and never stored: TokenRequest, SelfSubjectAccessReview,
//! SubjectAccessReview and TokenReview.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::auth::Identity;
use crate::cluster::ClusterState;
use crate::rbac::{self, Attributes};
use crate::status::{ApiError, ApiResult, FieldCause, Subject};
use crate::store::Key;

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

/// `POST .../serviceaccounts/<name>/token`: issues a bound token honouring
/// `spec.expirationSeconds` (default one hour, at least the configured minimum).
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
    if requested < min {
        return Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            sa_name,
            vec![FieldCause {
                reason: "FieldValueInvalid",
                field: "spec.expirationSeconds".into(),
                message: format!(
                    "Invalid value: {requested}: may not specify a duration less than {min} seconds"
                ),
            }],
        ));
    }
    if requested > (1 << 32) {
        return Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            sa_name,
            vec![FieldCause::invalid(
                "spec.expirationSeconds",
                &requested.to_string(),
                "may not specify a duration larger than 2^32 seconds",
            )],
        ));
    }
    let audiences: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let uid = sa["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ttl = Duration::from_secs(requested.unsigned_abs());
    let (token, expires) = if dry_run {
        (String::new(), Some(std::time::SystemTime::now() + ttl))
    } else {
        inner
            .tokens
            .issue(ns, sa_name, &uid, Some(ttl), None, &audiences)
    };
    let mut spec = match &body["spec"] {
        Value::Null => json!({}),
        Value::Object(m) => Value::Object(m.clone()),
        _ => return Err(ApiError::bad_request("TokenRequest spec must be an object")),
    };
    spec["expirationSeconds"] = json!(requested);
    if spec["audiences"].is_null() {
        spec["audiences"] = json!([format!("https://kubernetes.default.svc.{}", st.name)]);
    }
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa_name, "namespace": ns, "creationTimestamp": null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires.map(rfc3339)},
    }))
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

/// `POST tokenreviews`: whether `spec.token` authenticates, and as whom.
pub(crate) fn token_review(st: &ClusterState, body: &Value) -> ApiResult<Value> {
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let inner = st.lock();
    let who = inner.tokens.authenticate(token, &inner.store);
    let status = match who {
        Some(w) => {
            let uid = match &w {
                Identity::ServiceAccount { uid, .. } => uid.clone(),
                Identity::Admin => String::new(),
            };
            json!({"authenticated": true, "user": {"username": w.username(), "uid": uid, "groups": w.groups()}})
        }
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    Ok(json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"token": ""},
        "status": status,
    }))
}
