//! One writer at a time on a CA directory.

use super::store::create_dir;
use super::{CaDir, PkiError};

impl CaDir {
    /// An exclusive advisory lock (flock) on the directory itself, held while files are
    /// decided and written, so two meshboot processes on one CA directory cannot both create
    /// a root or the same intermediate. Locking the directory rather than a lock file leaves
    /// no extra file behind. With `create`, a missing directory is created first (callers
    /// validate their input before that); without it, a missing directory is not locked (a
    /// dry run must not create it).
    pub(super) fn lock(&self, create: bool) -> Result<Option<std::fs::File>, PkiError> {
        if create {
            create_dir(&self.dir)?;
        }
        if !cfg!(unix) || !self.dir.is_dir() {
            return Ok(None);
        }
        let handle = std::fs::File::open(&self.dir).map_err(|e| PkiError::io(&self.dir, e))?;
        handle.lock().map_err(|e| PkiError::io(&self.dir, e))?;
        Ok(Some(handle))
    }
}
