//! What the real binary does to the file system, watched with strace: key files are born
//! 0600, fsynced before they are renamed into place and their folder fsynced after, in the
//! CA directory and in render's output alike; and a dry run creates no file anywhere.
//! Needs `strace` (the tests say so and skip without it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{MESHBOOT, start_with_istio, write_mesh};

/// `strace` on PATH, or a note saying why the test does not run.
fn strace() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("strace"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipping: strace not found on PATH (apt-get install strace to run this test)");
    }
    found
}

/// One traced system call of one thread.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: String,
    ret: String,
}

impl Call {
    /// The quoted paths among the arguments, in order.
    fn paths(&self) -> Vec<String> {
        self.args
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, p)| p.to_string())
            .collect()
    }
}

/// Runs meshboot under strace; returns its exit status and the calls of each thread, in
/// order (one file per thread, so nothing is interleaved).
fn traced(
    strace: &Path,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, Vec<Vec<Call>>) {
    let trace_dir = tempfile::tempdir().unwrap();
    let prefix = trace_dir.path().join("t");
    let mut cmd = Command::new(strace);
    cmd.args(["-f", "-ff", "-qq", "-o"])
        .arg(&prefix)
        .args([
            "-e",
            "trace=open,openat,creat,fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat",
        ])
        .arg(MESHBOOT)
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run strace");
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(trace_dir.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let calls = text
            .lines()
            .filter_map(|line| {
                // `name(args) = ret`, the `=` padded to a column for short calls.
                let (name, rest) = line.split_once('(')?;
                let (args, ret) = rest.rsplit_once(" = ")?;
                let args = args.trim_end().strip_suffix(')')?;
                Some(Call {
                    name: name.trim().to_string(),
                    args: args.to_string(),
                    ret: ret.split_whitespace().next()?.to_string(),
                })
            })
            .collect();
        threads.push(calls);
    }
    if !out.status.success() {
        eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), threads)
}

fn is_open(c: &Call) -> bool {
    matches!(c.name.as_str(), "open" | "openat" | "creat")
        && c.ret.parse::<i32>().is_ok_and(|fd| fd >= 0)
}

fn is_rename(c: &Call) -> bool {
    c.name.starts_with("rename") && c.ret == "0"
}

/// Checks every rename of the run: each file created for it (the renamed file itself, or the
/// files inside a renamed staging folder) was fsynced before it, a renamed folder was fsynced
/// before it, and the target's folder was fsynced after it. Returns every file that landed
/// this way, by its final path, with the mode it was created with.
fn check_renames(threads: &[Vec<Call>]) -> BTreeMap<String, String> {
    let mut landed = BTreeMap::new();
    for calls in threads {
        let mut fds: BTreeMap<String, String> = BTreeMap::new();
        // Created path -> creation mode.
        let mut created: BTreeMap<String, String> = BTreeMap::new();
        let mut synced: Vec<String> = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            if is_open(call) {
                let path = call.paths().pop().unwrap_or_default();
                if call.args.contains("O_CREAT") {
                    let mode = call.args.rsplit(", ").next().unwrap_or_default();
                    created.insert(path.clone(), mode.to_string());
                }
                fds.insert(call.ret.clone(), path);
            } else if call.name == "fsync" || call.name == "fdatasync" {
                if let Some(path) = fds.get(call.args.trim()) {
                    synced.push(path.clone());
                }
            } else if is_rename(call) {
                let paths = call.paths();
                let (from, to) = (&paths[0], &paths[1]);
                let inside = format!("{from}/");
                let moved: Vec<(&String, &String)> = created
                    .iter()
                    .filter(|(p, _)| *p == from || p.starts_with(&inside))
                    .collect();
                for (path, mode) in &moved {
                    assert!(
                        synced.contains(path),
                        "{path}: renamed into place without an fsync of its contents"
                    );
                    landed.insert(format!("{to}{}", &path[from.len()..]), mode.to_string());
                }
                if !created.contains_key(from) && !moved.is_empty() {
                    assert!(
                        synced.contains(from),
                        "{from}: folder renamed before its fsync"
                    );
                }
                let parent = Path::new(to).parent().unwrap().display().to_string();
                let later = &calls[i + 1..];
                let dir_synced = later.iter().enumerate().any(|(j, c)| {
                    is_open(c)
                        && c.paths().last() == Some(&parent)
                        && later[j + 1..]
                            .iter()
                            .any(|s| s.name == "fsync" && s.args.trim() == c.ret)
                });
                assert!(
                    dir_synced,
                    "{to}: its folder {parent} was not fsynced after the rename"
                );
            }
        }
    }
    landed
}

#[test]
fn key_files_are_born_private_and_fsynced_with_their_folder() {
    let Some(strace) = strace() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let pki = dir.join("pki").display().to_string();
    let (ok, trace) = traced(
        &strace,
        &dir,
        &["ca", "init", "--dir", &pki, "--key", "ecdsa-p256"],
        &[],
    );
    assert!(ok);
    let renamed = check_renames(&trace);
    assert_eq!(
        renamed
            .get(&format!("{pki}/root-key.pem"))
            .map(String::as_str),
        Some("0600")
    );
    assert_eq!(
        renamed
            .get(&format!("{pki}/root-cert.pem"))
            .map(String::as_str),
        Some("0644")
    );

    let args = [
        "ca",
        "intermediate",
        "--dir",
        &pki,
        "--cluster",
        "eu",
        "--key",
        "ecdsa-p256",
    ];
    let (ok, trace) = traced(&strace, &dir, &args, &[]);
    assert!(ok);
    let renamed = check_renames(&trace);
    let key = renamed
        .iter()
        .find(|(to, _)| to.ends_with("/ca-key.pem"))
        .map(|(_, mode)| mode.as_str());
    assert_eq!(key, Some("0600"), "{renamed:?}");
    assert!(dir.join("pki/eu/ca-key.pem").is_file());
}

