//! The file watcher: tells the server which handler files (`.wasm`, `.wat`)
//! and configuration files (`wasmlet.toml`) under the web root were created,
//! changed or removed, so it can hot-load them.
//!
//! # Layout
//! - `tree`: the picture of the tree and how two looks differ.
//! - `events`: native notifications, debounced.
//! - `poll`: rescanning, for file systems that deliver no events.
//! - `writes`: [`OpenWrites`], the handler files still being written.
//!
//! # How changes are found
//! The watcher keeps a picture of the tree: every directory, and every handler
//! and configuration file with its version (size, mtime, ctime, inode).
//! Something tells it *where* to look again, and it reports how the picture
//! there differs from the disk, in both modes alike.
//! - [`WatchMode::Events`]: native notifications (inotify, FSEvents, …)
//!   through `notify`, masked to the kinds that change the tree (and
//!   inotify's close-after-write), debounced by `notify-debouncer-full`. A
//!   path is looked at once the debounce window has passed since its first
//!   event, so a file written in chunks, or saved through a temporary file
//!   and a rename, is one change; a writer still busy after the window is
//!   looked at again after its next event. If the native watcher cannot
//!   start, the watcher polls every [`FALLBACK_POLL_INTERVAL`] and logs a
//!   warning.
//! - [`WatchMode::Poll`]: rescans the tree every interval, for file systems
//!   that deliver no events (network mounts, some container bind mounts). A
//!   difference is reported once the path has looked the same for the
//!   debounce window. This is not notify's `PollWatcher`: it compares only
//!   size, mtime and (optionally) a hash of the contents, so a same-size
//!   `cp -p` over a handler (mtime preserved; only the ctime moves) is never
//!   seen; hashing every file catches it, at twelve times the CPU per scan
//!   (240 ms against 20 ms over 5,000 files in a debug build, where this
//!   poller takes about 23 ms). It also walks, stats and hashes the ignored
//!   paths and dot-directories (`.git`) that this poller skips. The `cp -p`
//!   case is `a_same_size_copy_keeping_the_modification_time_is_a_change`
//!   here and, through the server,
//!   `polling_mode_notices_a_same_size_copy_that_keeps_the_modification_time`.
//!
//! # Writes in progress
//! With native events the watcher also keeps [`OpenWrites`]: the handler
//! files written and not yet closed (inotify reports the close after a
//! write). The debounce window alone cannot tell a writer that pauses for a
//! second from one that finished; the loader reads this set before a new
//! version may replace a working one.
//!
//! # The epoch
//! With native events the watcher vouches for the web root's [`Epoch`]
//! once every directory is watched, and withdraws it on an error that may
//! leave one unwatched: the router's route table and the loader trust what
//! they learnt in an epoch. Each change ends the epoch through its
//! tripwire, which every request reads first, so the watcher's own
//! (later) events need not. Polling vouches for none.
//!
//! # What is never reported
//! Anything outside the root, under an ignored path (the cache directory),
//! under a dotfile or dot-directory, editor temporary and swap files
//! (`*.swp`, `*.swx`, `*~`, `.#*`, `#*#`, `4913`, `*.tmp`), and every other
//! file: only handler files, configuration files and removed directories are.
//! Symbolic links are not followed: a handler the router can serve has its
//! real path inside the root, where it is watched directly.
//!
//! # What a batch means
//! `on_change` gets a batch of [`Change`]s: each path at most once, removals
//! first, then configuration changes, then changed handlers, so applying a
//! batch in order is correct. Only changes after [`Watcher::start`] returns
//! are reported, never the files already there. [`ChangeKind::Changed`] is
//! at-least-once: a file caught half-written by a directory walk is reported
//! again when it is complete, so consumers compare file versions rather than
//! assume every report is new bytes.

mod events;
mod poll;
mod tree;
mod writes;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::webroot::{Epoch, real_path};

pub use writes::OpenWrites;

pub use crate::config::{DEFAULT_DEBOUNCE, WatchMode};

/// How often the watcher polls when [`WatchMode::Events`] was asked for but
/// the native watcher could not start.
pub const FALLBACK_POLL_INTERVAL: Duration = crate::config::DEFAULT_POLL_INTERVAL;

/// Shorter polling intervals are raised to this: a zero interval would spin
/// a core rescanning the tree.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One path that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute, under the canonical web root ([`Watcher::root`]).
    pub path: PathBuf,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// What happened to a path. The declaration order is the order within a
/// batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// A handler file, or a directory, is gone. Treat the path as a prefix:
    /// a removed directory's handlers are listed too, but a consumer that
    /// keeps anything else per directory (its configuration) drops it here.
    Removed,
    /// A `wasmlet.toml` was created, changed or removed: reread it.
    Config,
    /// A handler file was created or modified.
    Changed,
}

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The web root is missing or unreadable.
    #[error("cannot watch {}: {source}", path.display())]
    Root {
        /// The root as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The web root is not a directory.
    #[error("cannot watch {}: not a directory", path.display())]
    NotADirectory {
        /// The root as given.
        path: PathBuf,
    },
    /// The polling thread could not be started.
    #[error("cannot watch {}: cannot start the polling thread: {source}", path.display())]
    Spawn {
        /// The canonical web root.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Watches a web root and reports changes to a callback. Dropping it stops
/// watching; once `drop` returns the callback is never called again.
pub struct Watcher {
    /// The canonical root: every reported path starts with it.
    root: PathBuf,
    /// The mode in effect, which is polling after a fallback.
    mode: WatchMode,
    /// The caller's callback, shared with the delivering thread. Emptied on
    /// drop, and held while a batch is delivered, so that dropping waits for
    /// a delivery in progress and prevents any later one.
    sink: Sink,
    /// Ended at every change while native events flow; withdrawn when the
    /// watcher stops.
    epoch: Arc<Epoch>,
    /// Kept to be dropped with the watcher.
    _source: Source,
}

type Sink = Arc<Mutex<Option<Box<dyn FnMut(Vec<Change>) + Send>>>>;

/// What delivers changes: never read, only dropped, which stops it.
#[expect(
    dead_code,
    reason = "held to be dropped: the debouncer stops its threads on drop, and \
              the polling thread ends when its channel closes"
)]
enum Source {
    Events(events::Native),
    Poll(poll::Stop),
}

impl Watcher {
    /// Starts watching `root` recursively. `debounce` is how long after its
    /// first event (with native events) or its last difference (polling) a
    /// path is reported ([`DEFAULT_DEBOUNCE`] unless there is a reason); `ignore` lists paths never reported, with everything below
    /// them (relative ones are taken from the current directory, and they may
    /// lie outside the root or not exist yet). `on_change` runs on the
    /// watcher's thread: it should hand the batch on (to a tokio channel, say)
    /// rather than block, must not drop this `Watcher`, and must not panic
    /// (the watching thread would end with it).
    pub fn start(
        root: &Path,
        mode: WatchMode,
        debounce: Duration,
        ignore: Vec<PathBuf>,
        on_change: impl FnMut(Vec<Change>) + Send + 'static,
    ) -> Result<Watcher, WatchError> {
        let (writes, epoch) = (Arc::default(), Arc::default());
        Self::start_following_writes(root, mode, debounce, ignore, writes, epoch, on_change)
    }

    /// [`Watcher::start`], also keeping `writes` up to date with the handler
    /// files being written, and vouching for `epoch` while every directory
    /// is watched (with native events; polling cannot tell either, and
    /// vouches for no epoch).
    pub fn start_following_writes(
        root: &Path,
        mode: WatchMode,
        debounce: Duration,
        ignore: Vec<PathBuf>,
        writes: Arc<OpenWrites>,
        epoch: Arc<Epoch>,
        on_change: impl FnMut(Vec<Change>) + Send + 'static,
    ) -> Result<Watcher, WatchError> {
        let canonical = std::fs::canonicalize(root).map_err(|source| WatchError::Root {
            path: root.to_owned(),
            source,
        })?;
        if !canonical.is_dir() {
            return Err(WatchError::NotADirectory {
                path: root.to_owned(),
            });
        }
        let root = canonical;
        let ignore: Vec<PathBuf> = ignore.iter().map(|path| real_path(path)).collect();
        if let Some(dir) = ignore.iter().find(|dir| root.starts_with(dir)) {
            tracing::warn!(
                root = %root.display(),
                ignored = %dir.display(),
                "an ignored path contains the web root; no change will be reported"
            );
        }
        let sink: Sink = Arc::new(Mutex::new(Some(Box::new(on_change))));
        let (mode, source) = match mode {
            WatchMode::Events => {
                match events::start(&root, &ignore, debounce, (writes, epoch.clone()), &sink) {
                    Ok(debouncer) => (WatchMode::Events, Source::Events(debouncer)),
                    Err(error) => {
                        tracing::warn!(
                            root = %root.display(),
                            %error,
                            interval = ?FALLBACK_POLL_INTERVAL,
                            "native file events are unavailable; polling instead"
                        );
                        poll::start(&root, &ignore, FALLBACK_POLL_INTERVAL, debounce, &sink)?
                    }
                }
            }
            WatchMode::Poll(interval) => poll::start(&root, &ignore, interval, debounce, &sink)?,
        };
        Ok(Watcher {
            root,
            mode,
            sink,
            epoch,
            _source: source,
        })
    }

