//! Instance reuse for `wasi:http` components through the real server, for
//! the example WASI 0.2 (`wasi-hello`) and 0.3 (`wasi-p3-hello`) components,
//! whose `/hits` answers how many requests its instance has taken: with
//! `[instances] reuse` the count goes on across requests, without it every
//! request starts at 1; a trap, a timeout, `max-requests` and
//! `idle-timeout` each retire an instance. A 0.3 instance serves up to
//! `concurrency` requests at once; a 0.2 instance one at a time.

use std::time::{Duration, Instant};

use http::StatusCode;
use wasmlet_tests::{TestServer, WebRoot, log_contains};

/// The two example components, by built name, with the URL prefix each is
/// mounted at in [`root`].
const KINDS: [(&str, &str); 2] = [("wasi_hello", "/c2"), ("wasi_p3_hello", "/c3")];

/// Both examples, each under its prefix, with `settings` as the web root's
/// `wasmlet.toml`.
fn root(settings: &str) -> WebRoot {
    WebRoot::new()
        .component_handler("c2/[...path].wasm", "wasi_hello")
        .component_handler("c3/[...path].wasm", "wasi_p3_hello")
        .file("wasmlet.toml", settings)
}

async fn hits(server: &TestServer, prefix: &str) -> String {
    let reply = server.get(&format!("{prefix}/hits")).await;
    assert_eq!(reply.status, StatusCode::OK, "{prefix}: {}", reply.text());
    reply.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_component_counts_across_requests_and_a_fresh_one_never_does() {
    let root = root("[instances]\nreuse = true\n")
        .component_handler("fresh/c2/[...path].wasm", "wasi_hello")
        .component_handler("fresh/c3/[...path].wasm", "wasi_p3_hello")
        .file("fresh/wasmlet.toml", "[instances]\nreuse = false\n");
    let server = TestServer::start(root).await;
    for (name, prefix) in KINDS {
        for n in 1..=3 {
            assert_eq!(hits(&server, prefix).await, format!("hits {n}\n"), "{name}");
        }
        for _ in 1..=3 {
            assert_eq!(
                hits(&server, &format!("/fresh{prefix}")).await,
                "hits 1\n",
                "{name}: a fresh instance per request by default"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_component_starts_over_after_a_trap() {
    let server = TestServer::start(root("[instances]\nreuse = true\n")).await;
    for (name, prefix) in KINDS {
        assert_eq!(hits(&server, prefix).await, "hits 1\n", "{name}");
        assert_eq!(hits(&server, prefix).await, "hits 2\n", "{name}");
        let trapped = server.get(&format!("{prefix}/trap")).await;
        assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        assert_eq!(
            hits(&server, prefix).await,
            "hits 1\n",
            "{name}: the trapped instance was retired"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_component_that_times_out_is_retired() {
    let settings = "[instances]\nreuse = true\n[limits]\nrequest-timeout = \"500ms\"\n";
    let server = TestServer::start(root(settings)).await;
    for (name, prefix) in KINDS {
        // The compile can take longer than this timeout (the request then
        // gets `503` and the load goes on): wait for the handler to be ready.
        let hello = format!("{prefix}/hello");
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.get(&hello).await.status != StatusCode::OK {
            assert!(Instant::now() < deadline, "{name} never loaded");
        }
        let before = hits(&server, prefix).await;
        assert_ne!(before, "hits 1\n", "{name}: the instance is reused");
        // Spinning: only the epoch interruption lets the timeout fire.
        let spun = server.get(&format!("{prefix}/spin")).await;
        assert_eq!(spun.status, StatusCode::GATEWAY_TIMEOUT, "{name}");
        assert_eq!(
            hits(&server, prefix).await,
            "hits 1\n",
            "{name}: the instance that timed out was retired"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_component_is_retired_after_max_requests() {
    let server = TestServer::start(root("[instances]\nreuse = true\nmax-requests = 3\n")).await;
    for (name, prefix) in KINDS {
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(hits(&server, prefix).await);
        }
        assert_eq!(
            seen.concat(),
            "hits 1\nhits 2\nhits 3\nhits 1\nhits 2\nhits 3\nhits 1\n",
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_reused_component_is_retired_after_the_idle_timeout() {
    let settings = "[instances]\nreuse = true\nidle-timeout = \"200ms\"\n";
    let server = TestServer::start(root(settings)).await;
    for (name, prefix) in KINDS {
        assert_eq!(hits(&server, prefix).await, "hits 1\n", "{name}");
        assert_eq!(hits(&server, prefix).await, "hits 2\n", "{name}");
        // Not a synchronisation: the idle time itself is what is tested.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            hits(&server, prefix).await,
            "hits 1\n",
            "{name}: the idle instance was retired"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_wasi_0_3_instance_up_to_its_concurrency() {
    let settings = "[instances]\nreuse = true\nconcurrency = 8\npool-size = 1\n";
    let server = TestServer::start_with_admin(root(settings), |_| {}).await;
    assert_eq!(hits(&server, "/c3").await, "hits 1\n");

    // Eight requests that each wait 1 s on the host timer: on one instance,
    // side by side, they take about one second, not eight.
    let started = Instant::now();
    let sleeping = futures_util::future::join_all((0..8).map(|_| server.get("/c3/sleep?ms=1000")));
    let watching = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = server.metrics().await;
            if metrics.value("wasmlet_requests_in_flight", &[]) == Some(8.0) {
                return metrics.value("wasmlet_live_instances", &[]);
            }
            assert!(Instant::now() < deadline, "never 8 in flight:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (replies, live) = tokio::join!(sleeping, watching);
    let took = started.elapsed();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.text(), "slept 1000 ms\n");
    }
    assert_eq!(live, Some(1.0), "eight requests in flight on one instance");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(
        hits(&server, "/c3").await,
        "hits 10\n",
        "one instance took them all"
    );
    server.settled_metrics().await;

    // Past its concurrency, a second instance takes the rest: with room for
    // 8, the 9th..12th of twelve go elsewhere.
    let replies =
        futures_util::future::join_all((0..12).map(|_| server.get("/c3/sleep?ms=500"))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(
        hits(&server, "/c3").await,
        "hits 19\n",
        "the kept instance took 8 of the 12"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_wasi_0_2_instance_serves_one_request_at_a_time() {
    let settings = "[instances]\nreuse = true\npool-size = 1\n";
    let server = TestServer::start_with_admin(root(settings), |_| {}).await;
    assert_eq!(hits(&server, "/c2").await, "hits 1\n");
    // Four at once need four instances: the warm one takes one of them.
    let started = Instant::now();
    let replies =
        futures_util::future::join_all((0..4).map(|_| server.get("/c2/sleep?ms=1000"))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert!(started.elapsed() < Duration::from_secs(4));
    // One of the four goes back to the pool of one: it served one sleep,
    // and the warm one (if it was another) was dropped.
    let count = hits(&server, "/c2").await;
    assert!(
        count == "hits 2\n" || count == "hits 3\n",
        "a warm instance that served one or two requests, not four: {count}"
    );
    let metrics = server.settled_metrics().await;
    assert_eq!(metrics.value("wasmlet_live_instances", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_left_still_times_out_on_a_shared_wasi_0_3_instance() {
    let settings = "[instances]\nreuse = true\n[limits]\nrequest-timeout = \"4s\"\n";
    let server = TestServer::start_with_admin(root(settings), |_| {}).await;
    assert_eq!(hits(&server, "/c3").await, "hits 1\n");
    // The client gives up while the guest spins, and the server cancels the
    // request; the spin goes on in the shared instance, which other requests
    // would get, until the request's timeout ends the instance.
    let gave_up = tokio::time::timeout(Duration::from_millis(300), server.get("/c3/spin")).await;
    assert!(gave_up.is_err(), "the spin answered");
    assert!(
        log_contains(
            "client went away; handler cancelled method=GET path=\"/c3/spin\"",
            Duration::from_secs(20)
        )
        .await
    );
    let metrics = server.settled_metrics().await;
    assert_eq!(metrics.value("wasmlet_live_instances", &[]), Some(0.0));
    assert_eq!(hits(&server, "/c3").await, "hits 1\n", "a new instance");
}
