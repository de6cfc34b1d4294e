//! What preflight finds of Istio on a cluster before anything is written to it: whether Istio's
//! CRDs are served, whether istiod is there and how it was installed (the Helm ownership
//! metadata on its Deployment), whether istiod has been running on its self-signed CA
//! (`istio-ca-secret`), which reader accounts exist, and whether the objects Istio's charts own
//! are Helm's.
//!
//! From that, per cluster:
//! - the reader identity (decision 1 of the team brief, `reference/istio.md` §9): with
//!   `install: helm` always the charts' (istio/base makes the account); with `install: none`
//!   meshboot's own if it exists already, else the charts' if istio/base made it, else
//!   meshboot's own under names no chart uses. meshboot never writes a chart-owned object,
//!   `--force` or not: with the charts' reader it writes only the token Secret;
//! - what stops the cluster before any write: no Istio CRDs with `install: none` (with the
//!   exact helm command), an Istio installed another way with `install: helm`, no Gateway API
//!   CRDs for ambient's east-west gateway;
//! - notices: a sidecar east-west gateway missing with `install: none` (and the command that
//!   installs it).

use serde::Serialize;
use serde_json::Value;

use super::preflight::Blocker;
use super::report::{Notice, Problem};
use crate::cluster::{ClusterError, ClusterOps, ObjectRef};
use crate::helm::ChartRef;
use crate::render::reader::{MESHBOOT_SERVICE_ACCOUNT, SERVICE_ACCOUNT};
use crate::render::{Needs, ReaderIdentity, eastwest, helm::release_name};
use crate::spec::{ClusterSpec, Dataplane, Install, MeshSpec};

/// A kind of Istio's CRDs meshboot writes (the exposure): when it is served, Istio's CRDs are.
const ISTIO_KIND: (&str, &str) = ("networking.istio.io/v1", "Gateway");
/// The kind of ambient's east-west gateway, from the Gateway API CRDs (no Istio chart has them).
const GATEWAY_API_KIND: (&str, &str) = ("gateway.networking.k8s.io/v1", "Gateway");
/// Istio's documented install of the Gateway API CRDs (for Istio 1.28's ambient guides).
const GATEWAY_API_INSTALL: &str =
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/standard-install.yaml";
/// The Secret istiod keeps its self-signed CA in when it started without `cacerts`.
const SELF_SIGNED_CA_SECRET: &str = "istio-ca-secret";

/// Who installed an object: Helm's ownership metadata (`app.kubernetes.io/managed-by: Helm`,
/// `meta.helm.sh/release-name`, `meta.helm.sh/release-namespace`), or not Helm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A Helm release: its name and namespace.
    Helm { release: String, namespace: String },
    /// Anything else (istioctl, manifests, an earlier meshboot).
    Other,
}

