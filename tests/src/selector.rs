//! Label selectors (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`) and field selectors
//! (`metadata.name=x`, `metadata.namespace!=y`, `type=...`), as `list` accepts them.

use serde_json::Value;

use crate::status::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector(Vec<Req>);

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn set_values(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    /// Parses `labelSelector`; a malformed selector is a 400 as on a real server.
    pub fn parse(s: &str) -> ApiResult<Self> {
        let bad = || {
            ApiError::bad_request(format!(
                "unable to parse requirement: invalid label selector: {s:?}"
            ))
        };
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let r = if let Some(k) = part.strip_prefix('!') {
                Req::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Req::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Req::NotIn(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Req::In(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if part.contains(' ') || part.contains('(') {
                return Err(bad());
            } else {
                Req::Exists(part)
            };
            reqs.push(r);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        })
    }
}

/// A parsed field selector: `path=value` / `path!=value` pairs over dotted JSON paths.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `fieldSelector`.
    pub fn parse(s: &str) -> ApiResult<Self> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            out.push((path.trim().to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    /// Whether the object satisfies every term (a missing field reads as "").
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = obj;
            for seg in path.split('.') {
                cur = &cur[seg];
            }
            let got = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_forms() {
        let obj = json!({"metadata": {"labels": {"istio/multiCluster": "true", "app": "gw"}}});
        let m = |s: &str| LabelSelector::parse(s).map(|sel| sel.matches(&obj));
        assert_eq!(m("istio/multiCluster=true"), Ok(true));
        assert_eq!(m("istio/multiCluster=true,app!=gw"), Ok(false));
        assert_eq!(m("app in (gw, web),!missing"), Ok(true));
        assert_eq!(m("app notin (gw)"), Ok(false));
        assert_eq!(m("missing"), Ok(false));
        assert!(LabelSelector::parse("app in gw").is_err());
    }

    #[test]
    fn field_selector_on_name_and_type() {
        let obj = json!({"metadata": {"name": "a", "namespace": "n"}, "type": "Opaque"});
        let m = |s: &str| FieldSelector::parse(s).map(|sel| sel.matches(&obj));
        assert_eq!(m("metadata.name=a"), Ok(true));
        assert_eq!(m("metadata.name!=a"), Ok(false));
        assert_eq!(m("type=Opaque,metadata.namespace=n"), Ok(true));
    }
}
