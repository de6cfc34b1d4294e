//! The istiod stand-in publishes and guards the root bundle as `reference/istio.md` §1.2
//! describes istiod doing (pilot/pkg/bootstrap/istio_ca.go `handleEvent`, the namespace
//! controller's `istio-ca-root-cert`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mesh_tests::istiod::{IstiodOptions, RootCompare};
use mesh_tests::{EmulatedCluster, EmulatorOptions, TestClusters};
use serde_json::{Value, json};

/// A root CA and what it signs, as meshboot or Istio's Makefiles would make them.
struct Root {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// An intermediate: `ca-cert.pem` and `ca-key.pem`.
struct Intermediate {
    cert: String,
    key: String,
}

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "Istio");
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p
}

impl Root {
    fn new(cn: &str) -> anyhow::Result<Root> {
        let key = rcgen::KeyPair::generate()?;
        let params = ca_params(cn);
        let pem = params.self_signed(&key)?.pem();
        Ok(Root {
            pem,
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    fn intermediate(&self) -> anyhow::Result<Intermediate> {
        let key = rcgen::KeyPair::generate()?;
        let cert = ca_params("Intermediate CA").signed_by(&key, &self.issuer)?;
        Ok(Intermediate {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

fn cacerts(root_bundle: &str, intermediate: &Intermediate) -> Value {
    let e = |s: &str| STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {"name": "cacerts", "namespace": "istio-system"},
    "data": {
        "ca-cert.pem": e(&intermediate.cert),
        "ca-key.pem": e(&intermediate.key),
        "cert-chain.pem": e(&format!("{}{root_bundle}", intermediate.cert)),
        "root-cert.pem": e(root_bundle),
    }})
}

fn start(delay_ms: u64) -> anyhow::Result<TestClusters> {
    TestClusters::start_with(
        &["eu"],
        EmulatorOptions {
            istiod: Some(IstiodOptions {
                delay: Duration::from_millis(delay_ms),
                compare: None,
            }),
            ..EmulatorOptions::default()
        },
    )
}

/// Creates `istio-system`, as a user or Helm does before writing `cacerts`.
fn istio_system(eu: &EmulatedCluster) -> anyhow::Result<()> {
    eu.insert_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
    )?;
    Ok(())
}

fn published(eu: &EmulatedCluster, ns: &str) -> Option<String> {
    eu.object("v1", "ConfigMap", Some(ns), "istio-ca-root-cert")
        .and_then(|c| c["data"]["root-cert.pem"].as_str().map(str::to_string))
}

/// Waits (at most 5 s) until `f` holds.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Writes `cacerts`, then waits until istiod has finished handling it: a line that ends its
/// handling (accepted, refused, failed, or a start), not just the "Update Istiod cacerts" /
/// "Updating new ROOT-CA" it logs on the way, or a test reading `last()` races the outcome.
fn push(eu: &EmulatedCluster, secret: Value) -> anyhow::Result<()> {
    let before = eu.istiod_log().len();
    eu.insert_object(secret)?;
    let on_the_way = ["info\tUpdate Istiod cacerts", "info\tUpdating new ROOT-CA"];
    anyhow::ensure!(
        eventually(|| eu
            .istiod_log()
            .iter()
            .skip(before)
            .any(|l| !on_the_way.contains(&l.as_str()))),
        "istiod did not finish handling the new cacerts: {:?}",
        eu.istiod_log()
    );
    Ok(())
}

#[test]
fn istiod_publishes_the_root_bundle_in_every_namespace_after_its_delay() -> anyhow::Result<()> {
    let clusters = start(300)?;
    let eu = clusters.cluster("eu");
    let ra = Root::new("Root A")?;
    let a = ra.pem.clone();
    istio_system(eu)?;
    eu.insert_object(cacerts(&a, &ra.intermediate()?))?;
    eu.install_istiod("1.28.2", &[])?;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(published(eu, "istio-system"), None, "not before the delay");
    assert!(eventually(
        || published(eu, "istio-system").as_deref() == Some(a.as_str())
    ));
    // istiod writes the namespaces one after another, istio-system first.
    for ns in ["default", "kube-system"] {
        assert!(
            eventually(|| published(eu, ns).as_deref() == Some(a.as_str())),
            "{ns}"
        );
    }
    for ns in ["kube-public", "kube-node-lease"] {
        assert_eq!(published(eu, ns), None, "istiod skips {ns}");
    }
    let cm = eu
        .object("v1", "ConfigMap", Some("default"), "istio-ca-root-cert")
        .unwrap_or_default();
    assert_eq!(cm["metadata"]["labels"]["istio.io/config"], "true");
    // A namespace created later gets it too, and an edited copy is put back.
    eu.insert_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
    )?;
    assert!(eventually(|| published(eu, "apps").is_some()));
    eu.insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-ca-root-cert", "namespace": "apps"},
        "data": {"root-cert.pem": "edited"}}))?;
    assert!(eventually(
        || published(eu, "apps").as_deref() == Some(a.as_str())
    ));
    Ok(())
}

