//! `PLAN.md`: the order across clusters, the exact `kubectl`/`helm` commands with the right
//! flags per cluster, and what is left to `meshboot apply` (the remote secrets, which carry live
//! tokens and are never rendered).

use super::{ClusterRender, helm};
use crate::spec::{ClusterSpec, Dataplane, MeshSpec, Model, Role};

/// How PLAN.md refers to things outside the output tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanContext {
    /// The mesh file as the user named it (for `meshboot apply -f ...`).
    pub mesh_file: String,
    /// The output folder as the user named it (for `-f DIR/...` in commands).
    pub out_dir: String,
}

fn ctx_flags(c: &ClusterSpec, kubectl: bool) -> String {
    let mut s = String::new();
    if let Some(k) = &c.kubeconfig {
        s.push_str(&format!(
            " --kubeconfig {}",
            shell_word(&k.display().to_string())
        ));
    }
    if kubectl {
        s.push_str(&format!(" --context {}", shell_word(&c.context)));
    } else {
        s.push_str(&format!(" --kube-context {}", shell_word(&c.context)));
    }
    s
}

/// Quote a word for POSIX shells when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn has(r: &ClusterRender, stem: &str) -> bool {
    r.objects.iter().any(|o| o.file_stem == stem)
}

fn chart(r: &ClusterRender, chart: &str) -> bool {
    r.helm_values.iter().any(|h| h.chart == chart)
}

