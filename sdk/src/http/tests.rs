//! Outbound HTTP through the fake host: what reaches the upstream, what the
//! handler reads back, and how failures are reported.

use std::io::Read;
use std::time::Duration;

use super::{Request, StatusCode, begin, get, get_begin, post, send};
use crate::testing::{Outcome, Reply, TestRequest};
use crate::{ErrorKind, join, join_all};

#[test]
fn send_passes_method_url_headers_and_body_to_the_upstream() {
    let response = TestRequest::get("/")
        .upstream(|_| StatusCode::NO_CONTENT)
        .check(|| {
            let request = Request::put("https://api.example:8443/items/7?v=2")
                .header("content-type", "text/plain")
                .header("x-tag", "a")
                .header("x-tag", "b")
                .body("seven")
                .unwrap();
            assert_eq!(send(request).unwrap().status(), StatusCode::NO_CONTENT);
        });
    let sent = &response.fetches()[0];
    assert_eq!(sent.method(), "PUT");
    assert_eq!(sent.uri(), "https://api.example:8443/items/7?v=2");
    assert_eq!(sent.headers()["content-type"], "text/plain");
    let tags: Vec<_> = sent.headers().get_all("x-tag").iter().collect();
    assert_eq!(tags, ["a", "b"]);
    assert_eq!(sent.body(), b"seven");
    assert_eq!(response.open_handles(), 0);
}

#[test]
fn a_response_exposes_its_status_headers_and_body() {
    TestRequest::get("/")
        .upstream(|_| {
            http::Response::builder()
                .status(201)
                .header("content-type", "text/plain")
                .header("x-a", "1")
                .header("x-a", "2")
                .body("made it")
                .unwrap()
        })
        .check(|| {
            let response = get("http://api.example/").unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            // Asked of the host one by one, then from the whole block.
            assert_eq!(response.header("X-A").unwrap(), "1, 2");
            assert!(response.header("x-missing").is_none());
            let headers = response.headers();
            assert_eq!(headers["content-type"], "text/plain");
            assert_eq!(headers.get_all("x-a").iter().count(), 2);
            assert_eq!(
                response.header(http::header::CONTENT_TYPE).unwrap(),
                "text/plain"
            );
            assert_eq!(response.header("x-a").unwrap(), "1, 2");
            assert_eq!(response.text().unwrap(), "made it");
        });
}

#[test]
fn the_body_is_a_reader_that_streams_in_pieces() {
    let body: Vec<u8> = (0..50_000).map(|i| (i % 251) as u8).collect();
    let expected = body.clone();
    TestRequest::get("/")
        .upstream(move |_| http::Response::new(body.clone()))
        .check(|| {
            let mut response = get("http://api.example/big").unwrap();
            let mut piece = [0; 1000];
            assert_eq!(response.read(&mut piece).unwrap(), 1000);
            assert_eq!(piece[..], expected[..1000]);
            let mut rest = Vec::new();
            response.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, expected[1000..]);
            assert_eq!(response.read(&mut piece).unwrap(), 0);
            // What is left once the body has ended: nothing.
            assert_eq!(response.bytes().unwrap(), b"");
        });
}

#[test]
fn post_sends_its_body() {
    let response = TestRequest::get("/")
        .upstream(|req| Reply::text(format!("got {} bytes", req.body().len())))
        .check(|| {
            let answer = post("http://api.example/in", "12345").unwrap();
            assert_eq!(answer.text().unwrap(), "got 5 bytes");
        });
    assert_eq!(response.fetches()[0].method(), "POST");
}

#[test]
fn a_request_without_a_granted_upstream_is_denied_with_the_hosts_message() {
    let response = TestRequest::get("/").check(|| {
        let error = get("http://x.example/path?secret=1").unwrap_err();
        assert_eq!(error.kind(), Some(ErrorKind::Denied));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = error.to_string();
        // The SDK names the call (without its query), the host says why.
        assert!(
            text.starts_with("GET http://x.example/path: denied: "),
            "{text}"
        );
        assert!(text.contains("grants no upstream"), "{text}");
        assert!(!text.contains("secret=1"), "{text}");
        let host = error.host_error().unwrap();
        assert_eq!(host.operation(), "GET http://x.example/path");
        assert_eq!(host.code(), crate::code::DENIED);
    });
    assert!(response.fetches().is_empty());
}

