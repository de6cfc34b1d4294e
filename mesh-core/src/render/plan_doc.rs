//! `PLAN.md`: the GitOps path. The order across clusters and, per cluster, the exact `kubectl`
//! and `helm` commands with the right flags, in the order that works on a fresh cluster with
//! Istio's real charts: namespace + network label → `cacerts` → `istio/base` → `istio/istiod`
//! (wait) → east-west gateway (wait for its address) → exposure → reader token → remote
//! secrets. Nothing in it writes an object a chart owns, so the charts can be upgraded later
//! without a conflict.

use std::path::Path;
use std::time::Duration;

use super::{ClusterRender, helm};
use crate::helm::{ChartRef, Release, Target, Wait, upgrade_args};
use crate::spec::{ClusterSpec, Dataplane, Install, MeshSpec, Model, Role};

/// How PLAN.md refers to things outside the output tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanContext {
    /// The mesh file as the user named it (for `meshboot apply -f ...`).
    pub mesh_file: String,
    /// The output folder as the user named it (for `-f DIR/...` in commands).
    pub out_dir: String,
}

/// The shell variable PLAN.md uses when the mesh file pins no chart version.
const VERSION_VAR: &str = "ISTIO_VERSION";
/// How long `--wait` may take (Helm's own default).
const WAIT: Duration = Duration::from_secs(300);

pub(crate) fn kubectl_flags(c: &ClusterSpec) -> String {
    let mut s = String::new();
    if let Some(k) = &c.kubeconfig {
        s.push_str(&format!(
            " --kubeconfig {}",
            shell_word(&k.display().to_string())
        ));
    }
    s.push_str(&format!(
        " --context {}",
        shell_word(&c.context_for_commands())
    ));
    s
}

/// Quote a word for POSIX shells when it needs it.
pub(crate) fn shell_word(s: &str) -> String {
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

/// `helm upgrade --install RELEASE CHART -n NS --kube-context C [--kubeconfig K] --version V
/// -f VALUES`, the invocation the helm runner makes ([`crate::helm::upgrade_args`]).
pub(crate) fn helm_upgrade(
    spec: &MeshSpec,
    c: &ClusterSpec,
    chart: &str,
    values: &str,
    wait: bool,
    extra: &str,
) -> String {
    let placeholder = format!("${{{VERSION_VAR}}}");
    let version = spec
        .control_plane
        .version
        .clone()
        .unwrap_or_else(|| placeholder.clone());
    let release = Release {
        name: helm::release_name(chart).to_string(),
        chart: chart.to_string(),
        chart_ref: ChartRef::resolve(&spec.control_plane.source, chart, &version),
        version,
        values: serde_json::Value::Null,
        target: Target::of(spec, c),
    };
    let wait = wait.then(|| Wait::for_at_most(WAIT));
    let words: Vec<String> = upgrade_args(&release, Path::new(values), wait)
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a == placeholder {
                format!("\"{a}\"")
            } else {
                shell_word(&a)
            }
        })
        .collect();
    format!("helm {}{extra}", words.join(" "))
}

/// `meshboot remote-secret` for the pair `src` → `dst`, piped into `kubectl apply` in `dst`.
fn remote_secret_cmd(spec: &MeshSpec, src: &ClusterSpec, dst: &ClusterSpec) -> String {
    let server = src
        .api_server
        .as_deref()
        .map(|a| format!(" --server {}", shell_word(a)))
        .unwrap_or_default();
    let ns_flag = if spec.istio_namespace == "istio-system" {
        String::new()
    } else {
        format!(" -n {}", shell_word(&spec.istio_namespace))
    };
    format!(
        "meshboot remote-secret{} --name {}{server}{ns_flag} | kubectl apply{} -f -",
        kubectl_flags(src),
        src.name,
        kubectl_flags(dst)
    )
}

