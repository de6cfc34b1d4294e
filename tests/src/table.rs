//! `meta.k8s.io/v1` Table answers, which `kubectl get` asks for (`Accept: ...;as=Table`), with the
//! columns kubectl shows for the kinds meshboot touches.

use serde_json::{Value, json};

use crate::resources::ResourceDef;

/// Whether an Accept header asks for a Table.
pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// kubectl's short age: `45s`, `3m12s`, `25m`, `5h3m`, `20h`, `3d4h`, `12d`.
pub fn age(created: &str, now: time::OffsetDateTime) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return "<unknown>".into();
    };
    let s = (now - t).whole_seconds().max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if d < 2 => format!("{h}h"),
        _ if d < 8 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn count(v: &Value) -> usize {
    v.as_object().map_or(0, |m| m.len())
}

fn ports(svc: &Value) -> String {
    let list: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    if list.is_empty() {
        "<none>".into()
    } else {
        list.join(",")
    }
}

fn external_ip(svc: &Value) -> String {
    let ips: Vec<&str> = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().or_else(|| i["hostname"].as_str()))
        .collect();
    match (ips.is_empty(), svc["spec"]["type"].as_str()) {
        (false, _) => ips.join(","),
        (true, Some("LoadBalancer")) => "<pending>".into(),
        _ => "<none>".into(),
    }
}

/// Computes a row's extra cells from an object.
type Cells = fn(&Value) -> Vec<Value>;

/// Extra columns (names, cells) between Name and Age for a kind.
fn columns(def: &ResourceDef) -> (Vec<&'static str>, Cells) {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "secrets") => (vec!["Type", "Data"], |o| {
            vec![o["type"].clone(), json!(count(&o["data"]))]
        }),
        ("", "configmaps") => (vec!["Data"], |o| {
            vec![json!(count(&o["data"]) + count(&o["binaryData"]))]
        }),
        ("", "namespaces") => (vec!["Status"], |o| vec![o["status"]["phase"].clone()]),
        ("", "services") => (vec!["Type", "Cluster-IP", "External-IP", "Port(s)"], |o| {
            vec![
                o["spec"]["type"].clone(),
                o["spec"]["clusterIP"].clone(),
                json!(external_ip(o)),
                json!(ports(o)),
            ]
        }),
        ("apps", "deployments") => (vec!["Ready", "Up-to-date", "Available"], |o| {
            let want = o["spec"]["replicas"].as_i64().unwrap_or(1);
            let st = &o["status"];
            let n = |k: &str| st[k].as_i64().unwrap_or(0);
            vec![
                json!(format!("{}/{want}", n("readyReplicas"))),
                json!(n("updatedReplicas")),
                json!(n("availableReplicas")),
            ]
        }),
        _ => (Vec::new(), |_| Vec::new()),
    }
}

/// The Table for `objects` (one row each).
pub fn render(def: &ResourceDef, objects: &[Value], resource_version: &str) -> Value {
    let (extra, cells) = columns(def);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    defs.extend(extra.iter().map(
        |c| json!({"name": c, "type": "string", "format": "", "description": "", "priority": 0}),
    ));
    defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    let now = time::OffsetDateTime::now_utc();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = vec![o["metadata"]["name"].clone()];
            row.extend(cells(o));
            row.push(json!(age(o["metadata"]["creationTimestamp"].as_str().unwrap_or_default(), now)));
            let mut meta = o["metadata"].clone();
            if let Some(m) = meta.as_object_mut() {
                m.remove("managedFields");
            }
            json!({
                "cells": row,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn ages_read_like_kubectl() {
        let now = time::OffsetDateTime::parse(
            "2026-01-10T12:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(age("2026-01-10T11:59:15Z", now), "45s");
        assert_eq!(age("2026-01-10T11:56:48Z", now), "3m12s");
        assert_eq!(age("2026-01-10T07:00:00Z", now), "5h0m");
        assert_eq!(age("2026-01-01T12:00:00Z", now), "9d");
        assert_eq!(age("garbage", now), "<unknown>");
    }

    #[test]
    fn secret_rows_show_type_and_data_count() {
        let def = Registry::default()
            .by_plural("", "v1", "secrets")
            .cloned()
            .unwrap_or_else(|| panic!("secrets"));
        let t = render(
            &def,
            &[
                json!({"metadata": {"name": "cacerts"}, "type": "Opaque", "data": {"a": "", "b": ""}}),
            ],
            "7",
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["cacerts", "Opaque", 2, t["rows"][0]["cells"][3]])
        );
        assert!(wanted(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wanted("application/json"));
    }
}
