//! Polling: the tree rescanned every interval, for file systems that
//! deliver no events (network mounts, some container bind mounts).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::tree::{Node, Tree, batch};
use super::{MIN_POLL_INTERVAL, Sink, Source, WatchError, WatchMode, deliver};

/// Dropped, it ends the polling thread (its channel closes).
pub(super) type Stop = mpsc::Sender<Infallible>;

pub(super) fn start(
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
