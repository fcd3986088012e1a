//! Handlers of every form, run through their `#[handler]` exports on the
//! fake host: the path a request takes in the runtime, minus the runtime.
//!
//! Each module holds one handler, because each export name can exist once
//! per module.

use wasmlet_sdk::http::StatusCode;
use wasmlet_sdk::log::Level;
use wasmlet_sdk::testing::{Outcome, TestRequest, TestResponse};

fn error_logs(response: &TestResponse) -> Vec<&str> {
    response
        .logs()
        .iter()
        .filter(|line| line.level == Level::Error)
        .map(|line| line.message.as_str())
        .collect()
}

mod unit {
    use wasmlet_sdk::handler;

    #[handler]
    fn ping() -> &'static str {
        "pong\n"
    }

    #[test]
    fn a_handler_without_arguments_answers() {
        let response = wasmlet_sdk::testing::TestRequest::get("/ping").call(handle);
        assert_eq!(response.text(), "pong\n");
        // It is still a plain function.
        assert_eq!(ping(), "pong\n");
    }
}

mod verbs {
    use wasmlet_sdk::http::Method;
    use wasmlet_sdk::{Request, handler};

    #[handler(get, head, delete)]
    fn which(req: Request) -> String {
        req.method().to_string()
    }

    #[handler(post)]
    fn created() -> (wasmlet_sdk::http::StatusCode, &'static str) {
        (wasmlet_sdk::http::StatusCode::CREATED, "made")
    }

    #[test]
    fn each_listed_verb_gets_its_own_export() {
        use wasmlet_sdk::testing::TestRequest;
        let exports: [(Method, fn()); 3] = [
            (Method::GET, handle_get),
            (Method::HEAD, handle_head),
            (Method::DELETE, handle_delete),
        ];
        for (method, export) in exports {
            let response = TestRequest::new(method.clone(), "/").call(export);
            assert_eq!(response.text(), method.as_str());
        }
        let response = TestRequest::post("/").call(handle_post);
        assert_eq!(response.status(), 201);
    }
}

mod request_info {
    use wasmlet_sdk::http::header::USER_AGENT;
    use wasmlet_sdk::{Request, handler};

    #[handler(get)]
    fn describe(req: Request) -> String {
        let header = |name: &str| {
            req.header(name)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        format!(
            "{} {} path={} q={:?} accept={:?} agent={:?} missing={:?} id={:?} rest={:?} none={:?}",
            req.method(),
            req.uri(),
            req.path(),
            req.query("q"),
            header("ACCEPT"),
            req.header(USER_AGENT),
            header("x-missing"),
            req.param("id"),
            req.param("rest"),
            req.param("none"),
        )
    }

    #[test]
    fn the_handler_sees_method_target_headers_and_route_parameters() {
        let long = "x".repeat(300);
        let response = wasmlet_sdk::testing::TestRequest::get(&format!("/u/7?q=a%20b&pad={long}"))
            .header("accept", "text/html")
            .header("Accept", "text/plain")
            .header("user-agent", "test")
            .param("id", "7")
            .param("rest", "a/b c.txt")
            .call(handle_get);
        assert_eq!(
            response.text(),
            format!(
                "GET /u/7?q=a%20b&pad={long} path=/u/7 q=Some(\"a b\") \
                 accept=Some(\"text/html, text/plain\") agent=Some(\"test\") missing=None \
                 id=Some(\"7\") rest=Some(\"a/b c.txt\") none=None"
            )
        );
    }
}

mod body {
    use std::io::Read;
    use wasmlet_sdk::{Request, Result, handler};

    #[handler(post)]
    fn measure(mut req: Request) -> Result<String> {
        let text = req.text()?;
        Ok(format!("{} chars", text.chars().count()))
    }

    #[handler(put)]
    fn count_reads(mut req: Request) -> Result<String> {
        let mut buf = [0; 256];
        let (mut reads, mut total) = (0, 0);
        loop {
            let n = req.body_mut().read(&mut buf)?;
            if n == 0 {
                break;
            }
            reads += 1;
            total += n;
        }
        Ok(format!("{total} bytes in {reads} reads"))
    }

