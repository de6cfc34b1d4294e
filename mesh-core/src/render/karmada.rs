//! `meshboot render --format karmada`: what the Karmada API server may carry to the members,
//! and nothing else. Pure: the same mesh file gives the same bytes, and no CA is read or made.
//!
//! For every object of [`super::public_objects`] (the Istio namespace and its labels, the
//! exposure `Gateway`s, ambient's east-west `Gateway`), one resource template for the hub, a
//! (Cluster)PropagationPolicy placing it on exactly the members that need it, and, where the
//! members' copies differ (the network label above all), a (Cluster)OverridePolicy with one
//! rule per member: `labelsOverrider`/`annotationsOverrider` (`add`, which creates the map when
//! the template has none, as Karmada's overridemanager does) and `plaintext` `replace` for any
//! other field. The template keeps what every member shares.
//!
//! No Secret of any kind is rendered (`cacerts`, reader tokens, remote secrets): the hub keys a
//! template by namespace and name, so one `cacerts` per member would put every intermediate's
//! private key in the hub's etcd, its OverridePolicy and the `karmada-es-<member>` Work objects
//! (DESIGN §6). PLAN.md sends the user to `meshboot apply --only secrets`, which writes them to
//! the members directly ([`crate::plan::Only::Secrets`]).
//!
//! ```text
//! DIR/PLAN.md                           the order: hub CRDs, hub objects, secrets, charts
//! DIR/karmada/10-namespace.yaml         Namespace + ClusterPropagationPolicy (+ ClusterOverridePolicy)
//! DIR/karmada/20-gateways.yaml          Gateways + PropagationPolicy (+ OverridePolicy), when any
//! DIR/members/<cluster>/helm/*.yaml     Istio's chart values per member (installed with helm)
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::output::{OutputFile, PlanContext};
use super::plan_doc::{helm_upgrade, kubectl_flags, shell_word};
use super::{Needs, RenderError, helm, public_objects, yaml};
use crate::phase::Phase;
use crate::spec::{ClusterSpec, Dataplane, Install, MeshSpec, Role};

/// `apiVersion` of Karmada's policies.
pub const POLICY_API_VERSION: &str = "policy.karmada.io/v1alpha1";
/// The kubeconfig context PLAN.md uses for the Karmada API server unless `$KARMADA_CONTEXT`
/// says otherwise (the name `karmadactl init` gives it).
pub const DEFAULT_HUB_CONTEXT: &str = "karmada-apiserver";
/// Prefix of every policy meshboot renders, so they are easy to tell from the user's own.
const POLICY_PREFIX: &str = "meshboot-";

/// The `kubectl` flags that reach the Karmada API server: the mesh file's `karmada.context`
/// (and `kubeconfig`) when it names the hub, else `$KARMADA_CONTEXT`, default
/// [`DEFAULT_HUB_CONTEXT`].
///
/// ```
/// use mesh_core::{render::karmada::hub_flags, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n, context: a}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// assert_eq!(hub_flags(&spec), " --context \"${KARMADA_CONTEXT:-karmada-apiserver}\"");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn hub_flags(spec: &MeshSpec) -> String {
    match &spec.karmada {
        Some(k) => {
            let mut s = String::new();
            if let Some(path) = &k.kubeconfig {
                s.push_str(&format!(
                    " --kubeconfig {}",
                    shell_word(&path.display().to_string())
                ));
            }
            s.push_str(&format!(" --context {}", shell_word(&k.context)));
            s
        }
        None => format!(" --context \"${{KARMADA_CONTEXT:-{DEFAULT_HUB_CONTEXT}}}\""),
    }
}

/// One resource template with where it goes and what differs per member.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The phase its objects belong to in `meshboot apply` (namespace or gateways).
    pub phase: Phase,
    /// The object as stored in the hub: what every member's copy shares.
    pub object: Value,
    /// The members that get it, in mesh-file order.
    pub clusters: Vec<String>,
    /// Per member, the overriders that turn the template into its copy (empty: none needed).
    pub overrides: Vec<(String, Value)>,
}

