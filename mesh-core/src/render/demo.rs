//! `meshboot render demo`: the reference setup's check that the mesh joins the networks. In
//! every member, a namespace labelled for the data plane with
//! - `hello`: a Deployment of podinfo (container port 9898) that answers with the name of its
//!   cluster (`PODINFO_UI_MESSAGE`, the `message` of podinfo's JSON reply), and a Service on
//!   port 5000 → 9898;
//! - `sleep`: a curl client to call `hello` from.
//!
//! With `karmada`, one set of templates for the Karmada API server instead: `hello` divided by a
//! static weight list (`replicaSchedulingType: Divided`, `Weighted`), the Service and `sleep`
//! in every member (the Service must exist where it is called from, also where no `hello` pod
//! runs), and an OverridePolicy giving each member's `hello` its cluster's name. The split
//! printed is Karmada's own ([`super::webster`]).
//!
//! ```text
//! DIR/DEMO.md                 the split, the apply and curl commands
//! DIR/<cluster>/demo.yaml     without karmada: each member's objects
//! DIR/karmada/demo.yaml       with karmada: templates and policies for the hub
//! ```

use serde_json::{Value, json};

use super::karmada::POLICY_API_VERSION;
use super::output::OutputFile;
use super::plan_doc::{kubectl_flags, shell_word};
use super::webster::Split;
use super::{RenderError, yaml};
use crate::spec::{Dataplane, MeshSpec};

/// The demo's namespace.
pub const NAMESPACE: &str = "sample";
/// podinfo, pinned so the demo behaves the same everywhere.
pub const HELLO_IMAGE: &str = "stefanprodan/podinfo:6.7.1";
/// The client image (what Istio's `sleep`/`curl` sample runs).
pub const SLEEP_IMAGE: &str = "curlimages/curl:8.11.1";
/// The Service port callers use.
pub const HELLO_PORT: u16 = 5000;
/// podinfo's HTTP port.
pub const PODINFO_PORT: u16 = 9898;

/// Errors in the demo's flags.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// `--weights` names a cluster the mesh does not have.
    #[error("--weights: {cluster} is not a cluster of the mesh (clusters: {known})")]
    UnknownCluster {
        /// The name given.
        cluster: String,
        /// The mesh's clusters.
        known: String,
    },
    /// `--weights` names a cluster twice.
    #[error("--weights: {cluster} is given twice")]
    Duplicate {
        /// The cluster.
        cluster: String,
    },
    /// Every weight is zero.
    #[error("--weights: every weight is 0; give at least one cluster a weight of 1 or more")]
    AllZero,
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// What to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// Static weights per cluster; empty: 1 for every cluster. Clusters left out get no
    /// `hello` replica (as Karmada treats clusters missing from a weight list).
    pub weights: Vec<(String, u64)>,
    /// `hello`'s total replicas.
    pub replicas: u32,
    /// Templates and policies for the Karmada API server instead of per-member files.
    pub karmada: bool,
}

/// The weight of every cluster of the mesh, in mesh-file order (0 for one `--weights` leaves
/// out).
///
/// ```
/// use mesh_core::{render::demo::weights, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n, context: eu}, {name: ap, network: n, context: ap}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// assert_eq!(weights(&spec, &[])?, [("eu".to_string(), 1), ("ap".to_string(), 1)]);
/// assert_eq!(weights(&spec, &[("ap".into(), 3)])?, [("eu".to_string(), 0), ("ap".to_string(), 3)]);
/// assert!(weights(&spec, &[("mars".into(), 1)]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn weights(spec: &MeshSpec, given: &[(String, u64)]) -> Result<Vec<(String, u64)>, DemoError> {
    for (i, (name, _)) in given.iter().enumerate() {
        if spec.cluster(name).is_none() {
            return Err(DemoError::UnknownCluster {
                cluster: name.clone(),
                known: spec.cluster_names().join(", "),
            });
        }
        if given[..i].iter().any(|(n, _)| n == name) {
            return Err(DemoError::Duplicate {
                cluster: name.clone(),
            });
        }
    }
    if !given.is_empty() && given.iter().all(|(_, w)| *w == 0) {
        return Err(DemoError::AllZero);
    }
    Ok(spec
        .clusters
        .iter()
        .map(|c| {
            let w = if given.is_empty() {
                1
            } else {
                given
                    .iter()
                    .find(|(n, _)| *n == c.name)
                    .map_or(0, |(_, w)| *w)
            };
            (c.name.clone(), w)
        })
        .collect())
}

