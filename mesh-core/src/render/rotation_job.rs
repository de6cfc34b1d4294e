//! `meshboot render rotation-job`: what a management cluster (the fleet's manager, e.g. the
//! one running Karmada; never a mesh member) needs to run rotation on a schedule, and the
//! narrow identity each mesh cluster gives it.
//!
//! ```text
//! <out>/management/00-namespace.yaml       Namespace meshboot-rotation
//! <out>/management/01-rbac.yaml            ServiceAccount, Role + RoleBinding: get and patch
//!                                          the CA Secret only (alert-only: get)
//! <out>/management/02-mesh.yaml            ConfigMap: the mesh file as the job reads it
//! <out>/management/03-ca.secret.yaml       Secret: the CA directory (alert-only: no key)
//! <out>/management/04-kubeconfig.secret.yaml  Secret: one context per mesh cluster (minted
//!                                          credentials) and `management` (the pod's own token)
//! <out>/management/05-cronjob.yaml         CronJob: rotate intermediate, rotate tokens (with
//!                                          readerToken.ttl), then check-expiry
//! <out>/mesh-clusters/<cluster>.yaml       per mesh cluster: ServiceAccount, Role,
//!                                          RoleBinding, token Secret in the Istio namespace
//! <out>/README.md                          what goes where, in which order, and why
//! ```
//!
//! The per-mesh-cluster rights are exactly what the job's commands use, in the Istio namespace
//! only: get Deployment `istiod` (its version says whether it reloads by itself), get and patch
//! Secret `cacerts`, and list Secrets (the remote secrets whose tokens check-expiry reads; the
//! API cannot narrow a list to a label). Server-side apply creates `cacerts` when it is missing,
//! so `create` on Secrets is granted too. Alert-only drops the writes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::RenderError;
use super::output::OutputFile;
use super::yaml::{to_yaml, to_yaml_documents};
use crate::spec::MeshSpec;

/// The name of everything the job makes: Namespace, ServiceAccount, Role, CronJob.
pub const JOB_NAME: &str = "meshboot-rotation";
/// The CA Secret in the management cluster.
pub const CA_SECRET: &str = "meshboot-rotation-ca";
/// The kubeconfig Secret in the management cluster.
pub const KUBECONFIG_SECRET: &str = "meshboot-rotation-kubeconfig";
/// The mesh-file ConfigMap in the management cluster.
pub const MESH_CONFIGMAP: &str = "meshboot-rotation-mesh";
/// The token Secret of the job's identity in each mesh cluster.
pub const TOKEN_SECRET: &str = "meshboot-rotation-token";
/// The kubeconfig context naming the management cluster itself (the pod's own token).
pub const MANAGEMENT_CONTEXT: &str = "management";
/// Where the pod finds the mesh file.
pub const MESH_PATH: &str = "/etc/meshboot/mesh/mesh.yaml";
/// Where the pod finds the kubeconfig.
pub const KUBECONFIG_PATH: &str = "/etc/meshboot/kubeconfig/config";
/// The image tag the job runs by default: this build's version.
pub const DEFAULT_IMAGE: &str = concat!("meshboot:", env!("CARGO_PKG_VERSION"));
/// The uid the image runs as (the Containerfile's `USER`).
pub const RUN_AS: i64 = 65532;

/// How the job is rendered.
///
/// ```
/// let o = mesh_core::render::rotation_job::JobOptions::default();
/// assert_eq!((o.namespace.as_str(), o.expiring_within_days, o.alert_only), ("meshboot-rotation", 30, false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOptions {
    /// The management cluster's namespace for the job.
    pub namespace: String,
    /// The CronJob schedule.
    pub schedule: String,
    /// The image.
    pub image: String,
    /// `rotate intermediate --expiring-within` and `check-expiry --warn`, in days.
    pub expiring_within_days: u32,
    /// `check-expiry --critical`, in days.
    pub critical_days: u32,
    /// Check only: no key in the CA Secret, no write rights anywhere, no rotation step.
    pub alert_only: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            namespace: JOB_NAME.into(),
            schedule: "17 3 * * *".into(),
            image: DEFAULT_IMAGE.into(),
            expiring_within_days: 30,
            critical_days: 7,
            alert_only: false,
        }
    }
}