impl Template {
    fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"].as_str()
    }

    fn policy_name(&self) -> String {
        format!(
            "{POLICY_PREFIX}{}-{}",
            self.kind().to_ascii_lowercase(),
            self.name()
        )
    }

    fn selector(&self) -> Value {
        let mut s = json!({
            "apiVersion": self.object["apiVersion"],
            "kind": self.kind(),
            "name": self.name(),
        });
        if let Some(ns) = self.namespace() {
            s["namespace"] = json!(ns);
        }
        s
    }

    /// The (Cluster)PropagationPolicy placing the template on its members.
    pub fn propagation_policy(&self) -> Value {
        let mut policy = json!({
            "apiVersion": POLICY_API_VERSION,
            "kind": if self.namespace().is_some() { "PropagationPolicy" } else { "ClusterPropagationPolicy" },
            "metadata": {"name": self.policy_name()},
            "spec": {
                "resourceSelectors": [self.selector()],
                "placement": {"clusterAffinity": {"clusterNames": self.clusters}},
            },
        });
        if let Some(ns) = self.namespace() {
            policy["metadata"]["namespace"] = json!(ns);
        }
        if self.kind() == "Namespace" {
            // Deleting the template (or the policy) must never delete istio-system, with
            // istiod and cacerts in it, from every member at once.
            policy["spec"]["preserveResourcesOnDeletion"] = json!(true);
        }
        policy
    }

    /// The (Cluster)OverridePolicy with one rule per member whose copy differs, if any does.
    pub fn override_policy(&self) -> Option<Value> {
        if self.overrides.is_empty() {
            return None;
        }
        let rules: Vec<Value> = self
            .overrides
            .iter()
            .map(|(cluster, overriders)| {
                json!({"targetCluster": {"clusterNames": [cluster]}, "overriders": overriders})
            })
            .collect();
        let mut policy = json!({
            "apiVersion": POLICY_API_VERSION,
            "kind": if self.namespace().is_some() { "OverridePolicy" } else { "ClusterOverridePolicy" },
            "metadata": {"name": self.policy_name()},
            "spec": {"resourceSelectors": [self.selector()], "overrideRules": rules},
        });
        if let Some(ns) = self.namespace() {
            policy["metadata"]["namespace"] = json!(ns);
        }
        Some(policy)
    }
}

/// Every template of the mesh, in apply order (the namespace first), built from each member's
/// [`super::public_objects`].
///
/// ```
/// use mesh_core::{render::karmada, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: net3, context: eu}, {name: us, network: net2, context: us}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let templates = karmada::templates(&spec)?;
/// let ns = &templates[0];
/// assert_eq!(ns.object["kind"], "Namespace");
/// // The networks differ, so the template has no network label and each member gets its own.
/// assert!(ns.object["metadata"].get("labels").is_none());
/// let (cluster, overriders) = &ns.overrides[0];
/// assert_eq!(cluster, "eu");
/// assert_eq!(overriders["labelsOverrider"][0]["value"]["topology.istio.io/network"], "net3");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn templates(spec: &MeshSpec) -> Result<Vec<Template>, RenderError> {
    // (apiVersion, kind, namespace, name) → (phase, [(cluster, object)]), in first-seen order.
    type Key = (String, String, String, String);
    let mut order: Vec<Key> = Vec::new();
    let mut copies: BTreeMap<Key, (Phase, Vec<(String, Value)>)> = BTreeMap::new();
    for cluster in &spec.clusters {
        for rendered in public_objects(spec, cluster)? {
            let o = &rendered.object;
            let key = (
                o["apiVersion"].as_str().unwrap_or_default().to_string(),
                o["kind"].as_str().unwrap_or_default().to_string(),
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            let entry = copies.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                (rendered.phase, Vec::new())
            });
            entry.1.push((cluster.name.clone(), rendered.object));
        }
    }
    let mut out = Vec::new();
    for key in order {
        if let Some((phase, members)) = copies.remove(&key) {
            out.push(template_of(phase, members));
        }
    }
    Ok(out)
}

