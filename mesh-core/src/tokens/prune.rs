//! Clusters that left the mesh: what meshboot made for them stays behind in the clusters that
//! remain (their remote secrets, which every remaining istiod keeps reading, and with bound
//! tokens the objects the remaining clusters' tokens for them are bound to), and in the cluster
//! itself (its reader token Secret and bound objects, its remote secrets of the others).
//!
//! Only what meshboot's field manager made is stale: a remote secret created by hand or by
//! `istioctl create-remote-secret | kubectl apply` is never touched, even for a cluster that is
//! not in the mesh file.

use serde_json::Value;

use super::DESTINATION_LABEL;
use crate::cluster::{ClusterOps, ObjectRef, meshboot_entry};
use crate::execute::Removal;
use crate::remote_secret::{multicluster_selector, secret_name};
use crate::spec::MeshSpec;

/// A Secret meshboot made for a cluster that is no longer in the mesh file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stale {
    /// The cluster it is in.
    pub cluster: String,
    /// The Secret.
    pub object: ObjectRef,
    /// Its uid, for the delete's precondition.
    pub uid: Option<String>,
    /// The departed cluster it is for.
    pub departed: String,
    /// What it is, in words.
    pub what: &'static str,
    /// What leaving it costs, in words.
    pub cost: &'static str,
}

impl Stale {
    pub(crate) fn reason(&self) -> String {
        format!(
            "{} {} (no longer in the mesh file)",
            self.what, self.departed
        )
    }

    /// The warning when it is left in place.
    pub(crate) fn warning(&self) -> String {
        format!(
            "{} in {} is {}: {}",
            self.object,
            self.cluster,
            self.reason(),
            self.cost
        )
    }
}

fn departed_of(spec: &MeshSpec, secret: &Value) -> Option<String> {
    let name = secret.pointer("/metadata/name")?.as_str()?;
    let cluster = name.strip_prefix(&secret_name(""))?;
    // The data keys are the clusters it registers; all must have left.
    let keys: Vec<&String> = secret
        .get("data")
        .and_then(Value::as_object)
        .map(|d| d.keys().collect())
        .unwrap_or_default();
    let gone = spec.cluster(cluster).is_none() && keys.iter().all(|k| spec.cluster(k).is_none());
    gone.then(|| cluster.to_string())
}