impl Owner {
    fn of(object: &Value) -> Owner {
        let label = object
            .pointer("/metadata/labels/app.kubernetes.io~1managed-by")
            .and_then(Value::as_str);
        let annotation = |key: &str| {
            object
                .pointer(&format!("/metadata/annotations/meta.helm.sh~1{key}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match (
            label,
            annotation("release-name"),
            annotation("release-namespace"),
        ) {
            (Some("Helm"), Some(release), Some(namespace)) => Owner::Helm { release, namespace },
            _ => Owner::Other,
        }
    }

    fn is_release(&self, release: &str, namespace: &str) -> bool {
        matches!(self, Owner::Helm { release: r, namespace: n } if r == release && n == namespace)
    }

    fn describe(&self) -> String {
        match self {
            Owner::Helm { release, namespace } => {
                format!("Helm release {release} (namespace {namespace})")
            }
            Owner::Other => "without Helm".to_string(),
        }
    }
}

/// What was read of Istio on one cluster.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    /// Istio's CRDs are served.
    pub istio_crds: bool,
    /// Ambient only: the Gateway API CRDs are served.
    pub gateway_api: Option<bool>,
    /// Deployment `istiod`, and who installed it.
    pub istiod: Option<Owner>,
    /// The image of its `discovery` container (which Istio release a refreshed remote secret
    /// meets: [`crate::tokens::swap_risk`]).
    pub istiod_image: Option<String>,
    /// `istio-ca-secret` exists: istiod has signed with its own CA.
    pub self_signed_ca: bool,
    /// ServiceAccount `istio-reader-service-account`, and who made it.
    pub chart_reader: Option<Owner>,
    /// ServiceAccount `meshboot-reader` exists.
    pub meshboot_reader: bool,
    /// ServiceAccount `meshboot-reader` as read (`Some(None)`: absent), when it was read:
    /// its apply step need not read it again.
    pub meshboot_reader_object: Option<Option<Value>>,
    /// Sidecar clusters that need one: Service `istio-eastwestgateway`, and who made it.
    pub eastwest: Option<Option<Owner>>,
}

/// Reads what [`Found`] holds, all at once.
pub(crate) async fn detect<C: ClusterOps>(
    client: &C,
    spec: &MeshSpec,
    cluster: &ClusterSpec,
) -> Result<Found, ClusterError> {
    let ns = spec.istio_namespace.as_str();
    let needs = Needs::of(spec, cluster);
    let install = spec.control_plane.install;
    let ambient = spec.dataplane == Dataplane::Ambient;
    let sidecar_gateway = needs.eastwest_gateway && !ambient;
    let istiod = ObjectRef::namespaced("apps/v1", "Deployment", ns, "istiod");
    let ca_secret = ObjectRef::namespaced("v1", "Secret", ns, SELF_SIGNED_CA_SECRET);
    let chart_reader = ObjectRef::namespaced("v1", "ServiceAccount", ns, SERVICE_ACCOUNT);
    let meshboot_reader =
        ObjectRef::namespaced("v1", "ServiceAccount", ns, MESHBOOT_SERVICE_ACCOUNT);
    let gateway = ObjectRef::namespaced("v1", "Service", ns, eastwest::NAME);
    let (istio_crds, gateway_api, istiod, ca_secret, chart_reader, meshboot_reader, eastwest) = futures::join!(
        served(client, ns, ISTIO_KIND, true),
        served(
            client,
            ns,
            GATEWAY_API_KIND,
            ambient && needs.eastwest_gateway
        ),
        client.get(&istiod),
        client.get(&ca_secret),
        read_if(
            client,
            &chart_reader,
            needs.reader || install == Install::Helm
        ),
        read_if(
            client,
            &meshboot_reader,
            needs.reader && install == Install::None
        ),
        read_if(client, &gateway, sidecar_gateway),
    );
    let istiod = istiod?;
    let meshboot_reader = meshboot_reader?;
    Ok(Found {
        istio_crds: istio_crds?.unwrap_or(false),
        gateway_api: gateway_api?,
        istiod: istiod.as_ref().map(Owner::of),
        istiod_image: istiod.as_ref().and_then(crate::tokens::discovery_image),
        self_signed_ca: ca_secret?.is_some(),
        chart_reader: chart_reader?.flatten().as_ref().map(Owner::of),
        meshboot_reader: meshboot_reader.as_ref().is_some_and(Option::is_some),
        meshboot_reader_object: meshboot_reader,
        eastwest: eastwest?.map(|svc| svc.as_ref().map(Owner::of)),
    })
}

/// Whether `kind` is served (when `wanted`): any object of it is read, the answer that matters
/// is whether the server knows the kind.
async fn served<C: ClusterOps>(
    client: &C,
    ns: &str,
    (api_version, kind): (&str, &str),
    wanted: bool,
) -> Result<Option<bool>, ClusterError> {
    if !wanted {
        return Ok(None);
    }
    let probe = ObjectRef::namespaced(api_version, kind, ns, eastwest::NAME);
    match client.get(&probe).await {
        Ok(_) => Ok(Some(true)),
        Err(ClusterError::UnknownKind { .. }) => Ok(Some(false)),
        Err(other) => Err(other),
    }
}

/// The object, read only when `wanted`.
async fn read_if<C: ClusterOps>(
    client: &C,
    object: &ObjectRef,
    wanted: bool,
) -> Result<Option<Option<Value>>, ClusterError> {
    if wanted {
        client.get(object).await.map(Some)
    } else {
        Ok(None)
    }
}

/// What preflight found of Istio on a cluster and chose for it, as the report shows it.
///
/// ```
/// use mesh_core::execute::{Detected, ReaderChoice};
/// let d = Detected {
///     istio_crds: true,
///     istiod: Some("Helm release istiod (namespace istio-system)".into()),
///     self_signed_ca: false,
///     reader: Some(ReaderChoice {
///         service_account: "istio-reader-service-account".into(),
///         token_secret: "istio-reader-service-account-istio-remote-secret-token".into(),
///         why: "istio/base made it: meshboot writes only its token Secret".into(),
///     }),
/// };
/// assert_eq!(serde_json::to_value(&d).unwrap()["reader"]["serviceAccount"], "istio-reader-service-account");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detected {
    /// Istio's CRDs are served.
    pub istio_crds: bool,
    /// How istiod is installed (`Helm release istiod (namespace istio-system)`, `without
    /// Helm`); absent when there is no istiod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod: Option<String>,
    /// istiod has signed with its self-signed CA (`istio-ca-secret` exists), so it must be
    /// restarted once `cacerts` is in place.
    pub self_signed_ca: bool,
    /// The reader identity chosen for the cluster's remote secrets (clusters other clusters
    /// read only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<ReaderChoice>,
}