/// The step that applies `06-reader.yaml`, when the cluster has one.
fn reader_lines(r: &ClusterRender, k: &str, dir: &str) -> Vec<String> {
    if !has(r, "06-reader") {
        return Vec::new();
    }
    let own_identity = r
        .objects
        .iter()
        .any(|o| o.file_stem == "06-reader" && o.object["kind"] == "ServiceAccount");
    let mut out: Vec<String> = if own_identity {
        vec![
            "The reader identity the other clusters' istiod will use (its ServiceAccount, RBAC and"
                .into(),
            "token Secret):".into(),
        ]
    } else {
        vec![
            "The token of the reader account the other clusters' istiod will use".into(),
            "(`istio-reader-service-account`, created by `istio/base` above; no chart makes its token):".into(),
        ]
    };
    out.extend([
        String::new(),
        "```sh".into(),
        format!("kubectl{k} apply -f {dir}/06-reader.yaml"),
        "```".into(),
        String::new(),
    ]);
    out
}

/// Where the charts come from, in words.
fn chart_source(spec: &MeshSpec) -> String {
    let version = match &spec.control_plane.version {
        Some(v) => format!("version `{v}`"),
        None => format!("the version in `${VERSION_VAR}`"),
    };
    match &spec.control_plane.source {
        crate::spec::ChartSource::Repo(url) => format!("{version} from {url}"),
        crate::spec::ChartSource::Dir(d) => format!("{version} from `{}`", d.display()),
    }
}

