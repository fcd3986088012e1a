//! The component's one export, `wasi:http/incoming-handler.handle`, written
//! with `wstd`'s `#[http_server]` (it runs the async `main` per request on
//! `wstd`'s reactor over `wasi:io/poll`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::stream;
use wstd::http::body::Bytes;
use wstd::http::body::util::BodyExt;
use wstd::http::{Body, Client, Error, Method, Request, Response, StatusCode};
use wstd::time::Duration;

/// Named `main` because `#[wstd::http_server]` requires it; it is the
/// request handler, not a program entry point.
/// Requests this instance has served, this one included: `1` on every
/// request of a fresh instance, counting up on a reused one.
static REQUESTS: AtomicU64 = AtomicU64::new(0);

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let served = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    let path = request.uri().path();
    let last = path.rsplit('/').next().unwrap_or_default();
    let query = request.uri().query().unwrap_or_default().to_owned();
    match (last, request.method()) {
        ("echo", _) => Ok(Response::new(request.into_body())),
        ("count", _) => Ok(count(request.into_body()).await),
        ("stream", _) => Ok(stream_lines(&query)),
        ("hits", _) => Ok(text(StatusCode::OK, format!("hits {served}\n"))),
        ("trap", _) => panic!("the trap endpoint was asked to trap"),
        ("spin", _) => {
            // Computes forever without a host call: only the host's epoch
            // interruption and request timeout end it.
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        ("grow", _) => {
            let mib: usize = param(&query, "mib").map_or(1, |v| v.parse().unwrap_or(1));
            // Written to, and kept from the optimiser, so the memory is real.
            let block = std::hint::black_box(vec![1u8; mib << 20]);
            Ok(text(
                StatusCode::OK,
                format!("grew {} MiB\n", block.len() >> 20),
            ))
        }
        ("sleep", _) => {
            let ms = param(&query, "ms").map_or(60_000, |v| v.parse().unwrap_or(60_000));
            wstd::task::sleep(Duration::from_millis(ms)).await;
            Ok(text(StatusCode::OK, format!("slept {ms} ms\n")))
        }
        ("fetch", _) => Ok(fetch(&query).await),
        ("status", _) => {
            // Any code the `http` crate takes, 1xx included: the host decides
            // what it will send.
            let code = param(&query, "code").and_then(|v| v.parse().ok());
            match code.and_then(|c| StatusCode::from_u16(c).ok()) {
                Some(status) => Ok(text(status, format!("status {status}\n"))),
                None => Ok(text(StatusCode::BAD_REQUEST, "give ?code=\n".to_owned())),
            }
        }
        ("headers", _) => {
            let n: usize = param(&query, "n").map_or(1, |v| v.parse().unwrap_or(1));
            let size: usize = param(&query, "size").map_or(1, |v| v.parse().unwrap_or(1));
            let mut response = text(StatusCode::OK, format!("{n} headers\n"));
            let value = wstd::http::HeaderValue::from_str(&"v".repeat(size))?;
            for i in 0..n {
                let name = wstd::http::HeaderName::from_bytes(format!("x-h-{i}").as_bytes())?;
                response.headers_mut().append(name, value.clone());
            }
            Ok(response)
        }
        ("print", _) => {
            let lines: usize = param(&query, "lines").map_or(1, |v| v.parse().unwrap_or(1));
            let size: usize = param(&query, "size").map_or(1, |v| v.parse().unwrap_or(1));
            let line = "x".repeat(size);
            for _ in 0..lines {
                println!("{line}");
            }
            Ok(text(StatusCode::OK, format!("printed {lines}\n")))
        }
        (_, &Method::GET | &Method::HEAD) => {
            let name = param(&query, "name").unwrap_or("world");
            Ok(text(StatusCode::OK, format!("hello, {name}\n")))
        }
        _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".to_owned())),
    }
}

/// Reads the body piece by piece as it arrives and answers `read N`, or,
/// when a read fails (the host's body size limit or read timeout, a client
/// that gave up), `400` with `failed after N: ERROR`.
async fn count(body: Body) -> Response<Body> {
    let mut body = body.into_boxed_body();
    let mut read = 0;
    loop {
        match body.frame().await {
            None => return text(StatusCode::OK, format!("read {read}\n")),
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |data| data.len()),
            Some(Err(e)) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("failed after {read}: {e:?}\n"),
                );
            }
        }
    }
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
            wstd::task::sleep(Duration::from_millis(ms)).await;
        }
        let line = Bytes::from(format!("chunk {sent}\n"));
        Some((Ok::<_, Infallible>(line), sent + 1))
    });
    Response::new(Body::from_try_stream(lines))
}

/// Fetches `?url=` and passes its status and body on; a failure is `502`
/// with the error, which names the `wasi:http` error code (a URL the host's
/// allow-list does not grant is `HttpRequestDenied`).
async fn fetch(query: &str) -> Response<Body> {
    let Some(url) = param(query, "url") else {
        return text(StatusCode::BAD_REQUEST, "give ?url=\n".to_owned());
    };
    let url = percent_decode(url);
    let request = match Request::get(url.as_str()).body(Body::empty()) {
        Ok(request) => request,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad url {url}: {e}\n")),
    };
    let response = match Client::new().send(request).await {
        Ok(response) => response,
        Err(e) => return text(StatusCode::BAD_GATEWAY, format!("fetch {url}: {e:?}\n")),
    };
    let status = response.status();
    let mut body = response.into_body();
    match body.contents().await {
        Ok(bytes) => {
            let mut answer = Response::new(Body::from(bytes.to_vec()));
            *answer.status_mut() = status;
            answer
        }
        Err(e) => text(StatusCode::BAD_GATEWAY, format!("read {url}: {e:?}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

/// The raw value of `key` in a query string.
fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `%XX` escapes decoded (enough for a URL passed in a query).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