/// The objects each mesh cluster needs so the job may do its work there (see the module docs).
///
/// ```
/// # let spec = mesh_core::spec::MeshSpec::from_yaml("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n, context: eu}]\n", std::path::Path::new("."), "m.yaml")?;
/// use mesh_core::render::rotation_job::{JobOptions, mesh_cluster_objects};
/// let objects = mesh_cluster_objects(&spec, &JobOptions::default());
/// let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
/// assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "Secret"]);
/// assert!(objects[1]["rules"].to_string().contains("cacerts"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn mesh_cluster_objects(spec: &MeshSpec, options: &JobOptions) -> Vec<Value> {
    let ns = &spec.istio_namespace;
    let labels = labels();
    let mut rules = vec![
        json!({"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["istiod"], "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}),
        json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["cacerts"], "verbs": ["get"]}),
    ];
    if !options.alert_only {
        rules.push(json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["cacerts"], "verbs": ["patch", "update"]}));
        // Create cannot be narrowed by name (the object does not exist yet).
        rules.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}));
        if spec.reader_token.is_some() {
            rules.extend(token_rules(spec));
        }
    }
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": JOB_NAME, "namespace": ns, "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": JOB_NAME, "namespace": ns, "labels": labels}, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": JOB_NAME, "namespace": ns, "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": JOB_NAME},
               "subjects": [{"kind": "ServiceAccount", "name": JOB_NAME, "namespace": ns}]}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
               "metadata": {"name": TOKEN_SECRET, "namespace": ns, "labels": labels,
                            "annotations": {"kubernetes.io/service-account.name": JOB_NAME}}}),
    ]
}

/// What `rotate tokens` does in a mesh cluster, by name: as a destination, read and
/// server-side apply the remote secrets of the others; as a source, read the pairs' bound
/// objects and the cluster CA (`kube-root-ca.crt`), and request tokens of the reader (either
/// identity: meshboot's own or the charts').
fn token_rules(spec: &MeshSpec) -> Vec<Value> {
    let names = spec.cluster_names();
    let remote_secrets: Vec<String> = names
        .iter()
        .map(|c| crate::remote_secret::secret_name(c))
        .collect();
    let bound: Vec<String> = names
        .iter()
        .map(|c| crate::tokens::bound_object_name(c))
        .collect();
    let readers = [
        crate::render::reader::MESHBOOT_SERVICE_ACCOUNT,
        crate::render::reader::SERVICE_ACCOUNT,
    ];
    vec![
        json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": remote_secrets, "verbs": ["get", "patch"]}),
        json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": bound, "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [crate::tokens::ROOT_CA_CONFIGMAP], "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": readers, "verbs": ["create"]}),
    ]
}

fn labels() -> Value {
    json!({"app.kubernetes.io/name": JOB_NAME, "app.kubernetes.io/managed-by": "meshboot"})
}

/// The mesh file as the job reads it: every cluster reached through its context in the job's
/// kubeconfig (named like the cluster), `ca.root` left out (the CA directory holds the root).
pub fn job_mesh_file(spec: &MeshSpec) -> Result<String, RenderError> {
    let clusters: Vec<Value> = spec
        .clusters
        .iter()
        .map(|c| {
            let mut v = json!({"name": c.name, "network": c.network, "context": c.name,
                               "kubeconfig": KUBECONFIG_PATH});
            if let Some(server) = &c.api_server {
                v["apiServer"] = json!(server);
            }
            if spec.model == crate::spec::Model::PrimaryRemote {
                v["role"] = json!(c.role.as_str());
                if let Some(p) = &c.primary {
                    v["primary"] = json!(p);
                }
            }
            v
        })
        .collect();
    let mut ca = json!({
        "dir": "/var/run/meshboot/pki",
        "key": spec.ca.key.as_str(),
        "rootDays": spec.ca.root_days,
        "intermediateDays": spec.ca.intermediate_days,
    });
    if spec.ca.multi_root {
        ca["multiRoot"] = json!(true);
    }
    let mut doc = json!({
        "apiVersion": crate::spec::API_VERSION,
        "kind": crate::spec::KIND,
        "meshID": spec.mesh_id,
        "trustDomain": spec.trust_domain,
        "istioNamespace": spec.istio_namespace,
        "model": spec.model.as_str(),
        "dataplane": spec.dataplane.as_str(),
        "ca": ca,
        "clusters": clusters,
    });
    if let Some(t) = &spec.reader_token {
        // `rotate tokens` reads the lifetime (and the ttl of the tokens it mints) from here.
        doc["readerToken"] = json!({
            "ttl": crate::duration::exact(t.ttl),
            "refreshBefore": crate::duration::exact(t.refresh_before),
        });
    }
    Ok(format!(
        "# The mesh file of the rotation job ({JOB_NAME}); ca.dir is replaced by the CA Secret at run time.\n{}",
        to_yaml(&doc)?
    ))
}

