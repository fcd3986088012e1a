//! Native notifications (inotify, FSEvents, …) through `notify`, debounced
//! by `notify-debouncer-full`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{Event, EventHandler, EventKindMask, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};

use super::tree::{Tree, batch};
use super::{OpenWrites, Sink, deliver};
use crate::webroot::Epoch;

/// The debouncer over the followed native watcher; stops its thread when
/// dropped.
pub(super) type Native = Debouncer<Followed<RecommendedWatcher>, NoCache>;

/// The raw events the native watcher asks the kernel for: everything that
/// changes the tree, and inotify's close-after-write, which [`OpenWrites`]
/// needs. Opens and read-only closes are left out: every request that reads
/// a file would wake the watcher, and so would its own directory walks, each
/// walk scheduling the next one forever.
const EVENT_KINDS: EventKindMask = EventKindMask::CORE.union(EventKindMask::ACCESS_CLOSE);

pub(super) fn start(
    root: &Path,
    ignore: &[PathBuf],
    debounce: Duration,
    followers: Followers,
    sink: &Sink,
) -> notify::Result<Native> {
    start_on(root, ignore, debounce, followers, sink)
}

/// [`start`] over any watcher `W`, which tests replace.
fn start_on<W: notify::Watcher>(
    root: &Path,
    ignore: &[PathBuf],
    debounce: Duration,
    followers: Followers,
    sink: &Sink,
) -> notify::Result<Debouncer<Followed<W>, NoCache>> {
    let epoch = followers.1.clone();
    // The picture is taken before the watch exists: a file created in between
    // is then reported (its event finds it new) instead of silently absorbed.
    let mut tree = Tree::new(root.to_owned(), ignore.to_vec());
    let sink = Arc::clone(sink);
    let on_events = move |result: DebounceEventResult| match result {
        Ok(events) => {
            // Lost events (a full inotify queue) name no path: the whole
            // tree is looked at again. Sorted, a directory is looked at
            // before its entries.
            let paths: BTreeSet<PathBuf> = events
                .into_iter()
                .flat_map(|event| match event.need_rescan() {
                    true => vec![tree.root.clone()],
                    false => event.event.paths,
                })
                .collect();
            let diffs = paths.iter().flat_map(|path| tree.refresh(path));
            deliver(&sink, batch(diffs));
        }
        Err(errors) => errors.iter().for_each(|error| match error.kind {
            notify::ErrorKind::MaxFilesWatch => tracing::warn!(
                %error,
                "the inotify watch limit is reached: changes in new directories are missed; \
                 raise fs.inotify.max_user_watches or poll"
            ),
            _ => tracing::warn!(%error, "file watcher error"),
        }),
    };
    let notify_config = notify::Config::default()
        .with_follow_symlinks(false)
        .with_event_kinds(EVENT_KINDS);
    let config = notify_debouncer_full::Config::default()
        .with_timeout(debounce)
        .with_notify_config(notify_config);
    // The debouncer makes the watcher itself, through `Watcher::new`, which
    // takes no state of ours: the followers go over on this thread.
    NEXT_FOLLOWERS.set(Some(followers));
    // No file-id cache: it only stitches renames together, and the tree diff
    // looks at both names anyway (on macOS it would walk the whole root).
    let debouncer = new_debouncer_opt::<_, Followed<W>, _>(config, on_events, NoCache::new());
    NEXT_FOLLOWERS.take();
    let mut debouncer = debouncer?;
    debouncer.watch(root, RecursiveMode::Recursive)?;
    // Every directory is watched now: each change from here on is an event.
    epoch.vouch(root, ignore);
    Ok(debouncer)
}

/// Sits between notify's native watcher and the debouncer, to see every raw
/// event first, before the debounce window: it follows [`OpenWrites`], and
/// an error that may leave a directory unwatched withdraws the web root's
/// [`Epoch`] until the watcher starts again. Changes end the epoch through
/// its tripwire, which each request reads (see [`Epoch::look`]).
pub(super) struct Followed<W> {
    inner: W,
}