/// The shared part of the members' copies and each member's overriders.
fn template_of(phase: Phase, members: Vec<(String, Value)>) -> Template {
    let first = members.first().map(|(_, o)| o.clone()).unwrap_or_default();
    let mut template = first.clone();
    // Labels and annotations: keep the entries every copy has with the same value.
    for field in ["labels", "annotations"] {
        let shared: Map<String, Value> = first["metadata"][field]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| {
                        members
                            .iter()
                            .all(|(_, o)| o["metadata"][field].get(k.as_str()) == Some(v))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(meta) = template["metadata"].as_object_mut() {
            if shared.is_empty() {
                meta.remove(field);
            } else {
                meta.insert(field.to_string(), Value::Object(shared));
            }
        }
    }
    let mut overrides = Vec::new();
    for (cluster, copy) in &members {
        let mut overriders = Map::new();
        for (field, overrider) in [
            ("labels", "labelsOverrider"),
            ("annotations", "annotationsOverrider"),
        ] {
            let extra: Map<String, Value> = copy["metadata"][field]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| template["metadata"][field].get(k.as_str()).is_none())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if !extra.is_empty() {
                overriders.insert(
                    overrider.to_string(),
                    json!([{"operator": "add", "value": extra}]),
                );
            }
        }
        // Any other top-level field that differs is replaced whole.
        let plaintext: Vec<Value> = copy
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, v)| k.as_str() != "metadata" && template.get(k.as_str()) != Some(v))
                    .map(|(k, v)| json!({"path": format!("/{k}"), "operator": "replace", "value": v}))
                    .collect()
            })
            .unwrap_or_default();
        if !plaintext.is_empty() {
            overriders.insert("plaintext".into(), Value::Array(plaintext));
        }
        if !overriders.is_empty() {
            overrides.push((cluster.clone(), Value::Object(overriders)));
        }
    }
    Template {
        phase,
        object: template,
        clusters: members.into_iter().map(|(c, _)| c).collect(),
        overrides,
    }
}

/// Every file of `render --format karmada`, in a stable order.
///
/// ```
/// use mesh_core::{render::{karmada, output::PlanContext}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: eu, network: n1, context: eu}, {name: us, network: n2, context: us}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let ctx = PlanContext { mesh_file: "m.yaml".into(), out_dir: "out".into() };
/// let files = karmada::files(&spec, &ctx)?;
/// let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
/// assert!(paths.contains(&"karmada/10-namespace.yaml") && paths.contains(&"karmada/20-gateways.yaml"));
/// assert!(files.iter().all(|f| !f.sensitive && !f.contents.contains("kind: Secret")));
/// let plan = files.iter().find(|f| f.path == "PLAN.md").unwrap();
/// assert!(plan.contents.contains("meshboot apply --only secrets -f m.yaml"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn files(spec: &MeshSpec, ctx: &PlanContext) -> Result<Vec<OutputFile>, RenderError> {
    let templates = templates(spec)?;
    let mut out = Vec::new();
    for (path, phase) in [
        ("karmada/10-namespace.yaml", Phase::Namespace),
        ("karmada/20-gateways.yaml", Phase::Gateways),
    ] {
        let mut docs: Vec<Value> = Vec::new();
        for t in templates.iter().filter(|t| t.phase == phase) {
            docs.push(t.object.clone());
            docs.push(t.propagation_policy());
            docs.extend(t.override_policy());
        }
        if docs.is_empty() {
            continue;
        }
        out.push(OutputFile {
            path: path.into(),
            contents: yaml::to_yaml_documents(docs.iter())?,
            sensitive: false,
        });
    }
    for cluster in &spec.clusters {
        // A remote's istiod needs its primary's gateway address, which PLAN.md reads at install
        // time (`--set global.remotePilotAddress`), as the GitOps PLAN.md does.
        for values in helm::values(spec, cluster, Needs::of(spec, cluster), None)? {
            out.push(OutputFile {
                path: format!("members/{}/helm/{}-values.yaml", cluster.name, values.chart),
                contents: yaml::to_yaml(&values.values)?,
                sensitive: false,
            });
        }
    }
    out.push(OutputFile {
        path: "PLAN.md".into(),
        contents: plan_markdown(spec, &templates, &out, ctx),
        sensitive: false,
    });
    Ok(out)
}

