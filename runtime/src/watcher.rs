//! The file watcher: tells the server which handler files (`.wasm`, `.wat`)
//! and configuration files (`wasmlet.toml`) under the web root were created,
//! changed or removed, so it can hot-load them.
//!
//! # How changes are found
//! The watcher keeps a picture of the tree: every directory, and every handler
//! and configuration file with its version (size, mtime, ctime, inode).
//! Something tells it *where* to look again, and it reports how the picture
//! there differs from the disk. Looking rather than trusting event kinds is
//! what makes the awkward cases come out right in both modes: a rename is a
//! removal under the old name and a change under the new one, a directory
//! moved in is every handler inside it, and a directory removed is every
//! handler it held plus the directory itself.
//! - [`WatchMode::Events`]: native notifications (inotify, FSEvents, …)
//!   through `notify`, debounced by `notify-debouncer-mini`. A path is looked
//!   at once it has been quiet for the debounce window, so a file written in
//!   chunks, or saved through a temporary file and a rename, is one change.
//!   If the native watcher cannot start, the watcher polls every
//!   [`FALLBACK_POLL_INTERVAL`] and logs a warning.
//! - [`WatchMode::Poll`]: rescans the tree every interval, for file systems
//!   that deliver no events (network mounts, some container bind mounts). A
//!   difference is reported once the path has looked the same for the
//!   debounce window. This is not notify's `PollWatcher`: in notify 8 that
//!   compares mtimes in whole seconds, so a second write within a second is
//!   never seen (notify-rs/notify#981, fixed only in the 9 release
//!   candidates), and it cannot skip the cache directory.
//!
//! # Writes in progress
//! With native events the watcher also keeps [`OpenWrites`]: the handler
//! files written and not yet closed (inotify reports the close after a
//! write). The debounce window alone cannot tell a writer that pauses for a
//! second from one that finished; the loader reads this set before a new
//! version may replace a working one.
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

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::fs::Metadata;
use std::io;
use std::ops::Bound;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventHandler, EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, DebouncedEventKind, Debouncer};

pub use crate::config::{DEFAULT_DEBOUNCE, WatchMode};
use crate::router::{CONFIG_FILE, HANDLER_EXTENSIONS};

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

    fn wrote(&self, file: &Path) {
        self.lock().insert(file.to_owned(), Instant::now());
    }

    fn closed(&self, file: &Path) {
        self.lock().remove(file);
    }

    /// Events were lost: whatever was open may have been closed meanwhile.
    fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Instant>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Follows one raw event: a handler file written is open until the
    /// close-after-write (or its removal or rename) is seen.
    fn follow(&self, event: &Event) {
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
    Events(Debouncer<Relevant<RecommendedWatcher>>),
    Poll(mpsc::Sender<Infallible>),
}

