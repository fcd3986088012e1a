//! `countdown`: `GET /countdown?from=3` streams `3`, `2`, `1`, one line a
//! second. Each line reaches the client as it is written; `sleep` suspends
//! the module, not the server. `from` is 1 to 60 (default 3).
//!
//! `curl -N http://localhost:8080/countdown?from=5` shows the lines arrive.

use std::io::Write;
use std::time::Duration;

use wasmlet_sdk::http::StatusCode;
use wasmlet_sdk::http::header::CONTENT_TYPE;
use wasmlet_sdk::{Request, ResponseWriter, Result, handler, sleep};

/// The longest countdown: a request should end well within any timeout.
const MAX_FROM: u32 = 60;

#[handler(get)]
fn countdown(req: Request, out: &mut ResponseWriter) -> Result<()> {
    out.set_header(CONTENT_TYPE, "text/plain; charset=utf-8")?;
    let from = match req.query("from").as_deref().map(str::parse::<u32>) {
        None => 3,
        Some(Ok(from @ 1..=MAX_FROM)) => from,
        Some(_) => {
            out.set_status(StatusCode::BAD_REQUEST)?;
            writeln!(out, "from must be a whole number from 1 to {MAX_FROM}")?;
            return Ok(());
        }
    };
    for n in (1..=from).rev() {
        if n != from {
            sleep(Duration::from_secs(1));
        }
        writeln!(out, "{n}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::handle_get;
    use std::time::Duration;
    use wasmlet_sdk::http::StatusCode;
    use wasmlet_sdk::testing::{Outcome, TestRequest};

    #[test]
    fn streams_one_line_per_second() {
        let response = TestRequest::get("/countdown?from=3").call(handle_get);
        assert_eq!(response.status(), StatusCode::OK);
        let lines: Vec<(Duration, &[u8])> = response
            .chunks()
            .iter()
            .map(|chunk| (chunk.at, &chunk.bytes[..]))
            .collect();
        let second = Duration::from_secs(1);
        assert_eq!(
            lines,
            [
                (Duration::ZERO, &b"3\n"[..]),
                (second, b"2\n"),
                (2 * second, b"1\n"),
            ]
        );
    }

    #[test]
    fn counts_from_three_by_default() {
        let response = TestRequest::get("/countdown").call(handle_get);
        assert_eq!(response.text(), "3\n2\n1\n");
        assert_eq!(response.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn a_bad_from_answers_400_at_once() {
        for from in ["0", "61", "-1", "x", ""] {
            let response = TestRequest::get(&format!("/countdown?from={from}")).call(handle_get);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "from={from}");
            assert!(response.text().starts_with("from must be"), "from={from}");
            assert_eq!(response.elapsed(), Duration::ZERO, "from={from}");
        }
    }

    #[test]
    fn stops_when_the_client_goes() {
        let response = TestRequest::get("/countdown?from=10")
            .disconnect_after(2)
            .call(handle_get);
        assert_eq!(response.outcome(), Outcome::Completed);
        assert_eq!(response.text(), "10\n");
        // It slept once before the write that failed, and no more.
        assert_eq!(response.elapsed(), Duration::from_secs(1));
    }
}
