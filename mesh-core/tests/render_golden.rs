//! Golden outputs: `fixtures/golden/<example>/` is exactly what `meshboot render --format
//! kustomize` writes for `fixtures/<example>/mesh.yaml`, except that the cacerts Secret's PEM
//! values (a fresh CA each run, and private) are masked as `<ca-cert.pem>` etc. The masked values
//! are checked separately against the CA bundle.
//!
//! Regenerate with `MESHBOOT_BLESS=1 cargo test -p mesh-core --test render_golden`, then read
//! the diff: every golden file is reviewed by a person.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use mesh_core::pki::{CaDir, CaOptions, ClusterBundle, KeyAlgorithm};
use mesh_core::plan::Phase;
use mesh_core::render::{self, ClusterRender, output};
use mesh_core::spec::MeshSpec;

const EXAMPLES: [&str; 4] = [
    "three-region",
    "primary-remote",
    "primary-remote-multinetwork",
    "ambient",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn bundles(spec: &MeshSpec, dir: &Path) -> BTreeMap<String, ClusterBundle> {
    // The fixture's key algorithm does not show in the masked output; P-256 keeps the test fast.
    let opts = CaOptions {
        key: KeyAlgorithm::EcdsaP256,
        ..spec.ca_options()
    };
    CaDir::open(dir)
        .ensure(&opts, &spec.cluster_names())
        .expect("CA in a temp dir")
        .into_iter()
        .map(|b| (b.cluster.clone(), b))
        .collect()
}

fn bundle_file<'a>(b: &'a ClusterBundle, key: &str) -> &'a str {
    match key {
        "ca-cert.pem" => &b.ca_cert_pem,
        "ca-key.pem" => &b.ca_key_pem,
        "root-cert.pem" => &b.root_cert_pem,
        "cert-chain.pem" => &b.cert_chain_pem,
        other => panic!("unexpected cacerts key {other}"),
    }
}

/// Checks the real cacerts data against the bundle, then masks it.
fn check_and_mask_cacerts(
    renders: &mut [ClusterRender],
    bundles: &BTreeMap<String, ClusterBundle>,
) {
    for r in renders {
        let b = &bundles[&r.cluster];
        let mut cacerts: Vec<_> = r
            .objects
            .iter_mut()
            .filter(|o| o.phase == Phase::CaCerts)
            .collect();
        assert_eq!(cacerts.len(), 1, "{}: one cacerts Secret", r.cluster);
        let data = cacerts[0].object["data"]
            .as_object_mut()
            .expect("cacerts has data");
        let keys: Vec<_> = data.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem"
            ]
        );
        for (k, v) in data.iter_mut() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().expect("base64 string"))
                .expect("valid base64");
            assert_eq!(
                String::from_utf8(decoded).expect("PEM is text"),
                bundle_file(b, k),
                "{}: cacerts {k} must be the bundle's file",
                r.cluster
            );
            *v = serde_json::Value::String(format!("<{k}>"));
        }
    }
}

fn golden_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(
                    p.strip_prefix(base)
                        .expect("under base")
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn rendered_output_matches_the_golden_files() {
    let bless = std::env::var_os("MESHBOOT_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for example in EXAMPLES {
        let spec =
            MeshSpec::from_file(fixtures().join(example).join("mesh.yaml")).expect("valid fixture");
        let tmp = tempfile::tempdir().expect("temp dir");
        let bundles = bundles(&spec, tmp.path());
        let mut renders =
            render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())
                .expect("renders");
        check_and_mask_cacerts(&mut renders, &bundles);
        let ctx = output::PlanContext {
            mesh_file: format!("fixtures/{example}/mesh.yaml"),
            out_dir: format!("out/{example}"),
        };
        let files = output::files(&spec, &renders, output::Format::Kustomize, &ctx).expect("files");
        let golden = fixtures().join("golden").join(example);

        for f in &files {
            assert!(
                !f.contents.contains("PRIVATE KEY") && !f.contents.contains("LS0tLS1CRUdJTi"),
                "{example}/{}: key material must never reach a golden file",
                f.path
            );
        }
        if bless {
            let _ = std::fs::remove_dir_all(&golden);
            for f in &files {
                let p = golden.join(&f.path);
                std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
                std::fs::write(&p, &f.contents).expect("write golden");
            }
            continue;
        }
        let expected: Vec<String> = golden_files(&golden);
        let mut actual: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        actual.sort();
        if expected != actual {
            failures.push(format!(
                "{example}: file set differs\n  golden: {expected:?}\n  render: {actual:?}"
            ));
        }
        for f in &files {
            let want = std::fs::read_to_string(golden.join(&f.path)).unwrap_or_default();
            if want != f.contents {
                failures.push(format!(
                    "{example}/{}: differs from the golden file\n--- golden\n{want}\n--- rendered\n{}",
                    f.path, f.contents
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(if the change is intended: MESHBOOT_BLESS=1 cargo test -p mesh-core --test render_golden, then review the diff)",
        failures.join("\n")
    );
}