/// The reader identity preflight chose for a cluster, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderChoice {
    /// The ServiceAccount whose token the remote secrets carry.
    pub service_account: String,
    /// The token Secret meshboot writes for it.
    pub token_secret: String,
    /// Why this one.
    pub why: String,
}

impl Found {
    /// The reader identity of the cluster, and why (decision 1).
    pub(crate) fn reader(&self, install: Install) -> (ReaderIdentity, String) {
        match install {
            Install::Helm => (
                ReaderIdentity::Chart,
                "istio/base makes it: meshboot writes only its token Secret".to_string(),
            ),
            Install::None if self.meshboot_reader => (
                ReaderIdentity::Meshboot,
                format!("meshboot's own reader ({MESHBOOT_SERVICE_ACCOUNT}) exists: kept"),
            ),
            Install::None => match &self.chart_reader {
                Some(owner) => (
                    ReaderIdentity::Chart,
                    format!(
                        "the charts' reader exists ({}): meshboot writes only its token Secret, \
                         never the account or its RBAC",
                        owner.describe()
                    ),
                ),
                None => (
                    ReaderIdentity::Meshboot,
                    format!(
                        "no reader account exists: meshboot creates its own \
                         ({MESHBOOT_SERVICE_ACCOUNT}), under names no chart uses, so a later \
                         helm install of Istio's charts does not conflict"
                    ),
                ),
            },
        }
    }

    /// The facts for the report, with the reader chosen for a cluster that needs one.
    /// `bound`: the remote secrets carry bound tokens (`readerToken.ttl`), so no token Secret.
    pub(crate) fn detected(&self, install: Install, needs_reader: bool, bound: bool) -> Detected {
        Detected {
            istio_crds: self.istio_crds,
            istiod: self.istiod.as_ref().map(Owner::describe),
            self_signed_ca: self.self_signed_ca,
            reader: needs_reader.then(|| {
                let (identity, why) = self.reader(install);
                ReaderChoice {
                    service_account: identity.service_account().to_string(),
                    token_secret: if bound {
                        format!(
                            "none (bound tokens, each bound to {}<destination>)",
                            crate::tokens::BOUND_OBJECT_PREFIX
                        )
                    } else {
                        identity.token_secret().to_string()
                    },
                    why,
                }
            }),
        }
    }

