//! The defaults the API server fills into workloads, pod templates, autoscalers, webhook
//! configurations, RBAC subjects, EndpointSlices and CRDs on every write (the `SetDefaults_*`
//! functions of each API group), so what a client reads back — and compares with what it
//! wants — is what a real server returns. Namespace and Service defaults live with the object
//! operations (they depend on allocations).
//!
//! ```
//! use serde_json::json;
//!
//! let mut dep = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
//! mesh_tests::defaults::apply("apps", "deployments", &mut dep);
//! assert_eq!(dep["spec"]["replicas"], 1);
//! assert_eq!(dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
//! assert_eq!(dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always");
//! ```

use serde_json::{Value, json};

/// Sets `obj[key]` to `value` when absent or null.
fn default(obj: &mut Value, key: &str, value: Value) {
    if obj.is_object() && obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

fn items(v: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    v.and_then(Value::as_array_mut).into_iter().flatten()
}

fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    v.get_mut(key).filter(|c| c.is_object())
}

/// Fills the defaults of a built-in object of `group`/`plural` (no-op for other kinds).
pub fn apply(group: &str, plural: &str, obj: &mut Value) {
    match (group, plural) {
        ("", "pods") => {
            if let Some(spec) = child(obj, "spec") {
                pod_spec(spec);
            }
        }
        ("apps", "deployments") => deployment(obj),
        ("apps", "replicasets") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "replicas", json!(1));
            }
            template(obj);
        }
        ("apps", "daemonsets") => daemon_set(obj),
        ("apps", "statefulsets") => stateful_set(obj),
        ("autoscaling", "horizontalpodautoscalers") => hpa(obj),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations") => webhooks(obj, true),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => webhooks(obj, false),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            for s in items(obj.get_mut("subjects")) {
                if s["apiGroup"].as_str().is_none_or(str::is_empty)
                    && matches!(s["kind"].as_str(), Some("User" | "Group"))
                {
                    s["apiGroup"] = json!("rbac.authorization.k8s.io");
                }
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "conversion", json!({"strategy": "None"}));
                if let Some(svc) = spec
                    .get_mut("conversion")
                    .and_then(|c| c.get_mut("webhook"))
                    .and_then(|w| w.get_mut("clientConfig"))
                    .and_then(|c| c.get_mut("service"))
                    .filter(|s| s.is_object())
                {
                    default(svc, "port", json!(443));
                }
            }
        }
        ("discovery.k8s.io", "endpointslices") => {
            for p in items(obj.get_mut("ports")) {
                default(p, "name", json!(""));
                default(p, "protocol", json!("TCP"));
            }
        }
        _ => {}
    }
}

fn template(obj: &mut Value) {
    if let Some(spec) = obj
        .get_mut("spec")
        .and_then(|s| s.get_mut("template"))
        .and_then(|t| t.get_mut("spec"))
        .filter(|s| s.is_object())
    {
        pod_spec(spec);
    }
}

fn deployment(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default(spec, "replicas", json!(1));
        default(spec, "strategy", json!({}));
        let strategy = &mut spec["strategy"];
        default(strategy, "type", json!("RollingUpdate"));
        if strategy["type"] == "RollingUpdate" {
            default(strategy, "rollingUpdate", json!({}));
            let ru = &mut strategy["rollingUpdate"];
            default(ru, "maxUnavailable", json!("25%"));
            default(ru, "maxSurge", json!("25%"));
        }
        default(spec, "revisionHistoryLimit", json!(10));
        default(spec, "progressDeadlineSeconds", json!(600));
    }
    template(obj);
}

fn daemon_set(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default(spec, "updateStrategy", json!({}));
        let strategy = &mut spec["updateStrategy"];
        default(strategy, "type", json!("RollingUpdate"));
        if strategy["type"] == "RollingUpdate" {
            default(strategy, "rollingUpdate", json!({}));
            let ru = &mut strategy["rollingUpdate"];
            default(ru, "maxUnavailable", json!(1));
            default(ru, "maxSurge", json!(0));
        }
        default(spec, "revisionHistoryLimit", json!(10));
    }
    template(obj);
}

fn stateful_set(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default(spec, "replicas", json!(1));
        default(spec, "podManagementPolicy", json!("OrderedReady"));
        default(spec, "updateStrategy", json!({}));
        let strategy = &mut spec["updateStrategy"];
        default(strategy, "type", json!("RollingUpdate"));
        if strategy["type"] == "RollingUpdate" {
            default(strategy, "rollingUpdate", json!({}));
            default(&mut strategy["rollingUpdate"], "partition", json!(0));
        }
        default(spec, "revisionHistoryLimit", json!(10));
        default(
            spec,
            "persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        );
    }
    template(obj);
}

fn hpa(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default(spec, "minReplicas", json!(1));
        if spec["metrics"].as_array().is_none_or(Vec::is_empty) {
            spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]);
        }
    }
}

