//! The disk cache over real restarts: a size cap with least-recently-used
//! eviction, and a handler's old versions cleaned up as it is edited.

use std::path::Path;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use wasmlet::loader::disk_cache::{DiskCache, Entry};
use wasmlet_tests::{TestServer, WebRoot, eventually, replace_atomically, says, test_config};

const DEADLINE: Duration = Duration::from_secs(20);

/// The cache's entries, least recently used first.
fn entries(dir: &Path) -> Vec<Entry> {
    DiskCache::existing(dir, u64::MAX).unwrap().entries()
}

/// The entry compiled from the handler file `name` in `root`.
fn entry_of<'a>(entries: &'a [Entry], root: &Path, name: &str) -> Option<&'a Entry> {
    let source = root.canonicalize().unwrap().join(name);
    entries.iter().find(|e| e.source() == Some(&*source))
}

/// Dates the entry's last use `seconds` back.
fn used_ago(entry: &Entry, seconds: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(&entry.path)
        .unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(seconds))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_cap_evicts_the_least_recently_used_entry_and_a_restart_still_serves_everything() {
    // Same-length answers: the three compiled entries are the same size.
    let root = WebRoot::new()
        .file("a.wat", &says("a"))
        .file("b.wat", &says("b"))
        .file("c.wat", &says("c"));
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("wasmlet");
    let mut config = test_config(root.path());
    config.cache_dir = Some(dir.clone());

    let first = TestServer::start_config(config.clone()).await;
    assert_eq!(first.get("/a").await.text(), "a");
    assert_eq!(first.get("/b").await.text(), "b");
    drop(first);
    let written = entries(&dir);
    assert_eq!(written.len(), 2);
    // `a` was written first; `b` since.
    used_ago(entry_of(&written, root.path(), "a.wat").unwrap(), 120);
    used_ago(entry_of(&written, root.path(), "b.wat").unwrap(), 60);
    let one = written.iter().map(|e| e.size).max().unwrap();

    // Room for two entries, not three.
    config.cache_max_size = one * 5 / 2;
    let second = TestServer::start_config(config.clone()).await;
    // A hit: `a` becomes the most recently used.
    assert_eq!(second.get("/a").await.text(), "a");
    assert_eq!(second.stats.compiles(), 0);
    // A compile whose entry does not fit with both others.
    assert_eq!(second.get("/c").await.text(), "c");
    assert_eq!(second.stats.compiles(), 1);
    drop(second);
    let left = entries(&dir);
    assert!(
        entry_of(&left, root.path(), "a.wat").is_some(),
        "the entry just used was evicted"
    );
    assert!(
        entry_of(&left, root.path(), "b.wat").is_none(),
        "the least recently used entry stayed"
    );
    assert!(
        entry_of(&left, root.path(), "c.wat").is_some(),
        "the new entry was evicted"
    );
    let total: u64 = left.iter().map(|e| e.size).sum();
    assert!(
        total <= config.cache_max_size,
        "{total} bytes over the {}-byte cap",
        config.cache_max_size
    );

    let third = TestServer::start_config(config.clone()).await;
    for name in ["a", "b", "c"] {
        let reply = third.get(&format!("/{name}")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), name);
    }
    // `a` is a hit; `b` compiles again, and its entry pushes out `c`, now
    // the least recently used, which then compiles too.
    assert_eq!(third.stats.compiles(), 2);
    drop(third);
    let total: u64 = entries(&dir).iter().map(|e| e.size).sum();
    assert!(total <= config.cache_max_size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_edits_of_a_handler_leave_one_entry_in_the_disk_cache() {
    let root = WebRoot::new().file("h.wat", &says("v0"));
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("wasmlet");
    let mut config = test_config(root.path());
    config.cache_dir = Some(dir.clone());
    let path = root.path().join("h.wat");
    let server = TestServer::start_config(config).await;
    assert_eq!(server.get("/h").await.text(), "v0");
    for version in 1..=5 {
        let body = format!("v{version}");
        replace_atomically(&path, says(&body));
        let mut served = String::new();
        for _ in 0..200 {
            served = server.get("/h").await.text();
            if served == body {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(served, body, "version {version} never served");
    }
    assert!(
        eventually(DEADLINE, || entries(&dir).len() == 1).await,
        "{} entries",
        entries(&dir).len()
    );
    assert!(entry_of(&entries(&dir), root.path(), "h.wat").is_some());
}