    /// Why the cluster cannot be bootstrapped as the mesh file says, before anything is
    /// written to it.
    pub(crate) fn blocker(&self, spec: &MeshSpec, cluster: &ClusterSpec) -> Option<Blocker> {
        let name = &cluster.name;
        let ns = &spec.istio_namespace;
        if self.gateway_api == Some(false) {
            return Some(Blocker::new(
                Problem::IstioMissing,
                format!(
                    "cluster {name}: the Gateway API CRDs are not served (kind {} in {}), and \
                     ambient's east-west gateway is a Gateway API Gateway; no Istio chart \
                     installs them: `kubectl --context {} apply --server-side -f \
                     {GATEWAY_API_INSTALL}` (or the version your Istio supports)",
                    GATEWAY_API_KIND.1, GATEWAY_API_KIND.0, cluster.context
                ),
            ));
        }
        match spec.control_plane.install {
            Install::None if !self.istio_crds => Some(Blocker::new(
                Problem::IstioMissing,
                format!(
                    "cluster {name}: Istio is not installed (its CRDs are not served: kind {} in \
                     {}), and controlPlane.install is none, so meshboot installs nothing: \
                     install istio/base first, `{}`, then run apply again and install istiod \
                     after it (cacerts must be in place before istiod starts); or set \
                     controlPlane.install: helm in the mesh file and meshboot installs Istio's \
                     charts in that order",
                    ISTIO_KIND.1,
                    ISTIO_KIND.0,
                    helm_install_command(spec, cluster, "base", &[])
                ),
            )),
            Install::None => None,
            Install::Helm => {
                let owned = [
                    ("Deployment", "istiod", "istiod", self.istiod.as_ref()),
                    (
                        "ServiceAccount",
                        SERVICE_ACCOUNT,
                        "base",
                        self.chart_reader.as_ref(),
                    ),
                    (
                        "Service",
                        eastwest::NAME,
                        "gateway",
                        self.eastwest.as_ref().and_then(Option::as_ref),
                    ),
                ];
                owned.into_iter().find_map(|(kind, object, chart, owner)| {
                    let release = release_name(chart);
                    let owner = owner?;
                    if owner.is_release(release, ns) {
                        return None;
                    }
                    Some(Blocker::new(
                        Problem::ControlPlaneConflict,
                        format!(
                            "cluster {name}: {kind} {ns}/{object} exists, installed {}, not by \
                             the Helm release {release} that controlPlane.install: helm manages: \
                             `helm upgrade --install {release}` would refuse it (or take it \
                             over). To keep the Istio that is there, set controlPlane.install: \
                             none; to let meshboot install the charts, remove what the other \
                             installer made first{}",
                            owner.describe(),
                            if chart == "base" {
                                " (an earlier meshboot apply or `istioctl create-remote-secret \
                                 --create-service-account` made this account and the ClusterRole \
                                 and ClusterRoleBinding istio-reader-clusterrole-<namespace>; \
                                 the remote secrets are made again from the new account)"
                            } else {
                                ""
                            }
                        ),
                    ))
                })
            }
        }
    }

    /// What the user should know before the run: with `install: none`, a sidecar east-west
    /// gateway that is not installed yet (the other networks reach the cluster through it).
    pub(crate) fn notices(&self, spec: &MeshSpec, cluster: &ClusterSpec) -> Vec<Notice> {
        let mut out = Vec::new();
        if spec.control_plane.install == Install::None && self.eastwest == Some(None) {
            out.push(Notice {
                cluster: cluster.name.clone(),
                message: format!(
                    "{} has no east-west gateway yet (Service {}/{}): the other networks reach \
                     its workloads through it, and with controlPlane.install: none it is yours \
                     to install, as the istio/gateway chart",
                    cluster.name,
                    spec.istio_namespace,
                    eastwest::NAME
                ),
                hint: Some(helm_install_command(
                    spec,
                    cluster,
                    "gateway",
                    &[
                        format!("name={}", eastwest::NAME),
                        format!("networkGateway={}", cluster.network),
                    ],
                )),
            });
        }
        out
    }
}