/// The CronJob: `rotate intermediate --expiring-within` (unless alert-only), with bound
/// reader tokens (`readerToken.ttl`) `rotate tokens` (their `refreshBefore`), then
/// `check-expiry`, reading and writing the CA directory through the CA Secret.
pub fn cronjob(spec: &MeshSpec, options: &JobOptions) -> Value {
    let ca_secret = format!("{MANAGEMENT_CONTEXT}/{}/{CA_SECRET}", options.namespace);
    let within = format!("{}d", options.expiring_within_days);
    let critical = format!("{}d", options.critical_days);
    let mounts = json!([
        {"name": "mesh", "mountPath": "/etc/meshboot/mesh", "readOnly": true},
        {"name": "kubeconfig", "mountPath": "/etc/meshboot/kubeconfig", "readOnly": true},
        {"name": "tmp", "mountPath": "/tmp"},
    ]);
    let container = |name: &str, args: Vec<String>| {
        json!({
            "name": name,
            "image": options.image,
            "args": args,
            "env": [{"name": "KUBECONFIG", "value": KUBECONFIG_PATH}, {"name": "TMPDIR", "value": "/tmp"}],
            "volumeMounts": mounts,
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        })
    };
    let rotate: Vec<String> = [
        "rotate",
        "intermediate",
        "-f",
        MESH_PATH,
        "--expiring-within",
        &within,
        "--ca-secret",
        &ca_secret,
    ]
    .map(String::from)
    .to_vec();
    let check: Vec<String> = [
        "check-expiry",
        "-f",
        MESH_PATH,
        "--warn",
        &within,
        "--critical",
        &critical,
        "--ca-secret",
        &ca_secret,
    ]
    .map(String::from)
    .to_vec();
    // Init containers run in order and each must succeed: rotation first, the check of what
    // it left last (a failed rotation fails the job, which alerts on its own).
    let mut init: Vec<Value> = if options.alert_only {
        Vec::new()
    } else {
        vec![container("rotate-intermediates", rotate)]
    };
    if !options.alert_only && spec.reader_token.is_some() {
        let tokens: Vec<String> = ["rotate", "tokens", "-f", MESH_PATH]
            .map(String::from)
            .to_vec();
        init.push(container("rotate-tokens", tokens));
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": JOB_NAME, "namespace": options.namespace, "labels": labels()},
        "spec": {
            "schedule": options.schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 5,
            "jobTemplate": {"spec": {
                "backoffLimit": 1,
                "template": {
                    "metadata": {"labels": labels()},
                    "spec": {
                        "serviceAccountName": JOB_NAME,
                        "restartPolicy": "Never",
                        "securityContext": {"runAsNonRoot": true, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "initContainers": init,
                        "containers": [container("check-expiry", check)],
                        "volumes": [
                            {"name": "mesh", "configMap": {"name": MESH_CONFIGMAP}},
                            {"name": "kubeconfig", "secret": {"secretName": KUBECONFIG_SECRET, "defaultMode": 0o400}},
                            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                        ],
                    },
                },
            }},
        },
    })
}

