//! Exclusive advisory locks between `keycard` processes (profile store, key file rotation).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// Opens (creating, mode 0600) and exclusively locks `path`, waiting for other holders. The
/// lock is released when the returned file is dropped, or when the process exits.
pub fn exclusive(path: &Path) -> Result<File> {
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(lock)
}