/// `helm upgrade --install RELEASE CHART -n NS --kube-context C [--kubeconfig K] [--version V]
/// [--set k=v ...]`: the command a user runs to install one chart themselves, with the chart
/// named as apply would name it ([`ChartRef`]).
fn helm_install_command(
    spec: &MeshSpec,
    cluster: &ClusterSpec,
    chart: &str,
    set: &[String],
) -> String {
    let version = spec.control_plane.version.as_deref();
    let chart_ref = ChartRef::resolve(&spec.control_plane.source, chart, version.unwrap_or(""));
    let mut words = vec![
        "helm".to_string(),
        "upgrade".into(),
        "--install".into(),
        release_name(chart).to_string(),
    ];
    words.extend(chart_ref.args());
    words.extend([
        "-n".into(),
        spec.istio_namespace.clone(),
        "--kube-context".into(),
        cluster.context.clone(),
    ]);
    if let Some(k) = &cluster.kubeconfig {
        words.extend(["--kubeconfig".into(), k.display().to_string()]);
    }
    if let Some(v) = version {
        words.extend(["--version".into(), v.to_string()]);
    }
    for s in set {
        words.extend(["--set".into(), s.clone()]);
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(install: &str) -> MeshSpec {
        let yaml = format!(
            "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\ncontrolPlane: {{install: {install}, version: 1.28.2}}\nclusters:\n  - {{name: eu, network: n1, context: ctx-eu}}\n  - {{name: us, network: n2, context: ctx-us}}\n"
        );
        MeshSpec::from_yaml(&yaml, std::path::Path::new("/tmp"), "mesh.yaml").unwrap()
    }

    fn helm_owned(release: &str) -> Value {
        json!({"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": "istio-system"},
        }})
    }

    #[test]
    fn the_reader_is_meshboots_own_unless_one_is_there() {
        let none = Found::default();
        assert_eq!(none.reader(Install::None).0, ReaderIdentity::Meshboot);
        assert_eq!(none.reader(Install::Helm).0, ReaderIdentity::Chart);
        let chart = Found {
            chart_reader: Some(Owner::of(&helm_owned("istio-base"))),
            ..Found::default()
        };
        let (identity, why) = chart.reader(Install::None);
        assert_eq!(identity, ReaderIdentity::Chart);
        assert!(why.contains("Helm release istio-base"), "{why}");
        // meshboot's own, once made, stays even after istio/base arrives.
        let both = Found {
            meshboot_reader: true,
            ..chart
        };
        assert_eq!(both.reader(Install::None).0, ReaderIdentity::Meshboot);
    }

    #[test]
    fn no_istio_with_install_none_names_the_helm_command() {
        let spec = spec("none");
        let b = Found::default()
            .blocker(&spec, &spec.clusters[0])
            .expect("blocked");
        assert_eq!(b.problem, Problem::IstioMissing);
        assert!(
            b.message.contains(
                "`helm upgrade --install istio-base base --repo https://istio-release.storage.googleapis.com/charts -n istio-system --kube-context ctx-eu --version 1.28.2`"
            ),
            "{}",
            b.message
        );
        assert!(b.message.contains("controlPlane.install: helm"));
        let ok = Found {
            istio_crds: true,
            ..Found::default()
        };
        assert!(ok.blocker(&spec, &spec.clusters[0]).is_none());
    }

    #[test]
    fn install_helm_refuses_an_istio_installed_another_way() {
        let spec = spec("helm");
        let fresh = Found::default();
        assert!(fresh.blocker(&spec, &spec.clusters[0]).is_none());
        let ours = Found {
            istiod: Some(Owner::of(&helm_owned("istiod"))),
            chart_reader: Some(Owner::of(&helm_owned("istio-base"))),
            eastwest: Some(Some(Owner::of(&helm_owned("istio-eastwestgateway")))),
            ..Found::default()
        };
        assert!(ours.blocker(&spec, &spec.clusters[0]).is_none());
        let istioctl = Found {
            istiod: Some(Owner::of(&json!({"metadata": {}}))),
            ..Found::default()
        };
        let b = istioctl.blocker(&spec, &spec.clusters[0]).expect("blocked");
        assert_eq!(b.problem, Problem::ControlPlaneConflict);
        assert!(
            b.message
                .contains("Deployment istio-system/istiod exists, installed without Helm"),
            "{}",
            b.message
        );
        let renamed = Found {
            istiod: Some(Owner::of(&helm_owned("istio-istiod"))),
            ..Found::default()
        };
        let b = renamed.blocker(&spec, &spec.clusters[0]).expect("blocked");
        assert!(
            b.message.contains("Helm release istio-istiod"),
            "{}",
            b.message
        );
    }

    #[test]
    fn a_missing_gateway_with_install_none_is_a_notice_with_the_chart_command() {
        let spec = spec("none");
        let found = Found {
            istio_crds: true,
            eastwest: Some(None),
            ..Found::default()
        };
        let notices = found.notices(&spec, &spec.clusters[1]);
        assert_eq!(notices.len(), 1);
        assert_eq!(
            notices[0].hint.as_deref(),
            Some(
                "helm upgrade --install istio-eastwestgateway gateway --repo https://istio-release.storage.googleapis.com/charts -n istio-system --kube-context ctx-us --version 1.28.2 --set name=istio-eastwestgateway --set networkGateway=n2"
            )
        );
    }
}
