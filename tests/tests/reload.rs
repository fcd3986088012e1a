//! The file on disk is the deployment: replace, rename over, delete or break
//! a handler and the running server follows, without a restart and without a
//! failed request. A restart with a warm disk cache compiles nothing.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use wasmlet_tests::{
    Load, TestServer, WebRoot, eventually, log_contains, replace_atomically, says, test_config,
};

const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `GET path` until the body is `want` or the deadline passes.
async fn serves(server: &TestServer, path: &str, want: &str) -> bool {
    for _ in 0..500 {
        let reply = server.get(path).await;
        if reply.status == StatusCode::OK && reply.text() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwriting_a_handler_in_place_serves_the_new_version() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let file = root.path().join("h.wat");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/h").await.text(), "one");
    std::fs::write(&file, says("two, longer")).unwrap();
    assert!(serves(&server, "/h", "two, longer").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temp_file_renamed_over_the_handler_serves_the_new_version() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let file = root.path().join("h.wat");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/h").await.text(), "one");
    replace_atomically(&file, says("two"));
    assert!(serves(&server, "/h", "two").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_handler_is_not_found_and_a_renamed_one_moves() {
    let root = WebRoot::new()
        .file("gone.wat", &says("gone"))
        .file("old.wat", &says("moved"));
    let dir = root.path().to_path_buf();
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/gone").await.text(), "gone");
    assert_eq!(server.get("/old").await.text(), "moved");
    std::fs::remove_file(dir.join("gone.wat")).unwrap();
    std::fs::rename(dir.join("old.wat"), dir.join("new.wat")).unwrap();
    assert_eq!(server.get("/gone").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/old").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/new").await.text(), "moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_handlers_added_and_removed_as_a_whole() {
    let root = WebRoot::new().file("index.html", "home");
    let dir = root.path().to_path_buf();
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/api/a").await.status, StatusCode::NOT_FOUND);
    // Built elsewhere, then moved in with one rename, as a deploy would.
    let staging = tempfile::tempdir_in(&dir).unwrap();
    let api = staging.path().join("api");
    std::fs::create_dir(&api).unwrap();
    std::fs::write(api.join("a.wat"), says("a")).unwrap();
    std::fs::write(api.join("[id].wat"), says("some id")).unwrap();
    std::fs::rename(&api, dir.join("api")).unwrap();
    assert!(serves(&server, "/api/a", "a").await);
    assert!(serves(&server, "/api/42", "some id").await);
    std::fs::remove_dir_all(dir.join("api")).unwrap();
    assert_eq!(server.get("/api/a").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/api/42").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_file_never_replaces_the_working_version() {
    let root = WebRoot::new().file("h.wat", &says("old"));
    let file = root.path().join("h.wat");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/h").await.text(), "old");
    let new = says("new");
    let (first, second) = new.split_at(new.len() / 2);
    std::fs::write(&file, first).unwrap();
    // The truncated text does not parse: the old version keeps answering.
    for _ in 0..5 {
        let reply = server.get("/h").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.text(), "old");
    }
    use std::io::Write;
    let mut handle = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    handle.write_all(second.as_bytes()).unwrap();
    drop(handle);
    assert!(serves(&server, "/h", "new").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_new_version_keeps_the_old_one_serving_and_shows_on_the_status_page() {
    let root = WebRoot::new().file("h.wat", &says("working"));
    let file = root.path().join("h.wat");
    let server = TestServer::start_with(root, |c| {
        c.status_path = Some("/_wasmlet/status".into());
    })
    .await;
    assert_eq!(server.get("/h").await.text(), "working");
    std::fs::write(
        &file,
        "(module\n  (func (export \"handle\")\n    i32.const oops))\n",
    )
    .unwrap();
    for _ in 0..5 {
        let reply = server.get("/h").await;
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (StatusCode::OK, "working")
        );
    }
    assert!(
        log_contains("h.wat:3:15", DEADLINE).await,
        "the log names file:line:col"
    );
    let status = server.get("/_wasmlet/status").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let page = status.text();
    assert!(page.contains("\"state\": \"stale\""), "{page}");
    assert!(page.contains("h.wat:3:15"), "{page}");
    // Fixing the file brings the new version in.
    std::fs::write(&file, says("fixed")).unwrap();
    assert!(serves(&server, "/h", "fixed").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_lists_handlers_and_is_off_by_default() {
    let root = WebRoot::new()
        .file("a.wat", &says("a"))
        .file("bad.wat", "(module");
    let server = TestServer::start(root).await;
    server.get("/a").await;
    assert_eq!(
        server.get("/_wasmlet/status").await.status,
        StatusCode::NOT_FOUND
    );

    let root = WebRoot::new()
        .file("a.wat", &says("a"))
        .file("bad.wat", "(module");
    let server = TestServer::start_with(root, |c| c.status_path = Some("/_status".into())).await;
    server.get("/a").await;
    server.get("/bad").await;
    let page = server.get("/_status").await.text();
    assert!(page.contains("\"file\": \"a.wat\""), "{page}");
    assert!(page.contains("\"state\": \"ready\""), "{page}");
    assert!(page.contains("\"source\": \"compiler\""), "{page}");
    assert!(page.contains("\"state\": \"failed\""), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_replacements_under_load_fail_no_request() {
    let root = WebRoot::new().file("h.wat", &says("version 0"));
    let file = root.path().join("h.wat");
    let server = Arc::new(TestServer::start(root).await);
    assert_eq!(server.get("/h").await.text(), "version 0");

    // Any version is fine; anything else is a failure.
    let load = Load::start(&server, 4, "/h", |reply| {
        reply.status == StatusCode::OK
            && reply
                .text()
                .strip_prefix("version ")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 100)
    });
    for version in 1..=100 {
        replace_atomically(&file, says(&format!("version {version}")));
        // Each version is live before the next: a request after the rename
        // sees it.
        assert!(serves(&server, "/h", &format!("version {version}")).await);
    }
    let served = load.served();
    let failures = load.stop().await;
    assert!(
        failures.is_empty(),
        "failed or foreign responses: {failures:?}"
    );
    assert!(served > 100, "the load never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_warm_disk_cache_serves_without_compiling() {
    let cache = tempfile::tempdir().unwrap();
    let root = WebRoot::new().file("h.wat", &says("cached"));
    let mut config = test_config(root.path());
    config.cache_dir = Some(cache.path().join("wasmlet"));

    let first = TestServer::start_config(config.clone()).await;
    assert_eq!(first.get("/h").await.text(), "cached");
    assert_eq!(first.stats.compiles(), 1);
    drop(first);

    let second = TestServer::start_config(config).await;
    assert_eq!(second.get("/h").await.text(), "cached");
    assert_eq!(second.stats.compiles(), 0, "the restart compiled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cache_entry_is_rebuilt_and_the_handler_still_serves() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("wasmlet");
    let root = WebRoot::new().file("h.wat", &says("fine"));
    let mut config = test_config(root.path());
    config.cache_dir = Some(cache_dir.clone());

    let first = TestServer::start_config(config.clone()).await;
    assert_eq!(first.get("/h").await.text(), "fine");
    drop(first);

    // Flip a byte in the middle of every entry, and truncate a copy.
    let mut entries = 0;
    for entry in std::fs::read_dir(&cache_dir).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        entries += 1;
    }
    assert!(entries > 0, "the first server wrote no cache entry");

    let second = TestServer::start_config(config.clone()).await;
    assert_eq!(second.get("/h").await.text(), "fine");
    assert_eq!(
        second.stats.compiles(),
        1,
        "the corrupt entry was not rebuilt"
    );
    drop(second);

    for entry in std::fs::read_dir(&cache_dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    }
    let third = TestServer::start_config(config).await;
    assert_eq!(third.get("/h").await.text(), "fine");
    assert_eq!(
        third.stats.compiles(),
        1,
        "the truncated entry was not rebuilt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompile_loads_every_handler_before_the_first_request() {
    let root = WebRoot::new()
        .file("a.wat", &says("a"))
        .file("sub/b.wat", &says("b"))
        .file("users/[id].wat", &says("user"))
        .file(".hidden/x.wat", &says("x"));
    let server = TestServer::start_with(root, |c| c.precompile = true).await;
    // `run` precompiles before it accepts, so the first answer proves it.
    assert_eq!(server.get("/a").await.text(), "a");
    assert_eq!(server.stats.compiles(), 3);
    assert_eq!(server.get("/users/7").await.text(), "user");
    assert_eq!(server.get("/sub/b").await.text(), "b");
    assert_eq!(server.stats.compiles(), 3, "a request compiled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompile_with_a_warm_cache_accepts_before_it_loads_the_cached_handlers() {
    // `init` spins, so each load's trial of it lasts the 2 s request
    // timeout (and fails): a precompile that waited for the cached loads
    // could not answer before it logged their outcome.
    let spins = r#"(module (func (export "init") (loop (br 0))) (func (export "handle")))"#;
    let cache = tempfile::tempdir().unwrap();
    let root = WebRoot::new()
        .file("a.wat", &says("a"))
        .file("spins.wat", spins);
    let mut config = test_config(root.path());
    config.cache_dir = Some(cache.path().join("wasmlet"));
    config.precompile = true;
    config.request_timeout = Duration::from_secs(2);

    // An empty cache: both compile before the first answer.
    let first = TestServer::start_config(config.clone()).await;
    assert_eq!(first.get("/a").await.text(), "a");
    assert_eq!(first.stats.compiles(), 2);
    assert!(
        log_contains(
            "precompiled the web root compiled=1 cached=0 failed=1",
            DEADLINE
        )
        .await
    );
    drop(first);

    // A warm cache, and one new handler, which still compiles before the
    // first answer.
    std::fs::write(root.path().join("b.wat"), says("b")).unwrap();
    let second = TestServer::start_config(config).await;
    assert_eq!(second.get("/a").await.text(), "a");
    assert_eq!(second.stats.compiles(), 1, "b.wat compiled after accepting");
    let done = "precompiled the web root compiled=1 cached=1 failed=1";
    assert!(
        !wasmlet_tests::logs().contains(done),
        "the cached handlers were loaded before the first answer"
    );
    assert!(log_contains(done, DEADLINE).await);
    assert_eq!(second.get("/b").await.text(), "b");
    assert_eq!(second.stats.compiles(), 1, "a request compiled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_compiles_a_changed_handler_before_its_next_request() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let file = root.path().join("h.wat");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/h").await.text(), "one");
    assert_eq!(server.stats.compiles(), 1);
    replace_atomically(&file, says("two"));
    assert!(
        eventually(DEADLINE, || server.stats.compiles() == 2).await,
        "no compile followed the change"
    );
    let before = server.stats.compiles();
    assert_eq!(server.get("/h").await.text(), "two");
    assert_eq!(
        server.stats.compiles(),
        before,
        "the request compiled again"
    );
}

/// A server polling its web root every 50 ms.
async fn polling(root: WebRoot) -> TestServer {
    TestServer::start_with(root, |c| {
        c.watch = Some(wasmlet::watcher::WatchMode::Poll(Duration::from_millis(50)));
    })
    .await
}

/// The poller's compile of a second handler version, before any request
/// asks for it: then `path` serves `want` without compiling again.
async fn compiled_by_the_poller(server: &TestServer, path: &str, want: &str) {
    assert!(
        eventually(DEADLINE, || server.stats.compiles() == 2).await,
        "the poller did not pick up {path}"
    );
    assert_eq!(server.get(path).await.text(), want);
    assert_eq!(server.stats.compiles(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_mode_notices_changes_too() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let dir = root.path().to_path_buf();
    let server = polling(root).await;
    assert_eq!(server.get("/h").await.text(), "one");
    std::fs::write(dir.join("new.wat"), says("new")).unwrap();
    compiled_by_the_poller(&server, "/new", "new").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_mode_notices_a_same_size_copy_that_keeps_the_modification_time() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let handler = root.path().join("h.wat");
    let server = polling(root).await;
    assert_eq!(server.get("/h").await.text(), "one");
    // `cp -p` of a file of the same size, dated like the handler: size and
    // mtime stay as they were, only the ctime moves (notify's `PollWatcher`
    // misses this).
    let staged = tempfile::tempdir().unwrap();
    let two = staged.path().join("h.wat");
    std::fs::write(&two, says("two")).unwrap();
    let mtime = std::fs::metadata(&handler).unwrap().modified().unwrap();
    let staged_file = std::fs::File::options().write(true).open(&two).unwrap();
    staged_file.set_modified(mtime).unwrap();
    drop(staged_file);
    let copied = std::process::Command::new("cp")
        .arg("-p")
        .arg(&two)
        .arg(&handler)
        .status()
        .unwrap();
    assert!(copied.success());
    let now = std::fs::metadata(&handler).unwrap();
    assert_eq!(
        (now.len(), now.modified().unwrap()),
        (says("one").len() as u64, mtime)
    );
    compiled_by_the_poller(&server, "/h", "two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_handler_leaves_the_status_page() {
    let root = WebRoot::new()
        .file("a.wat", &says("a"))
        .file("b.wat", &says("b"));
    let dir = root.path().to_path_buf();
    let server = TestServer::start_with(root, |c| c.status_path = Some("/_status".into())).await;
    server.get("/a").await;
    server.get("/b").await;
    assert!(
        server
            .get("/_status")
            .await
            .text()
            .contains("\"file\": \"a.wat\"")
    );
    std::fs::remove_file(dir.join("a.wat")).unwrap();
    let mut gone = false;
    for _ in 0..500 {
        let page = server.get("/_status").await.text();
        if !page.contains("\"file\": \"a.wat\"") {
            assert!(page.contains("\"file\": \"b.wat\""), "{page}");
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the deleted handler is still listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_root_removed_and_made_again_is_logged_and_watched_again() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let dir = root.path().to_path_buf();
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/h").await.text(), "one");

    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let root_line = |needles: &'static [&'static str]| {
        let root = dir.display().to_string();
        move || {
            wasmlet_tests::logs().lines().any(|line| {
                line.contains(&root) && needles.iter().all(|needle| line.contains(needle))
            })
        }
    };
    assert!(
        eventually(DEADLINE, root_line(&["ERROR", "the web root was removed"])).await,
        "no error line says the watch was lost"
    );
    assert!(
        eventually(
            DEADLINE,
            root_line(&["the web root is back; watching it again"])
        )
        .await,
        "the root was not watched again"
    );
    // Watched again: a handler added now is compiled by the watcher, before
    // any request asks for it.
    let compiles = server.stats.compiles();
    std::fs::write(dir.join("late.wat"), says("late")).unwrap();
    assert!(
        eventually(DEADLINE, || server.stats.compiles() == compiles + 1).await,
        "the watcher did not see a handler added to the new root"
    );
    assert_eq!(server.get("/late").await.text(), "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_web_root_switched_to_a_new_release_serves_it_and_outlives_the_old_one() {
    let base = tempfile::tempdir().unwrap();
    let release = |name: &str, files: &[(&str, String)]| {
        let dir = base.path().join("releases").join(name);
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    };
    let v1 = release(
        "v1",
        &[("hello.wat", says("v1")), ("page.txt", "one".to_owned())],
    );
    let v2 = release(
        "v2",
        &[
            ("hello.wat", says("v2")),
            ("only.wat", says("new in v2")),
            ("page.txt", "two".to_owned()),
            ("code.rs", "fn main() {}".to_owned()),
            (
                "wasmlet.toml",
                "[static]\npublish = [\"rust-source\"]\n".to_owned(),
            ),
        ],
    );
    let current = base.path().join("current");
    std::os::unix::fs::symlink(&v1, &current).unwrap();
    let server = Arc::new(TestServer::start_config(test_config(&current)).await);
    assert_eq!(server.get("/hello").await.text(), "v1");
    assert_eq!(server.get("/code.rs").await.status, StatusCode::NOT_FOUND);

    // The release switch under load: a new link renamed over the old one.
    // Either release's answer is fine; anything else is a failure.
    let load = Load::start(&server, 4, "/hello", |reply| {
        reply.status == StatusCode::OK && (reply.text() == "v1" || reply.text() == "v2")
    });
    let next = base.path().join("current.new");
    std::os::unix::fs::symlink(&v2, &next).unwrap();
    std::fs::rename(&next, &current).unwrap();
    assert!(
        serves(&server, "/hello", "v2").await,
        "the new release is not served"
    );
    let served = load.served();
    let failures = load.stop().await;
    assert!(
        failures.is_empty(),
        "failed requests at the switch: {failures:?}"
    );
    assert!(served > 10, "the load never ran");
    assert_eq!(server.get("/only").await.text(), "new in v2");
    assert_eq!(server.get("/page.txt").await.text(), "two");
    // Its own configuration applies.
    assert_eq!(server.get("/code.rs").await.text(), "fn main() {}");

    std::fs::remove_dir_all(&v1).unwrap();
    let reply = server.get("/hello").await;
    assert_eq!(
        (reply.status, reply.text()),
        (StatusCode::OK, "v2".to_owned())
    );
    assert_eq!(server.get("/page.txt").await.text(), "two");
}
