//! Hardening: a server in front of the internet keeps serving whatever
//! arrives. Each test tries one attack through the real server — overload,
//! a hostile client, a hostile handler — and checks that the attack is
//! bounded and that everything else keeps working.
//!
//! Tests print what they measured (`cargo test -- --nocapture` shows it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmlet_tests::{
    TestServer, WebRoot, closed_within, eventually, logs, raw_body, raw_status, rss_bytes, says,
};

/// The header timeout of these tests: short, so a connection that should be
/// cut is cut quickly.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// How late past [`HEADER_TIMEOUT`] a cut may come: a loaded test machine
/// runs timers late, and the tests run side by side.
const SLACK: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface a client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn with_hello(root: WebRoot) -> WebRoot {
    root.fixture("hello.wat", "hello.wat")
}

async fn assert_still_serves(server: &TestServer) {
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "the server stopped serving");
    assert_eq!(reply.text(), "hello\n");
}

/// How many times a guest at `handler` logged `guest ran` (the
/// `logs_then_sleeps.wat` fixture) in this test binary.
fn guest_runs(handler: &str) -> usize {
    logs()
        .lines()
        .filter(|line| line.contains("guest ran") && line.contains(handler))
        .count()
}

/// Reads from `stream` until the end of a response head, for at most
/// `within`; returns what arrived.
async fn read_head(stream: &mut tokio::net::TcpStream, within: Duration) -> String {
    read_until(stream, "\r\n\r\n", within).await
}

/// Reads from `stream` until `needle` has arrived, for at most `within`;
/// returns what arrived.
async fn read_until(stream: &mut tokio::net::TcpStream, needle: &str, within: Duration) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let needle = needle.as_bytes();
    let _ = tokio::time::timeout(within, async {
        while !seen.windows(needle.len()).any(|w| w == needle) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&seen).into_owned()
}