impl Watcher {
    /// Starts watching `root` recursively. `debounce` is how long a path must
    /// be quiet before it is reported ([`DEFAULT_DEBOUNCE`] unless there is a
    /// reason); `ignore` lists paths never reported, with everything below
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
        let writes = Arc::new(OpenWrites::default());
        Self::start_following_writes(root, mode, debounce, ignore, writes, on_change)
    }

    /// [`Watcher::start`], also keeping `writes` up to date with the handler
    /// files being written (with native events; polling cannot tell).
    pub fn start_following_writes(
        root: &Path,
        mode: WatchMode,
        debounce: Duration,
        ignore: Vec<PathBuf>,
        writes: Arc<OpenWrites>,
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
        let ignore: Vec<PathBuf> = ignore.iter().map(|path| resolve(path)).collect();
        if let Some(dir) = ignore.iter().find(|dir| root.starts_with(dir)) {
            tracing::warn!(
                root = %root.display(),
                ignored = %dir.display(),
                "an ignored path contains the web root; no change will be reported"
            );
        }
        let sink: Sink = Arc::new(Mutex::new(Some(Box::new(on_change))));
        let (mode, source) = match mode {
            WatchMode::Events => match start_events(&root, &ignore, debounce, writes, &sink) {
                Ok(debouncer) => (WatchMode::Events, Source::Events(debouncer)),
                Err(error) => {
                    tracing::warn!(
                        root = %root.display(),
                        %error,
                        interval = ?FALLBACK_POLL_INTERVAL,
                        "native file events are unavailable; polling instead"
                    );
                    start_poll(&root, &ignore, FALLBACK_POLL_INTERVAL, debounce, &sink)?
                }
            },
            WatchMode::Poll(interval) => start_poll(&root, &ignore, interval, debounce, &sink)?,
        };
        Ok(Watcher {
            root,
            mode,
            sink,
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

fn start_events(
    root: &Path,
    ignore: &[PathBuf],
    debounce: Duration,
    writes: Arc<OpenWrites>,
    sink: &Sink,
) -> notify::Result<Debouncer<Relevant<RecommendedWatcher>>> {
    // The picture is taken before the watch exists: a file created in between
    // is then reported (its event finds it new) instead of silently absorbed.
    let mut tree = Tree::new(root.to_owned(), ignore.to_vec());
    let sink = Arc::clone(sink);
    let on_events = move |result: DebounceEventResult| match result {
        Ok(events) => {
            // A path still being written comes back as `Any` once it is
            // quiet; sorted, a directory is looked at before its entries.
            let paths: BTreeSet<PathBuf> = events
                .into_iter()
                .filter(|event| matches!(event.kind, DebouncedEventKind::Any))
                .map(|event| event.path)
                .collect();
            let diffs = paths.iter().flat_map(|path| tree.refresh(path));
            deliver(&sink, batch(diffs));
        }
        Err(error) => match error.kind {
            notify::ErrorKind::MaxFilesWatch => tracing::warn!(
                %error,
                "the inotify watch limit is reached: changes in new directories are missed; \
                 raise fs.inotify.max_user_watches or poll"
            ),
            _ => tracing::warn!(%error, "file watcher error"),
        },
    };
    let config = notify_debouncer_mini::Config::default()
        .with_timeout(debounce)
        .with_batch_mode(true)
        .with_notify_config(notify::Config::default().with_follow_symlinks(false));
    // The debouncer makes the watcher itself, through `Watcher::new`, which
    // takes no state of ours: the set goes over on this thread.
    NEXT_WRITES.set(Some(writes));
    let debouncer = notify_debouncer_mini::new_debouncer_opt::<_, Relevant<RecommendedWatcher>>(
        config, on_events,
    );
    NEXT_WRITES.take();
    let mut debouncer = debouncer?;
    debouncer.watcher().watch(root, RecursiveMode::Recursive)?;
    Ok(debouncer)
}

fn start_poll(
    root: &Path,
    ignore: &[PathBuf],
    interval: Duration,
    debounce: Duration,
    sink: &Sink,
) -> Result<(WatchMode, Source), WatchError> {
    let interval = interval.max(MIN_POLL_INTERVAL);
    // Taken before returning, so a change right after `start` is a change.
    let tree = Tree::new(root.to_owned(), ignore.to_vec());
    let (stop, stopped) = mpsc::channel();
    let sink = Arc::clone(sink);
    std::thread::Builder::new()
        .name("wasmlet-watch".into())
        .spawn(move || poll(tree, interval, debounce, &stopped, &sink))
        .map_err(|source| WatchError::Spawn {
            path: root.to_owned(),
            source,
        })?;
    Ok((WatchMode::Poll(interval), Source::Poll(stop)))
}

/// A path waiting to be reported in polling mode.
struct Pending {
    /// When it last looked different; reported once it has looked the same
    /// for the debounce window.
    since: Instant,
    /// What it was before it first looked different: what is reported
    /// compares with this, so a file replaced and put back is no change.
    was: Option<Node>,
}

fn poll(
    mut tree: Tree,
    interval: Duration,
    debounce: Duration,
    stopped: &mpsc::Receiver<Infallible>,
    sink: &Sink,
) {
    let mut pending: BTreeMap<PathBuf, Pending> = BTreeMap::new();
    let mut next_scan = Instant::now() + interval;
    loop {
        let wake = pending
            .values()
            .map(|p| p.since + debounce)
            .min()
            .map_or(next_scan, |due| due.min(next_scan));
        match stopped.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
            Ok(never) => match never {},
        }
        let now = Instant::now();
        let mut diffs = Vec::new();
        if now >= next_scan {
            diffs = tree.refresh(&tree.root.clone());
            next_scan = now + interval;
        }
        // A due path is looked at once more before it is reported: a file
        // still being written has moved on since the scan and waits again,
        // without waiting for the next scan.
        let due: Vec<PathBuf> = pending
            .iter()
            .filter(|(_, p)| now >= p.since + debounce)
            .map(|(path, _)| path.clone())
            .collect();
        for path in due {
            diffs.extend(tree.refresh(&path));
        }
        for (path, was, _) in diffs {
            pending
                .entry(path)
                .and_modify(|p| p.since = now)
                .or_insert(Pending { since: now, was });
        }
        let mut ready = Vec::new();
        pending.retain(|path, p| {
            if now < p.since + debounce {
                return true;
            }
            ready.push((path.clone(), p.was, tree.nodes.get(path).copied()));
            false
        });
        if !deliver(sink, batch(ready)) {
            return;
        }
    }
}

/// Hands a non-empty batch to the caller; false once the watcher is dropped.
fn deliver(sink: &Sink, batch: Vec<Change>) -> bool {
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

/// Turns differences into a batch: one change per path, in
/// [`ChangeKind`] order, then by path.
fn batch(diffs: impl IntoIterator<Item = Diff>) -> Vec<Change> {
    let by_path: BTreeMap<PathBuf, ChangeKind> = diffs
        .into_iter()
        .filter_map(|(path, was, now)| Some((path, change_kind(was, now)?)))
        .collect();
    let mut changes: Vec<Change> = by_path
        .into_iter()
        .map(|(path, kind)| Change { path, kind })
        .collect();
    changes.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    changes
}

/// What a path going from `was` to `now` is reported as, if anything.
fn change_kind(was: Option<Node>, now: Option<Node>) -> Option<ChangeKind> {
    if was == now {
        return None;
    }
    Some(match (was, now) {
        (_, Some(Node::Handler(_))) => ChangeKind::Changed,
        (_, Some(Node::Config(_))) | (Some(Node::Config(_)), _) => ChangeKind::Config,
        (Some(Node::Handler(_)), _) | (Some(Node::Dir { .. }), None) => ChangeKind::Removed,
        // A directory appearing or being replaced: its entries speak for it.
        (_, Some(Node::Dir { .. })) | (None, None) => return None,
    })
}

/// What the filtering rules make of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKind {
    /// A `.wasm` or `.wat` file.
    Handler,
    /// A `wasmlet.toml`.
    Config,
    /// Anything else not ignored: a directory, or a file nobody asked about.
    Other,
}

/// The filtering rules, without touching the disk. `None` means ignored:
/// outside `root`, under an `ignore` path, under a dot-name (as the router
/// hides them, including non-UTF-8 names), or an editor's temporary file.
fn classify(root: &Path, path: &Path, ignore: &[PathBuf]) -> Option<PathKind> {
    let rel = path.strip_prefix(root).ok()?;
    if ignore.iter().any(|dir| path.starts_with(dir)) {
        return None;
    }
    let mut name = None;
    for component in rel.components() {
        let Component::Normal(part) = component else {
            return None;
        };
        let part = part.to_str().filter(|part| !part.starts_with('.'))?;
        name = Some(part);
    }
    let Some(name) = name else {
        return Some(PathKind::Other);
    };
    if is_editor_temp(name) {
        return None;
    }
    if name == CONFIG_FILE {
        return Some(PathKind::Config);
    }
    Some(match name.rsplit_once('.') {
        Some((_, ext)) if HANDLER_EXTENSIONS.contains(&ext) => PathKind::Handler,
        _ => PathKind::Other,
    })
}

/// Swap, backup and lock files of vim and emacs, vim's `4913` probe, and the
/// `*.tmp` many tools write before renaming into place. Dot-prefixed ones
/// (`.a.wat.swp`, `.#a.wat`) are already hidden.
fn is_editor_temp(name: &str) -> bool {
    name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.ends_with('~')
        || name == "4913"
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
}

/// Makes an ignored path comparable with event paths, which start with the
/// canonical root: the longest existing ancestor is canonicalized, so a cache
/// directory not created yet, or named through a symlink, still matches.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return missing
                .iter()
                .rev()
                .fold(real, |path, name| path.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// What the watcher last saw at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Handler(Version),
    Config(Version),
    /// The inode tells a directory swapped in under the same name.
    Dir {
        inode: u64,
    },
}

/// One version of a file. The ctime catches rewrites that keep the size and
/// restore the mtime (`cp -p`, `rsync -t`, `tar x`): nothing can set it. A
/// `chmod` changes it too and is reported; a needless `Changed` costs the
/// consumer a version check, a missed one leaves a stale handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    len: u64,
    modified: Option<SystemTime>,
    changed: (i64, i64),
    inode: u64,
}

impl Version {
    fn of(meta: &Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            changed: (meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }
}

/// A path whose node differs between two looks: (path, was, now).
type Diff = (PathBuf, Option<Node>, Option<Node>);

/// The watcher's picture of the tree.
struct Tree {
    root: PathBuf,
    ignore: Vec<PathBuf>,
    /// Ordered by path, so a directory's subtree is one contiguous range.
    nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    fn new(root: PathBuf, ignore: Vec<PathBuf>) -> Self {
        let mut tree = Self {
            root,
            ignore,
            nodes: BTreeMap::new(),
        };
        tree.nodes = tree.look(&tree.root);
        tree
    }

    /// Looks at `path` and everything under it again, replacing that part of
    /// the picture, and returns the differences.
    fn refresh(&mut self, path: &Path) -> Vec<Diff> {
        let fresh = self.look(path);
        let old_paths: Vec<PathBuf> = self
            .nodes
            .range::<Path, _>((Bound::Included(path), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect();
        let old: BTreeMap<PathBuf, Node> = old_paths
            .into_iter()
            .filter_map(|p| self.nodes.remove_entry(&p))
            .collect();
        let mut diffs = Vec::new();
        for (old_path, was) in &old {
            let now = fresh.get(old_path).copied();
            if Some(*was) != now {
                diffs.push((old_path.clone(), Some(*was), now));
            }
        }
        for (new_path, now) in &fresh {
            if !old.contains_key(new_path) {
                diffs.push((new_path.clone(), None, Some(*now)));
            }
        }
        self.nodes.extend(fresh);
        diffs
    }

    /// What is at `path` and under it now.
    fn look(&self, path: &Path) -> BTreeMap<PathBuf, Node> {
        let mut found = BTreeMap::new();
        if let Some(kind) = classify(&self.root, path, &self.ignore) {
            self.look_into(path, kind, &mut found);
        }
        found
    }

    fn look_into(&self, path: &Path, kind: PathKind, found: &mut BTreeMap<PathBuf, Node>) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if !meta.is_dir() {
            let node = match kind {
                PathKind::Handler => Node::Handler(Version::of(&meta)),
                PathKind::Config => Node::Config(Version::of(&meta)),
                PathKind::Other => return,
            };
            found.insert(path.to_owned(), node);
            return;
        }
        found.insert(path.to_owned(), Node::Dir { inode: meta.ino() });
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let child = entry.path();
            let Some(kind) = classify(&self.root, &child, &self.ignore) else {
                continue;
            };
            // Static files are most of a web root: `readdir` already says
            // they are not directories, so they cost no `stat` each.
            if kind == PathKind::Other && !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            self.look_into(&child, kind, found);
        }
    }
}

/// Sits between notify's native watcher and the debouncer. The inotify
/// backend of notify 8 also reports every open and read-only close, and
/// cannot be told not to (event masks arrive in notify 9). Passed on, they
/// would make every request that reads a file wake the watcher, and the
/// watcher's own directory walks open directories, so each walk would
/// schedule the next one forever. A lost-events signal (a full inotify queue)
/// names no path; it becomes an event on the root, so the whole tree is
/// looked at again.
struct Relevant<W> {
    inner: W,
    /// Set by the first `watch`, read by the event callback made earlier.
    root: Arc<OnceLock<PathBuf>>,
}

std::thread_local! {
    /// The [`OpenWrites`] the next [`Relevant`] made on this thread records
    /// into: `start_events` sets it around the debouncer's constructor.
    static NEXT_WRITES: std::cell::Cell<Option<Arc<OpenWrites>>> = const { std::cell::Cell::new(None) };
}

impl<W: notify::Watcher> notify::Watcher for Relevant<W> {
    fn new<F: EventHandler>(mut handler: F, config: notify::Config) -> notify::Result<Self> {
        let root = Arc::new(OnceLock::<PathBuf>::new());
        let rescan_root = Arc::clone(&root);
        let writes = NEXT_WRITES.take();
        let inner = W::new(
            move |event: notify::Result<Event>| match event {
                Ok(event) if event.need_rescan() => {
                    if let Some(writes) = &writes {
                        writes.forget_all();
                    }
                    if let Some(root) = rescan_root.get() {
                        handler.handle_event(Ok(Event::new(EventKind::Any).add_path(root.clone())));
                    }
                }
                Ok(event) => {
                    if let Some(writes) = &writes {
                        writes.follow(&event);
                    }
                    match event.kind {
                        EventKind::Access(access)
                            if access != AccessKind::Close(AccessMode::Write) => {}
                        _ => handler.handle_event(Ok(event)),
                    }
                }
                Err(error) => handler.handle_event(Err(error)),
            },
            config,
        )?;
        Ok(Self { inner, root })
    }

    fn watch(&mut self, path: &Path, recursive_mode: RecursiveMode) -> notify::Result<()> {
        let _ = self.root.set(path.to_owned());
        self.inner.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.inner.unwatch(path)
    }

    fn kind() -> notify::WatcherKind {
        W::kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::fs;
    use std::io::Write;

    use ChangeKind::{Changed, Config, Removed};

    #[test]
    fn the_rules_decide_which_paths_are_handlers_config_or_ignored() {
        let root = Path::new("/srv/www");
        let ignore = [
            PathBuf::from("/srv/www/.cache"),
            PathBuf::from("/srv/www/cache"),
            PathBuf::from("/var/cache/wasmlet"),
        ];
        let table = [
            ("/srv/www", Some(PathKind::Other)),
            ("/srv/www/a.wat", Some(PathKind::Handler)),
            ("/srv/www/a.wasm", Some(PathKind::Handler)),
            ("/srv/www/api/v1/[id].wasm", Some(PathKind::Handler)),
            ("/srv/www/x.tar.wat", Some(PathKind::Handler)),
            ("/srv/www/wasmlet.toml", Some(PathKind::Config)),
            ("/srv/www/api/wasmlet.toml", Some(PathKind::Config)),
            ("/srv/www/api", Some(PathKind::Other)),
            ("/srv/www/style.css", Some(PathKind::Other)),
            ("/srv/www/a.WAT", Some(PathKind::Other)),
            ("/srv/www/a.wat.bak", Some(PathKind::Other)),
            ("/srv/www/tmp/a.wat", Some(PathKind::Handler)),
            ("/srv/www/a.tmp.d/a.wat", Some(PathKind::Handler)),
            // Outside the root, or under an ignored path.
            ("/srv/a.wat", None),
            ("/srv/www2/a.wat", None),
            ("/srv/www/cache", None),
            ("/srv/www/cache/ab/cd.wasm", None),
            ("/var/cache/wasmlet/a.wat", None),
            ("/srv/www/cachet/a.wat", Some(PathKind::Handler)),
            // Dot-names anywhere on the way.
            ("/srv/www/.a.wat", None),
            ("/srv/www/.git", None),
            ("/srv/www/.git/hooks/a.wasm", None),
            ("/srv/www/api/.well-known/x.wat", None),
            ("/srv/www/.#a.wat", None),
            ("/srv/www/.a.wat.swp", None),
            ("/srv/www/.wasmlet.toml", None),
            // Editor temporary files.
            ("/srv/www/a.wat.swp", None),
            ("/srv/www/a.wat.swx", None),
            ("/srv/www/a.wat~", None),
            ("/srv/www/wasmlet.toml~", None),
            ("/srv/www/#a.wat#", None),
            ("/srv/www/api/4913", None),
            ("/srv/www/a.wat.tmp", None),
            ("/srv/www/#", Some(PathKind::Other)),
            ("/srv/www/49134", Some(PathKind::Other)),
        ];
        for (path, want) in table {
            assert_eq!(classify(root, Path::new(path), &ignore), want, "{path}");
        }
        // The router hides names that are not UTF-8; so does the watcher.
        let not_utf8 =
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/srv/www/\xff.wat");
        assert_eq!(classify(root, Path::new(not_utf8), &ignore), None);
    }

    #[test]
    fn how_a_path_changed_decides_what_is_reported() {
        let v = |len| Version {
            len,
            modified: None,
            changed: (0, 0),
            inode: 1,
        };
        let (h1, h2) = (Node::Handler(v(1)), Node::Handler(v(2)));
        let (c1, c2) = (Node::Config(v(1)), Node::Config(v(2)));
        let (d1, d2) = (Node::Dir { inode: 1 }, Node::Dir { inode: 2 });
        let table = [
            (None, Some(h1), Some(Changed)),
            (Some(h1), Some(h2), Some(Changed)),
            (Some(h1), Some(h1), None),
            (Some(h1), None, Some(Removed)),
            (Some(h1), Some(d1), Some(Removed)),
            (Some(d1), Some(h1), Some(Changed)),
            (None, Some(c1), Some(Config)),
            (Some(c1), Some(c2), Some(Config)),
            (Some(c1), None, Some(Config)),
            (Some(d1), None, Some(Removed)),
            (None, Some(d1), None),
            (Some(d1), Some(d2), None),
            (None, None, None),
        ];
        for (was, now, want) in table {
            assert_eq!(change_kind(was, now), want, "{was:?} -> {now:?}");
        }
    }

    #[test]
    fn a_batch_lists_each_path_once_removals_first() {
        let h = Node::Handler(Version {
            len: 1,
            modified: None,
            changed: (0, 0),
            inode: 1,
        });
        let c = Node::Config(Version {
            len: 1,
            modified: None,
            changed: (0, 0),
            inode: 2,
        });
        let diffs = vec![
            (PathBuf::from("/w/a.wat"), None, Some(h)),
            (PathBuf::from("/w/z"), Some(Node::Dir { inode: 3 }), None),
            (PathBuf::from("/w/wasmlet.toml"), None, Some(c)),
            (PathBuf::from("/w/b.wat"), Some(h), None),
            (PathBuf::from("/w/a.wat"), None, Some(h)),
        ];
        let got: Vec<(ChangeKind, PathBuf)> =
            batch(diffs).into_iter().map(|c| (c.kind, c.path)).collect();
        assert_eq!(
            got,
            [
                (Removed, PathBuf::from("/w/b.wat")),
                (Removed, PathBuf::from("/w/z")),
                (Config, PathBuf::from("/w/wasmlet.toml")),
                (Changed, PathBuf::from("/w/a.wat")),
            ]
        );
    }

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

    #[test]
    fn reading_files_and_listing_directories_wake_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(root.join("api")).unwrap();
        fs::write(root.join("api/a.wat"), "(module)").unwrap();
        let (tx, events) = mpsc::channel();
        let mut watcher = <Relevant<RecommendedWatcher> as notify::Watcher>::new(
            move |event: notify::Result<Event>| {
                let _ = tx.send(event.unwrap());
            },
            notify::Config::default(),
        )
        .unwrap();
        notify::Watcher::watch(&mut watcher, &root, RecursiveMode::Recursive).unwrap();

        // Without the filter, the watcher's own directory walks would wake
        // it again, forever.
        fs::read(root.join("api/a.wat")).unwrap();
        fs::read_dir(root.join("api")).unwrap().for_each(drop);
        fs::read_dir(&root).unwrap().for_each(drop);
        let marker = root.join("marker");
        fs::write(&marker, "").unwrap();
        // inotify keeps order: the first event is the marker's.
        let first = events.recv_timeout(PATIENCE).unwrap();
        assert_eq!(first.paths, [marker], "{first:?}");
    }

    /// Stands in for notify's native watcher, to feed events by hand.
    struct Fake {
        handler: Box<dyn EventHandler>,
    }

    impl notify::Watcher for Fake {
        fn new<F: EventHandler>(handler: F, _: notify::Config) -> notify::Result<Self> {
            Ok(Self {
                handler: Box::new(handler),
            })
        }
        fn watch(&mut self, _: &Path, _: RecursiveMode) -> notify::Result<()> {
            Ok(())
        }
        fn unwatch(&mut self, _: &Path) -> notify::Result<()> {
            Ok(())
        }
        fn kind() -> notify::WatcherKind {
            notify::WatcherKind::NullWatcher
        }
    }

    #[test]
    fn lost_events_make_the_whole_root_looked_at_again() {
        use notify::event::{CreateKind, Flag};
        let (tx, events) = mpsc::channel();
        let mut watcher = <Relevant<Fake> as notify::Watcher>::new(
            move |event: notify::Result<Event>| {
                let _ = tx.send(event.unwrap());
            },
            notify::Config::default(),
        )
        .unwrap();
        let overflow = || Event::new(EventKind::Other).set_flag(Flag::Rescan);
        let root = Path::new("/srv/www");
        // Before `watch` there is no root to look at.
        watcher.inner.handler.handle_event(Ok(overflow()));
        notify::Watcher::watch(&mut watcher, root, RecursiveMode::Recursive).unwrap();
        watcher.inner.handler.handle_event(Ok(overflow()));
        let created = Event::new(EventKind::Create(CreateKind::File)).add_path(root.join("a.wat"));
        watcher.inner.handler.handle_event(Ok(created.clone()));
        drop(watcher);
        let got: Vec<Event> = events.iter().collect();
        assert_eq!(
            got,
            [
                Event::new(EventKind::Any).add_path(root.to_owned()),
                created
            ]
        );
    }

    const POLL: Duration = Duration::from_millis(50);

    /// How long a test waits for a report before it fails; far above the
    /// debounce window, for a loaded machine.
    const PATIENCE: Duration = Duration::from_secs(10);

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
        /// until the marker is reported: a path is reported once quiet for
        /// the debounce window and the marker is written last, so by then
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
}