/// PLAN.md: the order across clusters, the exact commands, and what is left to `meshboot apply`.
///
/// ```
/// use std::collections::BTreeMap;
/// use mesh_core::{pki::ClusterBundle, render::{self, plan_doc}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n1, context: ctx-a}, {name: b, network: n2, context: ctx-b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let bundles: BTreeMap<_, _> = ["a", "b"].map(|c| (c.to_string(), ClusterBundle {
///     cluster: c.into(), ca_cert_pem: "c".into(), ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() })).into();
/// let renders = render::render_mesh(&spec, &bundles)?;
/// let ctx = plan_doc::PlanContext { mesh_file: "m.yaml".into(), out_dir: "out".into() };
/// let md = plan_doc::plan_markdown(&spec, &renders, &ctx);
/// assert!(md.contains("helm install istiod istio/istiod -n istio-system --kube-context ctx-a -f out/a/helm/istiod-values.yaml --wait"));
/// assert!(md.contains("meshboot remote-secret --context ctx-b --name b | kubectl apply --context ctx-a -f -"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_markdown(spec: &MeshSpec, renders: &[ClusterRender], ctx: &PlanContext) -> String {
    let out = ctx.out_dir.trim_end_matches('/');
    let ns = &spec.istio_namespace;
    let mut md = String::new();
    let mut line = |s: &str| {
        md.push_str(s);
        md.push('\n');
    };
    line(&format!("# Mesh `{}`: bootstrap plan", spec.mesh_id));
    line("");
    line(&format!(
        "Rendered by `meshboot render` from `{}`: model **{}**, data plane **{}**, trust domain `{}`, namespace `{ns}`.",
        ctx.mesh_file, spec.model, spec.dataplane, spec.trust_domain
    ));
    line(&format!(
        "`meshboot apply -f {}` applies every object below and creates the remote secrets; it",
        shell_word(&ctx.mesh_file)
    ));
    line("does not run Helm. This plan is for GitOps or by hand. Primaries come first: a remote's");
    line("istiod needs its primary's east-west gateway address.");
    line("");
    line("| cluster | role | network | context | files |");
    line("|---|---|---|---|---|");
    for r in renders {
        let Some(c) = spec.cluster(&r.cluster) else {
            continue;
        };
        let role = match (spec.model, c.role, spec.control_plane_of(c)) {
            (Model::PrimaryRemote, Role::Remote, Some(p)) => format!("remote of {}", p.name),
            _ => "primary".to_string(),
        };
        line(&format!(
            "| {} | {role} | {} | {} | `{out}/{}/` |",
            c.name, c.network, c.context, c.name
        ));
    }
    line("");
    line("`02-cacerts.yaml` holds the cluster's intermediate CA private key (mode 0600): keep it");
    line("out of git, or encrypt it (SOPS, Sealed Secrets) before committing.");
    line("");

    let by_name = |name: &str| renders.iter().find(|r| r.cluster == name);
    // Primaries first: a remote's istiod values need its primary's east-west gateway address.
    let mut order: Vec<&ClusterSpec> = spec.primaries().collect();
    order.extend(spec.clusters.iter().filter(|c| !c.is_primary()));

    line("## Prerequisites");
    line("");
    line("```sh");
    line("helm repo add istio https://istio-release.storage.googleapis.com/charts");
    line("helm repo update");
    line("```");
    if spec.dataplane == Dataplane::Ambient {
        line("");
        line("Ambient: the Gateway API CRDs must be installed in every cluster");
        line("(`kubectl get crd gateways.gateway.networking.k8s.io`).");
    }
    line("");

    let mut step = 0;
    for c in order {
        let Some(r) = by_name(&c.name) else { continue };
        let k = ctx_flags(c, true);
        let h = ctx_flags(c, false);
        let dir = format!("{out}/{}", c.name);
        step += 1;
        let what = match (c.role, spec.control_plane_of(c)) {
            (Role::Remote, Some(p)) => format!("remote, served by `{}`", p.name),
            _ => "primary".to_string(),
        };
        line(&format!("## {step}. Cluster `{}` ({what})", c.name));
        line("");
        line("Namespace with its network label, then the CA, both before istiod starts:");
        line("");
        line("```sh");
        line(&format!(
            "kubectl{k} apply -f {dir}/01-namespace.yaml -f {dir}/02-cacerts.yaml"
        ));
        line("```");
        line("");
        line("Control plane:");
        line("");
        line("```sh");
        let helm_install = |chart: &str, extra: &str| {
            format!(
                "helm install {} istio/{chart} -n {ns}{h} -f {dir}/helm/{chart}-values.yaml{extra}",
                helm::release_name(chart)
            )
        };
        line(&helm_install("base", ""));
        if c.role == Role::Remote {
            if let Some(p) = spec.control_plane_of(c) {
                line(&format!(
                    "DISCOVERY_ADDRESS=$(kubectl{} -n {ns} get svc istio-eastwestgateway -o jsonpath='{{.status.loadBalancer.ingress[0].ip}}')",
                    ctx_flags(p, true)
                ));
            }
            line(&helm_install(
                "istiod",
                " --set global.remotePilotAddress=\"${DISCOVERY_ADDRESS}\"",
            ));
        } else {
            line(&helm_install("istiod", " --wait"));
        }
        if chart(r, "cni") {
            line(&helm_install("cni", " --wait"));
        }
        if chart(r, "ztunnel") {
            line(&helm_install("ztunnel", " --wait"));
        }
        line("```");
        line("");
        if has(r, "03-eastwest-gateway") {
            line("East-west gateway, then wait for its external address:");
            line("");
            line("```sh");
            if chart(r, "gateway") {
                line(&helm_install("gateway", ""));
                line(&format!(
                    "# or, without Helm: kubectl{k} apply -f {dir}/03-eastwest-gateway.yaml"
                ));
            } else {
                line(&format!(
                    "kubectl{k} apply -f {dir}/03-eastwest-gateway.yaml"
                ));
            }
            line(&format!(
                "kubectl{k} -n {ns} get svc istio-eastwestgateway -w   # until EXTERNAL-IP is set"
            ));
            line("```");
            line("");
        }
        let exposures: Vec<String> = ["04-expose-services", "05-expose-istiod"]
            .iter()
            .filter(|s| has(r, s))
            .map(|s| format!("-f {dir}/{s}.yaml"))
            .collect();
        if !exposures.is_empty() {
            line("Exposure through the east-west gateway:");
            line("");
            line("```sh");
            line(&format!("kubectl{k} apply {}", exposures.join(" ")));
            line("```");
            line("");
        }
        if has(r, "06-reader") {
            line(
                "Reader identity the other clusters' istiod will use (after Helm, which creates the",
            );
            line("same ServiceAccount and ClusterRole):");
            line("");
            line("```sh");
            line(&format!("kubectl{k} apply -f {dir}/06-reader.yaml"));
            line("```");
            line("");
        }
    }

    step += 1;
    line(&format!("## {step}. Remote secrets (not rendered)"));
    line("");
    let pairs = spec.remote_secret_pairs();
    if pairs.is_empty() {
        line("None: no cluster reads another one.");
    } else {
        line(
            "They carry live ServiceAccount tokens, so they are never written to disk. Either let",
        );
        line(
            "meshboot create all of them (it applies the objects above too, leaving alone what is",
        );
        line("already in place):");
        line("");
        line("```sh");
        line(&format!("meshboot apply -f {}", shell_word(&ctx.mesh_file)));
        line("```");
        line("");
        line("or one per ordered pair (source → destination):");
        let ns_flag = if ns == "istio-system" {
            String::new()
        } else {
            format!(" -n {ns}")
        };
        line("");
        line("```sh");
        for (src, dst) in &pairs {
            let (Some(s), Some(d)) = (spec.cluster(src), spec.cluster(dst)) else {
                continue;
            };
            let server = s
                .api_server
                .as_deref()
                .map(|a| format!(" --server {}", shell_word(a)))
                .unwrap_or_default();
            line(&format!(
                "meshboot remote-secret{} --name {}{server}{ns_flag} | kubectl apply{} -f -",
                ctx_flags(s, true),
                s.name,
                ctx_flags(d, true)
            ));
        }
        line("```");
    }
    line("");
    step += 1;
    line(&format!("## {step}. Verify"));
    line("");
    line("```sh");
    line(&format!(
        "meshboot verify -f {}",
        shell_word(&ctx.mesh_file)
    ));
    line("```");
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ClusterBundle;

    fn plan(body: &str) -> String {
        let text = format!("apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\n{body}");
        let spec = MeshSpec::from_yaml(&text, std::path::Path::new("conf"), "m.yaml").unwrap();
        let bundles = spec
            .clusters
            .iter()
            .map(|c| {
                let b = ClusterBundle {
                    cluster: c.name.clone(),
                    ca_cert_pem: "c".into(),
                    ca_key_pem: "k".into(),
                    root_cert_pem: "r".into(),
                    cert_chain_pem: "ch".into(),
                };
                (c.name.clone(), b)
            })
            .collect();
        let renders = crate::render::render_mesh(&spec, &bundles).unwrap();
        let ctx = PlanContext {
            mesh_file: "conf/m.yaml".into(),
            out_dir: "out/".into(),
        };
        plan_markdown(&spec, &renders, &ctx)
    }

    #[test]
    fn kubeconfig_and_namespace_reach_every_command() {
        let md = plan(
            "istioNamespace: mesh-system\nclusters:\n  - {name: a, network: n1, context: \"my ctx\", kubeconfig: ./a.kubeconfig}\n  - {name: b, network: n2, context: b}\n",
        );
        assert!(md.contains(
            "kubectl --kubeconfig conf/a.kubeconfig --context 'my ctx' apply -f out/a/01-namespace.yaml"
        ), "{md}");
        assert!(md.contains(
            "helm install istiod istio/istiod -n mesh-system --kubeconfig conf/a.kubeconfig --kube-context 'my ctx' -f out/a/helm/istiod-values.yaml --wait"
        ), "{md}");
        assert!(md.contains(
            "meshboot remote-secret --kubeconfig conf/a.kubeconfig --context 'my ctx' --name a -n mesh-system | kubectl apply --context b -f -"
        ), "{md}");
    }

    #[test]
    fn primaries_come_before_their_remotes() {
        let md = plan(
            "model: primary-remote\nclusters:\n  - {name: r, network: n1, context: r, role: remote}\n  - {name: p, network: n1, context: p, role: primary}\n",
        );
        let p = md
            .find("## 1. Cluster `p` (primary)")
            .expect("primary first");
        let r = md
            .find("## 2. Cluster `r` (remote, served by `p`)")
            .expect("remote second");
        assert!(p < r);
        assert!(md.contains(
            "DISCOVERY_ADDRESS=$(kubectl --context p -n istio-system get svc istio-eastwestgateway"
        ), "{md}");
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("eu"), "eu");
        assert_eq!(shell_word("my ctx"), "'my ctx'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
