//! Every bad mesh file in `fixtures/invalid/` is refused with the error its sibling `.err` file
//! names: each non-empty line of the `.err` file must appear in the error output, which pins
//! the field path and the line:column a user is pointed at.

use std::path::{Path, PathBuf};

use mesh_core::spec::MeshSpec;

fn invalid_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/invalid")
}

fn cases() -> Vec<(PathBuf, Vec<String>)> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(invalid_dir()).expect("fixtures/invalid exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let err_file = path.with_extension("err");
        let expected = std::fs::read_to_string(&err_file).unwrap_or_else(|e| {
            panic!(
                "{} needs a sibling {}: {e}",
                path.display(),
                err_file.display()
            )
        });
        let fragments: Vec<String> = expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        assert!(!fragments.is_empty(), "{} is empty", err_file.display());
        cases.push((path, fragments));
    }
    cases.sort();
    cases
}

#[test]
fn every_invalid_fixture_gives_its_error() {
    let cases = cases();
    assert!(
        cases.len() >= 25,
        "expected the whole invalid catalogue, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for (path, fragments) in &cases {
        let output = match MeshSpec::from_file(path) {
            Ok(spec) => {
                failures.push(format!(
                    "{}: accepted ({} clusters)",
                    path.display(),
                    spec.clusters.len()
                ));
                continue;
            }
            Err(e) => e.lines().join("\n"),
        };
        for f in fragments {
            if !output.contains(f.as_str()) {
                failures.push(format!(
                    "{}:\n  expected: {f}\n  got:      {}",
                    path.display(),
                    output.replace('\n', "\n            ")
                ));
            }
        }
        // Every line names the file, so a user with several mesh files knows which one.
        let label = path.display().to_string();
        for line in output.lines() {
            assert!(
                line.starts_with(&label),
                "{line:?} does not start with {label:?}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_err_file_has_its_yaml() {
    for entry in std::fs::read_dir(invalid_dir()).expect("fixtures/invalid exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("err") {
            assert!(
                path.with_extension("yaml").is_file(),
                "{} has no .yaml",
                path.display()
            );
        }
    }
}

#[test]
fn all_problems_are_reported_at_once_in_file_order() {
    let err = MeshSpec::from_file(invalid_dir().join("several-problems.yaml")).unwrap_err();
    let issues = err.issues();
    assert_eq!(issues.len(), 4, "{err}");
    let positions: Vec<_> = issues.iter().map(|i| (i.line, i.column)).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
}
