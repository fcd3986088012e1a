//! [`FetchResponse`]: an upstream's answer, its body read from the host as
//! the handler asks.

use std::cell::OnceCell;
use std::fmt;
use std::io::{self, Read};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::host_error::{HostError, Operation};
use crate::pending::Handle;
use crate::{Error, Result, sys};

/// How much of a body one `http_read` asks for when the handler reads it
/// whole: large enough that a typical body takes a few calls.
const CHUNK: usize = 16 * 1024;

/// The answer to an outbound request: status and headers (all arrived), and
/// the body, which the handler reads as a `std::io::Read` (each read
/// suspends the module until the upstream has sent more) or whole with
/// [`bytes`](FetchResponse::bytes), [`text`](FetchResponse::text) or
/// `json` (with the `json` feature).
///
/// The host holds the response until this is dropped; dropping it before the
/// body's end abandons the rest. Reading past the configured maximum
/// response size fails with [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge).
pub struct FetchResponse {
    handle: Handle,
    status: StatusCode,
    /// Asked for on first use: a handler that looks at one header, or none,
    /// need not copy them all.
    headers: OnceCell<HeaderMap>,
    /// The host said "end"; asking again would be a wasted call.
    ended: bool,
    /// The request, to name in errors while reading the body.
    operation: Operation,
}

impl FetchResponse {
    /// The response under `handle`, with its status read.
    pub(super) fn new(handle: Handle, operation: Operation) -> Result<Self> {
        let code = sys::http_status(handle.raw());
        if code < 0 {
            return Err(operation.error(code));
        }
        let status = u16::try_from(code)
            .ok()
            .and_then(|status| StatusCode::from_u16(status).ok())
            .ok_or_else(|| {
                Error::msg(format!("the host gave status {code}, not an HTTP status"))
            })?;
        Ok(Self {
            handle,
            status,
            headers: OnceCell::new(),
            ended: false,
            operation,
        })
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Every header of the response (names in lower case). Headers the host
    /// could not represent as `http` values are left out.
    pub fn headers(&self) -> &HeaderMap {
        self.headers.get_or_init(|| {
            let block = sys::read_value(|buf| sys::http_headers(self.handle.raw(), buf))
                .unwrap_or_default();
            parse_headers(&block)
        })
    }

    /// The value of header `name` (any case); repeated headers come joined
    /// by `, `. Accepts a `&str` or an `http::HeaderName`.
    pub fn header(&self, name: impl AsRef<str>) -> Option<HeaderValue> {
        let name = name.as_ref();
        if let Some(headers) = self.headers.get() {
            return joined(headers, name);
        }
        let value =
            sys::read_value(|buf| sys::http_header(self.handle.raw(), name.as_bytes(), buf))?;
        HeaderValue::from_bytes(&value).ok()
    }

    /// The rest of the body as bytes.
    ///
    /// Takes the response by value, which also keeps `std::io::Read::bytes`
    /// from being picked instead when `Read` is in scope.
    pub fn bytes(mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let start = body.len();
            body.resize(start + CHUNK, 0);
            let n = self.read_host(&mut body[start..])?;
            body.truncate(start + n);
            if n == 0 {
                return Ok(body);
            }
        }
    }

    /// The rest of the body as text; an error if it is not UTF-8.
    pub fn text(self) -> Result<String> {
        let what = self.operation.what().to_owned();
        String::from_utf8(self.bytes()?)
            .map_err(|error| Error::msg(format!("the body of {what} is not UTF-8: {error}")))
    }

    /// The rest of the body parsed as JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        let what = self.operation.what().to_owned();
        serde_json::from_slice(&self.bytes()?).map_err(|error| {
            Error::msg(format!(
                "the body of {what} is not the JSON expected: {error}"
            ))
        })
    }

    /// One `http_read`: the count, `0` at the end.
    fn read_host(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        // An empty buffer would read as "end" from the host.
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        let code = sys::http_read(self.handle.raw(), buf);
        match usize::try_from(code) {
            Ok(0) => {
                self.ended = true;
                Ok(0)
            }
            Ok(n) => Ok(n.min(buf.len())),
            Err(_) => Err(self.operation.host_error(code)),
        }
    }
}

impl Read for FetchResponse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_host(buf)?)
    }
}

impl fmt::Debug for FetchResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchResponse")
            .field("request", &self.operation.what())
            .field("status", &self.status)
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// The headers of an `http_headers` block: `name: value` lines ended by
/// `\n` (a `\r` before it is dropped). Lines that are not valid headers are
/// skipped rather than failing the whole response.
fn parse_headers(block: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// Every value of `name` joined by `, `, as `http_header` gives them.
fn joined(headers: &HeaderMap, name: &str) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut all = first.as_bytes().to_vec();
    for value in values {
        all.extend_from_slice(b", ");
        all.extend_from_slice(value.as_bytes());
    }
    HeaderValue::from_bytes(&all).ok()
}

#[cfg(test)]
mod tests {
    use super::{joined, parse_headers};

    #[test]
    fn a_header_block_parses_into_a_map() {
        let block = b"content-type: text/plain\r\nx-a: 1\nx-a:2\nbad line\n\nx-b:  spaced  \n";
        let headers = parse_headers(block);
        assert_eq!(headers["content-type"], "text/plain");
        let values: Vec<_> = headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(headers["x-b"], "spaced");
        assert_eq!(headers.len(), 4);
    }

    #[test]
    fn repeated_values_join_with_a_comma() {
        let headers = parse_headers(b"x-a: 1\nx-a: 2\n");
        assert_eq!(joined(&headers, "X-A").unwrap(), "1, 2");
        assert!(joined(&headers, "x-b").is_none());
    }
}
