//! Native notifications (inotify, FSEvents, …) through `notify`, debounced.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventHandler, EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, DebouncedEventKind, Debouncer};

use super::tree::{Tree, batch};
use super::{OpenWrites, Sink, deliver};
use crate::webroot::Epoch;

/// The debouncer over the filtered native watcher; stops its threads when
/// dropped.
pub(super) type Native = Debouncer<Relevant<RecommendedWatcher>>;

pub(super) fn start(
    root: &Path,
    ignore: &[PathBuf],
    debounce: Duration,
    followers: Followers,
    sink: &Sink,
) -> notify::Result<Debouncer<Relevant<RecommendedWatcher>>> {
    let epoch = followers.1.clone();
    // The picture is taken before the watch exists: a file created in between
    // is then reported (its event finds it new) instead of silently absorbed.
    let mut tree = Tree::new(root.to_owned(), ignore.to_vec());
    let sink = Arc::clone(sink);
    let batch_epoch = epoch.clone();
    let on_events = move |result: DebounceEventResult| match result {
        Ok(events) => {
            // Again, now that a new directory in the batch is surely watched
            // too: what was learnt before its watch began may miss a file
            // made in it meanwhile, which no event reports.
            batch_epoch.changed();
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
    NEXT_FOLLOWERS.set(Some(followers));
    let debouncer = notify_debouncer_mini::new_debouncer_opt::<_, Relevant<RecommendedWatcher>>(
        config, on_events,
    );
    NEXT_FOLLOWERS.take();
    let mut debouncer = debouncer?;
    debouncer.watcher().watch(root, RecursiveMode::Recursive)?;
    // Every directory is watched now: each change from here on is an event.
    epoch.vouch(root, ignore);
    Ok(debouncer)
}

/// Sits between notify's native watcher and the debouncer. The inotify
/// backend of notify 8 also reports every open and read-only close, and
/// cannot be told not to (event masks arrive in notify 9). Passed on, they
/// would make every request that reads a file wake the watcher, and the
/// watcher's own directory walks open directories, so each walk would
/// schedule the next one forever. A lost-events signal (a full inotify queue)
/// names no path; it becomes an event on the root, so the whole tree is
/// looked at again.
///
/// It also sees every event first, before the debounce window: each one that
/// is not a read ends the web root's [`Epoch`] at once, so the next request
/// trusts nothing it learnt before; an error that may leave a directory
/// unwatched withdraws the epoch until the watcher starts again. And it
/// follows [`OpenWrites`].
pub(super) struct Relevant<W> {
    inner: W,
    /// Set by the first `watch`, read by the event callback made earlier.
    root: Arc<OnceLock<PathBuf>>,
}

/// What follows the raw events: the handler files being written, and the
/// epoch every change ends.
pub(super) type Followers = (Arc<OpenWrites>, Arc<Epoch>);

std::thread_local! {
    /// What the next [`Relevant`] made on this thread records into: `start`
    /// sets it around the debouncer's constructor.
    static NEXT_FOLLOWERS: std::cell::Cell<Option<Followers>> = const { std::cell::Cell::new(None) };
}

impl<W: notify::Watcher> notify::Watcher for Relevant<W> {
    fn new<F: EventHandler>(mut handler: F, config: notify::Config) -> notify::Result<Self> {
        let root = Arc::new(OnceLock::<PathBuf>::new());
        let rescan_root = Arc::clone(&root);
        let followers = NEXT_FOLLOWERS.take();
        let inner = W::new(
            move |event: notify::Result<Event>| match event {
                Ok(event) if event.need_rescan() => {
                    if let Some((writes, epoch)) = &followers {
                        epoch.changed();
                        writes.forget_all();
                    }
                    if let Some(root) = rescan_root.get() {
                        handler.handle_event(Ok(Event::new(EventKind::Any).add_path(root.clone())));
                    }
                }
                Ok(event) => {
                    let relevant = !matches!(
                        event.kind,
                        EventKind::Access(access) if access != AccessKind::Close(AccessMode::Write)
                    );
                    if let Some((writes, epoch)) = &followers {
                        // First: a request after this trusts nothing older.
                        if relevant {
                            epoch.changed();
                        }
                        writes.follow(&event);
                    }
                    if relevant {
                        handler.handle_event(Ok(event));
                    }
                }
                Err(error) => {
                    if let Some((_, epoch)) = &followers
                        && !matches!(
                            error.kind,
                            notify::ErrorKind::PathNotFound | notify::ErrorKind::WatchNotFound
                        )
                    {
                        // A directory may be unwatched now: nothing is
                        // vouched for until the watcher starts again.
                        epoch.withdraw();
                    }
                    handler.handle_event(Err(error));
                }
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
}