/// The split Karmada makes of `options.replicas` over the weights (clusters with weight 0 are
/// not in Karmada's list, so they get none).
pub fn split(spec: &MeshSpec, options: &DemoOptions) -> Result<Split, DemoError> {
    let weights = weights(spec, &options.weights)?;
    let listed: Vec<(&str, u64)> = weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(c, w)| (c.as_str(), *w))
        .collect();
    let mut split = Split::of(&listed, options.replicas);
    // Keep every member in the report, in mesh-file order.
    let mut shares = Vec::new();
    for (c, w) in &weights {
        match split.shares.iter().find(|s| &s.cluster == c) {
            Some(s) => shares.push(s.clone()),
            None => shares.push(super::webster::Share {
                cluster: c.clone(),
                weight: *w,
                replicas: 0,
                replicas_if_descending: None,
            }),
        }
    }
    split.shares = shares;
    Ok(split)
}

fn namespace(spec: &MeshSpec) -> Value {
    let label = match spec.dataplane {
        Dataplane::Sidecar => ("istio-injection", "enabled"),
        Dataplane::Ambient => ("istio.io/dataplane-mode", "ambient"),
    };
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {label.0: label.1}}})
}

fn hello_deployment(message: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "hello", "namespace": NAMESPACE, "labels": {"app": "hello"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "hello"}},
            "template": {
                "metadata": {"labels": {"app": "hello"}},
                "spec": {"containers": [{
                    "name": "podinfo",
                    "image": HELLO_IMAGE,
                    "env": [{"name": "PODINFO_UI_MESSAGE", "value": message}],
                    "ports": [{"name": "http", "containerPort": PODINFO_PORT}],
                }]},
            },
        },
    })
}

fn hello_service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "hello", "namespace": NAMESPACE, "labels": {"app": "hello"}},
        "spec": {
            "selector": {"app": "hello"},
            "ports": [{"name": "http", "port": HELLO_PORT, "targetPort": PODINFO_PORT}],
        },
    })
}

fn sleep_objects() -> [Value; 2] {
    [
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "sleep", "namespace": NAMESPACE}}),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "sleep", "namespace": NAMESPACE, "labels": {"app": "sleep"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "sleep"}},
                "template": {
                    "metadata": {"labels": {"app": "sleep"}},
                    "spec": {
                        "serviceAccountName": "sleep",
                        "containers": [{
                            "name": "sleep",
                            "image": SLEEP_IMAGE,
                            "command": ["/bin/sleep", "infinity"],
                        }],
                    },
                },
            },
        }),
    ]
}

/// The hub's templates and policies.
fn karmada_objects(spec: &MeshSpec, weights: &[(String, u64)], replicas: u32) -> Vec<Value> {
    let members: Vec<&str> = spec.clusters.iter().map(|c| c.name.as_str()).collect();
    let weighted: Vec<Value> = weights
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(c, w)| json!({"targetCluster": {"clusterNames": [c]}, "weight": w}))
        .collect();
    let [sleep_sa, sleep] = sleep_objects();
    let rules: Vec<Value> = members
        .iter()
        .map(|c| {
            json!({"targetCluster": {"clusterNames": [c]}, "overriders": {"plaintext": [{
                "path": "/spec/template/spec/containers/0/env/0/value",
                "operator": "replace",
                "value": c,
            }]}})
        })
        .collect();
    vec![
        namespace(spec),
        json!({"apiVersion": POLICY_API_VERSION, "kind": "ClusterPropagationPolicy",
        "metadata": {"name": "meshboot-demo-namespace"},
        "spec": {
            "resourceSelectors": [{"apiVersion": "v1", "kind": "Namespace", "name": NAMESPACE}],
            "placement": {"clusterAffinity": {"clusterNames": members}},
        }}),
        hello_deployment("hello", replicas),
        hello_service(),
        sleep_sa,
        sleep,
        json!({"apiVersion": POLICY_API_VERSION, "kind": "PropagationPolicy",
        "metadata": {"name": "hello", "namespace": NAMESPACE},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"}],
            "placement": {
                "clusterAffinity": {"clusterNames": members},
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"staticWeightList": weighted},
                },
            },
        }}),
        json!({"apiVersion": POLICY_API_VERSION, "kind": "PropagationPolicy",
        "metadata": {"name": "hello-callers", "namespace": NAMESPACE},
        "spec": {
            "resourceSelectors": [
                {"apiVersion": "v1", "kind": "Service", "name": "hello"},
                {"apiVersion": "v1", "kind": "ServiceAccount", "name": "sleep"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sleep"},
            ],
            "placement": {"clusterAffinity": {"clusterNames": members}},
        }}),
        json!({"apiVersion": POLICY_API_VERSION, "kind": "OverridePolicy",
        "metadata": {"name": "hello-cluster-name", "namespace": NAMESPACE},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"}],
            "overrideRules": rules,
        }}),
    ]
}

