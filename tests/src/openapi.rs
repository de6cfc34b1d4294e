//! The small `/openapi/v3` documents kubectl needs to use server-side field validation (without
//! them plain `kubectl apply -f` fails with "failed to download openapi").

use serde_json::{Map, Value, json};

use crate::resources::{Behaviour, Registry};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: one entry per group-version.
pub fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for d in reg.defs() {
        let p = gv_path(&d.group, &d.version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=emulator")}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/<gv>`: a `patch` operation per kind carrying its GVK and the
/// `fieldValidation` parameter.
pub fn group_version(reg: &Registry, gv: &str) -> Option<Value> {
    let mut paths = Map::new();
    for d in reg
        .defs()
        .iter()
        .filter(|d| gv_path(&d.group, &d.version) == gv && d.behaviour == Behaviour::Stored)
    {
        let path = if d.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
        } else {
            format!("/{gv}/{}/{{name}}", d.plural)
        };
        let op = json!({
            "operationId": format!("patch{}", d.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": d.group, "version": d.version, "kind": d.kind},
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({"patch": op}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