#[test]
fn render_writes_its_cacerts_file_the_same_way() {
    let Some(strace) = strace() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let file = write_mesh(
        &dir,
        &kubeconfig,
        &[("eu", "network1", "primary")],
        "multi-primary",
        "",
    );
    let file = file.display().to_string();
    let out = dir.join("out").display().to_string();
    let (ok, trace) = traced(
        &strace,
        &dir,
        &["render", "-f", &file, "--out-dir", &out],
        &[],
    );
    assert!(ok);
    let renamed = check_renames(&trace);
    let cacerts: Vec<(&String, &String)> = renamed
        .iter()
        .filter(|(to, _)| to.contains("cacerts"))
        .collect();
    assert!(!cacerts.is_empty(), "{renamed:?}");
    for (to, mode) in cacerts {
        assert_eq!(mode, "0600", "{to}");
    }
}

#[test]
fn a_dry_run_creates_no_file_anywhere() {
    let Some(strace) = strace() else { return };
    let clusters = start_with_istio(&["eu", "ap"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/byo-root");
    let brought = format!(
        ", root: {{cert: {}, key: {}}}",
        root.join("ec-root.pem").display(),
        root.join("ec-root-key.pkcs8.pem").display()
    );
    // A new root, and a brought one (which the old dry run copied into a temp folder).
    for extra_ca in ["", brought.as_str()] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        write_mesh(
            &dir,
            clusters.kubeconfig_path(),
            &[("eu", "network1", "primary"), ("ap", "network2", "primary")],
            "multi-primary",
            extra_ca,
        );
        let args = ["apply", "-f", "mesh.yaml", "--allow-loopback", "--dry-run"];
        let (ok, trace) = traced(&strace, &dir, &args, &[]);
        assert!(ok, "dry run failed ({extra_ca:?})");
        let created: Vec<String> = trace
            .iter()
            .flatten()
            .filter(|c| {
                (is_open(c) && (c.args.contains("O_CREAT") || c.name == "creat"))
                    || (c.name.starts_with("mkdir") && c.ret == "0")
                    || is_rename(c)
            })
            .map(|c| format!("{}({})", c.name, c.args))
            .collect();
        assert!(created.is_empty(), "a dry run created files: {created:#?}");
        assert!(!dir.join("pki").exists());
    }
}

/// The `open(O_CREAT)`, `mkdir` and `rename` calls of a trace.
fn creations(trace: &[Vec<Call>]) -> Vec<String> {
    trace
        .iter()
        .flatten()
        .filter(|c| {
            (is_open(c) && (c.args.contains("O_CREAT") || c.name == "creat"))
                || (c.name.starts_with("mkdir") && c.ret == "0")
                || is_rename(c)
        })
        .map(|c| format!("{}({})", c.name, c.args))
        .collect()
}

#[test]
fn dry_runs_of_render_and_the_ca_commands_create_no_file_anywhere() {
    let Some(strace) = strace() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/byo-root");
    let (cert, key) = (root.join("ec-root.pem"), root.join("ec-root-key.pkcs8.pem"));
    write_mesh(
        &dir,
        &dir.join("kubeconfig"),
        &[("eu", "network1", "primary")],
        "multi-primary",
        "",
    );
    let pki = dir.join("pki").display().to_string();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let runs: [&[&str]; 3] = [
        &["render", "-f", "mesh.yaml", "--out-dir", "out", "--dry-run"],
        &[
            "ca",
            "init",
            "--dir",
            &pki,
            "--key",
            "ecdsa-p256",
            "--dry-run",
        ],
        &[
            "ca",
            "import",
            "--dir",
            &pki,
            "--cert",
            &cert,
            "--key",
            &key,
            "--dry-run",
        ],
    ];
    for args in runs {
        let (ok, trace) = traced(&strace, &dir, args, &[]);
        assert!(ok, "{args:?} failed");
        let created = creations(&trace);
        assert!(created.is_empty(), "{args:?} created files: {created:#?}");
    }
    assert!(!dir.join("pki").exists() && !dir.join("out").exists());
    // With a root on disk, planning the intermediates writes nothing either.
    let (ok, _) = traced(
        &strace,
        &dir,
        &["ca", "init", "--dir", &pki, "--key", "ecdsa-p256"],
        &[],
    );
    assert!(ok);
    let args = [
        "ca",
        "intermediate",
        "--dir",
        &pki,
        "--cluster",
        "eu",
        "--key",
        "ecdsa-p256",
        "--dry-run",
    ];
    let (ok, trace) = traced(&strace, &dir, &args, &[]);
    assert!(ok);
    let created = creations(&trace);
    assert!(
        created.is_empty(),
        "ca intermediate --dry-run created files: {created:#?}"
    );
    assert!(!dir.join("pki/eu").exists());
}