/// Every file of `render demo`, and the split it describes.
///
/// ```
/// use mesh_core::{render::demo::{self, DemoOptions}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n1, context: eu}, {name: us, network: n2, context: us}, {name: ap, network: n3, context: ap}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let opts = DemoOptions { weights: vec![("eu".into(), 2), ("us".into(), 2), ("ap".into(), 1)], replicas: 10, karmada: true };
/// let (files, split) = demo::files(&spec, &opts, "out")?;
/// assert_eq!(split.describe(), "eu 4, us 4, ap 2");
/// let hub = files.iter().find(|f| f.path == "karmada/demo.yaml").unwrap();
/// assert!(hub.contents.contains("staticWeightList"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn files(
    spec: &MeshSpec,
    options: &DemoOptions,
    out_dir: &str,
) -> Result<(Vec<OutputFile>, Split), DemoError> {
    let weights = weights(spec, &options.weights)?;
    let split = split(spec, options)?;
    let mut out = Vec::new();
    if options.karmada {
        out.push(OutputFile {
            path: "karmada/demo.yaml".into(),
            contents: yaml::to_yaml_documents(
                karmada_objects(spec, &weights, options.replicas).iter(),
            )?,
            sensitive: false,
        });
    } else {
        let counts = split.ascending();
        for c in &spec.clusters {
            let [sleep_sa, sleep] = sleep_objects();
            let replicas = counts.get(c.name.as_str()).copied().unwrap_or(0);
            let docs = [
                namespace(spec),
                hello_deployment(&c.name, replicas),
                hello_service(),
                sleep_sa,
                sleep,
            ];
            out.push(OutputFile {
                path: format!("{}/demo.yaml", c.name),
                contents: yaml::to_yaml_documents(docs.iter())?,
                sensitive: false,
            });
        }
    }
    out.push(OutputFile {
        path: "DEMO.md".into(),
        contents: demo_markdown(spec, options, &split, out_dir),
        sensitive: false,
    });
    Ok((out, split))
}

/// The sentence about a tie, shared by DEMO.md and the CLI's report.
///
/// ```
/// use mesh_core::render::{demo::tie_note, webster::Split};
/// assert!(tie_note(&Split::of(&[("eu", 1), ("us", 1)], 3)).unwrap().contains("hash of the Deployment's UID"));
/// assert!(tie_note(&Split::of(&[("eu", 1), ("us", 1)], 2)).is_none());
/// ```
pub fn tie_note(split: &Split) -> Option<String> {
    split.tied().then(|| {
        let tied: Vec<String> = split
            .shares
            .iter()
            .filter_map(|s| {
                s.replicas_if_descending
                    .map(|d| format!("{} gets {} or {d}", s.cluster, s.replicas))
            })
            .collect();
        format!(
            "a tie decides: {}. Karmada breaks ties between equally entitled clusters by name, \
             ascending (the first figure) or descending (the second) as a hash of the \
             Deployment's UID says, so which one you get shows once the hub has created it",
            tied.join(", ")
        )
    })
}

