//! The local CA phase of apply: the root (created, imported or reused) and one intermediate
//! per cluster, in the mesh file's `ca.dir`. A dry run never writes there: what is missing is
//! made in a scratch directory that is deleted afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::ExecuteError;
use super::report::CaReport;
use crate::pki::{self, CaDir, CaOptions, ClusterBundle};
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

/// Makes the root and intermediates in `ca.dir` (or, for a dry run, finds what exists and
/// makes the rest in a scratch directory) and returns every cluster's bundle.
pub(crate) fn prepare(
    spec: &MeshSpec,
    dry_run: bool,
) -> Result<(BTreeMap<String, ClusterBundle>, CaReport), ExecuteError> {
    let names = spec.cluster_names();
    let opts = spec.ca_options();
    let ca = CaDir::open(&spec.ca.dir);
    if dry_run {
        return prepare_dry(spec, &ca, &names, &opts);
    }
    let root = if let Some(byo) = &spec.ca.root {
        // Importing the same root again is a no-op, and a different one is refused: either
        // way the directory ends up with the root the mesh file names.
        let had_root = ca.has_root();
        ca.import(&byo.cert, &byo.key)?;
        if had_root { "unchanged" } else { "imported" }
    } else if ca.has_root() {
        "unchanged"
    } else {
        ca.init(&opts, false)?;
        "created"
    };
    let statuses = ca.ensure_intermediates(&names, &opts, false)?;
    let mut bundles = BTreeMap::new();
    for name in &names {
        bundles.insert(name.to_string(), ca.bundle(name)?);
    }
    let report = CaReport {
        dir: display(ca.path()),
        root: root.to_string(),
        intermediates: statuses
            .into_iter()
            .map(|s| (s.cluster, s.action.to_string()))
            .collect(),
    };
    Ok((bundles, report))
}

fn prepare_dry(
    spec: &MeshSpec,
    ca: &CaDir,
    names: &[&str],
    opts: &CaOptions,
) -> Result<(BTreeMap<String, ClusterBundle>, CaReport), ExecuteError> {
    let mut bundles = BTreeMap::new();
    let mut intermediates = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        // An intermediate that reads back is reused as is; `ensure` would leave it unchanged
        // too unless it is broken, which only a real run finds out (and reports).
        match ca.has_root().then(|| ca.bundle(name)).and_then(Result::ok) {
            Some(bundle) => {
                bundles.insert(name.to_string(), bundle);
                intermediates.push((name.to_string(), "unchanged".to_string()));
            }
            None => missing.push(*name),
        }
    }
    let root = match (&spec.ca.root, ca.has_root()) {
        (_, true) => "unchanged",
        (Some(_), false) => "would import",
        (None, false) => "would create",
    };
    if !missing.is_empty() {
        let scratch = tempfile::tempdir().map_err(ExecuteError::Scratch)?;
        let temp = CaDir::open(scratch.path());
        if ca.has_root() {
            temp.import(&ca.root_cert_path(), &ca.root_key_path())?;
        } else if let Some(byo) = &spec.ca.root {
            temp.import(&byo.cert, &byo.key)?;
        } else {
            temp.init(opts, false)?;
        }
        temp.ensure_intermediates(&missing, opts, false)?;
        for name in &missing {
            bundles.insert(name.to_string(), temp.bundle(name)?);
            intermediates.push((name.to_string(), "would create".to_string()));
        }
    }
    intermediates.sort_by_key(|(name, _)| names.iter().position(|n| n == name));
    Ok((
        bundles,
        CaReport {
            dir: display(ca.path()),
            root: root.to_string(),
            intermediates,
        },
    ))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
