//! [`Response`] and [`IntoResponse`]: what a buffered handler returns.

use std::fmt::Display;
use std::io::Write;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::ResponseWriter;

fn text_plain() -> HeaderValue {
    HeaderValue::from_static("text/plain; charset=utf-8")
}

/// A whole response: status, headers and body bytes.
///
/// A thin wrapper over `http::Response<Vec<u8>>` so that constructors like
/// [`Response::text`] can exist; [`into_http`](Response::into_http) and
/// `From<http::Response<B>>` convert both ways.
#[derive(Debug)]
pub struct Response {
    inner: http::Response<Vec<u8>>,
}

impl Response {
    /// `200 OK` with `body` and no `content-type`.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            inner: http::Response::new(body.into()),
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(body.into()).with_header(CONTENT_TYPE, text_plain())
    }

    /// `200 OK` with `value` as an `application/json` body; an error if it
    /// cannot be serialised (a map with non-string keys, a failing
    /// `Serialize`).
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> crate::Result<Self> {
        Ok(Self::new(serde_json::to_vec(value)?)
            .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json")))
    }

    /// An `http` response builder; its `body(..)` gives an
    /// `http::Response<B>`, which a handler can return as it is (it
    /// implements [`IntoResponse`]) or convert with `Response::from`.
    pub fn builder() -> http::response::Builder {
        http::Response::builder()
    }

    /// The same response with another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        *self.inner.status_mut() = status;
        self
    }

    /// The same response with header `name` set to `value`, replacing any
    /// earlier value.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers_mut().insert(name, value);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.inner.headers_mut()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.inner.body()
    }

    /// The response as an `http::Response`.
    pub fn into_http(self) -> http::Response<Vec<u8>> {
        self.inner
    }

    /// What a failed handler answers: the status and its reason phrase
    /// (`internal server error`), no internals, which go to the log.
    pub(crate) fn failure(status: StatusCode) -> Self {
        // Only the statuses `Error::status` gives; spelled out rather than
        // taken from `canonical_reason`, whose table of every status would
        // weigh on every module.
        let body = match status {
            StatusCode::BAD_GATEWAY => "bad gateway\n",
            StatusCode::SERVICE_UNAVAILABLE => "service unavailable\n",
            StatusCode::GATEWAY_TIMEOUT => "gateway timeout\n",
            _ => "internal server error\n",
        };
        Self::text(body).with_status(status)
    }

    /// Hands the response to the host: head, then the body in one write.
    pub(crate) fn send(self) {
        let (parts, body) = self.inner.into_parts();
        let mut writer = ResponseWriter::with_head(parts.status, parts.headers);
        // An error here means the client has gone; nobody is left to tell.
        let _ = writer.write_all(&body);
        writer.finish();
    }
}

impl<B: Into<Vec<u8>>> From<http::Response<B>> for Response {
    fn from(response: http::Response<B>) -> Self {
        Self {
            inner: response.map(Into::into),
        }
    }
}

/// What a handler can return: converted into a [`Response`] and sent.
///
/// | type | response |
/// | --- | --- |
/// | `&str`, `String` | `200`, `text/plain; charset=utf-8` |
/// | `Vec<u8>`, `&[u8]` | `200`, `application/octet-stream` |
/// | `()` | `200`, empty body |
/// | `StatusCode` | that status, empty body |
/// | `(StatusCode, T)` | `T`'s response with that status |
/// | [`Response`], `http::Response<B>` | as built |
/// | `Result<T, E>` with `E: Display` | `T`'s response, or `500` with the error logged (`502`, `503` or `504` for some failed host calls: [`Error::status`](crate::Error::status)) |
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a response: a handler returns a type that implements `IntoResponse`",
    label = "not a response",
    note = "return a `String`, `&str`, `Vec<u8>`, `StatusCode`, `(StatusCode, body)`, `Response` or `Result` of one"
)]
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl<B: Into<Vec<u8>>> IntoResponse for http::Response<B> {
    fn into_response(self) -> Response {
        self.into()
    }
}

impl IntoResponse for &str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::new(self).with_header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )
    }
}

impl IntoResponse for &[u8] {
    fn into_response(self) -> Response {
        self.to_vec().into_response()
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Vec::new())
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(Vec::new()).with_status(self)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

// `'static` lets the error be inspected for a failed host call (whose status
// may be 502, 503 or 504); a handler's error is always `'static` anyway, since
// it outlives the request it came from.
impl<T: IntoResponse, E: Display + 'static> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(error) => {
                crate::serve::log_failure(&error.to_string());
                Response::failure(crate::error::status_of(&error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{IntoResponse, Response};
    use crate::Error;
    use crate::testing::TestRequest;
    use http::StatusCode;

    fn content_type(response: &Response) -> Option<&str> {
        response.headers().get("content-type")?.to_str().ok()
    }

    #[test]
    fn each_body_type_gets_its_status_and_content_type() {
        let text = Some("text/plain; charset=utf-8");
        let bytes = Some("application/octet-stream");
        let cases: [(Response, StatusCode, Option<&str>, &[u8]); 7] = [
            ("hi".into_response(), StatusCode::OK, text, b"hi"),
            (
                String::from("hi").into_response(),
                StatusCode::OK,
                text,
                b"hi",
            ),
            (vec![1, 2].into_response(), StatusCode::OK, bytes, &[1, 2]),
            ((&[3][..]).into_response(), StatusCode::OK, bytes, &[3]),
            (().into_response(), StatusCode::OK, None, b""),
            (
                StatusCode::NO_CONTENT.into_response(),
                StatusCode::NO_CONTENT,
                None,
                b"",
            ),
            (
                (StatusCode::CREATED, "made").into_response(),
                StatusCode::CREATED,
                text,
                b"made",
            ),
        ];
        for (response, status, kind, body) in cases {
            assert_eq!(response.status(), status, "{response:?}");
            assert_eq!(content_type(&response), kind, "{response:?}");
            assert_eq!(response.body(), body, "{response:?}");
        }
    }

    #[test]
    fn an_http_response_keeps_its_status_headers_and_body() {
        let response = Response::builder()
            .status(StatusCode::ACCEPTED)
            .header("x-id", "7")
            .body("queued")
            .unwrap()
            .into_response();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["x-id"], "7");
        assert_eq!(response.body(), b"queued");
        assert_eq!(content_type(&response), None);
    }

    #[test]
    fn an_error_becomes_a_logged_500_without_internals() {
        let served = TestRequest::get("/").call(|| {
            let result: Result<&str, Error> = Err(Error::msg("db password rejected"));
            result.into_response().send();
        });
        assert_eq!(served.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!served.text().contains("password"), "{served:?}");
        assert_eq!(served.logs().len(), 1);
        assert!(served.logs()[0].message.contains("db password rejected"));
    }

    #[test]
    fn with_header_replaces_an_earlier_value() {
        let response = Response::text("x").with_header(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html"),
        );
        assert_eq!(content_type(&response), Some("text/html"));
        assert_eq!(response.headers().get_all("content-type").iter().count(), 1);
    }
}
