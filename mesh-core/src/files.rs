//! Writing files so that neither a reader, a crash nor a power cut ever sees half of one, and a
//! private key is never readable by anyone else, not even for an instant.
//!
//! The one way mesh-core writes a file (the CA directory, `render`'s output folder):
//! a temp file in the same directory, created with its final mode (0600 for private
//! material) before any byte is written, then write, fsync the file, rename it over the
//! target, fsync the directory. The rename makes the new contents appear whole; the two
//! fsyncs make them survive a power cut (without the directory's, the rename itself may be
//! lost, leaving the old file or none).
//!
//! ```
//! use mesh_core::files::{Access, write_atomic};
//! let tmp = tempfile::tempdir().unwrap();
//! let key = tmp.path().join("ca-key.pem");
//! write_atomic(&key, b"secret", Access::Private).unwrap();
//! assert_eq!(std::fs::read(&key).unwrap(), b"secret");
//! # #[cfg(unix)] {
//! use std::os::unix::fs::PermissionsExt;
//! assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
//! # }
//! ```

use std::io::Write;
use std::path::Path;

/// Who may read a file: the owner only (keys, anything holding a token), or everyone
/// (certificates, manifests).
///
/// ```
/// assert_eq!(mesh_core::files::Access::Private.mode(), 0o600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Mode 0600.
    Private,
    /// Mode 0644 (narrowed further by the umask, never widened).
    Shared,
}

impl Access {
    /// The Unix permission bits a new file gets.
    ///
    /// ```
    /// assert_eq!(mesh_core::files::Access::Shared.mode(), 0o644);
    /// ```
    pub fn mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Shared => 0o644,
        }
    }
}

/// Prefix of the temp files and staging folders mesh-core leaves only when killed mid-write;
/// readers of a folder skip names that start with it.
pub const TEMP_PREFIX: &str = ".meshboot-";

/// Replaces `path` with `contents` atomically and durably (see the module docs), creating
/// missing parent directories. On error the target is untouched and the temp file removed.
///
/// ```
/// use mesh_core::files::{Access, write_atomic};
/// let tmp = tempfile::tempdir().unwrap();
/// let file = tmp.path().join("out/eu/01-namespace.yaml");
/// write_atomic(&file, b"old", Access::Shared).unwrap();
/// write_atomic(&file, b"new", Access::Shared).unwrap();
/// assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
/// // Nothing but the file itself is left in its folder.
/// assert_eq!(std::fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);
/// ```
pub fn write_atomic(path: &Path, contents: &[u8], access: Access) -> std::io::Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Given to open(2), so the file is born with this mode: there is no window between
        // creating it and a chmod in which a key could be read by others.
        builder.permissions(std::fs::Permissions::from_mode(access.mode()));
    }
    #[cfg(not(unix))]
    let _ = access;
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Creates `path`, which must not exist yet, with its final mode, writes and fsyncs it, with no
/// rename: for the files of a fresh private staging folder that is itself fsynced and renamed
/// into place afterwards, so many files appear at once for the price of one rename.
///
/// ```
/// use mesh_core::files::{Access, sync_dir, write_new};
/// let tmp = tempfile::tempdir().unwrap();
/// let staging = tmp.path().join(".meshboot-staging");
/// std::fs::create_dir(&staging).unwrap();
/// write_new(&staging.join("ca-key.pem"), b"key", Access::Private).unwrap();
/// assert!(write_new(&staging.join("ca-key.pem"), b"again", Access::Private).is_err());
/// sync_dir(&staging).unwrap();
/// std::fs::rename(&staging, tmp.path().join("eu")).unwrap();
/// sync_dir(tmp.path()).unwrap();
/// assert_eq!(std::fs::read(tmp.path().join("eu/ca-key.pem")).unwrap(), b"key");
/// ```
pub fn write_new(path: &Path, contents: &[u8], access: Access) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(access.mode());
    }
    #[cfg(not(unix))]
    let _ = access;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Flushes a directory's entries (new names, renames) to disk. A no-op where directories
/// cannot be opened as files (Windows).
///
/// ```
/// let tmp = tempfile::tempdir().unwrap();
/// mesh_core::files::sync_dir(tmp.path()).unwrap();
/// ```
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory a path lives in; `.` for a bare file name.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_replacing_a_shared_one_ends_up_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("key.pem");
        write_atomic(&path, b"cert", Access::Shared).unwrap();
        assert_eq!(mode(&path) & 0o600, 0o600);
        write_atomic(&path, b"key", Access::Private).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"key");
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("file");
        write_atomic(&path, b"kept", Access::Shared).unwrap();
        // A directory where the file should go: the rename fails after the temp was written.
        let blocked = tmp.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write_atomic(&blocked, b"new", Access::Private).is_err());
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TEMP_PREFIX)),
            "temp file left behind: {names:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    }
}
