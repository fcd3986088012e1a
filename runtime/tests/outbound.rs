//! Outbound HTTP through the public API against real upstream servers on
//! `127.0.0.1:0` that count the connections they accept, so "denied" is
//! checked as "no connection was made", not just as an error value.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use wasmlet::capability::http::{
    FetchError, HttpClient, HttpSettings, OutboundRequest, OutboundResponse, Rule,
    format_header_block, parse_header_block,
};

type Body = UnsyncBoxBody<Bytes, Infallible>;
type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// An upstream server and what it has seen.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Upstream {
    /// Starts a server whose every request is answered by `handler`.
    async fn start<F, Fut>(handler: F) -> Upstream
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            requests: Arc::default(),
        };
        let (connections, requests) = (upstream.connections.clone(), upstream.requests.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                connections.fetch_add(1, Ordering::SeqCst);
                let (handler, requests) = (handler.clone(), requests.clone());
                let service = service_fn(move |request| {
                    requests.fetch_add(1, Ordering::SeqCst);
                    let answer = handler(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        upstream
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn rule(&self) -> Rule {
        Rule::parse(&self.url("")).unwrap()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn text(body: &'static str) -> Response<Body> {
    Response::builder()
        .header("x-upstream", "yes")
        .body(Full::new(Bytes::from(body)).boxed_unsync())
        .unwrap()
}

fn redirect(status: StatusCode, location: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("location", location)
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap()
}

/// A body whose chunks the test sends one by one; it ends when `sender` drops.
fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), receiver))
    });
    (sender, StreamBody::new(stream).boxed_unsync())
}

fn settings(allow: &[Rule]) -> HttpSettings {
    HttpSettings {
        allow: allow.to_vec(),
        timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(400),
        ..HttpSettings::default()
    }
}

fn get(url: impl Into<String>) -> OutboundRequest {
    OutboundRequest {
        method: Method::GET,
        url: url.into(),
        headers: HeaderMap::new(),
        body: Bytes::new(),
    }
}

async fn send(
    settings: HttpSettings,
    request: OutboundRequest,
) -> Result<OutboundResponse, FetchError> {
    HttpClient::new(settings).unwrap().send(request).await
}

/// The whole body, or the first error with the bytes read before it.
async fn read_all(response: &mut OutboundResponse) -> Result<Vec<u8>, (FetchError, usize)> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(error) => return Err((error, body.len())),
        }
    }
}

#[tokio::test]
async fn an_allow_list_entry_naming_the_loopback_address_reaches_it() {
    let upstream = Upstream::start(|_| async { text("hello") }).await;
    let mut response = send(settings(&[upstream.rule()]), get(upstream.url("/x")))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["x-upstream"], "yes");
    let block = String::from_utf8(format_header_block(&response.headers)).unwrap();
    assert!(block.contains("x-upstream: yes\n"), "{block}");
    assert_eq!(read_all(&mut response).await.unwrap(), b"hello");
    assert_eq!(response.chunk().await, Ok(None), "the end stays the end");
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn a_host_outside_the_allow_list_is_denied_without_a_connection() {
    let upstream = Upstream::start(|_| async { text("hello") }).await;
    let other_port =
        Rule::parse(&format!("http://127.0.0.1:{}", upstream.addr.port() ^ 1)).unwrap();
    let error = send(settings(&[other_port]), get(upstream.url("/")))
        .await
        .unwrap_err();
    let origin = format!("\"http://{}\"", upstream.addr);
    assert!(
        matches!(&error, FetchError::Denied(m) if m.contains(&origin)),
        "{error}"
    );

    let empty = send(settings(&[]), get(upstream.url("/")))
        .await
        .unwrap_err();
    assert!(matches!(empty, FetchError::Denied(_)), "{empty}");
    assert_eq!(upstream.connections(), 0);
}

