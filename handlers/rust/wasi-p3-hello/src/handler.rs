//! The component's one export, `wasi:http/handler.handle`, written with the
//! Spin SDK's `#[http_service]`: an `async fn` from an `http::Request` to an
//! `http::Response`, run by `wit-bindgen`'s async runtime on the component
//! model's own tasks (no poll loop in the guest).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::stream;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use spin_sdk::http::{Request, Response, StatusCode};
use spin_sdk::http_service;

/// Every answer's body: whole, streamed, or the request's own.
type Body = UnsyncBoxBody<Bytes, anyhow::Error>;

/// Requests this instance has taken, this one included: `1` on every
/// request of a fresh instance, counting up on a reused one (requests served
/// at once by one instance each count).
static REQUESTS: AtomicU64 = AtomicU64::new(0);

#[http_service]
async fn handle(request: Request) -> Result<Response<Body>, spin_sdk::http::Error> {
    let served = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    let path = request.uri().path();
    let last = path.rsplit('/').next().unwrap_or_default().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let response = match last.as_str() {
        "echo" => Response::new(
            request
                .into_body()
                .map_err(anyhow::Error::from)
                .boxed_unsync(),
        ),
        "stream" => stream_lines(&query),
        "hits" => text(StatusCode::OK, format!("hits {served}\n")),
        "sleep" => {
            let ms = param(&query, "ms").map_or(1000, |v| v.parse().unwrap_or(1000));
            spin_sdk::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms} ms\n"))
        }
        "trap" => panic!("the trap endpoint was asked to trap"),
        "spin" => {
            // Computes forever without a host call: only the host's epoch
            // interruption and request timeout end it.
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "grow" => {
            let mib: usize = param(&query, "mib").map_or(1, |v| v.parse().unwrap_or(1));
            // Written to, and kept from the optimiser, so the memory is real.
            let block = std::hint::black_box(vec![1u8; mib << 20]);
            text(StatusCode::OK, format!("grew {} MiB\n", block.len() >> 20))
        }
        "fetch" => match param(&query, "url") {
            Some(url) => match fetch(url).await {
                Ok((status, body)) => text(status, body),
                Err(e) => text(StatusCode::BAD_GATEWAY, format!("fetch failed: {e}\n")),
            },
            None => text(StatusCode::BAD_REQUEST, "give ?url=\n".to_owned()),
        },
        "fanout" => match param(&query, "url") {
            Some(url) => fan_out(url, param(&query, "n")).await,
            None => text(StatusCode::BAD_REQUEST, "give ?url=\n".to_owned()),
        },
        // An error instead of a response: the SDK returns it as the
        // `wasi:http` error code `internal-error`.
        "error" => {
            return Err(spin_sdk::http::Error::other(
                "the error endpoint was asked to fail",
            ));
        }
        "status" => {
            // Any code the `http` crate takes, 1xx included: the host decides
            // what it will send.
            let code = param(&query, "code").and_then(|v| v.parse().ok());
            match code.and_then(|c| StatusCode::from_u16(c).ok()) {
                Some(status) => text(status, format!("status {status}\n")),
                None => text(StatusCode::BAD_REQUEST, "give ?code=\n".to_owned()),
            }
        }
        "headers" => {
            let n: usize = param(&query, "n").map_or(1, |v| v.parse().unwrap_or(1));
            let size: usize = param(&query, "size").map_or(1, |v| v.parse().unwrap_or(1));
            let mut response = text(StatusCode::OK, format!("{n} headers\n"));
            let value = spin_sdk::http::HeaderValue::from_str(&"v".repeat(size))
                .map_err(|e| spin_sdk::http::Error::other(e.to_string()))?;
            for i in 0..n {
                let name = spin_sdk::http::HeaderName::from_bytes(format!("x-h-{i}").as_bytes())
                    .map_err(|e| spin_sdk::http::Error::other(e.to_string()))?;
                response.headers_mut().append(name, value.clone());
            }
            response
        }
        _ => {
            let name = param(&query, "name").unwrap_or("world");
            text(StatusCode::OK, format!("hello, {name}\n"))
        }
    };
    Ok(response)
}

/// Fetches `url` `n` times at once (default 3, at most 16) and answers with
/// one line per fetch, in order: its status, or the error.
async fn fan_out(url: &str, n: Option<&str>) -> Response<Body> {
    let n: usize = n.map_or(3, |v| v.parse().unwrap_or(3)).min(16);
    let fetches = (0..n).map(|_| fetch(url));
    let lines: String = join_all(fetches)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, result)| match result {
            Ok((status, _)) => format!("{i}: {}\n", status.as_u16()),
            Err(e) => format!("{i}: failed: {e}\n"),
        })
        .collect();
    text(StatusCode::OK, lines)
}

/// `GET url`: its status and body as text.
async fn fetch(url: &str) -> Result<(StatusCode, String), spin_sdk::http::Error> {
    let request = http_request(url)?;
    let response = spin_sdk::http::send(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A `GET` of `url` with an empty body.
fn http_request(url: &str) -> Result<spin_sdk::http::Request<Full<Bytes>>, spin_sdk::http::Error> {
    Ok(spin_sdk::http::Request::builder()
        .uri(url)
        .body(Full::new(Bytes::new()))?)
}

/// `chunks` lines, `ms` apart, each its own write: the host sends each one
/// as it comes.
fn stream_lines(query: &str) -> Response<Body> {
    let chunks: u32 = param(query, "chunks").map_or(5, |v| v.parse().unwrap_or(5));
    let ms: u64 = param(query, "ms").map_or(100, |v| v.parse().unwrap_or(100));
    let lines = stream::unfold(0, move |sent| async move {
        if sent == chunks {
            return None;
        }
        if sent > 0 {
            spin_sdk::time::sleep(Duration::from_millis(ms)).await;
        }
        let line = Bytes::from(format!("chunk {sent}\n"));
        Some((Ok::<_, anyhow::Error>(Frame::data(line)), sent + 1))
    });
    Response::new(StreamBody::new(lines).boxed_unsync())
}

/// A whole text answer.
fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

/// The value of `name` in a query string (no percent-decoding: the example
/// takes plain values).
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}