/// PLAN.md: the order across clusters, the exact commands, and what is left to `meshboot apply`.
///
/// ```
/// use std::collections::BTreeMap;
/// use mesh_core::{pki::ClusterBundle, render::{self, plan_doc}, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\ncontrolPlane: {version: 1.28.2}\nclusters: [{name: a, network: n1, context: ctx-a}, {name: b, network: n2, context: ctx-b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let bundles: BTreeMap<_, _> = ["a", "b"].map(|c| (c.to_string(), ClusterBundle {
///     cluster: c.into(), ca_cert_pem: "c".into(), ca_key_pem: "k".into(), root_cert_pem: "r".into(), cert_chain_pem: "ch".into() })).into();
/// let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())?;
/// let ctx = plan_doc::PlanContext { mesh_file: "m.yaml".into(), out_dir: "out".into() };
/// let md = plan_doc::plan_markdown(&spec, &renders, &ctx);
/// assert!(md.contains("helm upgrade --install istiod istiod --repo https://istio-release.storage.googleapis.com/charts -n istio-system --kube-context ctx-a --version 1.28.2 -f out/a/helm/istiod-values.yaml --wait --timeout 300s"));
/// assert!(md.contains("meshboot remote-secret --context ctx-b --name b | kubectl apply --context ctx-a -f -"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_markdown(spec: &MeshSpec, renders: &[ClusterRender], ctx: &PlanContext) -> String {
    let out = ctx.out_dir.trim_end_matches('/');
    let ns = &spec.istio_namespace;
    let ns_word = shell_word(ns);
    let mesh_file = shell_word(&ctx.mesh_file);
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
        "Istio's Helm charts: {} (`controlPlane.install: {}`).",
        chart_source(spec),
        spec.control_plane.install
    ));
    line("");
    line(
        "This is the GitOps path: follow it by hand or from a pipeline, in this order. Every step",
    );
    line("can be repeated, and nothing here writes an object Istio's charts own (the east-west");
    line(
        "gateway is the `istio/gateway` chart's; the reader account and its RBAC are `istio/base`'s",
    );
    line("and `istio/istiod`'s), so the charts upgrade later without a conflict.");
    match spec.control_plane.install {
        Install::Helm => line(&format!(
            "`meshboot apply -f {mesh_file}` does all of it itself, the Helm steps included."
        )),
        Install::None => {
            line(&format!(
                "`meshboot apply -f {mesh_file}` expects Istio installed as below (`install: none`)"
            ));
            line(
                "and adds only what no chart makes: the namespace label, `cacerts`, the exposure, the",
            );
            line("reader token and the remote secrets.");
        }
    }
    line("Primaries come first: a remote's istiod needs its primary's east-west gateway address.");
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
            c.name,
            c.network,
            c.context_for_commands(),
            c.name
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
    line("`helm` v3.14+ or v4 and `kubectl`, with a kubeconfig context per cluster.");
    match &spec.control_plane.source {
        crate::spec::ChartSource::Repo(_) => line(
            "The charts are named with their repository (`--repo`), so no `helm repo add` is needed.",
        ),
        crate::spec::ChartSource::Dir(d) => line(&format!(
            "The charts are read from `{}` (`controlPlane.chartDir`).",
            d.display()
        )),
    }
    if spec.control_plane.version.is_none() {
        line("");
        line(&format!(
            "The mesh file pins no chart version (`controlPlane.version`); the commands use `${VERSION_VAR}`:"
        ));
        line("");
        line("```sh");
        line(&format!(
            ": \"${{{VERSION_VAR}:?set {VERSION_VAR} to the Istio chart version to install, e.g. 1.28.2}}\""
        ));
        line("```");
    }
    if spec.dataplane == Dataplane::Ambient {
        line("");
        line(
            "Ambient: the Gateway API CRDs (the version your Istio supports) must be installed in every",
        );
        line("cluster before its east-west gateway; this must succeed:");
        line("");
        line("```sh");
        for c in &order {
            line(&format!(
                "kubectl{} get crd gateways.gateway.networking.k8s.io",
                kubectl_flags(c)
            ));
        }
        line("```");
    }
    line("");

    let mut step = 0;
    let mut attached: Vec<(String, String)> = Vec::new();
    for c in order {
        let Some(r) = by_name(&c.name) else { continue };
        let k = kubectl_flags(c);
        let dir = format!("{out}/{}", c.name);
        let values = |chart: &str| format!("{dir}/helm/{chart}-values.yaml");
        step += 1;
        let what = match (c.role, spec.control_plane_of(c)) {
            (Role::Remote, Some(p)) => format!("remote, served by `{}`", p.name),
            _ => "primary".to_string(),
        };
        line(&format!("## {step}. Cluster `{}` ({what})", c.name));
        line("");
        if c.role == Role::Remote {
            line("Namespace with its network label and the primary that manages it");
            line(
                "(`topology.istio.io/controlPlaneClusters`), then the CA, both before Istio's charts:",
            );
        } else {
            line("Namespace with its network label, then the CA, both before istiod starts:");
        }
        line("");
        line("```sh");
        line(&format!(
            "kubectl{k} apply -f {dir}/01-namespace.yaml -f {dir}/02-cacerts.yaml"
        ));
        line("```");
        line("");
        if c.role == Role::Remote {
            line(
                "Istio's charts with the remote profile; istiod runs in the primary, reached at its",
            );
            line("east-west gateway's address:");
        } else if spec.dataplane == Dataplane::Ambient {
            line(
                "Istio's charts: base, istiod (`--wait`: until it is available), then the CNI node agent",
            );
            line("and ztunnel:");
        } else {
            line("Istio's charts: base, then istiod (`--wait`: until it is available):");
        }
        line("");
        line("```sh");
        line(&helm_upgrade(spec, c, "base", &values("base"), false, ""));
        if c.role == Role::Remote {
            if let Some(p) = spec.control_plane_of(c) {
                line(&format!(
                    "DISCOVERY_ADDRESS=$(kubectl{} -n {ns_word} get svc istio-eastwestgateway -o jsonpath='{{.status.loadBalancer.ingress[0].ip}}')",
                    kubectl_flags(p)
                ));
            }
            line(&helm_upgrade(
                spec,
                c,
                "istiod",
                &values("istiod"),
                false,
                " --set global.remotePilotAddress=\"${DISCOVERY_ADDRESS}\"",
            ));
        } else {
            // istiod must run before the gateway (its injector) and the remotes (their
            // control plane).
            line(&helm_upgrade(
                spec,
                c,
                "istiod",
                &values("istiod"),
                true,
                "",
            ));
        }
        for ambient_chart in ["cni", "ztunnel"] {
            if chart(r, ambient_chart) {
                line(&helm_upgrade(
                    spec,
                    c,
                    ambient_chart,
                    &values(ambient_chart),
                    true,
                    "",
                ));
            }
        }
        line("```");
        line("");
        if c.role == Role::Remote
            && let Some(p) = spec.control_plane_of(c)
        {
            // Istio's documented order (reference/istio.md §6.2 C7, D8-D9): the remote is
            // attached to its primary before anything runs in it, its gateway included, because
            // the primary's istiod injects and configures the remote's workloads.
            for l in reader_lines(r, &k, &dir) {
                line(&l);
            }
            line(&format!(
                "Attach it to `{}`: the remote secret through which `{}`'s istiod reads and serves it:",
                p.name, p.name
            ));
            line("");
            line("```sh");
            line(&remote_secret_cmd(spec, c, p));
            line("```");
            line("");
            attached.push((c.name.clone(), p.name.clone()));
        }
        if chart(r, "gateway") {
            line(
                "East-west gateway (the `istio/gateway` chart), then wait for its external address:",
            );
            line("");
            line("```sh");
            line(&helm_upgrade(
                spec,
                c,
                "gateway",
                &values("gateway"),
                false,
                "",
            ));
            line(&format!(
                "kubectl{k} -n {ns_word} wait --for=jsonpath='{{.status.loadBalancer.ingress}}' service/istio-eastwestgateway --timeout=5m"
            ));
            line("```");
            line("");
        } else if has(r, "03-eastwest-gateway") {
            line(
                "East-west gateway (a Gateway API `Gateway`: istiod creates its Deployment and Service),",
            );
            line("then wait until it has an address:");
            line("");
            line("```sh");
            line(&format!(
                "kubectl{k} apply -f {dir}/03-eastwest-gateway.yaml"
            ));
            line(&format!(
                "kubectl{k} -n {ns_word} wait --for=condition=Programmed gateways.gateway.networking.k8s.io/istio-eastwestgateway --timeout=5m"
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
        if c.role != Role::Remote {
            for l in reader_lines(r, &k, &dir) {
                line(&l);
            }
        }
    }

    step += 1;
    line(&format!("## {step}. Remote secrets (not rendered)"));
    line("");
    let pairs: Vec<(String, String)> = spec
        .remote_secret_pairs()
        .into_iter()
        .filter(|p| !attached.contains(p))
        .collect();
    if spec.remote_secret_pairs().is_empty() {
        line("None: no cluster reads another one.");
    } else if pairs.is_empty() {
        line("Every remote secret was created above, with its remote.");
    } else {
        line(
            "They carry live ServiceAccount tokens, so they are never written to disk. One per ordered",
        );
        line("pair (source → destination):");
        line("");
        line("```sh");
        for (src, dst) in &pairs {
            if let (Some(s), Some(d)) = (spec.cluster(src), spec.cluster(dst)) {
                line(&remote_secret_cmd(spec, s, d));
            }
        }
        line("```");
        line("");
        line("or all of them at once (the steps above are then left as they are):");
        line("");
        line("```sh");
        line(&format!("meshboot apply -f {mesh_file}"));
        line("```");
    }
    line("");
    step += 1;
    line(&format!("## {step}. Verify"));
    line("");
    line("```sh");
    line(&format!("meshboot verify -f {mesh_file}"));
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
        let renders = crate::render::render_mesh_with(
            &spec,
            &bundles,
            &crate::render::RenderOptions::default(),
        )
        .unwrap();
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
            "helm upgrade --install istiod istiod --repo https://istio-release.storage.googleapis.com/charts -n mesh-system --kube-context 'my ctx' --kubeconfig conf/a.kubeconfig --version \"${ISTIO_VERSION}\" -f out/a/helm/istiod-values.yaml --wait --timeout 300s"
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
    fn a_chart_dir_is_named_by_path_packaged_or_not() {
        let charts = tempfile::tempdir().unwrap();
        std::fs::write(charts.path().join("base-1.28.2.tgz"), b"packaged").unwrap();
        let dir = charts.path().display().to_string();
        let md = plan(&format!(
            "controlPlane: {{install: helm, version: 1.28.2, chartDir: {dir}}}\nclusters:\n  - {{name: a, network: n1, context: a}}\n  - {{name: b, network: n2, context: b}}\n"
        ));
        assert!(
            md.contains(&format!(
                "helm upgrade --install istio-base {dir}/base-1.28.2.tgz -n istio-system --kube-context a --version 1.28.2 -f out/a/helm/base-values.yaml\n"
            )),
            "{md}"
        );
        assert!(
            md.contains(&format!(
                "helm upgrade --install istiod {dir}/istiod -n istio-system --kube-context a --version 1.28.2"
            )),
            "{md}"
        );
        assert!(!md.contains("--repo "), "{md}");
        assert!(
            md.contains(&format!("version `1.28.2` from `{dir}`")),
            "{md}"
        );
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("eu"), "eu");
        assert_eq!(shell_word("my ctx"), "'my ctx'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