#[test]
fn without_an_istiod_deployment_nothing_is_published() -> anyhow::Result<()> {
    let clusters = start(10)?;
    let eu = clusters.cluster("eu");
    istio_system(eu)?;
    let r = Root::new("Root A")?;
    eu.insert_object(cacerts(&r.pem, &r.intermediate()?))?;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(published(eu, "istio-system"), None);
    Ok(())
}

#[test]
fn a_new_root_is_refused_while_multi_root_is_off_and_the_bundle_stays() -> anyhow::Result<()> {
    let clusters = start(10)?;
    let eu = clusters.cluster("eu");
    let (ra, rb) = (Root::new("Root A")?, Root::new("Root B")?);
    let (a, b) = (ra.pem.clone(), rb.pem.clone());
    istio_system(eu)?;
    eu.insert_object(cacerts(&a, &ra.intermediate()?))?;
    eu.install_istiod("1.28.2", &[])?;
    assert!(eventually(
        || published(eu, "default").as_deref() == Some(a.as_str())
    ));
    push(eu, cacerts(&format!("{a}{b}"), &ra.intermediate()?))?;
    assert!(
        eu.istiod_log()
            .iter()
            .any(|l| l == "warn\tMulti root is disabled, updating new ROOT-CA not supported"),
        "{:?}",
        eu.istiod_log()
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(published(eu, "default").as_deref(), Some(a.as_str()));
    Ok(())
}

#[test]
fn with_multi_root_a_superset_then_a_subset_is_accepted_and_a_disjoint_root_refused()
-> anyhow::Result<()> {
    let clusters = start(10)?;
    let eu = clusters.cluster("eu");
    let (ra, rb, rc) = (
        Root::new("Root A")?,
        Root::new("Root B")?,
        Root::new("Root C")?,
    );
    let (a, b, c) = (ra.pem.clone(), rb.pem.clone(), rc.pem.clone());
    istio_system(eu)?;
    eu.insert_object(cacerts(&a, &ra.intermediate()?))?;
    eu.install_istiod("1.31.0", &[("ISTIO_MULTIROOT_MESH", "true")])?;
    assert!(eventually(
        || published(eu, "default").as_deref() == Some(a.as_str())
    ));

    // Phase 1: A+B (superset).
    let ab = format!("{a}{b}");
    push(eu, cacerts(&ab, &ra.intermediate()?))?;
    assert!(eventually(
        || published(eu, "default").as_deref() == Some(ab.as_str())
    ));
    // 1.31+ compares DER sets: B+A (reordered) is accepted.
    let ba = format!("{b}{a}");
    push(eu, cacerts(&ba, &rb.intermediate()?))?;
    assert!(eventually(
        || published(eu, "default").as_deref() == Some(ba.as_str())
    ));
    // Phase 3: B only (subset).
    push(eu, cacerts(&b, &rb.intermediate()?))?;
    assert!(eventually(
        || published(eu, "default").as_deref() == Some(b.as_str())
    ));
    // Neither subset nor superset: refused, bundle unchanged.
    push(eu, cacerts(&c, &rc.intermediate()?))?;
    assert_eq!(
        eu.istiod_log()
            .last()
            .map(String::as_str)
            .map(str::to_string)
            .as_deref(),
        Some("warn\tUpdating new ROOT-CA not supported"),
        "{:?}",
        eu.istiod_log()
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(published(eu, "default").as_deref(), Some(b.as_str()));
    Ok(())
}

#[test]
fn before_1_31_a_reordered_bundle_is_refused_byte_wise() -> anyhow::Result<()> {
    let clusters = start(10)?;
    let eu = clusters.cluster("eu");
    let (ra, rb) = (Root::new("Root A")?, Root::new("Root B")?);
    let (a, b) = (ra.pem.clone(), rb.pem.clone());
    istio_system(eu)?;
    eu.insert_object(cacerts(&format!("{a}{b}"), &ra.intermediate()?))?;
    eu.install_istiod("1.30.3", &[("ISTIO_MULTIROOT_MESH", "true")])?;
    assert!(eventually(|| published(eu, "default").is_some()));
    push(eu, cacerts(&format!("{b}{a}"), &ra.intermediate()?))?;
    assert_eq!(
        eu.istiod_log()
            .last()
            .map(String::as_str)
            .map(str::to_string)
            .as_deref(),
        Some("warn\tUpdating new ROOT-CA not supported"),
        "{:?}",
        eu.istiod_log()
    );
    // The comparison can also be forced, independent of the image.
    eu.enable_istiod(IstiodOptions {
        delay: Duration::from_millis(10),
        compare: Some(RootCompare::DerSet),
    });
    push(eu, cacerts(&format!("{b}{a}{a}"), &ra.intermediate()?))?;
    assert!(eventually(
        || published(eu, "default").is_some_and(|p| p.starts_with(&b))
    ));
    Ok(())
}

#[test]
fn a_rollout_reloads_any_root_and_without_cacerts_istiod_self_signs() -> anyhow::Result<()> {
    let clusters = start(10)?;
    let eu = clusters.cluster("eu");
    eu.install_istiod("1.28.2", &[])?;
    assert!(eventually(|| published(eu, "default").is_some()));
    let self_root = published(eu, "default").unwrap_or_default();
    let ca_secret = eu
        .object("v1", "Secret", Some("istio-system"), "istio-ca-secret")
        .unwrap_or_default();
    assert_eq!(ca_secret["type"], "istio.io/ca-root");
    // cacerts added later is a root change to a running istiod: refused (the known pitfall).
    let ra = Root::new("Root A")?;
    let a = ra.pem.clone();
    push(eu, cacerts(&a, &ra.intermediate()?))?;
    assert_eq!(
        published(eu, "default").as_deref(),
        Some(self_root.as_str())
    );
    // A rollout (new pod template) starts fresh and loads cacerts.
    eu.install_istiod("1.28.2", &[("PILOT_ENABLE_X", "true")])?;
    assert!(eventually(
        || published(eu, "default").as_deref() == Some(a.as_str())
    ));
    Ok(())
}

#[test]
fn an_incomplete_cacerts_keeps_istiod_from_starting() -> anyhow::Result<()> {
    let clusters = start(10)?;
    let eu = clusters.cluster("eu");
    istio_system(eu)?;
    eu.insert_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
        "data": {"root-cert.pem": STANDARD.encode(Root::new("Root A")?.pem)}}))?;
    eu.install_istiod("1.28.2", &[])?;
    assert!(eventually(|| eu.istiod_log().iter().any(
        |l| l == "error\tfailed to create an istiod CA: incomplete signing CA bundle detected"
    )));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(published(eu, "default"), None);
    Ok(())
}