#[tokio::test]
async fn a_wildcard_rule_does_not_grant_a_loopback_address() {
    let upstream = Upstream::start(|_| async { text("hello") }).await;
    let wildcard = Rule::parse("http://*:*").unwrap();
    let error = send(
        settings(std::slice::from_ref(&wildcard)),
        get(upstream.url("/")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, FetchError::Denied(m) if m.contains("loopback")),
        "{error}"
    );
    assert_eq!(upstream.connections(), 0);

    let open = HttpSettings {
        allow_private: true,
        ..settings(&[wildcard])
    };
    let response = send(open, get(upstream.url("/"))).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn a_localhost_rule_is_denied_because_it_resolves_to_loopback_unless_private_is_allowed() {
    let upstream = Upstream::start(|_| async { text("hello") }).await;
    let url = format!("http://localhost:{}/", upstream.addr.port());
    let localhost = Rule::parse("http://localhost:*").unwrap();
    let error = send(settings(std::slice::from_ref(&localhost)), get(&url))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FetchError::Denied(m) if m.contains("localhost resolves to")),
        "{error}"
    );
    assert_eq!(upstream.connections(), 0);

    let open = HttpSettings {
        allow_private: true,
        ..settings(&[localhost])
    };
    let mut response = send(open, get(&url)).await.unwrap();
    assert_eq!(read_all(&mut response).await.unwrap(), b"hello");
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn a_redirect_to_a_host_outside_the_allow_list_is_denied_without_a_connection() {
    let second = Upstream::start(|_| async { text("second") }).await;
    let target = second.url("/");
    let first = Upstream::start(move |_| {
        let target = target.clone();
        async move { redirect(StatusCode::FOUND, target) }
    })
    .await;
    let error = send(settings(&[first.rule()]), get(first.url("/")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FetchError::Denied(m) if m.contains("redirect from") && m.contains(&second.addr.to_string())),
        "{error}"
    );
    assert_eq!(first.requests(), 1);
    assert_eq!(second.connections(), 0);
}

#[tokio::test]
async fn a_redirect_to_a_name_resolving_to_loopback_is_denied_without_a_connection() {
    let second = Upstream::start(|_| async { text("second") }).await;
    let target = format!("http://localhost:{}/", second.addr.port());
    let first = Upstream::start(move |_| {
        let target = target.clone();
        async move { redirect(StatusCode::FOUND, target) }
    })
    .await;
    let rules = [first.rule(), Rule::parse("http://localhost:*").unwrap()];
    let error = send(settings(&rules), get(first.url("/")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FetchError::Denied(m) if m.contains("localhost resolves to")),
        "{error}"
    );
    assert_eq!(second.connections(), 0);
}

#[tokio::test]
async fn a_redirect_to_an_allowed_host_is_followed_with_its_body() {
    let second = Upstream::start(|request: Request<Incoming>| async move {
        let method = request.method().clone();
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let seen = format!("second saw {method} {}", String::from_utf8_lossy(&body));
        Response::new(Full::new(Bytes::from(seen)).boxed_unsync())
    })
    .await;
    let target = second.url("/landing");
    let first = Upstream::start(move |_| {
        let target = target.clone();
        async move { redirect(StatusCode::TEMPORARY_REDIRECT, target) }
    })
    .await;
    let request = OutboundRequest {
        method: Method::POST,
        body: Bytes::from_static(b"payload"),
        ..get(first.url("/"))
    };
    let mut response = send(settings(&[first.rule(), second.rule()]), request)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    // A 307 keeps the method and the body.
    assert_eq!(
        read_all(&mut response).await.unwrap(),
        b"second saw POST payload"
    );
    assert_eq!(second.requests(), 1);
}

#[tokio::test]
async fn a_redirect_chain_longer_than_max_redirects_fails() {
    let looping = Upstream::start(|request: Request<Incoming>| async move {
        let n: u32 = request.uri().path()[1..].parse().unwrap_or(0);
        redirect(StatusCode::FOUND, format!("/{}", n + 1))
    })
    .await;
    let limited = HttpSettings {
        max_redirects: 2,
        ..settings(&[looping.rule()])
    };
    let error = send(limited, get(looping.url("/0"))).await.unwrap_err();
    assert!(
        matches!(&error, FetchError::Failed(m) if m.contains("max-redirects = 2")),
        "{error}"
    );
    assert_eq!(looping.requests(), 3, "the first request and two redirects");
}

