//! The local CA phase of apply: [`CaDir::prepare`] on the mesh file's `ca` section, the same
//! call `meshboot render` makes. A dry run plans the CA in memory and writes nothing, not even
//! a temp file.

use std::collections::{BTreeMap, BTreeSet};

use super::ExecuteError;
use super::report::CaReport;
use crate::pki::{self, CaDir, ClusterBundle, PreparedCa, RootFiles};
use crate::spec::MeshSpec;

/// The fingerprints of the root the mesh will use, when one exists already: the CA
/// directory's, else the root the mesh file brings. `None` when a new root would be made.
pub(crate) fn local_root(spec: &MeshSpec) -> Result<Option<BTreeSet<String>>, ExecuteError> {
    let ca = CaDir::open(&spec.ca.dir);
    let path = if ca.root_cert_path().exists() {
        ca.root_cert_path()
    } else if let Some(root) = &spec.ca.root {
        root.cert.clone()
    } else {
        return Ok(None);
    };
    let pem = std::fs::read_to_string(&path).map_err(|source| ExecuteError::ReadRoot {
        path: path.clone(),
        source,
    })?;
    let fingerprints = pki::root_fingerprints(&pem)?;
    Ok(Some(fingerprints.into_iter().collect()))
}

/// Makes (or for a dry run, plans in memory) the root and intermediates of `ca.dir` and
/// returns every cluster's bundle with the report of what was done.
pub(crate) fn prepare(
    spec: &MeshSpec,
    dry_run: bool,
) -> Result<(BTreeMap<String, ClusterBundle>, CaReport), ExecuteError> {
    let prepared = prepare_mesh_ca(spec, dry_run).map_err(|e| match e {
        pki::PkiError::StaleIntermediate {
            cluster,
            file,
            reason,
        } => ExecuteError::IntermediateNeedsRotation {
            cluster,
            file,
            reason,
        },
        pki::PkiError::ForeignIntermediate {
            cluster,
            file,
            reason,
            ..
        } if CaDir::open(&spec.ca.dir).has_root() => ExecuteError::IntermediateNeedsRotation {
            cluster,
            file,
            reason: format!("is not signed by the mesh root ({reason})"),
        },
        other => other.into(),
    })?;
    let report = CaReport {
        dir: spec.ca.dir.display().to_string(),
        root: prepared.root.describe(dry_run).to_string(),
        intermediates: prepared
            .intermediates
            .iter()
            .map(|s| (s.cluster.clone(), s.action.describe(dry_run).to_string()))
            .collect(),
    };
    let bundles = prepared
        .bundles
        .into_iter()
        .map(|b| (b.cluster.clone(), b))
        .collect();
    Ok((bundles, report))
}

/// The mesh file's CA: `ca.root` brought in (if given), else the directory's root, else a new
/// one; then one intermediate per cluster. The one function behind both `render` and `apply`.
///
/// ```
/// use mesh_core::{execute::prepare_mesh_ca, pki::RootAction, spec::MeshSpec};
/// let dir = tempfile::tempdir()?;
/// let yaml = "apiVersion: meshboot/v1alpha1\nkind: Mesh\nmeshID: m\nca: {dir: ./pki, key: ecdsa-p256}\n\
///             clusters:\n  - {name: eu, network: n1, context: eu, apiServer: \"https://203.0.113.1:6443\"}\n";
/// let spec = MeshSpec::from_yaml(yaml, dir.path(), "mesh.yaml")?;
/// let planned = prepare_mesh_ca(&spec, true)?;
/// assert_eq!(planned.root, RootAction::Created);
/// assert!(!dir.path().join("pki").exists()); // dry run: planned in memory
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn prepare_mesh_ca(spec: &MeshSpec, dry_run: bool) -> Result<PreparedCa, pki::PkiError> {
    let brought = spec.ca.root.as_ref().map(|r| RootFiles {
        cert: &r.cert,
        key: &r.key,
    });
    CaDir::open(&spec.ca.dir).prepare(brought, &spec.ca_options(), &spec.cluster_names(), dry_run)
}

/// Days left below which apply reminds that intermediates do not renew themselves.
const EXPIRY_NOTICE_DAYS: i64 = 30;

/// One notice per cluster whose intermediate expires within [`EXPIRY_NOTICE_DAYS`]: apply
/// keeps a valid intermediate as it is (even with `--force`), so rotation is a separate,
/// deliberate step.
pub(crate) fn expiry_notices(bundles: &BTreeMap<String, ClusterBundle>) -> Vec<super::Notice> {
    bundles
        .iter()
        .filter_map(|(cluster, b)| {
            let info = pki::cert_info(&b.ca_cert_pem).ok()?;
            (info.days_left < EXPIRY_NOTICE_DAYS).then(|| super::Notice {
                cluster: cluster.clone(),
                message: format!(
                    "the intermediate of {cluster} expires in {} day(s) ({}); apply keeps a valid intermediate as it is, even with --force",
                    info.days_left,
                    info.not_after.date()
                ),
                hint: Some(format!("meshboot rotate intermediate --cluster {cluster}")),
            })
        })
        .collect()
}
