//! [`Tripwire`]: the kernel's own record of what changed under the web root,
//! read by the request that is about to trust the [`Epoch`](super::Epoch).
//!
//! The watcher hears of a change on its own thread, a little after the call
//! that made it returns; a request in between would be routed by a table
//! that no longer holds. The kernel, though, queues an inotify event inside
//! that very call (`unlink`, `rename`, `write` …), before it returns. So a
//! request first reads this second inotify instance, without blocking: an
//! empty queue means nothing changed since the last look, which is a fact,
//! not a guess, and needs no `stat` of any file. Anything queued ends the
//! epoch before the request goes on.
//!
//! It watches what the watcher watches (every real, non-hidden directory
//! under the root, ignored paths left out) with a mask of changes only, so
//! reading files (the server's own static files, a handler's compile) never
//! trips it. The cost is a second watch per directory
//! (`fs.inotify.max_user_watches`) and one `read` of an empty queue per
//! request; a watch that cannot be added disarms it, and then requests ask
//! the disk.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use super::walk::walk;

/// Most reads of the queue one look makes: a writer that never pauses must
/// not keep a request reading. What is left trips the next look.
const MAX_READS_PER_LOOK: usize = 16;

/// Changes that can give a request path another route or a handler file
/// another version. Opens, reads and read-only closes are left out.
fn changes() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
        | WatchMask::DONT_FOLLOW
        | WatchMask::EXCL_UNLINK
}

/// An inotify instance over one web root's directories.
#[derive(Debug)]
pub(super) struct Tripwire {
    inotify: Inotify,
    root: PathBuf,
    ignore: Vec<PathBuf>,
    /// Each watched directory, to name what an event is about.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    buffer: Vec<u8>,
}

impl Tripwire {
    /// Watches every real directory under `root` (canonical) but those under
    /// `ignore`. Blocks (one walk of the tree).
    pub(super) fn arm(root: &Path, ignore: &[PathBuf]) -> io::Result<Self> {
        let mut tripwire = Self {
            inotify: Inotify::init()?,
            root: root.to_owned(),
            ignore: ignore.to_vec(),
            dirs: HashMap::new(),
            buffer: vec![0; 4096],
        };
        tripwire.watch_tree(root)?;
        Ok(tripwire)
    }

    /// Whether anything under the root changed since the last look. Never
    /// blocks on the queue; a directory that appeared is watched before this
    /// returns, so its own changes trip a later look.
    pub(super) fn tripped(&mut self) -> io::Result<bool> {
        let mut tripped = false;
        let mut new_dirs = Vec::new();
        let mut rewatch = false;
        for _ in 0..MAX_READS_PER_LOOK {
            let events = match self.inotify.read_events(&mut self.buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.after(tripped, new_dirs, rewatch);
                }
                Err(e) => return Err(e),
            };
            for event in events {
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    // Events were lost, new directories among them perhaps.
                    rewatch = true;
                    tripped = true;
                    continue;
                }
                if event.mask.contains(EventMask::IGNORED) {
                    self.dirs.remove(&event.wd);
                    continue;
                }
                let Some(dir) = self.dirs.get(&event.wd) else {
                    continue;
                };
                let path = match event.name {
                    // Nothing under a hidden name is ever served.
                    Some(name) if name.to_str().is_none_or(|n| n.starts_with('.')) => continue,
                    Some(name) => dir.join(name),
                    None => dir.clone(),
                };
                if ignored(&self.ignore, &path) {
                    continue;
                }
                tripped = true;
                if event.mask.contains(EventMask::ISDIR)
                    && event
                        .mask
                        .intersects(EventMask::CREATE | EventMask::MOVED_TO)
                {
                    new_dirs.push(path);
                }
            }
        }
        // Still more to read: the rest trips the next look.
        self.after(true, new_dirs, rewatch)
    }

    fn after(&mut self, tripped: bool, new_dirs: Vec<PathBuf>, rewatch: bool) -> io::Result<bool> {
        if rewatch {
            let root = self.root.clone();
            self.watch_tree(&root)?;
        } else {
            for dir in new_dirs {
                self.watch_tree(&dir)?;
            }
        }
        Ok(tripped)
    }

    /// Watches `dir` and every real directory below it. A directory gone
    /// meanwhile is no error: its removal is an event of its parent.
    fn watch_tree(&mut self, dir: &Path) -> io::Result<()> {
        let mut dirs = vec![dir.to_owned()];
        walk(
            dir,
            |path| ignored(&self.ignore, path),
            |entry| {
                if entry.file_type.is_dir() {
                    dirs.push(entry.path.clone());
                }
            },
        );
        for dir in dirs {
            match self.inotify.watches().add(&dir, changes()) {
                Ok(wd) => {
                    self.dirs.insert(wd, dir);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn ignored(ignore: &[PathBuf], path: &Path) -> bool {
    ignore.iter().any(|ignored| path.starts_with(ignored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed() -> (tempfile::TempDir, PathBuf, Tripwire) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("api/v1")).unwrap();
        std::fs::create_dir_all(root.join("cache")).unwrap();
        std::fs::write(root.join("api/v1/h.wat"), "(module)").unwrap();
        let tripwire = Tripwire::arm(&root, &[root.join("cache")]).unwrap();
        (dir, root, tripwire)
    }

    #[test]
    fn a_deletion_deep_in_the_tree_trips_it_by_the_time_the_call_returns() {
        let (_dir, root, mut tripwire) = armed();
        assert!(!tripwire.tripped().unwrap());
        std::fs::remove_file(root.join("api/v1/h.wat")).unwrap();
        assert!(tripwire.tripped().unwrap());
        assert!(!tripwire.tripped().unwrap(), "one change trips one look");
    }

    #[test]
    fn reads_hidden_names_and_ignored_paths_do_not_trip_it() {
        let (_dir, root, mut tripwire) = armed();
        std::fs::read(root.join("api/v1/h.wat")).unwrap();
        std::fs::read_dir(root.join("api")).unwrap().for_each(drop);
        std::fs::write(root.join("api/.h.wat.swp"), "x").unwrap();
        std::fs::write(root.join("cache/entry"), "x").unwrap();
        assert!(!tripwire.tripped().unwrap());
    }

    #[test]
    fn a_directory_made_after_arming_is_watched_from_the_look_that_saw_it() {
        let (_dir, root, mut tripwire) = armed();
        std::fs::create_dir_all(root.join("new/deeper")).unwrap();
        assert!(tripwire.tripped().unwrap());
        std::fs::write(root.join("new/deeper/h.wat"), "(module)").unwrap();
        assert!(tripwire.tripped().unwrap());
        // A directory renamed in whole, as a deploy does.
        let staging = tempfile::tempdir_in(&root).unwrap();
        std::fs::create_dir_all(staging.path().join("site/sub")).unwrap();
        std::fs::rename(staging.path().join("site"), root.join("site")).unwrap();
        assert!(tripwire.tripped().unwrap());
        std::fs::write(root.join("site/sub/x.wat"), "(module)").unwrap();
        assert!(tripwire.tripped().unwrap());
    }
}