#[tokio::test]
async fn with_max_redirects_zero_the_handler_gets_the_redirect_itself() {
    let upstream =
        Upstream::start(|_| async { redirect(StatusCode::FOUND, "/elsewhere".into()) }).await;
    let none = HttpSettings {
        max_redirects: 0,
        ..settings(&[upstream.rule()])
    };
    let response = send(none, get(upstream.url("/"))).await.unwrap();
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(response.headers["location"], "/elsewhere");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn an_upstream_slower_than_the_timeout_times_out() {
    let upstream = Upstream::start(|_| async {
        std::future::pending::<()>().await;
        unreachable!()
    })
    .await;
    let started = Instant::now();
    let error = send(settings(&[upstream.rule()]), get(upstream.url("/")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FetchError::Timeout(m) if m.contains("400ms")),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stalls_past_the_timeout_fails_the_read() {
    let (sender, body) = channel_body();
    let body = Arc::new(Mutex::new(Some(body)));
    let upstream = Upstream::start(move |_| {
        let body = body.clone();
        async move { Response::new(body.lock().await.take().unwrap()) }
    })
    .await;
    sender.send(Bytes::from_static(b"first")).await.unwrap();
    let mut response = send(settings(&[upstream.rule()]), get(upstream.url("/")))
        .await
        .unwrap();
    assert_eq!(response.chunk().await.unwrap().unwrap(), "first");
    let error = response.chunk().await.unwrap_err();
    assert!(matches!(error, FetchError::Timeout(_)), "{error}");
    assert_eq!(
        response.chunk().await.unwrap_err(),
        error,
        "a failed body stays failed"
    );
    drop(sender);
}

#[tokio::test]
async fn a_streamed_body_past_max_response_size_fails_with_too_large() {
    let upstream = Upstream::start(|_| async {
        let (sender, body) = channel_body();
        tokio::spawn(async move {
            for _ in 0..4 {
                if sender.send(Bytes::from(vec![b'x'; 1000])).await.is_err() {
                    return;
                }
            }
        });
        Response::new(body)
    })
    .await;
    let small = HttpSettings {
        max_response_size: 2500,
        ..settings(&[upstream.rule()])
    };
    let mut response = send(small, get(upstream.url("/"))).await.unwrap();
    assert!(!response.headers.contains_key("content-length"));
    let (error, read) = read_all(&mut response).await.unwrap_err();
    assert_eq!(error, FetchError::TooLarge { limit: 2500 });
    assert!(read <= 2500, "{read} bytes handed out");
    assert!(error.to_string().contains("max-response-size"), "{error}");
}

#[tokio::test]
async fn a_declared_length_over_max_response_size_fails_at_the_first_read() {
    let upstream = Upstream::start(|_| async {
        Response::new(Full::new(Bytes::from(vec![b'x'; 3000])).boxed_unsync())
    })
    .await;
    let small = HttpSettings {
        max_response_size: 2999,
        ..settings(&[upstream.rule()])
    };
    let mut response = send(small, get(upstream.url("/"))).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.chunk().await,
        Err(FetchError::TooLarge { limit: 2999 })
    );

    let exact = HttpSettings {
        max_response_size: 3000,
        ..settings(&[upstream.rule()])
    };
    let mut response = send(exact, get(upstream.url("/"))).await.unwrap();
    assert_eq!(read_all(&mut response).await.unwrap().len(), 3000);
}

#[tokio::test]
async fn body_chunks_arrive_while_the_upstream_is_still_sending() {
    let (sender, body) = channel_body();
    let body = Arc::new(Mutex::new(Some(body)));
    let upstream = Upstream::start(move |_| {
        let body = body.clone();
        async move { Response::new(body.lock().await.take().unwrap()) }
    })
    .await;
    let mut response = send(settings(&[upstream.rule()]), get(upstream.url("/")))
        .await
        .unwrap();
    for part in ["one", "two", "three"] {
        sender.send(Bytes::from(part)).await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), part);
    }
    drop(sender);
    assert_eq!(response.chunk().await, Ok(None));
}

