//! [`Reply`]: what the fake upstream answers one outbound request with.

use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};

use crate::code;
use crate::sys::fake::Failure;

/// The fake upstream's answer to one outbound request: a response, or the
/// failure the host would report, after a latency in virtual time.
///
/// A responder given to [`TestRequest::upstream`](super::TestRequest::upstream)
/// returns one, or anything that converts into one: an
/// `http::Response<B>`, a `StatusCode` (empty body), a `&str` or `String`
/// (`200`, plain text).
///
/// ```
/// use std::time::Duration;
/// use wasmlet_sdk::http::{self, StatusCode};
/// use wasmlet_sdk::testing::{Outcome, Reply, TestRequest};
///
/// let response = TestRequest::get("/")
///     .upstream(|req| match req.uri().path() {
///         "/slow" => Reply::text("late").after(Duration::from_millis(300)),
///         "/down" => Reply::failed("connection refused"),
///         "/gone" => StatusCode::GONE.into(),
///         _ => http::Response::builder().header("x-a", "1").body("ok").unwrap().into(),
///     })
///     .call(|| {
///         assert_eq!(http::get("http://up.example/slow").unwrap().text().unwrap(), "late");
///         assert!(http::get("http://up.example/down").is_err());
///         assert_eq!(http::get("http://up.example/gone").unwrap().status(), StatusCode::GONE);
///     });
/// assert_eq!(response.outcome(), Outcome::Completed); // the assertions held
/// assert_eq!(response.elapsed(), Duration::from_millis(300));
/// assert_eq!(response.fetches().len(), 3);
/// ```
#[derive(Debug)]
pub struct Reply {
    pub(crate) answer: Result<http::Response<Vec<u8>>, Failure>,
    pub(crate) delay: Duration,
}

impl Reply {
    /// Answers with `response`.
    pub fn new<B: Into<Vec<u8>>>(response: http::Response<B>) -> Self {
        Self {
            answer: Ok(response.map(Into::into)),
            delay: Duration::ZERO,
        }
    }

    /// Answers `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Self {
        let mut response = http::Response::new(body.into().into_bytes());
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Self::new(response)
    }

    /// Answers `200 OK` with `value` as an `application/json` body.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("the test value serialises to JSON");
        let mut response = http::Response::new(body);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self::new(response)
    }

    /// Answers `status` with an empty body.
    pub fn status(status: StatusCode) -> Self {
        let mut response = http::Response::new(Vec::new());
        *response.status_mut() = status;
        Self::new(response)
    }

    /// The host refuses the request (`DENIED`), as for a host the
    /// configuration does not grant; `message` is what `error_message`
    /// gives.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::failure(code::DENIED, message)
    }

    /// The request fails (`FAILED`): connection refused, DNS, TLS.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::failure(code::FAILED, message)
    }

    /// The request runs past its time limit (`TIMEOUT`). Combine with
    /// [`after`](Reply::after) for the time it takes to give up.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self::failure(code::TIMEOUT, message)
    }

    fn failure(code: i32, message: impl Into<String>) -> Self {
        Self {
            answer: Err(Failure::new(code, message)),
            delay: Duration::ZERO,
        }
    }

    /// The same answer, arriving `delay` after the request was sent (in
    /// virtual time: `TestResponse::elapsed` shows it, nothing waits).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl<B: Into<Vec<u8>>> From<http::Response<B>> for Reply {
    fn from(response: http::Response<B>) -> Self {
        Self::new(response)
    }
}

impl From<StatusCode> for Reply {
    fn from(status: StatusCode) -> Self {
        Self::status(status)
    }
}

impl From<&str> for Reply {
    fn from(body: &str) -> Self {
        Self::text(body)
    }
}

impl From<String> for Reply {
    fn from(body: String) -> Self {
        Self::text(body)
    }
}
