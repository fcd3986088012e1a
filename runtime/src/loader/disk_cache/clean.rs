//! What `wasmlet cache prune` and `wasmlet cache clear` do to a cache
//! directory, possibly while servers use it: every removal is one `unlink`
//! (or, for the build directory, a tree of them), which a server reading
//! the file does not notice (see "Concurrency" in the [parent module](super)).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::upkeep::{is_entry_name, is_temporary_name, remove_entry};
use super::{BUILD_DIR, DiskCache, EngineDigest};
use crate::config::STALE_CACHE_TEMP_AGE;

/// How many entries (or build directories) and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Entries or directories.
    pub entries: usize,
    /// Their bytes.
    pub bytes: u64,
}

impl Removed {
    pub(super) fn add(&mut self, bytes: u64) {
        self.entries += 1;
        self.bytes += bytes;
    }
}

/// What [`DiskCache::prune`] removed, by reason, and what it kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Entries no wasmlet of this format can read (another format version,
    /// a damaged header).
    pub unreadable: Removed,
    /// Entries for another wasmtime or engine configuration.
    pub other_engine: Removed,
    /// Older entries of a handler file that has a newer one.
    pub superseded: Removed,
    /// The least recently used entries past the cap.
    pub over_cap: Removed,
    /// Build directories no build reads again.
    pub build: Removed,
    /// The entries left.
    pub kept: Removed,
}

/// Why [`DiskCache::clear`] removed nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClearError {
    /// The directory holds something wasmlet never writes there, so it may
    /// not be a cache at all.
    #[error(
        "{} does not look like a wasmlet cache: it holds {}, which wasmlet never writes there; \
         nothing was removed (check --cache-dir, or delete the directory yourself)",
        dir.display(), found.display()
    )]
    NotACache {
        /// The directory.
        dir: PathBuf,
        /// The first item that is not wasmlet's.
        found: PathBuf,
    },
    /// A removal failed.
    #[error("cannot remove {}: {source}", path.display())]
    Io {
        /// What could not be removed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl DiskCache {
    /// The bytes below the build directory.
    pub fn build_size(&self) -> u64 {
        tree_size(&self.dir.join(BUILD_DIR))
    }

    /// Removes what no server of this wasmlet will load again: entries it
    /// cannot read, entries for another wasmtime or engine configuration
    /// than one of `engines`, entries superseded by a newer one from the same
    /// handler file, finished and foreign build directories; then the least
    /// recently used entries past the cap.
    pub fn prune(&self, engines: &[EngineDigest]) -> PruneReport {
        let mut report = PruneReport::default();
        let mut newest: HashMap<PathBuf, SystemTime> = HashMap::new();
        let mut kept = Vec::new();
        for entry in self.scan(true) {
            match entry.unusable(engines) {
                None => {
                    if let Some(source) = entry.source() {
                        // Scanned oldest first: the last one seen is the newest.
                        newest.insert(source.to_owned(), entry.last_used);
                    }
                    kept.push(entry);
                }
                Some(_) if !remove_entry(&entry.path) => kept.push(entry),
                Some(_) if entry.header().is_some() => report.other_engine.add(entry.size),
                Some(_) => report.unreadable.add(entry.size),
            }
        }
        kept.retain(|entry| {
            let superseded = entry
                .source()
                .is_some_and(|source| newest[source] > entry.last_used);
            let removed = superseded && remove_entry(&entry.path);
            if removed {
                report.superseded.add(entry.size);
            }
            !removed
        });
        report.over_cap = self.trim(&mut kept, None);
        for entry in &kept {
            report.kept.add(entry.size);
        }
        for dir in
            super::super::rust_source::orphans(&self.dir.join(BUILD_DIR), STALE_CACHE_TEMP_AGE)
        {
            let size = tree_size(&dir);
            if std::fs::remove_dir_all(&dir).is_ok() {
                report.build.add(size);
            }
        }
        report
    }

    /// Removes every entry, temporary file and the build directory, and
    /// nothing else: a directory holding anything wasmlet does not write
    /// there is refused before anything is removed.
    pub fn clear(&self) -> Result<Removed, ClearError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ClearError::Io { path, source }
        };
        let mut ours = Vec::new();
        for item in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let item = item.map_err(io(&self.dir))?;
            let name = item.file_name();
            let name = name.to_str().unwrap_or_default();
            // `DirEntry::file_type` does not follow symlinks, and wasmlet
            // never makes one.
            let kind = item.file_type().map_err(io(&item.path()))?;
            let wasmlets = if kind.is_dir() {
                name == BUILD_DIR
            } else {
                kind.is_file() && (is_entry_name(name) || is_temporary_name(name))
            };
            if !wasmlets {
                return Err(ClearError::NotACache {
                    dir: self.dir.clone(),
                    found: item.file_name().into(),
                });
            }
            ours.push((item.path(), kind.is_dir()));
        }
        let mut removed = Removed::default();
        for (path, is_dir) in ours {
            let size = tree_size(&path);
            let result = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match result {
                Ok(()) => removed.add(size),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(removed)
    }
}

/// The bytes of the regular files at and below `path`, symlinks not
/// followed.
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    std::fs::read_dir(path)
        .map(|items| {
            items
                .filter_map(Result::ok)
                .map(|item| tree_size(&item.path()))
                .sum()
        })
        .unwrap_or(0)
}