// ---------------------------------------------------------------------------
// Overload
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fifty_against_a_cap_of_four_gets_fast_503s_and_200s_for_the_admitted() {
    let root = with_hello(WebRoot::new()).fixture("burst.wat", "logs_then_sleeps.wat");
    let queue_timeout = Duration::from_secs(5);
    let server = Arc::new(
        TestServer::start_with(root, |c| {
            c.max_concurrency = Some(4);
            c.max_queue = 4;
            c.queue_timeout = queue_timeout;
        })
        .await,
    );
    // Compiled first: the burst measures admission, not a cold start.
    assert_eq!(server.get("/burst").await.status, StatusCode::OK);
    let runs_before = guest_runs("/burst.wat");

    let replies = join_all((0..50).map(|_| {
        let server = server.clone();
        async move {
            let start = Instant::now();
            let reply = server.get("/burst").await;
            (reply, start.elapsed())
        }
    }))
    .await;

    let ok: Vec<_> = replies
        .iter()
        .filter(|(r, _)| r.status == StatusCode::OK)
        .collect();
    let busy: Vec<_> = replies
        .iter()
        .filter(|(r, _)| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(ok.len() + busy.len(), 50, "only 200s and 503s");
    // Four run at once and four wait in the queue for them; a request that
    // arrives after the first ones finished may be admitted too.
    assert!(ok.len() >= 8, "{} admitted", ok.len());
    assert!(busy.len() >= 30, "only {} turned away", busy.len());
    for (reply, _) in &ok {
        assert_eq!(reply.text(), "slept\n");
    }
    let mut busy_ms: Vec<f64> = busy
        .iter()
        .map(|(reply, took)| {
            assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
            took.as_secs_f64() * 1e3
        })
        .collect();
    busy_ms.sort_by(f64::total_cmp);
    let slowest = busy_ms.last().copied().unwrap_or_default();
    // Turned away at once, not after the guest's 200 ms or the 5 s queue
    // timeout.
    assert!(slowest < 1000.0, "a 503 took {slowest:.1} ms");
    println!(
        "burst of 50 against a cap of 4 (+4 queued): {} × 200, {} × 503; 503 latency median {:.1} ms, max {slowest:.1} ms",
        ok.len(),
        busy.len(),
        busy_ms[busy_ms.len() / 2]
    );

    // A 503 ran no guest code: one run per 200, no more.
    assert!(
        eventually(Duration::from_secs(5), || guest_runs("/burst.wat")
            - runs_before
            == ok.len())
        .await,
        "{} guest runs for {} admitted requests",
        guest_runs("/burst.wat") - runs_before,
        ok.len()
    );
    assert_eq!(server.stats.queue_depth(), 0);
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_handler_cap_from_wasmlet_toml_turns_away_the_excess_of_that_handler_only() {
    let root = WebRoot::new()
        .fixture("capped/sleep.wat", "sleep_200ms.wat")
        .file("capped/wasmlet.toml", "[limits]\nmax-concurrency = 1\n")
        .fixture("free/sleep.wat", "sleep_200ms.wat");
    let server = Arc::new(
        TestServer::start_with(root, |c| {
            c.max_queue = 4;
            c.queue_timeout = Duration::from_millis(100);
        })
        .await,
    );
    let burst = |path: &'static str| {
        let server = server.clone();
        async move {
            join_all((0..6).map(|_| {
                let server = server.clone();
                async move { server.get(path).await }
            }))
            .await
        }
    };
    let (capped, free) = tokio::join!(burst("/capped/sleep"), burst("/free/sleep"));
    let ok = capped.iter().filter(|r| r.status == StatusCode::OK).count();
    let busy: Vec<_> = capped
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    // One runs 200 ms; the queue wait of 100 ms admits no second one.
    assert_eq!(
        ok,
        1,
        "{:?}",
        capped.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(busy.len(), 5);
    assert!(busy.iter().all(|r| r.header("retry-after") == Some("1")));
    assert!(
        free.iter().all(|r| r.status == StatusCode::OK),
        "the cap is per handler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_depth_is_a_metric_while_requests_wait() {
    let root = WebRoot::new().fixture("burst.wat", "logs_then_sleeps.wat");
    let server = Arc::new(
        TestServer::start_with_admin(root, |c| {
            c.max_concurrency = Some(1);
            c.max_queue = 10;
            c.queue_timeout = Duration::from_secs(10);
        })
        .await,
    );
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.get("/burst").await.status })
        })
        .collect();
    // One runs, three wait; the scrape sees them (each run is 200 ms, so a
    // scrape that lands between two is retried).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut deepest = 0.0;
    while Instant::now() < deadline && deepest < 2.0 {
        let depth = server
            .metrics()
            .await
            .value("wasmlet_queue_depth", &[])
            .expect("wasmlet_queue_depth is exposed");
        deepest = f64::max(deepest, depth);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(deepest >= 2.0, "the queue never showed; deepest {deepest}");
    for request in waiting {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    let settled = server.settled_metrics().await;
    assert_eq!(settled.value("wasmlet_queue_depth", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_clients_wait_while_admitted_ones_are_served() {
    let server =
        TestServer::start_with(with_hello(WebRoot::new()), |c| c.max_connections = 2).await;
    let request = b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut admitted = Vec::new();
    for _ in 0..2 {
        let mut stream = server.connect().await;
        stream.write_all(request).await.unwrap();
        let answer = read_until(&mut stream, "hello\n", Duration::from_secs(5)).await;
        assert_eq!(raw_status(&answer), Some(200), "{answer:?}");
        admitted.push(stream);
    }
    assert_eq!(server.stats.open_connections(), 2);

    // The kernel completes the third handshake, but the server does not
    // accept it: its request waits.
    let mut third = server.connect().await;
    third.write_all(request).await.unwrap();
    let early = read_head(&mut third, Duration::from_millis(300)).await;
    assert_eq!(early, "", "a connection past the cap was served");

    // The admitted connections keep being served meanwhile.
    let mut first = admitted.remove(0);
    first.write_all(request).await.unwrap();
    let again = read_until(&mut first, "hello\n", Duration::from_secs(5)).await;
    assert_eq!(raw_status(&again), Some(200), "{again:?}");

    // One closes: the third is accepted and answered.
    drop(first);
    let start = Instant::now();
    let head = read_head(&mut third, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&head), Some(200), "{head:?}");
    println!(
        "connection cap 2: the third connection was answered {:.1} ms after one closed",
        start.elapsed().as_secs_f64() * 1e3
    );
}

// ---------------------------------------------------------------------------
// Hostile clients
// ---------------------------------------------------------------------------

async fn hardened(root: WebRoot) -> TestServer {
    TestServer::start_with(with_hello(root), |c| c.header_timeout = HEADER_TIMEOUT).await
}

/// Asserts the connection was closed at the header timeout, give or take.
fn assert_cut_at_header_timeout(what: &str, took: Option<Duration>) {
    let took = took.unwrap_or_else(|| panic!("{what}: still open after {HEADER_TIMEOUT:?}"));
    assert!(
        took >= HEADER_TIMEOUT - Duration::from_millis(100),
        "{what}: cut after only {took:?}"
    );
    println!(
        "{what}: closed after {:.0} ms (header timeout {} ms)",
        took.as_secs_f64() * 1e3,
        HEADER_TIMEOUT.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_at_the_header_timeout() {
    let server = hardened(WebRoot::new()).await;
    let mut silent = server.connect().await;
    let took = closed_within(&mut silent, HEADER_TIMEOUT + SLACK).await;
    assert_cut_at_header_timeout("a silent connection", took);
    assert_still_serves(&server).await;
}

/// Sends `bytes` one at a time, `every` apart, until the server hangs up.
async fn dribble(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    bytes: &'static [u8],
    every: Duration,
) {
    for byte in bytes {
        if writer.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

const DRIBBLED_HEAD: &[u8] =
    b"GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_head_is_closed_at_the_header_timeout() {
    let server = hardened(WebRoot::new()).await;
    // A byte every 200 ms: five times as often as the one every 2 s
    // against a 30 s timeout, so a timer that restarts on every byte would
    // never fire.
    let (mut reader, writer) = server.connect().await.into_split();
    let sender = tokio::spawn(dribble(writer, DRIBBLED_HEAD, Duration::from_millis(200)));
    let start = Instant::now();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(HEADER_TIMEOUT + SLACK, reader.read_to_end(&mut answer))
        .await
        .is_ok();
    let took = closed.then(|| start.elapsed());
    assert_cut_at_header_timeout("a slowloris head (a byte every 200 ms)", took);
    assert!(
        !String::from_utf8_lossy(&answer).contains("hello"),
        "the dribbled request was served"
    );
    sender.abort();
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_second_request_on_a_kept_alive_connection_is_closed_too() {
    let server = hardened(WebRoot::new()).await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("hello\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the first answer");
        seen.extend_from_slice(&buf[..n]);
    }
    let (mut reader, writer) = stream.into_split();
    let start = Instant::now();
    let sender = tokio::spawn(dribble(writer, DRIBBLED_HEAD, Duration::from_millis(200)));
    let closed = tokio::time::timeout(HEADER_TIMEOUT + SLACK, async {
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest).await;
    })
    .await
    .is_ok();
    assert_cut_at_header_timeout(
        "a slowloris second request (kept-alive connection)",
        closed.then(|| start.elapsed()),
    );
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_http2_preface_is_closed_at_the_header_timeout() {
    let server = hardened(WebRoot::new()).await;
    let mut stream = server.connect().await;
    stream.write_all(H2_PREFACE).await.unwrap();
    let took = closed_within(&mut stream, HEADER_TIMEOUT + SLACK).await;
    assert_cut_at_header_timeout("a bare HTTP/2 preface", took);
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_gets_431_and_one_within_the_limit_is_served() {
    let server = hardened(WebRoot::new()).await;
    let limit = wasmlet::config::DEFAULT_MAX_HEADER_SIZE as usize;
    let head = |value_len: usize| {
        format!(
            "GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(value_len)
        )
    };
    let over = server
        .raw(head(limit + 1024).as_bytes(), Duration::from_secs(5))
        .await;
    assert_eq!(
        raw_status(&over),
        Some(431),
        "{:?}",
        &over[..over.len().min(200)]
    );
    let within = server
        .raw(head(limit - 1024).as_bytes(), Duration::from_secs(5))
        .await;
    assert_eq!(raw_status(&within), Some(200), "{within:?}");

    // More header fields than hyper's 100 is too large as well.
    let mut many = String::from("GET /hello HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..120 {
        many.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let answer = server.raw(many.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw_status(&answer), Some(431), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_an_oversized_header_list_gets_431_and_hello_still_answers() {
    let server = hardened(WebRoot::new()).await;
    let mut h2 = server.http2().await;
    let limit = wasmlet::config::DEFAULT_MAX_HEADER_SIZE as usize;
    let request = Request::get(server.url("/hello"))
        .header("x-big", "a".repeat(limit + 1024))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = h2.send_request(request).await.expect("an answer");
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );

    let mut h2 = server.http2().await;
    let request = Request::get(server.url("/hello"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = h2.send_request(request).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello\n");
}

/// One HTTP/2 frame: 9-byte header and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

const SETTINGS: u8 = 0x4;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;

/// Reads frames until one of `kind` arrives (or the connection ends);
/// returns its flags and payload.
async fn next_frame_of(stream: &mut tokio::net::TcpStream, kind: u8) -> Option<(u8, Vec<u8>)> {
    loop {
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).await.ok()?;
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.ok()?;
        if header[3] == kind {
            return Some((header[4], payload));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_advertises_its_stream_and_header_limits() {
    let server = hardened(WebRoot::new()).await;
    let mut stream = server.connect().await;
    stream.write_all(H2_PREFACE).await.unwrap();
    stream
        .write_all(&h2_frame(SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    let settings = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (flags, payload) = next_frame_of(&mut stream, SETTINGS)
                .await
                .expect("the server's SETTINGS");
            if flags & 0x1 == 0 {
                return payload;
            }
        }
    })
    .await
    .expect("SETTINGS within 5 s");
    let value = |id: u16| {
        settings
            .chunks_exact(6)
            .find(|entry| u16::from_be_bytes([entry[0], entry[1]]) == id)
            .map(|entry| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]))
    };
    assert_eq!(
        value(0x3),
        Some(wasmlet::config::HTTP2_MAX_CONCURRENT_STREAMS),
        "SETTINGS_MAX_CONCURRENT_STREAMS"
    );
    assert_eq!(
        value(0x6),
        Some(wasmlet::config::DEFAULT_MAX_HEADER_SIZE),
        "SETTINGS_MAX_HEADER_LIST_SIZE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_rapid_reset_flood_is_sent_away_and_others_are_still_served() {
    let server = hardened(WebRoot::new()).await;
    let mut stream = server.connect().await;
    let mut flood = H2_PREFACE.to_vec();
    flood.extend(h2_frame(SETTINGS, 0, 0, &[]));
    // GET /hello, then cancel it at once, a thousand times: HPACK indexed
    // :method GET (0x82) and :scheme http (0x86), then :path and
    // :authority as literals without indexing.
    let mut block = vec![0x82, 0x86, 0x04, 6];
    block.extend_from_slice(b"/hello");
    block.extend_from_slice(&[0x01, 9]);
    block.extend_from_slice(b"localhost");
    for i in 0..1000u32 {
        let id = 2 * i + 1;
        // END_STREAM | END_HEADERS.
        flood.extend(h2_frame(HEADERS, 0x5, id, &block));
        // CANCEL.
        flood.extend(h2_frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let start = Instant::now();
    // The server may hang up before it has read it all.
    let _ = stream.write_all(&flood).await;
    let goaway = tokio::time::timeout(Duration::from_secs(5), next_frame_of(&mut stream, GOAWAY))
        .await
        .expect("a GOAWAY within 5 s")
        .map(|(_, payload)| u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]));
    // ENHANCE_YOUR_CALM.
    assert_eq!(goaway, Some(0xb), "the GOAWAY's error code");
    println!(
        "rapid reset: GOAWAY ENHANCE_YOUR_CALM after {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_gets_413_before_the_guest_runs() {
    let root = WebRoot::new().fixture("upload.wat", "logs_then_sleeps.wat");
    let server = hardened(root).await;
    let too_big = wasmlet::config::DEFAULT_MAX_BODY_SIZE + 1;
    let mut stream = server.connect().await;
    let start = Instant::now();
    stream
        .write_all(
            format!(
                "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {too_big}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // No body is sent: the answer must not wait for one.
    let head = read_head(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&head), Some(413), "{head:?}");
    println!(
        "Content-Length {too_big}: 413 after {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    // Settle, then check the guest never logged a run.
    assert_still_serves(&server).await;
    assert_eq!(guest_runs("/upload.wat"), 0, "the guest ran");
}

/// What `counts_body.wat` answered in a raw HTTP/1.1 answer:
/// `("read", N)` or `("failed after", N)`.
fn counted(answer: &str) -> (String, usize) {
    let body =
        raw_body(answer.as_bytes()).unwrap_or_else(|| panic!("an incomplete answer: {answer:?}"));
    let body = String::from_utf8(body).expect("a text body");
    let (word, n) = body
        .trim_end()
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no count in {body:?}"));
    (word.to_owned(), n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_past_the_limit_fails_the_guests_read_at_the_limit() {
    let limit = 64 << 10;
    let server = TestServer::start_with(
        WebRoot::new().fixture("count.wat", "counts_body.wat"),
        |c| c.max_body_size = limit,
    )
    .await;
    let within = server.post_chunked("/count", 48 << 10).await;
    assert_eq!(raw_status(&within), Some(200), "{within:?}");
    assert_eq!(counted(&within), ("read".to_owned(), 48 << 10));

    // 400 also says the read after the failure failed too (the fixture
    // traps otherwise).
    let over = server.post_chunked("/count", 4 << 20).await;
    assert_eq!(raw_status(&over), Some(400), "{over:?}");
    let (word, read) = counted(&over);
    assert_eq!(word, "failed after");
    assert!(read as u64 <= limit, "the guest read {read} bytes");
    println!(
        "a 4 MiB chunked body against a 64 KiB limit: the guest's read failed after {read} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_fails_the_guests_read_at_the_body_timeout() {
    let body_timeout = Duration::from_millis(500);
    let server = TestServer::start_with(
        WebRoot::new().fixture("count.wat", "counts_body.wat"),
        |c| c.body_timeout = body_timeout,
    )
    .await;
    let (answer, took) = server.post_then_stall("/count").await;
    assert_eq!(raw_status(&answer), Some(400), "{answer:?}");
    assert_eq!(counted(&answer), ("failed after".to_owned(), 10));
    // Well before the 5 s request timeout.
    assert!(
        took >= body_timeout && took < Duration::from_secs(3),
        "{took:?}"
    );
    println!(
        "a body that stalls after 10 of 1000 bytes: the guest's read failed after {:.0} ms (body timeout 500 ms)",
        took.as_secs_f64() * 1e3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_smuggling_shapes_get_400_and_the_hidden_request_never_runs() {
    let root = WebRoot::new()
        .fixture("count.wat", "counts_body.wat")
        .file("hidden.wat", &says("hidden\n"));
    let server = TestServer::start_with_admin(root, |c| c.header_timeout = HEADER_TIMEOUT).await;
    const HIDDEN: &str = "GET /hidden HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rejected = [
        // Two lengths that disagree: which one ends the body?
        "POST /count HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhello",
        "POST /count HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 44\r\n\r\nhello",
        "POST /count HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello",
        // A transfer coding other than chunked last: the length is unknown.
        "POST /count HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST /count HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        // A Transfer-Encoding a lenient front end might skip.
        "POST /count HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        // Obsolete line folding.
        "POST /count HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nX-Folded: a\r\n b\r\n\r\n",
        // HTTP/1.0 has no Transfer-Encoding.
        "POST /count HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for shape in rejected {
        let answer = server
            .raw(
                format!("{shape}{HIDDEN}").as_bytes(),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(raw_status(&answer), Some(400), "{shape:?} got {answer:?}");
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{shape:?}: {answer:?}"
        );
    }
    // Both Content-Length and Transfer-Encoding: hyper reads the body by
    // Transfer-Encoding alone and closes the connection after the answer
    // (RFC 9112 §6.1), so what a Content-Length-reading proxy took for the
    // rest of the body is never parsed as a request.
    let both = [
        "POST /count HTTP/1.1\r\nHost: localhost\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /count HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 44\r\n\r\n0\r\n\r\n",
    ];
    for shape in both {
        let start = Instant::now();
        let answer = server
            .raw(
                format!("{shape}{HIDDEN}").as_bytes(),
                Duration::from_secs(5),
            )
            .await;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the connection stayed open"
        );
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{shape:?}: {answer:?}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer:?}"
        );
        assert!(!answer.contains("hidden"), "{answer:?}");
    }
    let metrics = server.settled_metrics().await;
    let hidden: f64 = ["200", "404", "500"]
        .iter()
        .filter_map(|status| {
            metrics.value(
                "wasmlet_requests_total",
                &[("handler", "/hidden.wat"), ("status", status)],
            )
        })
        .sum();
    assert_eq!(hidden, 0.0, "the hidden request ran:\n{metrics}");
    // The handler itself works when asked plainly.
    assert_eq!(server.get("/hidden").await.text(), "hidden\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_with_a_trap_in_the_middle_are_answered_in_order() {
    let root = WebRoot::new()
        .file("first.wat", &says("first\n"))
        .fixture("trap.wat", "trap_before_head.wat")
        .file("third.wat", &says("third\n"));
    let server = hardened(root).await;
    let answer = server
        .raw(
            b"GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET /trap HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET /third HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
    let statuses: Vec<Option<u16>> = answer
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|rest| raw_status(&format!("HTTP/1.1 {rest}")))
        .collect();
    assert_eq!(statuses, [Some(200), Some(500), Some(200)], "{answer:?}");
    let first = answer.find("first\n").expect("the first body");
    let third = answer.find("third\n").expect("the third body");
    let trap = answer.find("HTTP/1.1 500").unwrap();
    assert!(first < trap && trap < third, "out of order: {answer:?}");
}

// ---------------------------------------------------------------------------
// Hostile handlers
// ---------------------------------------------------------------------------

/// Requests `path` (a guest that never ends on its own) and checks it gets
/// `expected` at the request timeout while `/hello` keeps answering, and
/// that its instance is freed.
async fn bounded_by_the_request_timeout(fixture: &str, expected: StatusCode) {
    let timeout = Duration::from_secs(2);
    let root = with_hello(WebRoot::new()).fixture("hostile.wat", fixture);
    let server = Arc::new(TestServer::start_with(root, |c| c.request_timeout = timeout).await);
    let start = Instant::now();
    let hostile = tokio::spawn({
        let server = server.clone();
        async move { server.get("/hostile").await.status }
    });
    assert!(
        eventually(Duration::from_secs(5), || server.stats.live_instances()
            == 1)
        .await,
        "{fixture}: the guest never started"
    );
    let mut answered = 0;
    while !hostile.is_finished() {
        let asked = Instant::now();
        assert_still_serves(&server).await;
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "{fixture}: hello was slow"
        );
        answered += 1;
    }
    let status = hostile.await.unwrap();
    let took = start.elapsed();
    assert_eq!(status, expected, "{fixture}");
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "{fixture}: {took:?}"
    );
    assert!(answered > 0);
    assert!(
        eventually(Duration::from_secs(5), || server.stats.live_instances()
            == 0)
        .await,
        "{fixture}: the instance was not freed"
    );
    println!(
        "{fixture}: {expected} after {:.0} ms (request timeout 2 s); hello answered {answered} times meanwhile",
        took.as_secs_f64() * 1e3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_function_that_loops_is_stopped_at_the_request_timeout_and_others_keep_answering() {
    // The loader tries each new version once, under the request's limits:
    // the client waiting for that load gets 503 at its timeout, and the
    // version is then known broken, so later requests run nothing.
    bounded_by_the_request_timeout("start_function_loops.wat", StatusCode::SERVICE_UNAVAILABLE)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_of_292_million_years_gets_504_at_the_request_timeout() {
    bounded_by_the_request_timeout("sleeps_forever.wat", StatusCode::GATEWAY_TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_writes_forever_is_cut_at_the_request_timeout() {
    let timeout = Duration::from_secs(2);
    let root = with_hello(WebRoot::new()).fixture("firehose.wat", "writes_forever.wat");
    let server = TestServer::start_with(root, |c| c.request_timeout = timeout).await;

    // A client that reads everything: the body flows until the timeout, then
    // is cut rather than ended.
    let start = Instant::now();
    let response = server.open(Method::GET, "/firehose").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut received = 0usize;
    let ended = loop {
        match body.frame().await {
            Some(Ok(frame)) => received += frame.into_data().map_or(0, |d| d.len()),
            Some(Err(_)) => break "cut",
            None => break "ended cleanly",
        }
    };
    let took = start.elapsed();
    assert_eq!(ended, "cut");
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "{took:?}"
    );

    // A client that reads nothing: the guest waits on backpressure, and the
    // timeout still frees its instance while the client holds on.
    let stalled = server.open(Method::GET, "/firehose").await;
    assert!(
        eventually(Duration::from_secs(2), || server.stats.live_instances()
            == 1)
        .await,
        "the second guest never started"
    );
    assert!(
        eventually(timeout + Duration::from_secs(3), || server
            .stats
            .live_instances()
            == 0)
        .await,
        "the instance of a guest blocked on a client that does not read was not freed"
    );
    drop(stalled);
    assert_still_serves(&server).await;
    println!(
        "writes forever: {:.1} MiB streamed, then the body was cut after {:.0} ms (request timeout 2 s)",
        received as f64 / (1 << 20) as f64,
        took.as_secs_f64() * 1e3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_clients_that_hang_up_mid_guest_leave_no_instances_and_flat_memory() {
    // Writes its head, then waits a minute: every client hangs up while its
    // guest is running, and only cancellation frees the instance.
    let root = with_hello(WebRoot::new()).fixture("stuck.wat", "writes_then_waits_a_minute.wat");
    let server = Arc::new(
        TestServer::start_with(root, |c| c.request_timeout = Duration::from_secs(120)).await,
    );
    const TOTAL: usize = 2000;
    const WAVE: usize = 250;
    /// Waves before memory is measured: by then the pool has handed out as
    /// many instance slots as it ever will below.
    const WARM_UP: usize = 2;

    /// Opens `n` connections, waits until each guest has sent its head,
    /// then hangs them all up.
    async fn wave(server: &TestServer, n: usize) {
        let streams = join_all((0..n).map(|_| async {
            let mut stream = server.connect().await;
            stream
                .write_all(b"GET /stuck HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let head = read_head(&mut stream, Duration::from_secs(10)).await;
            assert_eq!(raw_status(&head), Some(200), "{head:?}");
            stream
        }))
        .await;
        drop(streams);
    }

    let start = Instant::now();
    let mut rss_before = 0;
    for i in 0..TOTAL / WAVE {
        // Cancelled guests linger for the grace period; let at most one
        // wave linger, so at most two waves' instances are ever alive.
        assert!(
            eventually(Duration::from_secs(10), || server.stats.live_instances()
                <= WAVE as u64)
            .await,
            "the instances of earlier waves were not freed"
        );
        wave(&server, WAVE).await;
        if i + 1 == WARM_UP {
            assert!(
                eventually(Duration::from_secs(10), || server.stats.live_instances()
                    == 0)
                .await,
                "the warm-up waves' instances were not freed"
            );
            rss_before = rss_bytes();
        }
    }
    let waves_took = start.elapsed();
    assert!(
        eventually(Duration::from_secs(10), || server.stats.live_instances()
            == 0
            && server.stats.in_flight() == 0)
        .await,
        "{} instances and {} requests left after {TOTAL} hang-ups",
        server.stats.live_instances(),
        server.stats.in_flight()
    );
    let rss_after = rss_bytes();
    let growth = rss_after.saturating_sub(rss_before);
    println!(
        "{TOTAL} hang-ups mid-guest in {:.1} s: live instances back to 0; RSS {:.1} MiB after the first {}, {:.1} MiB after all (+{:.1} MiB)",
        waves_took.as_secs_f64(),
        rss_before as f64 / (1 << 20) as f64,
        WARM_UP * WAVE,
        rss_after as f64 / (1 << 20) as f64,
        growth as f64 / (1 << 20) as f64
    );
    // Generous: the other tests in this binary run in the same process at
    // the same time. A leaked instance or connection per hang-up would be
    // far more.
    assert!(growth < 32 << 20, "memory grew by {} MiB", growth >> 20);
    assert_still_serves(&server).await;
}
