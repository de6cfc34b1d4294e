//! The east-west gateway objects meshboot renders.
//!
//! Ambient: the Gateway API `Gateway` of class `istio-east-west` (§5.4), which no chart makes:
//! istiod (with `AMBIENT_ENABLE_MULTI_NETWORK`) turns it into the gateway Deployment and
//! Service.
//!
//! Sidecar: the gateway is the `istio/gateway` chart's, installed with the values of
//! [`super::helm`] (`name=istio-eastwestgateway`, `networkGateway=<network>`). The plain
//! manifests below are what the chart renders with those values (`reference/istio.md` §5.3:
//! ServiceAccount, Role, RoleBinding, Service, Deployment, without Helm's bookkeeping labels and
//! the autoscaler). They exist only for `meshboot apply`, which writes them until it installs
//! the chart ([`super::RenderOptions::eastwest_manifests`]); they are the chart's objects, so
//! nothing new should apply them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    Sysctl,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::{NETWORK_LABEL, RenderError, string_map, to_value};
use crate::spec::{ClusterSpec, Dataplane, MeshSpec};

/// Name of the gateway (Deployment, Service, ServiceAccount, Role, RoleBinding).
pub const NAME: &str = "istio-eastwestgateway";
/// The `istio` selector label the exposure Gateways select (`NAME` without `istio-`).
pub const ISTIO_LABEL: &str = "eastwestgateway";
/// The four ports `networkGateway` sets on the Service (§5.3).
pub const PORTS: [(&str, i32); 4] = [
    ("status-port", 15021),
    ("tls", 15443),
    ("tls-istiod", 15012),
    ("tls-webhook", 15017),
];

/// The east-west gateway objects for `cluster`.
///
/// ```
/// use mesh_core::{render::eastwest::eastwest_gateway, spec::MeshSpec};
/// let spec = MeshSpec::from_yaml(
///     "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nclusters: [{name: a, network: n1, context: a}, {name: b, network: n2, context: b}]\n",
///     std::path::Path::new("."), "m.yaml")?;
/// let objs = eastwest_gateway(&spec, &spec.clusters[0])?;
/// let kinds: Vec<_> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
/// assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "Service", "Deployment"]);
/// assert_eq!(objs[3]["spec"]["ports"][1]["port"], 15443);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn eastwest_gateway(spec: &MeshSpec, cluster: &ClusterSpec) -> Result<Vec<Value>, RenderError> {
    match spec.dataplane {
        Dataplane::Sidecar => sidecar(spec, cluster),
        Dataplane::Ambient => Ok(vec![ambient(spec, cluster)]),
    }
}

fn selector_labels() -> BTreeMap<String, String> {
    string_map([("app", NAME), ("istio", ISTIO_LABEL)])
}

/// `gateway.labels` of the chart minus Helm's bookkeeping, plus the chart's default
/// `labels: {istio.io/dataplane-mode: none}` (a gateway is never captured by ztunnel).
fn object_labels(network: &str, with_network: bool) -> BTreeMap<String, String> {
    let mut l = selector_labels();
    l.insert("app.kubernetes.io/name".into(), NAME.into());
    l.insert("istio.io/dataplane-mode".into(), "none".into());
    if with_network {
        l.insert(NETWORK_LABEL.into(), network.into());
    }
    l
}

fn meta(spec: &MeshSpec, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(NAME.into()),
        namespace: Some(spec.istio_namespace.clone()),
        labels: Some(labels),
        ..Default::default()
    }
}

fn sidecar(spec: &MeshSpec, cluster: &ClusterSpec) -> Result<Vec<Value>, RenderError> {
    let net = cluster.network.as_str();
    let ns = spec.istio_namespace.as_str();

    let sa = ServiceAccount {
        metadata: meta(spec, object_labels(net, false)),
        ..Default::default()
    };

    // The chart's Role lets the gateway read TLS secrets (credentialName).
    let role = Role {
        metadata: meta(spec, object_labels(net, false)),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["get".into(), "watch".into(), "list".into()],
            ..Default::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: meta(spec, object_labels(net, false)),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: NAME.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: NAME.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };

    let service = Service {
        metadata: meta(spec, object_labels(net, true)),
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(
                PORTS
                    .iter()
                    .map(|(name, port)| ServicePort {
                        name: Some((*name).into()),
                        port: *port,
                        target_port: Some(IntOrString::Int(*port)),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            selector: Some(selector_labels()),
            ..Default::default()
        }),
        ..Default::default()
    };

    let mut pod_labels = object_labels(net, true);
    // The chart moved this from an annotation to a label: injection is decided by label now.
    pod_labels.insert("sidecar.istio.io/inject".into(), "true".into());
    let pod_annotations = string_map([
        ("inject.istio.io/templates", "gateway"),
        ("prometheus.io/path", "/stats/prometheus"),
        ("prometheus.io/port", "15020"),
        ("prometheus.io/scrape", "true"),
    ]);
    let quantity = |s: &str| Quantity(s.to_string());
    let container = Container {
        name: "istio-proxy".into(),
        // "auto": the injector replaces it with the proxy image of the running control plane.
        image: Some("auto".into()),
        env: Some(vec![EnvVar {
            name: "ISTIO_META_REQUESTED_NETWORK_VIEW".into(),
            value: Some(net.into()),
            ..Default::default()
        }]),
        ports: Some(vec![ContainerPort {
            container_port: 15090,
            name: Some("http-envoy-prom".into()),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(
                [("cpu", "100m"), ("memory", "128Mi")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), quantity(v)))
                    .collect(),
            ),
            limits: Some(
                [("cpu", "2000m"), ("memory", "1024Mi")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), quantity(v)))
                    .collect(),
            ),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_group: Some(1337),
            run_as_non_root: Some(true),
            run_as_user: Some(1337),
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: meta(spec, object_labels(net, false)),
        spec: Some(DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.into()),
                    // Lets the unprivileged proxy bind low ports (safe since Kubernetes 1.22).
                    security_context: Some(PodSecurityContext {
                        sysctls: Some(vec![Sysctl {
                            name: "net.ipv4.ip_unprivileged_port_start".into(),
                            value: "0".into(),
                        }]),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    termination_grace_period_seconds: Some(30),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };

    Ok(vec![
        to_value(cluster, "ServiceAccount/istio-eastwestgateway", &sa)?,
        to_value(cluster, "Role/istio-eastwestgateway", &role)?,
        to_value(cluster, "RoleBinding/istio-eastwestgateway", &binding)?,
        to_value(cluster, "Service/istio-eastwestgateway", &service)?,
        to_value(cluster, "Deployment/istio-eastwestgateway", &deployment)?,
    ])
}

/// What `gen-eastwest-gateway.sh --network <net> --ambient` prints (§5.4): HBONE on 15008,
/// "double HBONE" TLS termination with Istio mTLS.
fn ambient(spec: &MeshSpec, cluster: &ClusterSpec) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": NAME,
            "namespace": spec.istio_namespace,
            "labels": { NETWORK_LABEL: cluster.network },
        },
        "spec": {
            "gatewayClassName": "istio-east-west",
            "listeners": [{
                "name": "mesh",
                "port": 15008,
                "protocol": "HBONE",
                "tls": {
                    "mode": "Terminate",
                    "options": { "gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL" },
                },
            }],
        },
    })
}