#[test]
fn an_invalid_url_is_an_error_before_the_host_is_asked() {
    let response = TestRequest::get("/")
        .upstream(|_| StatusCode::OK)
        .check(|| {
            assert!(get("not a url").is_err());
            assert!(get_begin("not a url").wait().is_err());
            // A URL `http` accepts but the host does not: relative.
            let error = get("/relative").unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::Invalid));
        });
    assert!(response.fetches().is_empty());
}

mod failing_handlers {
    use std::time::Duration;

    use crate::http::{self, StatusCode};
    use crate::log::Level;
    use crate::testing::{Reply, TestRequest};
    use crate::{Request, Result, handler};

    #[handler(get)]
    fn proxy(req: Request) -> Result<String> {
        let url = req.query("url").unwrap_or_default().into_owned();
        http::get(url)?.text()
    }

    fn status_for(reply: fn() -> Reply) -> (StatusCode, String, String) {
        let response = TestRequest::get("/?url=http://up.example/")
            .upstream(move |_| reply())
            .max_response_size(10)
            .call(handle_get);
        let errors: Vec<_> = response
            .logs()
            .iter()
            .filter(|line| line.level == Level::Error)
            .map(|line| line.message.clone())
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        (
            response.status(),
            response.text().to_owned(),
            errors[0].clone(),
        )
    }

    #[test]
    fn an_upstream_failure_answers_502_and_logs_the_hosts_message() {
        let (status, body, log) = status_for(|| Reply::failed("connection refused"));
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body, "bad gateway\n");
        assert_eq!(
            log,
            "handler failed: GET http://up.example/: failed: connection refused"
        );
    }

    #[test]
    fn an_upstream_timeout_answers_504() {
        let (status, body, log) =
            status_for(|| Reply::timed_out("no answer in 30s").after(Duration::from_secs(30)));
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(body, "gateway timeout\n");
        assert!(log.ends_with("timed out: no answer in 30s"), "{log}");
    }

    #[test]
    fn a_body_over_the_maximum_size_answers_502() {
        let (status, _, log) = status_for(|| Reply::text("far more than ten bytes"));
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(
            log.contains("too large: the response is larger than"),
            "{log}"
        );
    }

    #[test]
    fn a_denied_host_answers_500() {
        let (status, body, log) = status_for(|| Reply::denied("up.example is not in [http] allow"));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, "internal server error\n");
        assert!(
            log.ends_with("denied: up.example is not in [http] allow"),
            "{log}"
        );
    }
}

mod streaming_handler {
    use std::io;

    use crate::http::{self, StatusCode};
    use crate::testing::{Reply, TestRequest};
    use crate::{Request, ResponseWriter, Result, handler};

    #[handler(get)]
    fn relay(_req: Request, out: &mut ResponseWriter) -> Result<()> {
        let mut upstream = http::get("http://up.example/")?;
        io::copy(&mut upstream, out)?;
        Ok(())
    }

    #[test]
    fn a_streaming_handler_relays_a_body_and_maps_a_failure_before_writing() {
        let ok = TestRequest::get("/")
            .upstream(|_| Reply::text("relayed"))
            .call(handle_get);
        assert_eq!(ok.text(), "relayed");
        let failed = TestRequest::get("/")
            .upstream(|_| Reply::failed("reset"))
            .call(handle_get);
        assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
    }
}

