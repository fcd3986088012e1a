//! [`Request`]: the request a handler serves.

use std::borrow::Cow;

use http::{HeaderValue, Method, Uri};

use crate::{Body, Result, query, sys};

/// The request a handler serves: method, target, headers and route
/// parameters on demand, and the [`Body`].
///
/// Not an `http::Request`: the ABI lets a module ask for a header by name but
/// not list them all, so a `HeaderMap` could only be empty or guessed.
/// [`header`](Request::header) asks the host instead.
#[derive(Debug)]
pub struct Request {
    method: Method,
    uri: Uri,
    body: Body,
}

impl Request {
    /// Reads the method and the target from the host.
    pub(crate) fn from_host() -> Result<Self> {
        let method = sys::read_value(sys::req_method).unwrap_or_default();
        let uri = sys::read_value(sys::req_uri).unwrap_or_default();
        Ok(Self {
            method: Method::from_bytes(&method)?,
            uri: Uri::try_from(uri)?,
            body: Body::new(),
        })
    }

    /// The method: `GET`, `POST`, …
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as received: path and query (`/a/b?x=1`).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The path of the target, still percent-encoded as received.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The first query parameter called `name`, percent-decoded (`+` is a
    /// space); `None` when absent, `Some("")` for `?name` or `?name=`.
    pub fn query(&self, name: &str) -> Option<Cow<'_, str>> {
        query::find(self.uri.query()?, name)
    }

    /// Every query parameter called `name`, in order, percent-decoded:
    /// `["a", "b"]` for `?url=a&url=b`; empty when there is none.
    pub fn query_all(&self, name: &str) -> Vec<Cow<'_, str>> {
        self.uri
            .query()
            .map(|query| query::find_all(query, name).collect())
            .unwrap_or_default()
    }

    /// The value of header `name` (any case). Repeated headers come joined by
    /// `, `. Accepts a `&str` or an `http::HeaderName` such as
    /// `http::header::CONTENT_TYPE`.
    pub fn header(&self, name: impl AsRef<str>) -> Option<HeaderValue> {
        let name = name.as_ref().as_bytes();
        let value = sys::read_value(|buf| sys::req_header(name, buf))?;
        HeaderValue::from_bytes(&value).ok()
    }

    /// The route parameter `name`: for a handler at `users/[id].wasm`,
    /// `param("id")` is `"42"` on `/users/42`; for `files/[...rest].wasm`,
    /// `param("rest")` is `"a/b.txt"` on `/files/a/b.txt`. Percent-decoded by
    /// the host; bytes that are not UTF-8 become U+FFFD. `None` when the path
    /// has no such parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        let value = sys::read_value(|buf| sys::req_param(name.as_bytes(), buf))?;
        Some(match String::from_utf8(value) {
            Ok(value) => value,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        })
    }

    /// The body, to read as a stream (`std::io::Read`).
    pub fn body_mut(&mut self) -> &mut Body {
        &mut self.body
    }

    /// The body, giving up the rest of the request.
    pub fn into_body(self) -> Body {
        self.body
    }

    /// The rest of the body as bytes.
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        self.body.bytes()
    }

    /// The rest of the body as text; an error if it is not UTF-8.
    pub fn text(&mut self) -> Result<String> {
        self.body.text()
    }

    /// The rest of the body parsed as JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        self.body.json()
    }
}