    #[test]
    fn the_body_reads_whole() {
        let response = wasmlet_sdk::testing::TestRequest::post("/")
            .body("héllo")
            .read_chunk(2)
            .call(handle_post);
        assert_eq!(response.text(), "5 chars");
    }

    #[test]
    fn the_body_streams_in_pieces() {
        let response = wasmlet_sdk::testing::TestRequest::put("/")
            .body(vec![7; 1000])
            .read_chunk(100)
            .call(handle_put);
        assert_eq!(response.text(), "1000 bytes in 10 reads");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_a_logged_500() {
        let response = wasmlet_sdk::testing::TestRequest::post("/")
            .body(vec![0xff, 0xfe])
            .call(handle_post);
        assert_eq!(response.status(), 500);
        assert_eq!(super::error_logs(&response).len(), 1);
    }

    #[test]
    fn an_aborted_upload_is_a_logged_500() {
        let response = wasmlet_sdk::testing::TestRequest::post("/")
            .body("0123456789")
            .body_fails_after(4)
            .call(handle_post);
        assert_eq!(response.status(), 500);
        let logs = super::error_logs(&response);
        assert!(logs[0].contains("could not be read"), "{logs:?}");
    }
}

#[cfg(feature = "json")]
mod json {
    use serde::{Deserialize, Serialize};
    use wasmlet_sdk::{Request, Response, Result, handler};

    #[derive(Deserialize, Serialize, PartialEq, Debug)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[handler(post)]
    fn flip(mut req: Request) -> Result<Response> {
        let point: Point = req.json()?;
        Response::json(&Point {
            x: point.y,
            y: point.x,
        })
    }

    #[test]
    fn json_in_json_out() {
        let response = wasmlet_sdk::testing::TestRequest::post("/")
            .json(&Point { x: 1, y: 2 })
            .call(handle_post);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json::<Point>(), Point { x: 2, y: 1 });
    }

    #[test]
    fn bad_json_is_a_logged_500() {
        let response = wasmlet_sdk::testing::TestRequest::post("/")
            .body("{")
            .call(handle_post);
        assert_eq!(response.status(), 500);
    }
}

mod failures {
    use std::io::Write;
    use wasmlet_sdk::http::StatusCode;
    use wasmlet_sdk::{Error, Request, ResponseWriter, Result, handler};

    #[handler(get)]
    fn fail(req: Request) -> Result<&'static str> {
        match req.query("how").as_deref() {
            Some("error") => Err(Error::msg("the database is down")),
            Some("panic") => panic!("index {} out of range", 9),
            _ => Ok("fine"),
        }
    }

    #[handler(post)]
    fn fail_streaming(req: Request, out: &mut ResponseWriter) -> Result<()> {
        out.set_status(StatusCode::ACCEPTED)?;
        out.set_header("x-secret", "handler state")?;
        if req.query("write_first").is_some() {
            out.write_all(b"partial")?;
        }
        match req.query("how").as_deref() {
            Some("panic") => panic!("stream broke"),
            _ => Err(Error::msg("the upstream went away")),
        }
    }