#[tokio::test]
async fn a_post_with_a_body_and_a_custom_header_reaches_the_upstream() {
    let upstream = Upstream::start(|request: Request<Incoming>| async move {
        let (head, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let seen = format!(
            "{} {} custom={:?} agent={:?} length={:?} body={}",
            head.method,
            head.uri,
            head.headers.get("x-custom"),
            head.headers.get("user-agent"),
            head.headers.get("content-length"),
            String::from_utf8_lossy(&body)
        );
        Response::new(Full::new(Bytes::from(seen)).boxed_unsync())
    })
    .await;
    let request = OutboundRequest {
        method: Method::POST,
        url: upstream.url("/submit?q=1"),
        headers: parse_header_block(b"X-Custom: forty two\r\n").unwrap(),
        body: Bytes::from_static(b"the body"),
    };
    let mut response = send(settings(&[upstream.rule()]), request).await.unwrap();
    let seen = String::from_utf8(read_all(&mut response).await.unwrap()).unwrap();
    assert!(seen.starts_with("POST /submit?q=1 "), "{seen}");
    assert!(seen.contains("custom=Some(\"forty two\")"), "{seen}");
    assert!(seen.contains("agent=Some(\"wasmlet/"), "{seen}");
    assert!(seen.contains("length=Some(\"8\")"), "{seen}");
    assert!(seen.ends_with("body=the body"), "{seen}");
}

#[tokio::test]
async fn a_header_the_host_owns_makes_the_request_invalid_without_a_connection() {
    let upstream = Upstream::start(|_| async { text("hello") }).await;
    for (name, value) in [
        ("host", "evil.example"),
        ("content-length", "1"),
        ("transfer-encoding", "chunked"),
        ("connection", "upgrade"),
        ("proxy-authorization", "Basic eA=="),
    ] {
        let mut request = get(upstream.url("/"));
        request
            .headers
            .insert(name, HeaderValue::from_static(value));
        let error = send(settings(&[upstream.rule()]), request)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, FetchError::Invalid(m) if m.contains(name)),
            "{error}"
        );
    }
    assert_eq!(upstream.connections(), 0);
}

#[tokio::test]
async fn malformed_urls_schemes_and_connect_are_invalid() {
    let open = HttpSettings {
        allow_private: true,
        ..settings(&[Rule::parse("http://*:*").unwrap()])
    };
    for url in [
        "not a url",
        "/relative",
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
    ] {
        let error = send(open.clone(), get(url)).await.unwrap_err();
        assert!(matches!(error, FetchError::Invalid(_)), "{url}: {error}");
    }
    let connect = OutboundRequest {
        method: Method::CONNECT,
        ..get("http://127.0.0.1:9/")
    };
    let error = send(open, connect).await.unwrap_err();
    assert!(
        matches!(&error, FetchError::Invalid(m) if m.contains("CONNECT")),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_connection_fails_and_names_the_url() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/");
    let rule = Rule::parse(&url).unwrap();
    let error = send(settings(&[rule]), get(&url)).await.unwrap_err();
    assert!(
        matches!(&error, FetchError::Failed(m) if m.contains(&url)),
        "{error}"
    );
}

#[tokio::test]
async fn https_goes_through_tls_and_fails_against_a_plain_http_upstream() {
    let upstream = Upstream::start(|_| async { text("plain") }).await;
    let url = format!("https://{}/", upstream.addr);
    let error = send(settings(&[Rule::parse(&url).unwrap()]), get(&url))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Failed(_)), "{error}");
    assert_eq!(upstream.connections(), 1, "the TLS handshake was attempted");
}

#[test]
fn a_zero_timeout_is_rejected_when_the_client_is_built() {
    let zero = HttpSettings {
        timeout: Duration::ZERO,
        ..HttpSettings::default()
    };
    let error = HttpClient::new(zero).unwrap_err();
    assert!(
        matches!(&error, FetchError::Invalid(m) if m.contains("timeout")),
        "{error}"
    );
}

#[test]
fn the_default_settings_reach_nothing_and_have_safe_limits() {
    let defaults = HttpSettings::default();
    assert!(defaults.allow.is_empty());
    assert!(!defaults.allow_private);
    assert_eq!(defaults.timeout, Duration::from_secs(30));
    assert_eq!(defaults.connect_timeout, Duration::from_secs(5));
    assert_eq!(defaults.max_response_size, 16 << 20);
    assert_eq!(defaults.max_redirects, 5);
    let client = HttpClient::new(defaults.clone()).unwrap();
    assert_eq!(client.settings(), &defaults);
}