    /// The canonical web root; every reported path starts with it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mode in effect: [`WatchMode::Poll`] if polling was asked for or
    /// native events could not be set up.
    pub fn mode(&self) -> WatchMode {
        self.mode
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Changes from now on go unseen.
        self.epoch.withdraw();
        self.sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("root", &self.root)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Hands a non-empty batch to the caller; false once the watcher is dropped.
pub(super) fn deliver(sink: &Sink, batch: Vec<Change>) -> bool {
    let mut sink = sink.lock().unwrap_or_else(PoisonError::into_inner);
    match sink.as_mut() {
        Some(on_change) => {
            if !batch.is_empty() {
                on_change(batch);
            }
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::fs;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Instant;

    use ChangeKind::{Changed, Config, Removed};

    #[test]
    fn a_missing_root_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Watcher::start(
            &missing,
            WatchMode::Events,
            DEFAULT_DEBOUNCE,
            Vec::new(),
            |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, WatchError::Root { .. }), "{err:?}");
        assert!(err.to_string().contains("nope"), "{err}");

        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let err = Watcher::start(
            &file,
            WatchMode::Poll(POLL),
            DEFAULT_DEBOUNCE,
            Vec::new(),
            |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, WatchError::NotADirectory { .. }), "{err:?}");
    }

    #[test]
    fn dropping_the_watcher_stops_deliveries() {
        for mode in [WatchMode::Events, WatchMode::Poll(POLL)] {
            let mut site = Site::new(mode, DEFAULT_DEBOUNCE);
            // The callback, and with it the channel's only sender, is gone
            // once `drop` returns.
            drop(site.watcher.take());
            site.write("late.wat", "(module)");
            assert_eq!(
                site.changes.recv_timeout(PATIENCE),
                Err(mpsc::RecvTimeoutError::Disconnected),
                "{mode:?}"
            );
        }
    }

    pub(super) const POLL: Duration = Duration::from_millis(50);

    /// How long a test waits for a report before it fails; far above the
    /// debounce window, for a loaded machine.
    pub(super) const PATIENCE: Duration = Duration::from_secs(10);

    /// A web root under a temporary directory, watched, with a place beside
    /// it (same file system) to build directories to move in.
    struct Site {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
        changes: mpsc::Receiver<Vec<Change>>,
        watcher: Option<Watcher>,
        markers: Cell<u32>,
    }

    impl Site {
        fn new(mode: WatchMode, debounce: Duration) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let base = fs::canonicalize(dir.path()).unwrap();
            let root = base.join("site");
            let outside = base.join("outside");
            fs::create_dir_all(root.join("cache")).unwrap();
            fs::create_dir_all(&outside).unwrap();
            let (tx, changes) = mpsc::channel();
            let watcher = Watcher::start(
                &root,
                mode,
                debounce,
                vec![root.join("cache")],
                move |batch| {
                    let _ = tx.send(batch);
                },
            )
            .unwrap();
            // Otherwise the event tests could pass by polling.
            assert_eq!(watcher.mode(), mode);
            assert_eq!(watcher.root(), root);
            Self {
                _dir: dir,
                root,
                outside,
                changes,
                watcher: Some(watcher),
                markers: Cell::new(0),
            }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.root.join(rel)
        }

        fn write(&self, rel: &str, contents: &str) {
            let path = self.path(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }

        /// Everything reported since the last call, as (kind, path relative
        /// to the root), sorted. Writes a marker handler and collects batches
        /// until the marker is reported: a path is reported the debounce
        /// window after its change and the marker is written last, so by then
        /// everything done before it has been reported.
        fn settle(&self) -> Vec<(ChangeKind, String)> {
            let n = self.markers.get() + 1;
            self.markers.set(n);
            let marker = format!("zz-marker-{n}.wat");
            self.write(&marker, "(module)");
            let deadline = Instant::now() + PATIENCE;
            let mut seen = Vec::new();
            let mut marked = false;
            while !marked {
                let left = deadline.saturating_duration_since(Instant::now());
                let batch = self.changes.recv_timeout(left).unwrap_or_else(|e| {
                    panic!("{marker} was not reported ({e}); reported so far: {seen:?}")
                });
                for change in batch {
                    let rel = change.path.strip_prefix(&self.root).unwrap();
                    let rel = rel.to_str().unwrap().to_owned();
                    if rel == marker && change.kind == Changed {
                        marked = true;
                    } else {
                        seen.push((change.kind, rel));
                    }
                }
            }
            seen.sort();
            seen
        }
    }

    fn sorted(mut changes: Vec<(ChangeKind, &str)>) -> Vec<(ChangeKind, String)> {
        changes.sort();
        changes
            .into_iter()
            .map(|(k, p)| (k, p.to_owned()))
            .collect()
    }

    /// Each scenario runs once per mode.
    macro_rules! in_both_modes {
        ($($scenario:ident),* $(,)?) => {
            mod events {
                $(#[test] fn $scenario() { super::$scenario(super::WatchMode::Events) })*
            }
            mod polling {
                $(#[test] fn $scenario() { super::$scenario(super::WatchMode::Poll(super::POLL)) })*
            }
        };
    }

    in_both_modes!(
        a_handler_is_reported_when_created_overwritten_and_deleted,
        an_editor_save_through_a_temporary_file_is_one_change_to_the_target,
        renaming_a_handler_removes_the_old_name_and_adds_the_new,
        a_directory_added_whole_reports_every_handler_inside,
        a_directory_removed_or_renamed_whole_reports_every_handler_inside,
        configuration_files_are_reported_as_their_own_kind,
        temporary_files_dotfiles_static_files_and_the_cache_are_never_reported,
        a_file_written_in_chunks_is_one_change,
        a_same_size_rewrite_within_a_second_is_a_change,
        a_same_size_copy_keeping_the_modification_time_is_a_change,
    );

    fn a_handler_is_reported_when_created_overwritten_and_deleted(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("a.wat", "(module)");
        assert_eq!(site.settle(), sorted(vec![(Changed, "a.wat")]));
        site.write("a.wat", "(module (func))");
        assert_eq!(site.settle(), sorted(vec![(Changed, "a.wat")]));
        fs::remove_file(site.path("a.wat")).unwrap();
        assert_eq!(site.settle(), sorted(vec![(Removed, "a.wat")]));
    }

    fn an_editor_save_through_a_temporary_file_is_one_change_to_the_target(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("a.wat", "(module)");
        site.settle();

        site.write("a.wat.tmp", "(module (func))");
        fs::rename(site.path("a.wat.tmp"), site.path("a.wat")).unwrap();
        assert_eq!(site.settle(), sorted(vec![(Changed, "a.wat")]));

        // Vim's way: probe with 4913, keep a backup, write anew, drop it.
        site.write("4913", "");
        fs::remove_file(site.path("4913")).unwrap();
        fs::rename(site.path("a.wat"), site.path("a.wat~")).unwrap();
        site.write("a.wat", "(module (func) (func))");
        fs::remove_file(site.path("a.wat~")).unwrap();
        assert_eq!(site.settle(), sorted(vec![(Changed, "a.wat")]));
    }

    fn renaming_a_handler_removes_the_old_name_and_adds_the_new(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("a.wat", "(module)");
        site.settle();
        fs::rename(site.path("a.wat"), site.path("b.wat")).unwrap();
        assert_eq!(
            site.settle(),
            sorted(vec![(Removed, "a.wat"), (Changed, "b.wat")])
        );
    }

    fn a_directory_added_whole_reports_every_handler_inside(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("api/a.wat", "(module)");
        site.write("api/b.wasm", "\0asm\x01\0\0\0");
        site.write("api/readme.txt", "static");
        assert_eq!(
            site.settle(),
            sorted(vec![(Changed, "api/a.wat"), (Changed, "api/b.wasm")])
        );

        // Moved in, a tree makes one event, for its top directory.
        let built = site.outside.join("shop");
        fs::create_dir_all(built.join("[item]")).unwrap();
        fs::write(built.join("index.wat"), "(module)").unwrap();
        fs::write(built.join("[item]/index.wasm"), "\0asm\x01\0\0\0").unwrap();
        fs::write(built.join("wasmlet.toml"), "").unwrap();
        fs::write(built.join("logo.png"), "png").unwrap();
        fs::rename(&built, site.path("shop")).unwrap();
        assert_eq!(
            site.settle(),
            sorted(vec![
                (Changed, "shop/index.wat"),
                (Changed, "shop/[item]/index.wasm"),
                (Config, "shop/wasmlet.toml"),
            ])
        );
    }

    fn a_directory_removed_or_renamed_whole_reports_every_handler_inside(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("api/a.wat", "(module)");
        site.write("api/v1/b.wasm", "\0asm\x01\0\0\0");
        site.write("old/c.wat", "(module)");
        site.settle();

        fs::rename(site.path("api"), site.path("api2")).unwrap();
        assert_eq!(
            site.settle(),
            sorted(vec![
                (Removed, "api"),
                (Removed, "api/a.wat"),
                (Removed, "api/v1"),
                (Removed, "api/v1/b.wasm"),
                (Changed, "api2/a.wat"),
                (Changed, "api2/v1/b.wasm"),
            ])
        );

        fs::remove_dir_all(site.path("api2")).unwrap();
        // Moved out of the root, a tree makes one event and cannot be listed.
        fs::rename(site.path("old"), site.outside.join("old")).unwrap();
        assert_eq!(
            site.settle(),
            sorted(vec![
                (Removed, "api2"),
                (Removed, "api2/a.wat"),
                (Removed, "api2/v1"),
                (Removed, "api2/v1/b.wasm"),
                (Removed, "old"),
                (Removed, "old/c.wat"),
            ])
        );
    }

    fn configuration_files_are_reported_as_their_own_kind(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("wasmlet.toml", "a = 1");
        site.write("api/wasmlet.toml", "a = 1");
        assert_eq!(
            site.settle(),
            sorted(vec![(Config, "api/wasmlet.toml"), (Config, "wasmlet.toml")])
        );
        site.write("api/wasmlet.toml", "a = 2");
        assert_eq!(site.settle(), sorted(vec![(Config, "api/wasmlet.toml")]));
        fs::remove_file(site.path("wasmlet.toml")).unwrap();
        assert_eq!(site.settle(), sorted(vec![(Config, "wasmlet.toml")]));
    }

    fn temporary_files_dotfiles_static_files_and_the_cache_are_never_reported(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        for rel in [
            "a.wat.swp",
            "a.wat.swx",
            "a.wat~",
            "#a.wat#",
            "4913",
            "a.wasm.tmp",
            ".#a.wat",
            ".a.wat.swp",
            ".hidden.wat",
            ".git/hooks/x.wasm",
            "api/.well-known/y.wat",
            "cache/ab/cd.wasm",
            "cache/new/wasmlet.toml",
            "style.css",
            "docs/index.html",
        ] {
            site.write(rel, "x");
        }
        // Reading handlers is what the server does all day.
        site.write("read.wat", "(module)");
        assert_eq!(site.settle(), sorted(vec![(Changed, "read.wat")]));
        for _ in 0..20 {
            fs::read(site.path("read.wat")).unwrap();
        }
        fs::remove_file(site.path("a.wat~")).unwrap();
        fs::remove_dir_all(site.path(".git")).unwrap();
        fs::remove_dir_all(site.path("cache/ab")).unwrap();
        fs::remove_file(site.path("style.css")).unwrap();
        assert_eq!(site.settle(), []);
    }

    fn a_file_written_in_chunks_is_one_change(mode: WatchMode) {
        // A window wide enough that the pauses below stay inside it on a
        // loaded machine.
        let site = Site::new(mode, Duration::from_millis(400));
        let mut file = fs::File::create(site.path("big.wasm")).unwrap();
        for chunk in 0..5 {
            file.write_all(&[chunk; 4096]).unwrap();
            file.sync_data().unwrap();
            // A slow copy, not synchronisation: the test is that pauses
            // shorter than the window do not split the change.
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(file);
        assert_eq!(site.settle(), sorted(vec![(Changed, "big.wasm")]));
    }

    fn a_same_size_rewrite_within_a_second_is_a_change(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("a.wat", "(module $a)");
        assert_eq!(site.settle(), sorted(vec![(Changed, "a.wat")]));
        site.write("a.wat", "(module $b)");
        assert_eq!(site.settle(), sorted(vec![(Changed, "a.wat")]));
    }

    fn a_same_size_copy_keeping_the_modification_time_is_a_change(mode: WatchMode) {
        let site = Site::new(mode, DEFAULT_DEBOUNCE);
        site.write("a.wat", "(module $a)");
        site.settle();
        // What `cp -p` does: the bytes in place, then the source's times.
        let mtime = fs::metadata(site.path("a.wat"))
            .unwrap()
            .modified()
            .unwrap();
        fs::write(site.path("a.wat"), "(module $b)").unwrap();
        let file = fs::File::options()
            .write(true)
            .open(site.path("a.wat"))
            .unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        let now = fs::metadata(site.path("a.wat")).unwrap();
        assert_eq!((now.len(), now.modified().unwrap()), (11, mtime));
        assert_eq!(site.settle(), sorted(vec![(Changed, "a.wat")]));
    }
}