    #[test]
    fn an_error_answers_500_and_logs_it_without_showing_it() {
        let response = wasmlet_sdk::testing::TestRequest::get("/?how=error").call(handle_get);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.outcome(), wasmlet_sdk::testing::Outcome::Completed);
        assert!(!response.text().contains("database"));
        assert_eq!(
            super::error_logs(&response),
            ["handler failed: the database is down"]
        );
    }

    #[test]
    fn a_panic_is_logged_with_its_message_and_traps() {
        let response = wasmlet_sdk::testing::TestRequest::get("/?how=panic").call(handle_get);
        assert_eq!(response.outcome(), wasmlet_sdk::testing::Outcome::Trapped);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let logs = super::error_logs(&response);
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(logs[0].starts_with("handler panicked at "), "{logs:?}");
        assert!(logs[0].contains("handlers.rs"), "{logs:?}");
        assert!(logs[0].ends_with(": index 9 out of range"), "{logs:?}");
    }

    #[test]
    fn a_streaming_error_before_writing_answers_a_clean_500() {
        let response = wasmlet_sdk::testing::TestRequest::post("/").call(handle_post);
        assert_eq!(response.outcome(), wasmlet_sdk::testing::Outcome::Completed);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.header("x-secret").is_none());
        assert_eq!(
            super::error_logs(&response),
            ["handler failed: the upstream went away"]
        );
    }

    #[test]
    fn a_streaming_error_after_writing_aborts_the_body() {
        let response = wasmlet_sdk::testing::TestRequest::post("/?write_first").call(handle_post);
        assert_eq!(response.outcome(), wasmlet_sdk::testing::Outcome::Aborted);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.text(), "partial");
        assert_eq!(
            super::error_logs(&response),
            ["handler failed: the upstream went away"]
        );
    }

    #[test]
    fn a_streaming_panic_after_writing_aborts_the_body() {
        let response =
            wasmlet_sdk::testing::TestRequest::post("/?write_first&how=panic").call(handle_post);
        assert_eq!(response.outcome(), wasmlet_sdk::testing::Outcome::Aborted);
        let logs = super::error_logs(&response);
        assert!(logs[0].ends_with(": stream broke"), "{logs:?}");
    }
}

mod host_owned_headers {
    use wasmlet_sdk::http::{HeaderValue, header};
    use wasmlet_sdk::{Response, handler};

    #[handler]
    fn framing() -> Response {
        Response::text("x")
            .with_header(header::CONNECTION, HeaderValue::from_static("close"))
            .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
    }

    #[test]
    fn a_header_the_host_refuses_is_dropped_with_a_warning() {
        let response = wasmlet_sdk::testing::TestRequest::get("/").call(handle);
        assert_eq!(response.text(), "x");
        assert!(response.header("connection").is_none());
        assert_eq!(response.header("cache-control"), Some("no-store"));
        let warning = &response.logs()[0];
        assert_eq!(warning.level, wasmlet_sdk::log::Level::Warn);
        assert!(warning.message.contains("`connection`"), "{warning:?}");
    }
}

mod streaming {
    use std::io::Write;
    use std::time::Duration;
    use wasmlet_sdk::{Request, ResponseWriter, handler, sleep};

    #[handler]
    fn ticks(_req: Request, out: &mut ResponseWriter) {
        for n in 0..3 {
            sleep(Duration::from_millis(250));
            if writeln!(out, "tick {n}").is_err() {
                return;
            }
        }
    }

    #[test]
    fn a_streaming_handler_may_return_unit() {
        let response = wasmlet_sdk::testing::TestRequest::get("/").call(handle);
        let times: Vec<Duration> = response.chunks().iter().map(|chunk| chunk.at).collect();
        assert_eq!(
            times,
            [250, 500, 750].map(Duration::from_millis),
            "{response:?}"
        );
        assert_eq!(response.text(), "tick 0\ntick 1\ntick 2\n");
    }
}

#[test]
fn the_client_going_away_ends_a_streaming_handler_quietly() {
    mod gone {
        use std::io::Write;
        use wasmlet_sdk::{Request, ResponseWriter, Result, handler};

        #[handler]
        fn chatty(_req: Request, out: &mut ResponseWriter) -> Result<()> {
            loop {
                out.write_all(b"more\n")?;
            }
        }
    }
    let response = TestRequest::get("/")
        .disconnect_after(10)
        .call(gone::handle);
    assert_eq!(response.outcome(), Outcome::Completed);
    assert_eq!(response.text(), "more\nmore\n");
    assert!(error_logs(&response).is_empty());
    assert_eq!(response.status(), StatusCode::OK);
}