/// The management cluster's ServiceAccount and its rights on the CA Secret.
pub fn management_rbac(options: &JobOptions) -> Vec<Value> {
    let ns = &options.namespace;
    let verbs: Vec<&str> = if options.alert_only {
        vec!["get"]
    } else {
        vec!["get", "patch"]
    };
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": JOB_NAME, "namespace": ns, "labels": labels()}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": JOB_NAME, "namespace": ns, "labels": labels()},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [CA_SECRET], "verbs": verbs}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": JOB_NAME, "namespace": ns, "labels": labels()},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": JOB_NAME},
               "subjects": [{"kind": "ServiceAccount", "name": JOB_NAME, "namespace": ns}]}),
    ]
}

/// The kubeconfig Secret: one context per mesh cluster (`credentials`: server, CA, token) and
/// the `management` context, which uses the pod's own ServiceAccount token.
pub fn kubeconfig_secret(
    options: &JobOptions,
    credentials: &BTreeMap<String, (String, Vec<u8>, String)>,
) -> Result<Value, RenderError> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut clusters = vec![json!({"name": MANAGEMENT_CONTEXT, "cluster": {
        "server": "https://kubernetes.default.svc",
        "certificate-authority": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}})];
    let mut users = vec![json!({"name": MANAGEMENT_CONTEXT, "user": {
        "tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}})];
    let mut contexts = vec![json!({"name": MANAGEMENT_CONTEXT, "context": {
        "cluster": MANAGEMENT_CONTEXT, "user": MANAGEMENT_CONTEXT, "namespace": options.namespace}})];
    for (name, (server, ca, token)) in credentials {
        clusters.push(json!({"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}));
        users.push(json!({"name": name, "user": {"token": token}}));
        contexts.push(json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    let kubeconfig = json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters,
        "users": users, "contexts": contexts, "current-context": MANAGEMENT_CONTEXT});
    Ok(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": KUBECONFIG_SECRET, "namespace": options.namespace, "labels": labels()},
        "stringData": {"config": to_yaml(&kubeconfig)?}}),
    )
}

/// Every file of the job's output folder. `ca_secret` is the CA directory as a Secret
/// ([`crate::rotate::ca_dir_secret`]); `kubeconfig` the minted kubeconfig Secret, when the
/// credentials were minted.
pub fn files(
    spec: &MeshSpec,
    options: &JobOptions,
    ca_secret: &Value,
    kubeconfig: Option<&Value>,
) -> Result<Vec<OutputFile>, RenderError> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": options.namespace, "labels": labels()}});
    let mesh = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": MESH_CONFIGMAP, "namespace": options.namespace, "labels": labels()},
        "data": {"mesh.yaml": job_mesh_file(spec)?}});
    let mut out = vec![
        file("management/00-namespace.yaml", &to_yaml(&ns)?, false),
        file(
            "management/01-rbac.yaml",
            &to_yaml_documents(&management_rbac(options))?,
            false,
        ),
        file("management/02-mesh.yaml", &to_yaml(&mesh)?, false),
        file("management/03-ca.secret.yaml", &to_yaml(ca_secret)?, true),
    ];
    if let Some(k) = kubeconfig {
        out.push(file(
            "management/04-kubeconfig.secret.yaml",
            &to_yaml(k)?,
            true,
        ));
    }
    out.push(file(
        "management/05-cronjob.yaml",
        &to_yaml(&cronjob(spec, options))?,
        false,
    ));
    for cluster in &spec.clusters {
        out.push(file(
            &format!("mesh-clusters/{}.yaml", cluster.name),
            &to_yaml_documents(&mesh_cluster_objects(spec, options))?,
            false,
        ));
    }
    out.push(file(
        "README.md",
        &readme(spec, options, kubeconfig.is_some()),
        false,
    ));
    Ok(out)
}

fn file(path: &str, contents: &str, sensitive: bool) -> OutputFile {
    OutputFile {
        path: path.into(),
        contents: contents.into(),
        sensitive,
    }
}

fn readme(spec: &MeshSpec, options: &JobOptions, minted: bool) -> String {
    let ns = &options.namespace;
    let mode = if options.alert_only {
        "alert-only: the job runs `meshboot check-expiry` only; the CA Secret holds certificates \
         but no private key, and every mesh-cluster identity is read-only."
    } else {
        "rotating: the job runs `meshboot rotate intermediate --expiring-within`, with bound \
         reader tokens (readerToken.ttl) `meshboot rotate tokens`, and then `meshboot check-expiry`."
    };
    let clusters: Vec<String> = spec
        .clusters
        .iter()
        .map(|c| {
            format!(
                "kubectl --context {} apply -f mesh-clusters/{}.yaml",
                c.context_for_commands(),
                c.name
            )
        })
        .collect();
    let kubeconfig = if minted {
        "management/04-kubeconfig.secret.yaml holds them (made by `--credentials`)."
    } else {
        "It was not written: run `meshboot render rotation-job --credentials` again once the \
         mesh clusters are reachable (it applies the files in mesh-clusters/ and mints the tokens)."
    };
    format!(
        "# The meshboot rotation job ({mode_short})\n\n\
{mode}\n\n\
Apply to the **management cluster** (never a mesh member):\n\n\
```sh\n\
kubectl apply -f management/00-namespace.yaml -f management/01-rbac.yaml -f management/02-mesh.yaml\n\
kubectl apply --server-side --field-manager=meshboot --force-conflicts -f management/03-ca.secret.yaml\n\
kubectl apply -f management/04-kubeconfig.secret.yaml -f management/05-cronjob.yaml\n\
```\n\n\
The CA Secret is applied with meshboot's field manager because the job writes it back after \
each rotation (server-side apply, field manager `meshboot`): from then on it is the CA \
directory of record. Fetch it before working on the workstation copy again: \
`meshboot ca pull --from <context>/{ns}/{CA_SECRET} --dir <ca.dir>`.\n\n\
## Credentials for the mesh clusters\n\n\
Each mesh cluster gets a ServiceAccount `{JOB_NAME}` in `{istio_ns}` with a Role that allows \
exactly what the job does there: get Deployment `istiod`, get/patch Secret `cacerts` (create \
Secrets, since server-side apply creates a missing `cacerts`), list Secrets (check-expiry \
reads the tokens inside the remote secrets); with bound reader tokens also get/patch the \
remote secrets `istio-remote-secret-<cluster>`, get the bound objects \
`meshboot-reader-for-<cluster>` and ConfigMap `kube-root-ca.crt`, and create tokens for the \
reader ServiceAccount (`serviceaccounts/token`), each by name. Nothing cluster-wide. Apply them with:\n\n\
```sh\n{clusters}\n```\n\n\
and the token controller fills Secret `{TOKEN_SECRET}` with a token for it. The kubeconfig \
Secret holds one context per mesh cluster with that token and the cluster's CA. {kubeconfig}\n\n\
## Trade-offs\n\n\
- The root key lives in the management cluster (in the CA Secret) so the job can issue \
intermediates: whoever can read that Secret can mint an intermediate every mesh cluster \
trusts. Keep the namespace to the platform team, and keep the management cluster out of the \
mesh (a mesh member's workloads and istiod must not see the root key). The alert-only mode \
(`--alert-only`) keeps every key out of the management cluster and only warns.\n\
- Reading `cacerts` (to judge its expiry and the istiod version) also reveals the \
intermediate key of that cluster to the job's identity: the API cannot grant get on part of a \
Secret.\n\
- The tokens are long-lived ServiceAccount tokens (revoke by deleting Secret \
`{TOKEN_SECRET}` in a mesh cluster).\n\
- A Secret holds at most 1 MiB: history/ of the CA directory stays where rotation ran first; \
use ECDSA keys for large fleets.\n\n\
The CronJob `{JOB_NAME}` runs `{schedule}` with `concurrencyPolicy: Forbid`, as uid {RUN_AS} \
with a read-only root file system.\n",
        mode_short = if options.alert_only {
            "alert-only"
        } else {
            "rotating"
        },
        istio_ns = spec.istio_namespace,
        clusters = clusters.join("\n"),
        schedule = options.schedule,
    )
}