/// What follows the raw events: the handler files being written, and the
/// epoch an error withdraws.
pub(super) type Followers = (Arc<OpenWrites>, Arc<Epoch>);

std::thread_local! {
    /// What the next [`Followed`] made on this thread records into: `start`
    /// sets it around the debouncer's constructor.
    static NEXT_FOLLOWERS: std::cell::Cell<Option<Followers>> = const { std::cell::Cell::new(None) };
}

impl<W: notify::Watcher> notify::Watcher for Followed<W> {
    fn new<F: EventHandler>(mut handler: F, config: notify::Config) -> notify::Result<Self> {
        let (writes, epoch) = NEXT_FOLLOWERS.take().unwrap_or_default();
        let inner = W::new(
            move |event: notify::Result<Event>| {
                match &event {
                    Ok(event) => {
                        match event.need_rescan() {
                            // Whatever was open may have been closed meanwhile.
                            true => writes.forget_all(),
                            false => writes.follow(event),
                        }
                    }
                    Err(error)
                        if !matches!(
                            error.kind,
                            notify::ErrorKind::PathNotFound | notify::ErrorKind::WatchNotFound
                        ) =>
                    {
                        // A directory may be unwatched now: nothing is
                        // vouched for until the watcher starts again.
                        epoch.withdraw();
                    }
                    Err(_) => {}
                }
                handler.handle_event(event);
            },
            config,
        )?;
        Ok(Self { inner })
    }

    fn watch(&mut self, path: &Path, recursive_mode: RecursiveMode) -> notify::Result<()> {
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
    use std::fs;
    use std::sync::mpsc;

    use crate::watcher::tests::PATIENCE;

    #[test]
    fn reading_files_and_listing_directories_wake_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(root.join("api")).unwrap();
        fs::write(root.join("api/a.wat"), "(module)").unwrap();
        let (tx, events) = mpsc::channel();
        let mut watcher = <Followed<RecommendedWatcher> as notify::Watcher>::new(
            move |event: notify::Result<Event>| {
                let _ = tx.send(event.unwrap());
            },
            notify::Config::default().with_event_kinds(EVENT_KINDS),
        )
        .unwrap();
        notify::Watcher::watch(&mut watcher, &root, RecursiveMode::Recursive).unwrap();

        // Without the mask, the watcher's own directory walks would wake it
        // again, forever.
        fs::read(root.join("api/a.wat")).unwrap();
        fs::read_dir(root.join("api")).unwrap().for_each(drop);
        fs::read_dir(&root).unwrap().for_each(drop);
        let marker = root.join("marker");
        fs::write(&marker, "").unwrap();
        // inotify keeps order: the first event is the marker's.
        let first = events.recv_timeout(PATIENCE).unwrap();
        assert_eq!(first.paths, [marker], "{first:?}");
    }

    /// Stands in for notify's native watcher, to feed events by hand: its
    /// handler goes to the test through a channel.
    struct Fake;

    std::thread_local! {
        static FAKE_HANDLER: std::cell::RefCell<Option<Box<dyn EventHandler>>> =
            const { std::cell::RefCell::new(None) };
    }

    impl notify::Watcher for Fake {
        fn new<F: EventHandler>(handler: F, _: notify::Config) -> notify::Result<Self> {
            FAKE_HANDLER.set(Some(Box::new(handler)));
            Ok(Self)
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
        use notify::event::{EventKind, Flag};
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let (tx, changes) = mpsc::channel();
        let sink: Sink = Arc::new(std::sync::Mutex::new(Some(Box::new(move |batch| {
            let _ = tx.send(batch);
        }))));
        let followers = Followers::default();
        let _debouncer =
            start_on::<Fake>(&root, &[], Duration::from_millis(50), followers, &sink).unwrap();
        let mut handler = FAKE_HANDLER.take().unwrap();
        // Made while events were lost, the file has no event of its own: it
        // is found by looking at the whole root.
        fs::write(root.join("api.wat"), "(module)").unwrap();
        handler.handle_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        let got = changes.recv_timeout(PATIENCE).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].path, root.join("api.wat"));
    }
}
