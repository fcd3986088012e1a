//! The status page an operator keeps open, through a real server's admin
//! listener: every handler in the web root, loaded or not, with its state,
//! counts and last error; uptime and versions; a page that refreshes itself;
//! and the metrics that go with it (`wasmlet_handlers`, `wasmlet_build_info`,
//! the process metrics).

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;
use wasmlet_tests::{TestServer, WebRoot, replace_atomically};

const DEADLINE: Duration = Duration::from_secs(10);

/// `/status.json`, parsed.
async fn status_json(server: &TestServer) -> Value {
    let reply = server.admin_get("/status.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

/// `/status` as text.
async fn status_html(server: &TestServer) -> String {
    let reply = server.admin_get("/status").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.text()
}

/// The entry for `file` in a `/status.json`.
fn handler<'a>(json: &'a Value, file: &str) -> &'a Value {
    json["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["file"] == file)
        .unwrap_or_else(|| panic!("{file} is not listed: {json:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_handlers_no_request_has_reached_with_their_urls() {
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .fixture("api/index.wat", "hello.wat")
        .fixture("users/[id].wat", "hello.wat")
        .file("notes.txt", "static, not a handler");
    let later = root.path().join("later.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;

    let json = status_json(&server).await;
    assert_eq!(json["handlers"].as_array().unwrap().len(), 3, "{json:#}");
    for (file, url) in [
        ("hello.wat", "/hello"),
        ("api/index.wat", "/api/"),
        ("users/[id].wat", "/users/[id]"),
    ] {
        let entry = handler(&json, file);
        assert_eq!(entry["state"], "not loaded", "{json:#}");
        assert_eq!(entry["url"], url, "{json:#}");
        assert_eq!(entry["requests"], 0, "{json:#}");
    }
    assert_eq!(json["states"]["not loaded"], 3, "{json:#}");

    let html = status_html(&server).await;
    assert!(
        html.contains("<tr class=\"not-loaded\"><td><span class=\"badge\">not loaded</span>"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"url\">/users/[id]</span>"),
        "{html}"
    );

    // A handler saved later shows up: the watcher loads it, or the next
    // walk of the web root finds it.
    std::fs::write(&later, "(module)").unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    while status_json(&server).await["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["file"] != "later.wat")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "later.wat never listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Once requested, it is ready and counted.
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    server.settled_metrics().await;
    let json = status_json(&server).await;
    let hello = handler(&json, "hello.wat");
    assert_eq!(hello["state"], "ready", "{json:#}");
    assert_eq!(hello["requests"], 1, "{json:#}");
    assert_eq!(hello["errors"], 0, "{json:#}");
    assert!(
        hello["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{json:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_traps_on_every_request_shows_its_traps_errors_and_last_error() {
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .fixture("trap.wat", "trap_before_head.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    for _ in 0..3 {
        assert_eq!(
            server.get("/trap").await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    server.settled_metrics().await;

    let json = status_json(&server).await;
    let trap = handler(&json, "trap.wat");
    assert_eq!(
        trap["state"], "ready",
        "it loads; its requests fail: {json:#}"
    );
    assert_eq!(trap["requests"], 3, "{json:#}");
    assert_eq!(trap["errors"], 3, "{json:#}");
    assert_eq!(trap["traps"], 3, "{json:#}");
    assert_eq!(trap["timeouts"], 0, "{json:#}");
    assert_eq!(trap["live_instances"], 0, "{json:#}");
    let error = trap["last_error"].as_str().unwrap();
    assert!(error.contains("unreachable"), "{error}");
    assert!(!error.contains('\n'), "{error}");
    assert!(trap["last_error_at"].as_u64().is_some(), "{json:#}");
    // A handler whose every request fails is listed before a healthy one.
    assert_eq!(json["handlers"][0]["file"], "trap.wat", "{json:#}");

    let html = status_html(&server).await;
    assert!(
        html.contains("<td class=\"n hot\" data-label=\"traps\">3</td>"),
        "{html}"
    );
    let trap_row = html.find("/trap<").unwrap();
    let hello_row = html.find("/hello<").unwrap();
    assert!(trap_row < hello_row, "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_handler_shows_failed_first_with_its_error_on_one_line() {
    let root = WebRoot::new().fixture("a-hello.wat", "hello.wat").file(
        "broken.wat",
        "(module\n  (func (export \"handle\")\n    i32.cnst 1))\n",
    );
    let server = TestServer::start_with_admin(root, |_| {}).await;
    assert_eq!(server.get("/a-hello").await.status, StatusCode::OK);
    assert_eq!(
        server.get("/broken").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    server.settled_metrics().await;

    let json = status_json(&server).await;
    assert_eq!(json["handlers"][0]["file"], "broken.wat", "{json:#}");
    let broken = handler(&json, "broken.wat");
    assert_eq!(broken["state"], "failed", "{json:#}");
    let error = broken["last_error"].as_str().unwrap();
    assert!(error.contains("broken.wat:3:"), "{error}");
    assert!(!error.contains('\n'), "{error}");
    assert_eq!(json["states"]["failed"], 1, "{json:#}");

    let html = status_html(&server).await;
    let first_row = html.find("<tr class=").unwrap();
    assert!(
        html[first_row..].starts_with("<tr class=\"failed\">"),
        "{html}"
    );
    assert!(html.contains("<b>1</b>failed"), "{html}");
    assert!(html.contains("<title>1 failed · wasmlet status</title>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_uptime_and_both_versions_and_refreshes_itself() {
    let root = WebRoot::new().fixture("hello.wat", "hello.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    let reply = server.admin_get("/status").await;
    assert_eq!(
        reply.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'")
    );
    let html = reply.text();
    assert!(wasmlet::WASMTIME_VERSION.starts_with("48."));
    let versions = format!(
        "{} · wasmtime {} · up ",
        wasmlet::VERSION,
        wasmlet::WASMTIME_VERSION
    );
    assert!(html.contains(&versions), "{html}");
    assert!(
        html.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{html}"
    );
    // Self-contained: nothing to fetch, nothing to run.
    for external in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(external), "{external} in {html}");
    }
    let json = status_json(&server).await;
    assert_eq!(json["version"], wasmlet::VERSION);
    assert_eq!(json["wasmtime"], wasmlet::WASMTIME_VERSION);
    assert!(json["uptime_seconds"].as_u64().is_some(), "{json:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listeners_root_leads_to_the_status_page() {
    let root = WebRoot::new().fixture("hello.wat", "hello.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    let reply = server.admin_get("/").await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header("location"), Some("/status"));
    // The main listener's `/` stays the web root's.
    assert_eq!(server.get("/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_names_are_escaped_whether_loaded_or_not() {
    let loaded = "<img src=x onerror=alert(1)>.wat";
    let unloaded = "<script>alert('x')</script>.wat";
    let root = WebRoot::new()
        .file(loaded, "(module (func")
        .fixture(unloaded, "hello.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    assert_eq!(
        server
            .get("/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
            .await
            .status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the hostile handler was not routed to"
    );
    server.settled_metrics().await;
    let html = status_html(&server).await;
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;.wat"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.wat"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_root_past_the_listing_cap_is_counted_not_listed() {
    let mut root = WebRoot::new().file("broken.wat", "(module (func");
    let extra = 5;
    for i in 0..199 + extra {
        root = root.file(&format!("h{i:03}.wat"), "(module)");
    }
    let server = TestServer::start_with_admin(root, |_| {}).await;
    assert_eq!(
        server.get("/broken").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let json = status_json(&server).await;
    assert_eq!(json["handlers"].as_array().unwrap().len(), 200);
    assert_eq!(json["unlisted"], extra);
    assert_eq!(json["states"]["not loaded"], 199 + extra, "{json:#}");
    assert_eq!(
        json["handlers"][0]["file"], "broken.wat",
        "failures are never cut"
    );
    let html = status_html(&server).await;
    assert_eq!(html.matches("<tr class=").count(), 200);
    assert!(html.contains("… and 5 more handlers not listed."), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_build_info_process_metrics_and_the_failed_handler_gauge() {
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .file("broken.wat", "(module (func");
    let file = root.path().join("broken.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    let m = server.metrics().await;
    assert_eq!(
        m.value(
            "wasmlet_build_info",
            &[
                ("version", wasmlet::VERSION),
                ("wasmtime", wasmlet::WASMTIME_VERSION)
            ]
        ),
        Some(1.0),
        "{m}"
    );
    // Whole seconds, so a test process may well show 0.
    assert!(m.value("process_cpu_seconds_total", &[]).is_some(), "{m}");
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
    ] {
        assert!(m.value(name, &[]).is_some_and(|v| v > 0.0), "{name}: {m}");
    }
    let failed = |m: &wasmlet_tests::Metrics| m.value("wasmlet_handlers", &[("state", "failed")]);
    let ready = |m: &wasmlet_tests::Metrics| m.value("wasmlet_handlers", &[("state", "ready")]);
    assert_eq!(failed(&m), Some(0.0), "{m}");

    assert_eq!(
        server.get("/broken").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    let m = server.settled_metrics().await;
    assert_eq!(failed(&m), Some(1.0), "{m}");
    assert_eq!(ready(&m), Some(1.0), "{m}");

    // Fixed: the next request loads the new version, and the gauge follows.
    let hello = std::fs::read(wasmlet_tests::fixtures_dir().join("hello.wat")).unwrap();
    replace_atomically(&file, hello);
    let deadline = std::time::Instant::now() + DEADLINE;
    while server.get("/broken").await.status != StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "the fixed handler never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = server.settled_metrics().await;
    assert_eq!(failed(&m), Some(0.0), "{m}");
    assert_eq!(ready(&m), Some(2.0), "{m}");
}
