//! `fanout`: fetches every `url` of the query string at once and answers
//! JSON with each one's status and body size, and how long it all took.
//!
//! ```console
//! $ curl 'http://127.0.0.1:8080/fanout?url=https://a.example/&url=https://b.example/slow'
//! {"count":2,"took_ms":312,"results":[{"url":"https://a.example/","status":200,"bytes":1256},
//!                                     {"url":"https://b.example/slow","status":200,"bytes":48}]}
//! ```
//!
//! Every request is begun ([`http::get_begin`]) before any is waited for
//! ([`join_all`]), and the host runs them concurrently: three upstreams that
//! each take 300 ms answer in about 300 ms, not 900 (`took_ms`, measured on
//! the host's monotonic clock with [`elapsed`], shows it). A URL that fails gets `"error"` with the
//! failure's kind (`denied`, `failed`, `timed out`, `too large`, `invalid
//! url`); the details, which may name the server's configuration files, go
//! to the log only.
//!
//! The hosts must be granted in a `wasmlet.toml` (`[http] allow`); any
//! other is `denied`. At most 16 URLs, so one request cannot hold more of
//! the host's 64 handles.

use std::io;

use serde::Serialize;
use wasmlet_sdk::http::{self, StatusCode};
use wasmlet_sdk::{Error, Request, Response, Result, elapsed, handler, join_all};

/// The most URLs one request may fan out to.
const MAX_URLS: usize = 16;

/// The answer.
#[derive(Serialize)]
struct Report {
    count: usize,
    /// From the first request begun to the last body read, in milliseconds.
    took_ms: u128,
    results: Vec<Fetched>,
}

/// What became of one URL.
#[derive(Serialize)]
struct Fetched {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// The body's length, counted as it streams by (never held whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    /// The kind of failure, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Fetched {
    fn failed(url: String, error: &Error) -> Self {
        wasmlet_sdk::warn!("fanout: {error}");
        // No host failure behind it: the URL did not even parse.
        let kind = error
            .kind()
            .map_or_else(|| "invalid url".to_owned(), |kind| kind.to_string());
        Self {
            url,
            status: None,
            bytes: None,
            error: Some(kind),
        }
    }
}

#[handler(get)]
fn fanout(req: Request) -> Result<Response> {
    let urls: Vec<String> = req
        .query_all("url")
        .into_iter()
        .map(|url| url.into_owned())
        .collect();
    if urls.is_empty() || urls.len() > MAX_URLS {
        let message =
            format!("give 1 to {MAX_URLS} urls: /fanout?url=https://a.example/&url=...\n");
        return Ok(Response::text(message).with_status(StatusCode::BAD_REQUEST));
    }
    let started = elapsed();
    // All begun before the first wait: they run at the same time.
    let responses = join_all(urls.iter().map(|url| http::get_begin(url.as_str())));
    let results = urls
        .into_iter()
        .zip(responses)
        .map(|(url, response)| match response {
            Ok(mut response) => match io::copy(&mut response, &mut io::sink()) {
                Ok(bytes) => Fetched {
                    url,
                    status: Some(response.status().as_u16()),
                    bytes: Some(bytes),
                    error: None,
                },
                Err(error) => Fetched::failed(url, &error.into()),
            },
            Err(error) => Fetched::failed(url, &error),
        })
        .collect::<Vec<_>>();
    Response::json(&Report {
        count: results.len(),
        took_ms: (elapsed() - started).as_millis(),
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::handle_get;
    use serde_json::{Value, json};
    use std::time::Duration;
    use wasmlet_sdk::http::StatusCode;
    use wasmlet_sdk::log::Level;
    use wasmlet_sdk::testing::{Reply, TestRequest};

    /// An upstream whose path says how long it takes: `/300` answers after
    /// 300 ms, with a body of as many bytes.
    fn timed(req: &wasmlet_sdk::http::Request<Vec<u8>>) -> Reply {
        let ms: u64 = req.uri().path()[1..].parse().unwrap();
        Reply::text("x".repeat(ms as usize)).after(Duration::from_millis(ms))
    }

    #[test]
    fn three_upstreams_are_fetched_at_once_and_reported_in_order() {
        let response = TestRequest::get(
            "/fanout?url=http://up.example/300&url=http://up.example/100&url=http://up.example/200",
        )
        .upstream(timed)
        .call(handle_get);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.json::<Value>(),
            json!({"count": 3, "took_ms": 300, "results": [
                {"url": "http://up.example/300", "status": 200, "bytes": 300},
                {"url": "http://up.example/100", "status": 200, "bytes": 100},
                {"url": "http://up.example/200", "status": 200, "bytes": 200},
            ]})
        );
        // The slowest, not the sum (600 ms).
        assert_eq!(response.elapsed(), Duration::from_millis(300));
        assert_eq!(response.fetches().len(), 3);
    }

    #[test]
    fn a_failing_url_reports_its_kind_and_logs_the_details() {
        let response = TestRequest::get(
            "/fanout?url=http://ok.example/&url=http://down.example/&url=http://big.example/",
        )
        .upstream(|req| match req.uri().host() {
            Some("ok.example") => Reply::text("fine"),
            Some("big.example") => Reply::text("x".repeat(100)),
            _ => Reply::failed("connection refused"),
        })
        .max_response_size(50)
        .call(handle_get);
        assert_eq!(response.status(), StatusCode::OK);
        let results = &response.json::<Value>()["results"];
        assert_eq!(results[0]["bytes"], 4);
        assert_eq!(
            results[1],
            json!({"url": "http://down.example/", "error": "failed"})
        );
        assert_eq!(
            results[2],
            json!({"url": "http://big.example/", "error": "too large"})
        );
        let warnings: Vec<_> = response
            .logs()
            .iter()
            .filter(|line| line.level == Level::Warn)
            .map(|line| line.message.as_str())
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("connection refused"), "{warnings:?}");
    }

    #[test]
    fn hosts_not_granted_are_denied_without_naming_the_configuration() {
        let response = TestRequest::get("/fanout?url=http://x.example/").call(handle_get);
        assert_eq!(
            response.json::<Value>()["results"][0],
            json!({"url": "http://x.example/", "error": "denied"})
        );
        assert!(response.fetches().is_empty());
    }

    #[test]
    fn a_malformed_url_is_reported_like_any_failure() {
        let response = TestRequest::get("/fanout?url=not%20a%20url")
            .upstream(timed)
            .call(handle_get);
        assert_eq!(
            response.json::<Value>()["results"][0]["error"],
            "invalid url"
        );
    }

    #[test]
    fn no_urls_or_too_many_answer_400() {
        let many = vec!["url=http://up.example/1"; 17].join("&");
        for uri in ["/fanout".to_owned(), format!("/fanout?{many}")] {
            let response = TestRequest::get(&uri).upstream(timed).call(handle_get);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
            assert!(response.text().starts_with("give 1 to 16 urls"), "{uri}");
            assert!(response.fetches().is_empty());
        }
    }
}
