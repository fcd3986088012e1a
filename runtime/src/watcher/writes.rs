//! [`OpenWrites`]: the handler files a writer still holds open, as native
//! events tell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind};

use crate::webroot::HANDLER_EXTENSIONS;

/// Handler files some process has written to and not yet closed, as native
/// events tell (inotify reports a write, then the close after it): such a
/// file is still being written, however long its writer pauses, and must not
/// replace a working version. Polling learns nothing here, and the set stays
/// empty: only the settle time applies then.
#[derive(Debug, Default)]
pub struct OpenWrites {
    /// Each file with the time of its last write.
    files: Mutex<BTreeMap<PathBuf, Instant>>,
}

impl OpenWrites {
    /// Whether `file` was written and not closed since. A close that was
    /// never reported (lost events) stops counting
    /// [`OPEN_WRITE_EXPIRY`](crate::config::OPEN_WRITE_EXPIRY) after the last
    /// write, so a lost event cannot pin the old version for ever.
    pub fn is_open(&self, file: &Path) -> bool {
        self.lock()
            .get(file)
            .is_some_and(|wrote| wrote.elapsed() < crate::config::OPEN_WRITE_EXPIRY)
    }

    pub(super) fn wrote(&self, file: &Path) {
        self.lock().insert(file.to_owned(), Instant::now());
    }

    pub(super) fn closed(&self, file: &Path) {
        self.lock().remove(file);
    }

    /// Events were lost: whatever was open may have been closed meanwhile.
    pub(super) fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Instant>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Follows one raw event: a handler file written is open until the
    /// close-after-write (or its removal or rename) is seen.
    pub(super) fn follow(&self, event: &Event) {
        use notify::event::{ModifyKind, RenameMode};
        let handlers = event.paths.iter().filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| HANDLER_EXTENSIONS.contains(&e))
        });
        match event.kind {
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                handlers.for_each(|path| self.wrote(path));
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                handlers.for_each(|path| self.closed(path));
            }
            _ => {}
        }
    }
}
