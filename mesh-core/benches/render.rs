//! How fast a mesh file is read and rendered, for meshes of growing size. Prints figures;
//! asserts nothing.
//!
//! ```text
//! cargo bench -p mesh-core --bench render
//! ```
//!
//! The CA is left out (see the `ca` bench): bundles here are fixed strings of a realistic size,
//! so the figures are the pure spec + render + YAML + write cost that `meshboot render` adds.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use mesh_core::pki::ClusterBundle;
use mesh_core::render::{self, output};
use mesh_core::spec::MeshSpec;

const SIZES: [usize; 4] = [3, 10, 50, 200];
const ITERATIONS: usize = 20;

fn mesh_yaml(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nca: {key: ecdsa-p256}\nclusters:\n",
    );
    for i in 0..n {
        s.push_str(&format!("  - {{name: cluster{i}, network: network{}, context: ctx{i}, apiServer: \"https://203.0.113.{}:6443\"}}\n", i % 5, i % 250 + 1));
    }
    s
}

fn bundle(c: &str) -> ClusterBundle {
    // An RSA-4096 intermediate bundle is ~10 KiB of PEM; the size matters for YAML and base64.
    let pem = |label: &str| {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            "A".repeat(64).repeat(45)
        )
    };
    ClusterBundle {
        cluster: c.into(),
        ca_cert_pem: pem("CERTIFICATE"),
        ca_key_pem: pem("PRIVATE KEY"),
        root_cert_pem: pem("CERTIFICATE"),
        cert_chain_pem: pem("CERTIFICATE").repeat(2),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:>8.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:>8.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn time<T>(f: impl Fn() -> T) -> Duration {
    let mut samples = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        std::hint::black_box(f());
        samples.push(start.elapsed());
    }
    median(samples)
}

fn main() {
    println!("meshboot render benchmark: median of {ITERATIONS} runs per figure");
    println!(
        "{:>8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>7}",
        "clusters", "parse", "render", "to YAML", "write", "rewrite", "files"
    );
    for n in SIZES {
        let text = mesh_yaml(n);
        let parse =
            time(|| MeshSpec::from_yaml(&text, Path::new("."), "mesh.yaml").expect("valid"));
        let spec = MeshSpec::from_yaml(&text, Path::new("."), "mesh.yaml").expect("valid");
        let bundles: BTreeMap<_, _> = spec
            .clusters
            .iter()
            .map(|c| (c.name.clone(), bundle(&c.name)))
            .collect();
        let render_t = time(|| {
            render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())
                .expect("renders")
        });
        let renders = render::render_mesh_with(&spec, &bundles, &render::RenderOptions::default())
            .expect("renders");
        let ctx = output::PlanContext {
            mesh_file: "mesh.yaml".into(),
            out_dir: "out".into(),
        };
        let yaml_t =
            time(|| output::files(&spec, &renders, output::Format::Files, &ctx).expect("files"));
        let files = output::files(&spec, &renders, output::Format::Files, &ctx).expect("files");

        // First write into a fresh folder each time; then rewrites of an unchanged tree.
        let mut writes = Vec::new();
        for _ in 0..ITERATIONS.min(5) {
            let tmp = tempfile::tempdir().expect("temp dir");
            let start = Instant::now();
            output::write(tmp.path(), &files).expect("write");
            writes.push(start.elapsed());
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        output::write(tmp.path(), &files).expect("write");
        let rewrite = time(|| output::write(tmp.path(), &files).expect("rewrite"));
        println!(
            "{n:>8} {} {} {} {} {} {:>7}",
            fmt(parse),
            fmt(render_t),
            fmt(yaml_t),
            fmt(median(writes)),
            fmt(rewrite),
            files.len()
        );
    }
}
