//! Source handlers: a `NAME.rs` file in a directory whose `wasmlet.toml` says
//! `[build] rust = true` is built with cargo and the SDK on its first request
//! and served at `/NAME`; edits are rebuilt, a broken edit keeps the old
//! version, a restart needs no cargo, and elsewhere the source is never served.
//!
//! The tests of this binary share one build directory, so the SDK is built
//! once for all of them (the first build takes a minute on two cores).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use http::StatusCode;
use wasmlet_tests::{TestServer, WebRoot};

/// The disk cache (and so the build directory) every test here uses.
fn shared_cache() -> PathBuf {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_owned()
}

const GRANT: &str = "[build]\nrust = true\n";

fn hello(greeting: &str) -> String {
    format!(
        r#"use wasmlet_sdk::{{Request, handler}};

#[handler(get)]
fn hello(req: Request) -> String {{
    format!("{greeting}, {{}}\n", req.query("name").as_deref().unwrap_or("world"))
}}
"#
    )
}

async fn start(root: WebRoot) -> TestServer {
    TestServer::start_with(root, |config| {
        config.cache_dir = Some(shared_cache());
        // A first build compiles the SDK: give it room.
        config.request_timeout = Duration::from_secs(300);
    })
    .await
}

/// How many times the server logged a build of `file`.
fn builds_of(file: &Path) -> usize {
    let file = file.display().to_string();
    wasmlet_tests::logs()
        .lines()
        .filter(|line| line.contains("built the Rust handler") && line.contains(&file))
        .count()
}

/// `GET path` until it answers `want` (a build may still be running), up to
/// a deadline; the last reply's body.
async fn until(server: &TestServer, path: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let reply = server.get(path).await;
        if reply.status == StatusCode::OK && reply.text() == want || Instant::now() > deadline {
            return reply.text();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_rs_file_is_built_once_by_concurrent_first_requests_and_served() {
    let root = WebRoot::new()
        .file("api/wasmlet.toml", GRANT)
        .file("api/hello.rs", &hello("hello"));
    let file = root.path().join("api/hello.rs").canonicalize().unwrap();
    let server = start(root).await;
    let first =
        futures_util::future::join_all((0..4).map(|_| server.get("/api/hello?name=Ada"))).await;
    for reply in &first {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.text(), "hello, Ada\n");
    }
    assert_eq!(builds_of(&file), 1, "{}", wasmlet_tests::logs());
    // The explicit file name never shows the source.
    let source = server.get("/api/hello.rs").await;
    assert!(!source.text().contains("#[handler"), "{}", source.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_rebuilt_and_a_broken_edit_keeps_the_working_version() {
    let root = WebRoot::new()
        .file("wasmlet.toml", GRANT)
        .file("greet.rs", &hello("hi"));
    let file = root.path().join("greet.rs").canonicalize().unwrap();
    let server = start(root).await;
    assert_eq!(until(&server, "/greet", "hi, world\n").await, "hi, world\n");

    std::fs::write(&file, hello("good day")).unwrap();
    assert_eq!(
        until(&server, "/greet", "good day, world\n").await,
        "good day, world\n"
    );

    // Line 5, column 5: an unknown name.
    let broken = hello("oops").replace("    format!", "    nonsense;\n    format!");
    std::fs::write(&file, broken).unwrap();
    let wanted = format!("{}:5:5: error[E0425]", file.display());
    // The build runs when a request notices the change; until it has failed,
    // and after, requests get the working version.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut said = false;
    while !said && Instant::now() < deadline {
        let reply = server.get("/greet").await;
        assert_eq!(reply.text(), "good day, world\n");
        said = wasmlet_tests::log_contains(&wanted, Duration::from_millis(500)).await;
    }
    assert!(
        said,
        "no error at file:line:column:\n{}",
        wasmlet_tests::logs()
    );
    let reply = server.get("/greet").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "good day, world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rs_file_that_does_not_compile_is_a_500_naming_its_line() {
    let root = WebRoot::new().file("wasmlet.toml", GRANT).file(
        "bad.rs",
        "use wasmlet_sdk::handler;\n\n#[handler(get)]\nfn bad() -> String { 42 }\n",
    );
    let file = root.path().join("bad.rs").canonicalize().unwrap();
    let server = start(root).await;
    assert_eq!(
        server.get("/bad").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let wanted = format!("{}:4:22: error[E0308]", file.display());
    assert!(
        wasmlet_tests::log_contains(&wanted, Duration::from_secs(5)).await,
        "no error at file:line:column:\n{}",
        wasmlet_tests::logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_declared_in_the_header_is_built_in() {
    let source = r#"//! Formats a number with a crate from the header.
//!
//! [dependencies]
//! itoa = "1"

use wasmlet_sdk::{Request, handler};

#[handler(get)]
fn number(_req: Request) -> String {
    let mut buffer = itoa::Buffer::new();
    format!("{}\n", buffer.format(1234567u32))
}
"#;
    let root = WebRoot::new()
        .file("wasmlet.toml", GRANT)
        .file("number.rs", source);
    let server = start(root).await;
    assert_eq!(until(&server, "/number", "1234567\n").await, "1234567\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_serves_the_built_handler_without_running_cargo() {
    let root = WebRoot::new()
        .file("wasmlet.toml", GRANT)
        .file("again.rs", &hello("again"));
    let file = root.path().join("again.rs").canonicalize().unwrap();
    let mut config = wasmlet_tests::test_config(root.path());
    config.cache_dir = Some(shared_cache());
    config.request_timeout = Duration::from_secs(300);

    let first = TestServer::start_config(config.clone()).await;
    assert_eq!(
        until(&first, "/again", "again, world\n").await,
        "again, world\n"
    );
    assert_eq!(builds_of(&file), 1);
    drop(first);

    let second = TestServer::start_config(config).await;
    assert_eq!(second.get("/again").await.text(), "again, world\n");
    assert_eq!(builds_of(&file), 1, "the restart ran cargo again");
    assert_eq!(second.stats.compiles(), 0, "the restart compiled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_build_rust_an_rs_file_is_neither_a_handler_nor_served() {
    let root = WebRoot::new()
        .file("hello.rs", &hello("hello"))
        .file("on/wasmlet.toml", GRANT)
        .file("on/off/wasmlet.toml", "[build]\nrust = false\n")
        .file("on/off/hello.rs", &hello("hello"));
    let server = start(root).await;
    for path in ["/hello", "/hello.rs", "/on/off/hello", "/on/off/hello.rs"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !reply.text().contains("handler"),
            "{path}: {}",
            reply.text()
        );
    }
}