/// The stale Secrets among `remote_secrets` (remote secrets listed in `cluster`, labelled
/// `istio/multiCluster`) and `bound_objects` (Secrets labelled with a destination).
pub(crate) fn stale_in(
    spec: &MeshSpec,
    cluster: &str,
    remote_secrets: &[Value],
    bound_objects: &[Value],
) -> Vec<Stale> {
    let mut out = Vec::new();
    let uid = |s: &Value| {
        s.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    for secret in remote_secrets
        .iter()
        .filter(|s| meshboot_entry(s).is_some())
    {
        let (Some(departed), Ok(object)) =
            (departed_of(spec, secret), ObjectRef::from_object(secret))
        else {
            continue;
        };
        out.push(Stale {
            cluster: cluster.to_string(),
            object,
            uid: uid(secret),
            departed,
            what: "the remote secret of",
            cost: "istiod there keeps trying to read that cluster",
        });
    }
    for object in bound_objects.iter().filter(|s| meshboot_entry(s).is_some()) {
        let Some((destination, _)) = super::bound_object_of(object) else {
            continue;
        };
        let Ok(r) = ObjectRef::from_object(object) else {
            continue;
        };
        if spec.cluster(destination).is_none() {
            out.push(Stale {
                cluster: cluster.to_string(),
                object: r,
                uid: uid(object),
                departed: destination.to_string(),
                what: "the bound object of the tokens held by",
                cost: "the departed cluster's token for this cluster keeps working until it expires",
            });
        }
    }
    out
}

/// Deletes (a dry run: lists) what meshboot made in a cluster that left the mesh, reached
/// through `client` (`apply --prune --prune-context NAME=CONTEXT`): its long-lived reader token
/// Secrets, the bound objects of its tokens, and its remote secrets of other clusters. Returns
/// what was (or would be) removed, and the errors met.
///
/// ```no_run
/// # async fn demo(client: mesh_core::cluster::ClusterClient) {
/// let (removed, errors) = mesh_core::tokens::prune_departed(&client, "istio-system", true).await;
/// for r in &removed { println!("would remove {} from {}: {}", r.object, r.cluster, r.reason); }
/// # let _ = errors; }
/// ```
pub async fn prune_departed<C: ClusterOps>(
    client: &C,
    namespace: &str,
    dry_run: bool,
) -> (Vec<Removal>, Vec<String>) {
    let name = client.name().to_string();
    let (tokens, mut errors) =
        super::retire::legacy_token_secrets(client, namespace, dry_run).await;
    let mut removed: Vec<Removal> = tokens
        .into_iter()
        .map(|object| Removal {
            cluster: name.clone(),
            object,
            reason: format!(
                "the long-lived reader token of {name}, which left the mesh: deleting it revokes \
                 that token wherever a copy of it is left"
            ),
        })
        .collect();
    let mut targets: Vec<(Value, String)> = Vec::new();
    for (selector, reason) in [
        (
            DESTINATION_LABEL.to_string(),
            format!(
                "a bound object of {name}, which left the mesh: deleting it revokes the token \
                 bound to it"
            ),
        ),
        (
            multicluster_selector(),
            format!(
                "a remote secret in {name}, which left the mesh: its istiod stops reading that cluster"
            ),
        ),
    ] {
        match client
            .list("v1", "Secret", Some(namespace), Some(&selector))
            .await
        {
            Ok(items) => targets.extend(
                items
                    .into_iter()
                    .filter(|s| meshboot_entry(s).is_some())
                    .map(|s| (s, reason.clone())),
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for (secret, reason) in targets {
        let Ok(object) = ObjectRef::from_object(&secret) else {
            continue;
        };
        if !dry_run {
            let uid = secret.pointer("/metadata/uid").and_then(Value::as_str);
            if let Err(e) = client.delete(&object, uid).await {
                errors.push(e.to_string());
                continue;
            }
        }
        removed.push(Removal {
            cluster: name.clone(),
            object,
            reason,
        });
    }
    (removed, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> MeshSpec {
        MeshSpec::from_yaml(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n, context: eu}, {name: us, network: n, context: us}]\n",
            std::path::Path::new("."),
            "m.yaml",
        )
        .unwrap()
    }

    fn secret(name: &str, key: &str, manager: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": "istio-system", "uid": "u",
                            "labels": {"istio/multiCluster": "true"},
                            "managedFields": [{"manager": manager, "operation": "Apply"}]},
               "data": {key: "a2M="}})
    }

    #[test]
    fn only_meshboots_remote_secrets_of_departed_clusters_are_stale() {
        let listed = [
            secret("istio-remote-secret-ap", "ap", "meshboot"),
            secret(
                "istio-remote-secret-old",
                "old",
                "kubectl-client-side-apply",
            ),
            secret("istio-remote-secret-us", "us", "meshboot"),
            secret("by-hand", "gone", "meshboot"),
        ];
        let stale = stale_in(&spec(), "eu", &listed, &[]);
        let names: Vec<&str> = stale.iter().map(|s| s.object.name.as_str()).collect();
        assert_eq!(names, ["istio-remote-secret-ap"]);
        assert_eq!(stale[0].departed, "ap");
        let mut bound = crate::tokens::bound_object("istio-system", "meshboot-reader", "ap");
        bound["metadata"]["managedFields"] = json!([{"manager": "meshboot", "operation": "Apply"}]);
        let kept = crate::tokens::bound_object("istio-system", "meshboot-reader", "us");
        let stale = stale_in(&spec(), "eu", &[], &[bound, kept]);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].object.name, "meshboot-reader-for-ap");
    }
}