#[test]
fn begun_requests_overlap_so_three_cost_the_slowest() {
    let delays = [300, 100, 200];
    let response = TestRequest::get("/")
        .upstream(move |req| {
            let n: usize = req.uri().path()[1..].parse().unwrap();
            Reply::text(n.to_string()).after(Duration::from_millis(delays[n]))
        })
        .check(|| {
            let pending = (0..3).map(|n| get_begin(format!("http://up.example/{n}")));
            let bodies: Vec<String> = join_all(pending)
                .into_iter()
                .map(|response| response.unwrap().text().unwrap())
                .collect();
            assert_eq!(bodies, ["0", "1", "2"]);
        });
    assert_eq!(response.elapsed(), Duration::from_millis(300));
    assert_eq!(response.open_handles(), 0);
}

#[test]
fn sent_one_after_another_they_cost_the_sum() {
    let response = TestRequest::get("/")
        .upstream(|_| Reply::text("x").after(Duration::from_millis(100)))
        .check(|| {
            for _ in 0..3 {
                get("http://up.example/").unwrap();
            }
        });
    assert_eq!(response.elapsed(), Duration::from_millis(300));
}

#[test]
fn join_waits_for_requests_and_reports_each_failure_apart() {
    TestRequest::get("/")
        .upstream(|req| match req.uri().host() {
            Some("ok.example") => Reply::text("fine"),
            _ => Reply::failed("DNS lookup failed"),
        })
        .check(|| {
            let (ok, bad) = join!(
                begin(Request::get("http://ok.example/").body("").unwrap()),
                get_begin("http://bad.example/"),
            );
            assert_eq!(ok.unwrap().text().unwrap(), "fine");
            let error = bad.unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::Failed));
            assert!(error.to_string().ends_with("failed: DNS lookup failed"));
        });
}

#[test]
fn an_abandoned_request_is_cancelled_and_a_dropped_response_closed() {
    let response = TestRequest::get("/")
        .upstream(|req| match req.uri().path() {
            "/slow" => Reply::text("late").after(Duration::from_secs(5)),
            _ => Reply::text("now"),
        })
        .check(|| {
            let slow = get_begin("http://up.example/slow");
            drop(slow);
            let answer = get("http://up.example/").unwrap();
            drop(answer);
        });
    assert_eq!(response.cancelled(), 1);
    assert_eq!(response.open_handles(), 0);
    // Nobody waited for the abandoned request.
    assert_eq!(response.elapsed(), Duration::ZERO);
}

#[test]
fn the_65th_open_handle_is_refused_as_busy() {
    TestRequest::get("/")
        .upstream(|_| Reply::text(""))
        .check(|| {
            let open: Vec<_> = (0..64).map(|_| get_begin("http://up.example/")).collect();
            let error = get_begin("http://up.example/").wait().unwrap_err();
            assert_eq!(error.kind(), Some(ErrorKind::Busy));
            assert!(error.to_string().contains("64 handles"), "{error}");
            drop(open);
            assert!(get("http://up.example/").is_ok());
        });
}

#[test]
fn a_failing_assertion_in_the_responder_fails_the_test() {
    let result = std::panic::catch_unwind(|| {
        TestRequest::get("/")
            .upstream(|_| -> Reply { panic!("the responder's assertion") })
            .call(|| {
                let _ = get("http://up.example/");
            })
    });
    let payload = result.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the responder's assertion")
    );
}

#[test]
fn a_handler_that_panics_is_still_a_trap_for_call() {
    let response = TestRequest::get("/").call(|| panic!("handler bug"));
    assert_eq!(response.outcome(), Outcome::Trapped);
}

#[cfg(feature = "json")]
#[test]
fn json_parses_the_body_and_names_the_request_when_it_cannot() {
    TestRequest::get("/")
        .upstream(|req| match req.uri().path() {
            "/good" => Reply::json(&serde_json::json!({"n": 3})),
            _ => Reply::text("not json"),
        })
        .check(|| {
            let value: serde_json::Value = get("http://up.example/good").unwrap().json().unwrap();
            assert_eq!(value["n"], 3);
            let error = get("http://up.example/bad")
                .unwrap()
                .json::<serde_json::Value>()
                .unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("the body of GET http://up.example/bad is not the JSON expected"),
                "{error}"
            );
        });
}