fn demo_markdown(spec: &MeshSpec, options: &DemoOptions, split: &Split, out_dir: &str) -> String {
    let out = out_dir.trim_end_matches('/');
    let mut md = String::new();
    let mut line = |s: &str| {
        md.push_str(s);
        md.push('\n');
    };
    line(&format!("# Mesh `{}`: the hello/sleep check", spec.mesh_id));
    line("");
    line(&format!(
        "`hello` (podinfo, Service port {HELLO_PORT} → {PODINFO_PORT}) answers with the name of its cluster; `sleep` calls it."
    ));
    line(&format!(
        "Both run in namespace `{NAMESPACE}`, labelled for the {} data plane, in every member.",
        spec.dataplane
    ));
    line("");
    line(&format!(
        "## Where the {} `hello` replicas go",
        options.replicas
    ));
    line("");
    line("| cluster | weight | replicas |");
    line("|---|---|---|");
    for s in &split.shares {
        let n = match s.replicas_if_descending {
            Some(d) => format!("{} or {d}", s.replicas),
            None => s.replicas.to_string(),
        };
        line(&format!("| {} | {} | {n} |", s.cluster, s.weight));
    }
    line("");
    line(
        "Karmada ≥ 1.16 divides static weights with the Webster/Sainte-Laguë method: each replica",
    );
    line("goes to the cluster with the largest weight / (2 × its replicas + 1).");
    match tie_note(split) {
        Some(note) => line(&format!("Here {note}.")),
        None => line("No tie decides this split, so it is the same for every Deployment UID."),
    }
    if !options.karmada {
        line(
            "Without Karmada these files carry the counts themselves, ties settled by ascending name.",
        );
    }
    line("");
    line("## Apply");
    line("");
    line("```sh");
    if options.karmada {
        line(&format!(
            "kubectl{} apply --server-side -f {out}/karmada/demo.yaml",
            super::karmada::hub_flags(spec)
        ));
    } else {
        for c in &spec.clusters {
            line(&format!(
                "kubectl{} apply --server-side -f {out}/{}/demo.yaml",
                kubectl_flags(c),
                shell_word(&c.name)
            ));
        }
    }
    line("```");
    line("");
    line("## Which cluster answers");
    line("");
    line(
        "From each member, twenty calls; the counts per `message` are the clusters that answered.",
    );
    line("Once the mesh joins the networks, every cluster with a `hello` replica shows up from");
    line("everywhere, also where none runs:");
    line("");
    line("```sh");
    for c in &spec.clusters {
        line(&format!(
            "kubectl{} -n {NAMESPACE} exec deploy/sleep -c sleep -- sh -c 'for i in $(seq 20); do curl -s hello.{NAMESPACE}:{HELLO_PORT} | grep \"\\\"message\\\"\"; done | sort | uniq -c'",
            kubectl_flags(c)
        ));
    }
    line("```");
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MeshSpec {
        MeshSpec::from_yaml(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters:\n  - {name: eu, network: n3, context: eu}\n  - {name: ap, network: n1, context: ap}\n  - {name: us, network: n2, context: us}\n",
            std::path::Path::new("/tmp"),
            "mesh.yaml",
        )
        .unwrap()
    }

    fn opts(weights: &[(&str, u64)], replicas: u32, karmada: bool) -> DemoOptions {
        DemoOptions {
            weights: weights.iter().map(|(c, w)| (c.to_string(), *w)).collect(),
            replicas,
            karmada,
        }
    }

    #[test]
    fn per_member_files_carry_the_split_and_the_cluster_name() {
        let (files, split) = files(&spec(), &opts(&[], 10, false), "out").unwrap();
        assert!(split.tied());
        let eu = files.iter().find(|f| f.path == "eu/demo.yaml").unwrap();
        assert!(eu.contents.contains("replicas: 3"), "{}", eu.contents);
        assert!(eu.contents.contains("value: eu"));
        let ap = files.iter().find(|f| f.path == "ap/demo.yaml").unwrap();
        assert!(
            ap.contents.contains("replicas: 4"),
            "ties by ascending name"
        );
        let md = &files.iter().find(|f| f.path == "DEMO.md").unwrap().contents;
        assert!(md.contains("| ap | 1 | 4 or 3 |"), "{md}");
        assert!(md.contains("hash of the Deployment's UID"));
    }

    #[test]
    fn a_cluster_left_out_of_the_weights_gets_no_hello_but_the_service() {
        let (files, split) =
            files(&spec(), &opts(&[("eu", 1), ("us", 1)], 3, true), "out").unwrap();
        let ap = split.shares.iter().find(|s| s.cluster == "ap").unwrap();
        assert_eq!((ap.weight, ap.replicas), (0, 0));
        let hub = &files
            .iter()
            .find(|f| f.path == "karmada/demo.yaml")
            .unwrap()
            .contents;
        assert!(
            !hub.contains("clusterNames:\n          - ap\n        weight"),
            "{hub}"
        );
        assert!(hub.contains("name: hello-callers"));
    }

    #[test]
    fn bad_weights_are_errors_naming_the_cluster() {
        let err = weights(&spec(), &[("mars".into(), 1)]).unwrap_err();
        assert!(err.to_string().contains("mars"), "{err}");
        assert!(weights(&spec(), &[("eu".into(), 1), ("eu".into(), 2)]).is_err());
        assert!(matches!(
            weights(&spec(), &[("eu".into(), 0)]),
            Err(DemoError::AllZero)
        ));
    }
}
