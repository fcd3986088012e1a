//! `echo`: answers any request with its own body and `content-type`,
//! streamed: each piece goes back as soon as it arrives, so an upload of any
//! size needs no more memory than one buffer.
//!
//! `curl --data-binary @file http://localhost:8080/echo` returns the file.

use std::io;

use wasmlet_sdk::http::header::CONTENT_TYPE;
use wasmlet_sdk::{Request, ResponseWriter, Result, handler};

#[handler]
fn echo(mut req: Request, out: &mut ResponseWriter) -> Result<()> {
    if let Some(kind) = req.header(CONTENT_TYPE) {
        out.set_header(CONTENT_TYPE, kind)?;
    }
    io::copy(req.body_mut(), out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::handle;
    use wasmlet_sdk::http::{Method, StatusCode};
    use wasmlet_sdk::log::Level;
    use wasmlet_sdk::testing::{Outcome, TestRequest};

    fn upload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn echoes_the_body_and_its_content_type_for_any_verb() {
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            let response = TestRequest::new(method.clone(), "/echo")
                .header("content-type", "application/x-thing")
                .body("some bytes")
                .call(handle);
            assert_eq!(response.status(), StatusCode::OK, "{method}");
            assert_eq!(response.header("content-type"), Some("application/x-thing"));
            assert_eq!(response.text(), "some bytes", "{method}");
        }
    }

    #[test]
    fn an_empty_request_gets_an_empty_response() {
        let response = TestRequest::get("/echo").call(handle);
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().is_empty());
        assert!(response.header("content-type").is_none());
    }

    #[test]
    fn streams_a_large_body_back_before_reading_all_of_it() {
        let body = upload(100_000);
        let response = TestRequest::post("/echo")
            .body(body.clone())
            .read_chunk(1000)
            .call(handle);
        assert_eq!(response.body(), body);
        let chunks = response.chunks();
        assert!(chunks.len() >= 10, "{} chunks", chunks.len());
        assert!(chunks[0].request_bytes_read < body.len());
    }

    #[test]
    fn an_upload_aborted_midway_aborts_the_echo() {
        let response = TestRequest::post("/echo")
            .body(upload(50_000))
            .read_chunk(1000)
            .body_fails_after(20_000)
            .call(handle);
        assert_eq!(response.outcome(), Outcome::Aborted);
        assert_eq!(response.body().len(), 20_000);
        assert!(
            response
                .logs()
                .iter()
                .any(|line| line.level == Level::Error)
        );
    }

    #[test]
    fn an_upload_aborted_before_any_echo_answers_500() {
        let response = TestRequest::post("/echo")
            .body(upload(10))
            .body_fails_after(0)
            .call(handle);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.outcome(), Outcome::Completed);
    }
}
