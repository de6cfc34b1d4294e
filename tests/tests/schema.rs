//! Custom resources are pruned, defaulted and validated against their CRD's `openAPIV3Schema`
//! as apiextensions-apiserver does, and `fieldValidation` decides what unknown fields cause.

mod common;

use std::process::Command;

use mesh_tests::TestClusters;
use serde_json::{Value, json};

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              mode: {type: string, enum: [Push, Pull], default: Push}
              port: {x-kubernetes-int-or-string: true}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

fn start() -> anyhow::Result<TestClusters> {
    let clusters = TestClusters::start(&["eu"])?;
    clusters.cluster("eu").install_crds_yaml(WIDGET_CRD)?;
    Ok(clusters)
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"}, "spec": spec})
}

async fn create(clusters: &TestClusters, query: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let admin = common::admin(clusters, "eu").await?;
    common::raw(
        &admin,
        "POST",
        &format!("/apis/example.com/v1/namespaces/default/widgets{query}"),
        "application/json",
        &body,
    )
    .await
}

#[tokio::test]
async fn a_wrong_type_is_rejected_with_the_api_servers_wording() -> anyhow::Result<()> {
    let clusters = start()?;
    let (code, st) = create(
        &clusters,
        "",
        widget(json!({"size": "three", "mode": "Both"})),
    )
    .await?;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "Widget.example.com \"w\" is invalid: [spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\", spec.mode: Unsupported value: \"Both\": supported values: \"Push\", \"Pull\"]"
    );
    assert_eq!(st["details"]["group"], "example.com");
    assert_eq!(st["details"]["causes"][0]["field"], "spec.size");
    let (code, st) = create(&clusters, "", widget(json!({}))).await?;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "Widget.example.com \"w\" is invalid: spec.size: Required value"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_defaults_applied_by_default() -> anyhow::Result<()> {
    let clusters = start()?;
    let (code, obj) = create(
        &clusters,
        "",
        widget(json!({"size": 2, "colour": "red", "port": "http", "extra": {"free": {"form": 1}}})),
    )
    .await?;
    assert_eq!(code, 200, "{obj}");
    let stored = clusters
        .cluster("eu")
        .object("example.com/v1", "Widget", Some("default"), "w")
        .unwrap_or_default();
    assert!(stored["spec"].get("colour").is_none(), "pruned: {stored}");
    assert_eq!(stored["spec"]["mode"], "Push", "defaulted");
    assert_eq!(stored["spec"]["port"], "http");
    assert_eq!(stored["spec"]["extra"], json!({"free": {"form": 1}}));
    Ok(())
}

#[tokio::test]
async fn field_validation_strict_names_the_unknown_field() -> anyhow::Result<()> {
    let clusters = start()?;
    let (code, st) = create(
        &clusters,
        "?fieldValidation=Strict",
        widget(json!({"size": 2, "colour": "red"})),
    )
    .await?;
    assert_eq!(code, 400);
    assert_eq!(
        st["message"],
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.colour\""
    );
    let admin = common::admin(&clusters, "eu").await?;
    let (code, st) = common::raw(
        &admin,
        "PATCH",
        "/apis/example.com/v1/namespaces/default/widgets/w?fieldManager=meshboot&fieldValidation=Strict",
        "application/apply-patch+yaml",
        &widget(json!({"size": 2, "colour": "red"})),
    )
    .await?;
    assert_eq!(code, 400);
    assert_eq!(
        st["message"],
        "failed to create typed patch object (default/w; example.com/v1, Kind=Widget): .spec.colour: field not declared in schema"
    );
    let (code, _) = create(
        &clusters,
        "?fieldValidation=Bogus",
        widget(json!({"size": 2})),
    )
    .await?;
    assert_eq!(code, 400);
    Ok(())
}

fn kubectl_apply(
    kubectl: &std::path::Path,
    clusters: &TestClusters,
    validate: &str,
    manifest: &str,
) -> anyhow::Result<std::process::Output> {
    use std::io::Write as _;
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(clusters.kubeconfig_path())
        .args([
            "--context",
            "eu",
            "apply",
            &format!("--validate={validate}"),
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(manifest.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

const WIDGET_WITH_TYPO: &str = "apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: default}
spec: {size: 2, colour: red}
";

#[test]
fn kubectl_apply_refuses_an_unknown_field_strictly_and_warns_when_asked_to() -> anyhow::Result<()> {
    let kubectl = mesh_tests::require_kubectl!();
    let clusters = start()?;
    let strict = kubectl_apply(&kubectl, &clusters, "strict", WIDGET_WITH_TYPO)?;
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(
        err.contains("strict decoding error: unknown field \"spec.colour\""),
        "{err}"
    );
    let warn = kubectl_apply(&kubectl, &clusters, "warn", WIDGET_WITH_TYPO)?;
    assert!(
        warn.status.success(),
        "{}",
        String::from_utf8_lossy(&warn.stderr)
    );
    assert!(
        String::from_utf8_lossy(&warn.stderr).contains("Warning: unknown field \"spec.colour\""),
        "{}",
        String::from_utf8_lossy(&warn.stderr)
    );
    let ignore = kubectl_apply(&kubectl, &clusters, "false", WIDGET_WITH_TYPO)?;
    assert!(ignore.status.success());
    assert!(!String::from_utf8_lossy(&ignore.stderr).contains("Warning"));
    Ok(())
}

#[test]
fn istios_real_crd_schemas_reject_a_misspelt_field_and_accept_a_valid_gateway() -> anyhow::Result<()>
{
    let crds = mesh_tests::require_shared_data!(mesh_tests::crds::REAL_ISTIO_CRDS);
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    eu.install_crds_from(&crds)?;
    let kubectl = mesh_tests::require_kubectl!();
    let gateway = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: default}
spec:
  selector: {istio: eastwestgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ['*.local']
";
    let ok = kubectl_apply(&kubectl, &clusters, "strict", gateway)?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let typo = gateway.replace("hosts:", "hostz:");
    let refused = kubectl_apply(&kubectl, &clusters, "strict", &typo)?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("unknown field \"spec.servers[0].hostz\""),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let bad_port = gateway.replace("number: 15443", "number: tls");
    let invalid = kubectl_apply(&kubectl, &clusters, "strict", &bad_port)?;
    assert!(!invalid.status.success());
    assert!(
        String::from_utf8_lossy(&invalid.stderr)
            .contains("spec.servers[0].port.number in body must be of type integer"),
        "{}",
        String::from_utf8_lossy(&invalid.stderr)
    );
    Ok(())
}
