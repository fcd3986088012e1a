//! One version of a file on disk: what the watcher compares to tell a
//! change and what the loader keys its compiles by.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The identity of one version of a file. The change time is in it because
/// nothing can set it: a rewrite that keeps the size and restores the mtime
/// (`cp -p`, `rsync -t`, `tar x`) still changes it. A `chmod` changes it
/// too; a needless new version costs a version check, a missed one leaves a
/// stale handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, where the file system keeps one.
    pub modified: Option<SystemTime>,
    /// Status change time (seconds, nanoseconds).
    pub changed: (i64, i64),
    /// Inode: a file replaced by a rename is another file.
    pub inode: u64,
}

impl Version {
    /// The version `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            changed: (meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }

    /// The version of the file at `path` now (symlinks followed). Blocks.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        std::fs::metadata(path).map(|meta| Self::of(&meta))
    }

    /// How long ago the file last changed, by its own times: zero for a time
    /// in the future (a clock set wrong), which then waits out a settle time
    /// as it is watched.
    pub fn age(&self) -> Duration {
        let changed = u64::try_from(self.changed.0)
            .ok()
            .zip(u32::try_from(self.changed.1).ok())
            .map(|(secs, nanos)| UNIX_EPOCH + Duration::new(secs, nanos));
        let last = self.modified.max(changed).unwrap_or(UNIX_EPOCH);
        SystemTime::now().duration_since(last).unwrap_or_default()
    }
}
