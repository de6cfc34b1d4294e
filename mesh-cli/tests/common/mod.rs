//! Helpers shared by the `meshboot` end-to-end tests: running the real binary, reading its
//! output as text, finding fixtures and `kubectl`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `meshboot` binary cargo built for these tests.
pub const MESHBOOT: &str = env!("CARGO_BIN_EXE_meshboot");

/// A `Command` for the `meshboot` binary.
pub fn meshboot_cmd() -> Command {
    Command::new(MESHBOOT)
}

/// Runs `meshboot args` and returns its output.
pub fn run_meshboot(args: &[&str]) -> Output {
    meshboot_cmd().args(args).output().expect("run meshboot")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output of a command as text.
pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

/// Standard error of a command as text.
pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// The workspace's `fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Where `kubectl` is (`MESHBOOT_KUBECTL`, else PATH), if anywhere: the tests' one lookup.
pub fn which_kubectl() -> Option<PathBuf> {
    mesh_tests::tools::kubectl()
}

/// Writes `dir/mesh.yaml` for emulated clusters `(name, network, role)` (context = name, an
/// ECDSA P-256 CA in `dir/pki`, `extra_ca` appended inside the `ca:` mapping, e.g.
/// `, root: {cert: ..., key: ...}`) and returns its path.
pub fn write_mesh(
    dir: &Path,
    kubeconfig: &Path,
    clusters: &[(&str, &str, &str)],
    model: &str,
    extra_ca: &str,
) -> PathBuf {
    let mut yaml = format!(
        "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: mesh1\nmodel: {model}\n\
         ca: {{dir: ./pki, key: ecdsa-p256{extra_ca}}}\nclusters:\n"
    );
    for (name, network, role) in clusters {
        yaml.push_str(&format!(
            "  - {{name: {name}, network: {network}, role: {role}, context: {name}, kubeconfig: {}}}\n",
            kubeconfig.display()
        ));
    }
    let file = dir.join("mesh.yaml");
    std::fs::write(&file, yaml).expect("write mesh.yaml");
    file
}

/// Emulated clusters with Istio's CRDs installed, as a cluster is once Istio's base chart
/// ran (what `apply` of a sidecar mesh needs for its exposure Gateway).
pub fn start_with_istio(names: &[&str]) -> mesh_tests::TestClusters {
    let clusters = mesh_tests::TestClusters::start(names).expect("emulator");
    clusters.install_istio_crds().expect("Istio CRDs");
    clusters
}

/// `meshboot ca intermediate` for cluster `eu` in `./pki` with a P-256 key (the CA the mesh
/// files of [`write_mesh`] use).
pub const ISSUE_EU: [&str; 8] = [
    "ca",
    "intermediate",
    "--dir",
    "pki",
    "--cluster",
    "eu",
    "--key",
    "ecdsa-p256",
];

/// The east-west gateway Service of each `(cluster, network)`, as the user's
/// `helm install istio-eastwestgateway` makes it (`controlPlane.install: none` leaves it to
/// them); the emulator gives it a load-balancer address.
pub fn install_gateways(clusters: &mesh_tests::TestClusters, gateways: &[(&str, &str)]) {
    for (name, network) in gateways {
        mesh_tests::charts::install_eastwest_gateway(
            clusters.cluster(name),
            "istio-system",
            network,
        )
        .expect("east-west gateway");
    }
}