fn webhooks(obj: &mut Value, mutating: bool) {
    for w in items(obj.get_mut("webhooks")) {
        default(w, "failurePolicy", json!("Fail"));
        default(w, "matchPolicy", json!("Equivalent"));
        default(w, "namespaceSelector", json!({}));
        default(w, "objectSelector", json!({}));
        default(w, "timeoutSeconds", json!(10));
        if mutating {
            default(w, "reinvocationPolicy", json!("Never"));
        }
        for r in items(w.get_mut("rules")) {
            default(r, "scope", json!("*"));
        }
        if let Some(svc) = w
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .filter(|s| s.is_object())
        {
            default(svc, "port", json!(443));
        }
    }
}

/// `image` without a tag (or with `:latest`) and without a digest is pulled `Always`.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(p: &mut Value) {
    default(p, "timeoutSeconds", json!(1));
    default(p, "periodSeconds", json!(10));
    default(p, "successThreshold", json!(1));
    default(p, "failureThreshold", json!(3));
    if let Some(get) = child(p, "httpGet") {
        default(get, "path", json!("/"));
        default(get, "scheme", json!("HTTP"));
    }
}

fn container(c: &mut Value) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    let policy = pull_policy(c["image"].as_str().unwrap_or_default());
    default(c, "imagePullPolicy", json!(policy));
    for p in items(c.get_mut("ports")) {
        default(p, "protocol", json!("TCP"));
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, key) {
            probe(p);
        }
    }
    for e in items(c.get_mut("env")) {
        if let Some(f) = e
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .filter(|f| f.is_object())
        {
            default(f, "apiVersion", json!("v1"));
        }
    }
}

fn volume(v: &mut Value) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if SOURCES.iter().all(|s| v.get(*s).is_none_or(Value::is_null)) {
        v["emptyDir"] = json!({});
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = child(v, key) {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(p) = child(v, "projected") {
        for source in items(p.get_mut("sources")) {
            if let Some(t) = child(source, "serviceAccountToken") {
                default(t, "expirationSeconds", json!(3600));
            }
        }
    }
}

fn pod_spec(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        for c in items(spec.get_mut(list)) {
            container(c);
        }
    }
    for v in items(spec.get_mut("volumes")) {
        volume(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_without_a_tag_or_with_latest_are_always_pulled() {
        assert_eq!(pull_policy("busybox"), "Always");
        assert_eq!(pull_policy("busybox:latest"), "Always");
        assert_eq!(
            pull_policy("docker.io/istio/proxyv2:1.28.2"),
            "IfNotPresent"
        );
        assert_eq!(pull_policy("localhost:5000/proxy"), "Always");
        assert_eq!(pull_policy("istio/proxy@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn a_deployment_gets_the_workload_and_pod_template_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "proxyv2:1.28.2", "ports": [{"containerPort": 15021}],
                "readinessProbe": {"httpGet": {"port": 15021, "path": "/healthz/ready"}},
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            "volumes": [{"name": "a"}, {"name": "s", "secret": {"secretName": "cacerts"}},
                        {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}}}});
        apply("apps", "deployments", &mut d);
        let spec = &d["spec"];
        assert_eq!(
            (
                &spec["replicas"],
                &spec["revisionHistoryLimit"],
                &spec["progressDeadlineSeconds"]
            ),
            (&json!(1), &json!(10), &json!(600))
        );
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["securityContext"], json!({}));
        let c = &pod["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            c["readinessProbe"],
            json!({"httpGet": {"port": 15021, "path": "/healthz/ready", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(pod["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(pod["volumes"][1]["secret"]["defaultMode"], 420);
        assert_eq!(
            pod["volumes"][2]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
    }

    #[test]
    fn what_is_set_is_kept() {
        let mut d = json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"},
            "template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "x", "imagePullPolicy": "Never"}]}}}});
        apply("apps", "deployments", &mut d);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Never"
        );
    }

    #[test]
    fn webhooks_autoscalers_subjects_and_slices_get_theirs() {
        let mut w = json!({"webhooks": [{"name": "x", "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]});
        apply(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            &mut w,
        );
        let h = &w["webhooks"][0];
        assert_eq!(
            (
                &h["failurePolicy"],
                &h["matchPolicy"],
                &h["timeoutSeconds"],
                &h["reinvocationPolicy"]
            ),
            (
                &json!("Fail"),
                &json!("Equivalent"),
                &json!(10),
                &json!("Never")
            )
        );
        assert_eq!(h["clientConfig"]["service"]["port"], 443);
        assert_eq!(h["rules"][0]["scope"], "*");

        let mut hpa = json!({"spec": {"maxReplicas": 5}});
        apply("autoscaling", "horizontalpodautoscalers", &mut hpa);
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );

        let mut b = json!({"subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]});
        apply("rbac.authorization.k8s.io", "clusterrolebindings", &mut b);
        assert_eq!(b["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(b["subjects"][1].get("apiGroup").is_none());

        let mut crd = json!({"spec": {"group": "example.com"}});
        apply(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            &mut crd,
        );
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));

        let mut s = json!({"ports": [{"port": 15012}]});
        apply("discovery.k8s.io", "endpointslices", &mut s);
        assert_eq!(
            s["ports"][0],
            json!({"port": 15012, "name": "", "protocol": "TCP"})
        );
    }
}
