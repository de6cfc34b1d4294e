//! `metav1.Status` error bodies with the reasons and codes a real API server uses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An API error, rendered as a `Status` object exactly as kube-apiserver shapes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code (also the Status `code`).
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message, worded like the real server's.
    pub message: String,
    /// Optional `details` block (name, group, kind, causes).
    pub details: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header (429/503).
    pub retry_after: Option<u32>,
}

/// Result alias used by every request handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Names the object an error is about, as in the Status `details`.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    /// Resource plural (`secrets`).
    pub plural: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl Subject<'_> {
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn details(&self, kind_field: &str) -> Value {
        let mut d = json!({"name": self.name, "kind": kind_field});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 404 for a missing object: `secrets "x" not found`.
    pub fn not_found(s: Subject<'_>) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", s.qualified(), s.name),
        );
        e.details = Some(Box::new(s.details(s.plural)));
        e
    }

    /// 404 for a path the server does not serve.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409 on create when the name is taken.
    pub fn already_exists(s: Subject<'_>) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", s.qualified(), s.name),
        );
        e.details = Some(Box::new(s.details(s.plural)));
        e
    }

    /// 409 on an update carrying a stale resourceVersion.
    pub fn stale(s: Subject<'_>) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                s.qualified(),
                s.name
            ),
        );
        e.details = Some(Box::new(s.details(s.plural)));
        e
    }

    /// 409 from server-side apply when other managers own fields with different values;
    /// `conflicts` holds (owner as [`crate::apply::Conflict::owner`] prints it, field) pairs.
    pub fn apply_conflict(conflicts: &[(String, String)]) -> Self {
        // `conflicts` are (owner as the server prints it, field path), sorted by owner. The
        // wording is apimachinery's: one conflict on one line; several grouped by manager.
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(owner, field)| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {owner}"),
                    "field": field,
                })
            })
            .collect();
        let message = match conflicts {
            [(owner, field)] => {
                format!("Apply failed with 1 conflict: conflict with {owner}: {field}")
            }
            many => {
                let mut lines: Vec<String> = Vec::new();
                let mut current: Option<&str> = None;
                for (owner, field) in many {
                    if current != Some(owner.as_str()) {
                        lines.push(format!("conflicts with {owner}:"));
                        current = Some(owner);
                    }
                    lines.push(format!("- {field}"));
                }
                format!(
                    "Apply failed with {} conflicts: {}",
                    many.len(),
                    lines.join("\n")
                )
            }
        };
        let mut e = Self::new(409, "Conflict", message);
        e.details = Some(Box::new(json!({"causes": causes})));
        e
    }

    /// 422 with field causes: `Secret "x" is invalid: type: Invalid value: ...`; the kind is
    /// qualified by its group as `GroupKind.String()` prints it (`Deployment.apps "x" ...`).
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<FieldCause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = if summary.len() == 1 {
            format!("{qualified} \"{name}\" is invalid: {}", summary[0])
        } else {
            format!(
                "{qualified} \"{name}\" is invalid: [{}]",
                summary.join(", ")
            )
        };
        let mut e = Self::new(422, "Invalid", message);
        let mut details = json!({
            "name": name,
            "kind": kind,
            "causes": causes.iter().map(|c| json!({
                "reason": c.reason, "message": c.message, "field": c.field
            })).collect::<Vec<_>>(),
        });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        e.details = Some(Box::new(details));
        e
    }

    /// 410 when a watch asks to resume from a resourceVersion older than the kept history.
    pub fn expired(rv: u64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {rv}"))
    }

    /// 400 for a body the decoder rejects.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 for a missing, unknown or expired token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 with the real RBAC wording.
    pub fn forbidden(
        user: &str,
        verb: &str,
        group: &str,
        plural: &str,
        sub: Option<&str>,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Self {
        let resource = match sub {
            Some(s) => format!("{plural}/{s}"),
            None => plural.to_string(),
        };
        let qualify = |r: &str| {
            if group.is_empty() {
                r.to_string()
            } else {
                format!("{r}.{group}")
            }
        };
        let subject = match name {
            Some(n) => format!("{} \"{n}\"", qualify(plural)),
            None => qualify(&resource),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let mut e = Self::new(
            403,
            "Forbidden",
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
            ),
        );
        let mut details = json!({"kind": plural});
        if let Some(n) = name {
            details["name"] = json!(n);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        e.details = Some(Box::new(details));
        e
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 415 for a patch content type the server does not know.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// Injected 429 with a `Retry-After` header.
    pub fn too_many_requests() -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        );
        e.retry_after = Some(1);
        e
    }

    /// Injected 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// Injected 503.
    pub fn unavailable() -> Self {
        let mut e = Self::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        );
        e.retry_after = Some(1);
        e
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = (**d).clone();
        }
        s
    }
}

/// One `details.causes` entry of a 422.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: &'static str,
    /// JSON path of the field, e.g. `metadata.labels`.
    pub field: String,
    /// The message after the field name.
    pub message: String,
}

impl FieldCause {
    /// A `FieldValueInvalid` cause worded like `Invalid value: "x": <detail>`.
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        FieldCause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value:?}: {detail}"),
        }
    }

    /// A `FieldValueInvalid` cause for a number, printed bare as the API server prints integers
    /// (`Invalid value: 70000: ...`).
    pub fn invalid_number(field: impl Into<String>, value: i64, detail: &str) -> Self {
        FieldCause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value}: {detail}"),
        }
    }

    /// A `FieldValueRequired` cause.
    pub fn required(field: impl Into<String>) -> Self {
        FieldCause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".to_string(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, axum::Json(self.to_status())).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_message_matches_kube_apiserver_wording() {
        let e = ApiError::forbidden(
            "system:serviceaccount:ns:sa",
            "list",
            "",
            "secrets",
            None,
            None,
            Some("x"),
        );
        assert_eq!(
            e.message,
            "secrets is forbidden: User \"system:serviceaccount:ns:sa\" cannot list resource \"secrets\" in API group \"\" in the namespace \"x\""
        );
        assert_eq!(e.to_status()["reason"], "Forbidden");
    }

    #[test]
    fn not_found_names_group_qualified_resource() {
        let e = ApiError::not_found(Subject {
            group: "apps",
            plural: "deployments",
            name: "web",
        });
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        assert_eq!(e.to_status()["details"]["group"], "apps");
    }
}