#[test]
fn istiod_is_off_by_default() -> anyhow::Result<()> {
    let clusters = TestClusters::start(&["eu"])?;
    let eu = clusters.cluster("eu");
    eu.install_istiod("1.28.2", &[])?;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(published(eu, "default"), None);
    assert!(eu.istiod_log().is_empty());
    Ok(())
}

#[test]
fn an_intermediate_that_does_not_chain_to_the_bundle_is_refused_and_the_old_one_kept()
-> anyhow::Result<()> {
    let clusters = start(10)?;
    let eu = clusters.cluster("eu");
    let (ra, rb) = (Root::new("Root A")?, Root::new("Root B")?);
    istio_system(eu)?;
    eu.insert_object(cacerts(&ra.pem, &ra.intermediate()?))?;
    eu.install_istiod("1.31.0", &[("ISTIO_MULTIROOT_MESH", "true")])?;
    assert!(eventually(
        || published(eu, "default").as_deref() == Some(ra.pem.as_str())
    ));
    // Phase 2 before phase 1: a new intermediate from root B while the bundle holds only A.
    push(eu, cacerts(&ra.pem, &rb.intermediate()?))?;
    assert_eq!(
        eu.istiod_log()
            .last()
            .map(String::as_str)
            .map(str::to_string)
            .as_deref(),
        Some(
            "error\tFailed to update new Plug-in CA certs: cannot verify the cert with the provided root chain and cert pool with error: x509: certificate signed by unknown authority"
        )
    );
    // At start, the same bundle keeps istiod from coming up.
    eu.install_istiod(
        "1.31.0",
        &[("ISTIO_MULTIROOT_MESH", "true"), ("X", "restart")],
    )?;
    assert!(eventually(|| eu
        .istiod_log()
        .last()
        .is_some_and(|l| l.starts_with(
            "error\tfailed to create an istiod CA: failed to create CA KeyCertBundle (cannot verify"
        ))));
    Ok(())
}

/// A test that holds istiod back (`enable_istiod` with a long delay) must not see a reaction
/// scheduled under the earlier, short delay reload a `cacerts` written after the switch: that
/// stale timer is what let `rotate root` pass gate 1 at once in a test meant to keep it closed.
#[test]
fn a_longer_delay_set_later_is_not_undercut_by_a_timer_armed_earlier() -> anyhow::Result<()> {
    let clusters = start(300)?;
    let eu = clusters.cluster("eu");
    let ra = Root::new("Root A")?;
    let rb = Root::new("Root B")?;
    let a = ra.pem.clone();
    istio_system(eu)?;
    eu.insert_object(cacerts(&a, &ra.intermediate()?))?;
    eu.install_istiod("1.28.2", &[("ISTIO_MULTIROOT_MESH", "true")])?;
    assert!(eventually(
        || published(eu, "istio-system").as_deref() == Some(a.as_str())
    ));
    // Arms a 300 ms timer (a Deployment change), then holds istiod back for a minute.
    eu.install_istiod("1.28.2", &[("ISTIO_MULTIROOT_MESH", "true")])?;
    eu.enable_istiod(IstiodOptions {
        delay: Duration::from_secs(60),
        compare: None,
    });
    let both = format!("{a}{}", rb.pem);
    eu.insert_object(cacerts(&both, &ra.intermediate()?))?;
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        published(eu, "istio-system").as_deref(),
        Some(a.as_str()),
        "the bundle written after the switch was handled before the new delay"
    );
    Ok(())
}