fn plan_markdown(
    spec: &MeshSpec,
    templates: &[Template],
    files: &[OutputFile],
    ctx: &PlanContext,
) -> String {
    let out = ctx.out_dir.trim_end_matches('/');
    let mesh_file = shell_word(&ctx.mesh_file);
    let hub = hub_flags(spec);
    let ns_word = shell_word(&spec.istio_namespace);
    let mut md = String::new();
    let mut line = |s: &str| {
        md.push_str(s);
        md.push('\n');
    };
    line(&format!("# Mesh `{}` through Karmada", spec.mesh_id));
    line("");
    line(&format!(
        "Rendered by `meshboot render --format karmada` from `{}`: model **{}**, data plane **{}**, namespace `{}`.",
        ctx.mesh_file, spec.model, spec.dataplane, spec.istio_namespace
    ));
    line("");
    line(
        "The Karmada API server gets only what holds no secret: resource templates and the policies",
    );
    line("that place them on the members, with an override per member where the copies differ.");
    line("");
    line("| template | members | differs per member |");
    line("|---|---|---|");
    for t in templates {
        let what = match t.namespace() {
            Some(ns) => format!("{} `{ns}/{}`", t.kind(), t.name()),
            None => format!("{} `{}`", t.kind(), t.name()),
        };
        let differs: Vec<&str> = t.overrides.iter().map(|(c, _)| c.as_str()).collect();
        line(&format!(
            "| {what} | {} | {} |",
            t.clusters.join(", "),
            if differs.is_empty() {
                "no".to_string()
            } else {
                format!("yes ({})", differs.join(", "))
            }
        ));
    }
    line("");
    line("## Why the secrets do not go through Karmada");
    line("");
    line(
        "`cacerts` (each member's intermediate CA **with its private key**), the reader tokens and the",
    );
    line(
        "remote secrets differ per member. Karmada keys a resource template by namespace and name, so",
    );
    line(
        "one `istio-system/cacerts` for every member means a template plus an OverridePolicy carrying",
    );
    line(
        "each member's key: every intermediate key would sit in the hub's etcd, in that OverridePolicy",
    );
    line(
        "and in the Work objects under `karmada-es-<member>`, readable by anyone who can read the hub.",
    );
    line(
        "A remote secret is a working credential for another member's API server: the same exposure.",
    );
    line("So nothing here is a Secret; `meshboot apply --only secrets` writes them to the members");
    line("directly, and the root key never leaves the CA directory.");
    line("");
    line("## 1. Istio's kinds on the Karmada API server");
    line("");
    line("The hub stores the Gateway templates, so it must serve their kinds (its members get the");
    line("CRDs from `istio/base` as usual; Karmada does not propagate CRDs it has no policy for):");
    line("");
    line("```sh");
    let version = spec
        .control_plane
        .version
        .clone()
        .unwrap_or_else(|| "${ISTIO_VERSION}".to_string());
    if templates.iter().any(|t| {
        t.object["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with("networking.istio.io/"))
    }) {
        line(&format!(
            "kubectl{hub} apply --server-side -f \"https://raw.githubusercontent.com/istio/istio/{version}/manifests/charts/base/files/crd-all.gen.yaml\""
        ));
    }
    if spec.dataplane == Dataplane::Ambient {
        line("# ambient: the Gateway API CRDs your Istio version supports, e.g.");
        line(&format!(
            "kubectl{hub} apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/standard-install.yaml"
        ));
    }
    line(&format!(
        "kubectl{hub} get crd propagationpolicies.policy.karmada.io clusterpropagationpolicies.policy.karmada.io"
    ));
    line("```");
    line("");
    line("## 2. Templates and policies, on the Karmada API server");
    line("");
    line("```sh");
    line(&format!(
        "kubectl{hub} apply --server-side -f {out}/karmada/"
    ));
    line("```");
    line("");
    line("Wait until every member has the namespace with its network label:");
    line("");
    line("```sh");
    for c in &spec.clusters {
        line(&format!(
            "kubectl{} get namespace {ns_word} -L topology.istio.io/network",
            kubectl_flags(c)
        ));
    }
    line("```");
    line("");
    line(
        "The policies keep Karmada's default `conflictResolution: Abort`: a member that already has",
    );
    line(
        "one of these objects (from an earlier `meshboot apply`, say) is reported as a conflict and",
    );
    line(
        "left alone. Set `conflictResolution: Overwrite` in the policy to let Karmada take it over.",
    );
    line(
        "The namespace policy sets `preserveResourcesOnDeletion: true`: deleting the template never",
    );
    line(&format!(
        "deletes `{}` (istiod, `cacerts`) from the members.",
        spec.istio_namespace
    ));
    line("");
    line("## 3. The secrets, straight to the members");
    line("");
    line("```sh");
    line(&format!(
        "meshboot apply --only secrets -f {mesh_file} --dry-run"
    ));
    line(&format!("meshboot apply --only secrets -f {mesh_file}"));
    line("```");
    line("");
    line(
        "With the member contexts of the mesh file, this creates the CA (root and one intermediate",
    );
    line(
        "per member, locally), then writes per member `cacerts` (before istiod starts), the reader",
    );
    line(
        "identity and token the other members' istiod use, and per pair the remote secret, plus the",
    );
    line(
        "steps those depend on (the namespace, which Karmada already made, is applied unchanged).",
    );
    if spec.control_plane.install == Install::Helm {
        line(
            "With `controlPlane.install: helm` that includes `istio/base`, which makes the reader account.",
        );
    }
    line("Re-run it after adding a member; it is idempotent.");
    line("");
    line("## 4. Istio's charts, per member");
    line("");
    line(
        "After step 3 (`cacerts` must be there before istiod starts). Primaries first: a remote's",
    );
    line("istiod needs its primary's east-west gateway address.");
    line("");
    let mut order: Vec<&ClusterSpec> = spec.primaries().collect();
    order.extend(spec.clusters.iter().filter(|c| !c.is_primary()));
    for c in order {
        let prefix = format!("members/{}/helm/", c.name);
        let charts: Vec<&str> = ["base", "istiod", "cni", "ztunnel", "gateway"]
            .into_iter()
            .filter(|chart| {
                files
                    .iter()
                    .any(|f| f.path == format!("{prefix}{chart}-values.yaml"))
            })
            .collect();
        if charts.is_empty() {
            continue;
        }
        line(&format!("`{}`:", c.name));
        line("");
        line("```sh");
        for chart in charts {
            let values = format!("{out}/{prefix}{chart}-values.yaml");
            let remote_istiod = chart == "istiod" && c.role == Role::Remote;
            if remote_istiod && let Some(p) = spec.control_plane_of(c) {
                line(&format!(
                    "DISCOVERY_ADDRESS=$(kubectl{} -n {ns_word} get svc istio-eastwestgateway -o jsonpath='{{.status.loadBalancer.ingress[0].ip}}')",
                    kubectl_flags(p)
                ));
            }
            let extra = if remote_istiod {
                " --set global.remotePilotAddress=\"${DISCOVERY_ADDRESS}\""
            } else {
                ""
            };
            let wait = matches!(chart, "istiod" | "cni" | "ztunnel") && !remote_istiod;
            line(&helm_upgrade(spec, c, chart, &values, wait, extra));
        }
        line("```");
        line("");
    }
    line("## 5. Check");
    line("");
    line("```sh");
    line(&format!("meshboot verify -f {mesh_file}"));
    line("```");
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_clusters: &str, extra: &str) -> MeshSpec {
        let yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\n{extra}clusters:\n{yaml_clusters}"
        );
        MeshSpec::from_yaml(&yaml, std::path::Path::new("/tmp"), "mesh.yaml").unwrap()
    }

    const THREE: &str = "  - {name: eu, network: network3, context: eu}\n  - {name: ap, network: network1, context: ap}\n  - {name: us, network: network2, context: us}\n";

    #[test]
    fn one_network_needs_no_override_and_no_gateway() {
        let s = spec(
            "  - {name: a, network: n, context: a}\n  - {name: b, network: n, context: b}\n",
            "",
        );
        let t = templates(&s).unwrap();
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(
            t[0].object["metadata"]["labels"]["topology.istio.io/network"],
            "n"
        );
        assert!(t[0].override_policy().is_none());
        assert_eq!(t[0].clusters, ["a", "b"]);
    }

    #[test]
    fn the_exposure_gateway_is_one_template_for_every_primary() {
        let t = templates(&spec(THREE, "")).unwrap();
        let gw = t.iter().find(|t| t.kind() == "Gateway").unwrap();
        assert_eq!(gw.clusters, ["eu", "ap", "us"]);
        assert!(gw.overrides.is_empty());
        let pp = gw.propagation_policy();
        assert_eq!(pp["kind"], "PropagationPolicy");
        assert_eq!(pp["metadata"]["namespace"], "istio-system");
        assert_eq!(
            pp["spec"]["resourceSelectors"][0]["name"],
            "cross-network-gateway"
        );
        let ns = t.iter().find(|t| t.kind() == "Namespace").unwrap();
        assert_eq!(ns.propagation_policy()["kind"], "ClusterPropagationPolicy");
        assert_eq!(
            ns.override_policy().unwrap()["kind"],
            "ClusterOverridePolicy"
        );
        assert_eq!(ns.overrides.len(), 3);
    }

    #[test]
    fn a_remotes_annotation_is_its_own_override() {
        let s = spec(
            "  - {name: p, network: n1, context: p, role: primary}\n  - {name: r, network: n2, context: r, role: remote}\n",
            "model: primary-remote\n",
        );
        let t = templates(&s).unwrap();
        let ns = &t[0];
        let (cluster, o) = &ns.overrides[1];
        assert_eq!(cluster, "r");
        assert_eq!(
            o["annotationsOverrider"][0]["value"]["topology.istio.io/controlPlaneClusters"],
            "p"
        );
        // istiod's exposure goes to the primary only.
        let istiod = t.iter().find(|t| t.name() == "istiod-gateway").unwrap();
        assert_eq!(istiod.clusters, ["p"]);
    }

    #[test]
    fn ambient_gateways_differ_by_label_only() {
        let t = templates(&spec(THREE, "dataplane: ambient\n")).unwrap();
        let gw = t
            .iter()
            .find(|t| t.name() == "istio-eastwestgateway")
            .unwrap();
        assert_eq!(gw.overrides.len(), 3);
        for (_, o) in &gw.overrides {
            assert!(o.get("plaintext").is_none(), "{o}");
            assert!(o.get("labelsOverrider").is_some());
        }
    }

    #[test]
    fn no_file_holds_a_secret() {
        let ctx = PlanContext {
            mesh_file: "mesh.yaml".into(),
            out_dir: "out".into(),
        };
        for extra in [
            "",
            "dataplane: ambient\n",
            "readerToken: {ttl: 24h}\n",
            "controlPlane: {install: helm, version: 1.28.2}\n",
        ] {
            for f in files(&spec(THREE, extra), &ctx).unwrap() {
                assert!(!f.sensitive);
                assert!(!f.contents.contains("kind: Secret"), "{}", f.path);
                assert!(!f.contents.contains("ca-key.pem"), "{}", f.path);
            }
        }
    }
}
