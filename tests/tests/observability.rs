//! Operators see what the runtime does: Prometheus metrics and the status
//! page (HTML and JSON) on the admin listener, and a request id that ties a
//! request's access line to its guest's log lines.

use std::time::Duration;

use http::{Method, StatusCode};
use wasmlet_tests::{
    Metrics, TestServer, WebRoot, eventually, logs, replace_atomically, says, test_config,
};

const DEADLINE: Duration = Duration::from_secs(10);

fn requests(metrics: &Metrics, handler: &str, status: &str) -> Option<f64> {
    metrics.value(
        "wasmlet_requests_total",
        &[("handler", handler), ("status", status)],
    )
}

fn by_handler(metrics: &Metrics, name: &str, handler: &str) -> Option<f64> {
    metrics.value(name, &[("handler", handler)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_handler_and_status_with_traps_timeouts_and_compiles() {
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .fixture("trap.wat", "trap_before_head.wat")
        .fixture("loop.wat", "infinite_loop.wat");
    let server = TestServer::start_with_admin(root, |config| {
        config.request_timeout = Duration::from_millis(300);
    })
    .await;
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    assert_eq!(
        server.get("/nothing-here").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/trap").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        server.get("/loop").await.status,
        StatusCode::GATEWAY_TIMEOUT
    );

    let m = server.settled_metrics().await;
    assert_eq!(requests(&m, "/hello.wat", "200"), Some(2.0), "{m}");
    assert_eq!(requests(&m, "-", "404"), Some(1.0), "{m}");
    assert_eq!(requests(&m, "/trap.wat", "500"), Some(1.0), "{m}");
    assert_eq!(requests(&m, "/loop.wat", "504"), Some(1.0), "{m}");
    // The scrapes themselves are not requests to the server being watched.
    assert_eq!(requests(&m, "-", "200"), None, "{m}");

    assert_eq!(
        by_handler(&m, "wasmlet_traps_total", "/trap.wat"),
        Some(1.0)
    );
    assert_eq!(by_handler(&m, "wasmlet_traps_total", "/loop.wat"), None);
    assert_eq!(
        by_handler(&m, "wasmlet_timeouts_total", "/loop.wat"),
        Some(1.0)
    );
    assert_eq!(by_handler(&m, "wasmlet_timeouts_total", "/trap.wat"), None);

    let latency = "wasmlet_request_duration_seconds_count";
    assert_eq!(by_handler(&m, latency, "/hello.wat"), Some(2.0), "{m}");
    assert_eq!(by_handler(&m, latency, "-"), Some(1.0), "{m}");
    // The spinning guest ran its whole 300 ms budget.
    let bucket = |le| {
        m.value(
            "wasmlet_request_duration_seconds_bucket",
            &[("handler", "/loop.wat"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.25"), Some(0.0), "{m}");
    assert_eq!(bucket("+Inf"), Some(1.0), "{m}");

    // Three handlers, each compiled once however often it was requested.
    assert_eq!(m.value("wasmlet_compiles_total", &[]), Some(3.0), "{m}");
    assert_eq!(
        m.value("wasmlet_compile_duration_seconds_count", &[]),
        Some(3.0),
        "{m}"
    );
    assert_eq!(m.value("wasmlet_live_instances", &[]), Some(0.0));
    assert_eq!(m.value("wasmlet_requests_in_flight", &[]), Some(0.0));
    // No disk cache in the test configuration, so nothing asked it.
    assert_eq!(m.value("wasmlet_disk_cache_hits_total", &[]), Some(0.0));
    assert_eq!(m.value("wasmlet_disk_cache_misses_total", &[]), Some(0.0));
    assert_eq!(m.value("wasmlet_reloads_total", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_warm_disk_cache_counts_a_hit_and_no_compile() {
    let cache = tempfile::tempdir().unwrap();
    let root = WebRoot::new().fixture("hello.wat", "hello.wat");
    let mut config = test_config(root.path());
    config.cache_dir = Some(cache.path().join("wasmlet"));

    let first = TestServer::start_config_with_admin(config.clone()).await;
    assert_eq!(first.get("/hello").await.status, StatusCode::OK);
    let m = first.settled_metrics().await;
    assert_eq!(m.value("wasmlet_disk_cache_misses_total", &[]), Some(1.0));
    assert_eq!(m.value("wasmlet_disk_cache_hits_total", &[]), Some(0.0));
    assert_eq!(m.value("wasmlet_compiles_total", &[]), Some(1.0));
    drop(first);

    let second = TestServer::start_config_with_admin(config).await;
    assert_eq!(second.get("/hello").await.status, StatusCode::OK);
    let m = second.settled_metrics().await;
    assert_eq!(m.value("wasmlet_disk_cache_hits_total", &[]), Some(1.0));
    assert_eq!(m.value("wasmlet_disk_cache_misses_total", &[]), Some(0.0));
    assert_eq!(m.value("wasmlet_compiles_total", &[]), Some(0.0));
    assert_eq!(
        m.value("wasmlet_compile_duration_seconds_count", &[]),
        Some(0.0)
    );
    assert_eq!(requests(&m, "/hello.wat", "200"), Some(1.0), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_counts_as_one_reload_and_the_same_bytes_again_as_none() {
    let root = WebRoot::new().file("h.wat", &says("one"));
    let file = root.path().join("h.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    assert_eq!(server.get("/h").await.text(), "one");

    replace_atomically(&file, says("two"));
    // The new version serves once its file has settled and it has loaded.
    let mut served = false;
    for _ in 0..500 {
        if server.get("/h").await.text() == "two" {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "the new version never served");
    let m = server.settled_metrics().await;
    assert_eq!(m.value("wasmlet_reloads_total", &[]), Some(1.0), "{m}");

    // Redeployed with the same bytes: a new file version, compiled again (no
    // disk cache here), but the module served is the same.
    replace_atomically(&file, says("two"));
    assert!(
        eventually(Duration::from_secs(10), || server.stats.compiles() == 3).await,
        "the redeploy never loaded"
    );
    assert_eq!(server.get("/h").await.text(), "two");
    let m = server.settled_metrics().await;
    assert_eq!(m.value("wasmlet_compiles_total", &[]), Some(3.0), "{m}");
    assert_eq!(m.value("wasmlet_reloads_total", &[]), Some(1.0), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_status_page_lists_handlers_and_escapes_hostile_file_names() {
    // A legal file name that is also markup; broken, so its name shows in
    // the compile error too.
    let hostile = "<b onclick=\"x\">&.wat";
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .file(hostile, "(module (func");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    assert_eq!(
        server.get("/%3Cb%20onclick%3D%22x%22%3E%26").await.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the hostile handler was not routed to"
    );
    server.settled_metrics().await;

    let page = server.admin_get("/status").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    assert!(!html.contains("<b onclick"), "unescaped name:\n{html}");
    let escaped = "&lt;b onclick=&quot;x&quot;&gt;&amp;.wat";
    assert!(
        html.matches(escaped).count() >= 2,
        "the name, escaped, in its row and its error:\n{html}"
    );
    assert!(
        html.contains("<span class=\"url\">/hello</span><div class=\"file\">hello.wat"),
        "{html}"
    );
    assert!(html.contains("<tr class=\"ready\">"), "{html}");
    assert!(html.contains("<tr class=\"failed\">"), "{html}");
    assert!(html.contains("<b>0</b>live instances"), "{html}");

    let json: serde_json::Value =
        serde_json::from_slice(&server.admin_get("/status.json").await.body).unwrap();
    let version = json["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["file"] == "hello.wat")
        .and_then(|h| h["version"].as_str())
        .expect("hello.wat has a version")
        .to_owned();
    assert!(html.contains(&version[..12]), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_status_json_is_the_status_page_of_the_main_listener() {
    let root = WebRoot::new()
        .fixture("hello.wat", "hello.wat")
        .file("broken.wat", "(module (func");
    let server = TestServer::start_with_admin(root, |config| {
        config.status_path = Some("/_status".to_owned());
    })
    .await;
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
    assert_eq!(
        server.get("/broken").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let reply = server.admin_get("/status.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let admin: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let main: serde_json::Value =
        serde_json::from_slice(&server.get("/_status").await.body).unwrap();
    assert_eq!(admin["handlers"], main["handlers"]);
    assert_eq!(admin["webroot"], main["webroot"]);
    let handlers = admin["handlers"].as_array().unwrap();
    assert_eq!(handlers.len(), 2, "{admin:#}");
    assert_eq!(handlers[0]["file"], "broken.wat");
    assert_eq!(handlers[0]["state"], "failed");
    assert!(
        handlers[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("broken.wat:1:")),
        "{admin:#}"
    );
    assert_eq!(handlers[1]["file"], "hello.wat");
    assert_eq!(handlers[1]["state"], "ready");
    assert_eq!(handlers[1]["source"], "compiler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_only_its_pages_and_the_main_one_none_of_them() {
    let root = WebRoot::new().fixture("hello.wat", "hello.wat");
    let server = TestServer::start_with_admin(root, |_| {}).await;
    assert_eq!(
        server.admin_get("/hello").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.admin_get("/").await.status, StatusCode::FOUND);
    let post = server.send_with(Method::POST, "/hello", &[], "").await;
    assert_eq!(
        post.status,
        StatusCode::OK,
        "the main listener runs handlers"
    );
    assert_eq!(server.get("/metrics").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/status").await.status, StatusCode::NOT_FOUND);

    let metrics = server.admin_get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        metrics.headers
    );
    assert!(
        metrics
            .text()
            .contains("# TYPE wasmlet_requests_total counter"),
        "{}",
        metrics.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_in_flight_while_its_guest_runs_and_499_when_its_client_leaves() {
    let root = WebRoot::new().fixture("stuck.wat", "writes_then_waits_a_minute.wat");
    let server = TestServer::start_with_admin(root, |config| {
        config.request_timeout = Duration::from_secs(120);
    })
    .await;
    let response = server.open(Method::GET, "/stuck").await;
    assert_eq!(response.status(), StatusCode::OK);
    // The head is out, but the request lasts as long as its guest.
    let m = server.metrics().await;
    assert_eq!(m.value("wasmlet_requests_in_flight", &[]), Some(1.0), "{m}");
    assert_eq!(m.value("wasmlet_live_instances", &[]), Some(1.0), "{m}");
    assert_eq!(requests(&m, "/stuck.wat", "200"), None, "{m}");

    drop(response);
    let m = server.settled_metrics().await;
    assert_eq!(requests(&m, "/stuck.wat", "499"), Some(1.0), "{m}");
    assert_eq!(requests(&m, "/stuck.wat", "200"), None, "{m}");
    assert_eq!(
        by_handler(&m, "wasmlet_request_duration_seconds_count", "/stuck.wat"),
        Some(1.0)
    );
}

/// The value of `field=` on a log line (up to the next space, quotes cut).
fn field<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let start = line.find(&format!("{field}="))? + field.len() + 1;
    let value = line[start..].split(' ').next()?;
    Some(value.trim_matches('"'))
}

/// Waits until the captured log has `count` access lines for `path`, and
/// returns them.
async fn access_lines(path: &str, count: usize) -> Vec<String> {
    let matching = || -> Vec<String> {
        logs()
            .lines()
            .filter(|l| l.contains("wasmlet::access") && field(l, "path") == Some(path))
            .map(str::to_owned)
            .collect()
    };
    assert!(
        eventually(DEADLINE, || matching().len() >= count).await,
        "fewer than {count} access lines for {path}:\n{}",
        logs()
    );
    matching()
}

/// The guest's log lines with this request id.
fn guest_lines(request_id: &str) -> Vec<String> {
    logs()
        .lines()
        .filter(|l| l.contains("wasmlet::guest") && field(l, "request_id") == Some(request_id))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_from_a_proxy_is_on_the_access_line_and_the_guest_log_lines() {
    let root = WebRoot::new().fixture("rid/proxy.wat", "log_levels.wat");
    let server = TestServer::start(root).await;
    let reply = server
        .send_with(
            Method::GET,
            "/rid/proxy",
            &[("x-request-id", "proxy-7f3a-9c1e")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let access = access_lines("/rid/proxy", 1).await;
    assert_eq!(field(&access[0], "request_id"), Some("proxy-7f3a-9c1e"));
    let guest = guest_lines("proxy-7f3a-9c1e");
    // error, warn, info and debug: the tests log at debug.
    assert_eq!(guest.len(), 4, "{guest:#?}");
    assert!(
        guest
            .iter()
            .all(|l| field(l, "handler") == Some("/rid/proxy.wat")),
        "{guest:#?}"
    );
    assert!(guest[0].contains("guest-log-error"), "{guest:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_gets_its_own_id_shared_by_its_access_line_and_guest_log_lines() {
    let root = WebRoot::new().fixture("rid/fresh.wat", "log_levels.wat");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/rid/fresh").await.status, StatusCode::OK);
    // An id a proxy could not have meant (a space) is replaced, not logged.
    let reply = server
        .send_with(
            Method::GET,
            "/rid/fresh",
            &[("x-request-id", "two words")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let access = access_lines("/rid/fresh", 2).await;
    let ids: Vec<&str> = access
        .iter()
        .map(|l| field(l, "request_id").expect("an access line has a request id"))
        .collect();
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        let guest = guest_lines(id);
        assert_eq!(guest.len(), 4, "{id}: {guest:#?}");
        assert!(guest.iter().any(|l| l.contains("guest-log-info")));
    }
    assert!(!logs().contains("request_id=two"));
}
