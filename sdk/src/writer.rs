//! [`ResponseWriter`]: the response of a streaming handler.

use std::fmt::Write as _;
use std::io;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::{Error, Result, code, sys};

/// The response of a streaming handler: set the status and headers, then
/// write the body with [`std::io::Write`].
///
/// The first write sends the head; after it, [`set_status`] and the header
/// setters fail. Nothing is buffered: each `write` (and each `write!`, which
/// is formatted whole first) reaches the client while the handler runs,
/// so [`flush`](io::Write::flush) has nothing to do. A write fails with
/// [`BrokenPipe`](io::ErrorKind::BrokenPipe) once the client has gone.
///
/// Until the first write, the head stays in the module: a handler that
/// fails before writing answers a clean `500` without the headers it set.
///
/// [`set_status`]: ResponseWriter::set_status
#[derive(Debug)]
pub struct ResponseWriter {
    status: StatusCode,
    headers: HeaderMap,
    /// Status and headers went to the host, which sends them with the first
    /// body bytes, or when the handler returns.
    head_sent: bool,
    /// A write found the client gone; the entry point then ends quietly
    /// instead of reporting the handler's error.
    client_gone: bool,
}

impl ResponseWriter {
    pub(crate) fn new() -> Self {
        Self::with_head(StatusCode::OK, HeaderMap::new())
    }

    pub(crate) fn with_head(status: StatusCode, headers: HeaderMap) -> Self {
        Self {
            status,
            headers,
            head_sent: false,
            client_gone: false,
        }
    }

    /// The status; `200 OK` until set.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers set so far.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Whether the head has gone (the first write happened).
    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// Sets the status; an error once the head is sent.
    pub fn set_status(&mut self, status: StatusCode) -> Result<()> {
        self.check_head_open()?;
        self.status = status;
        Ok(())
    }

    /// Sets header `name` to `value`, replacing earlier values; an error for
    /// an invalid name or value, or once the head is sent. Takes what
    /// `http::response::Builder::header` takes: `&str`, `String`,
    /// `HeaderName`, `HeaderValue`.
    pub fn set_header<K, V>(&mut self, name: K, value: V) -> Result<()>
    where
        K: TryInto<HeaderName>,
        <K as TryInto<HeaderName>>::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        <V as TryInto<HeaderValue>>::Error: Into<http::Error>,
    {
        let (name, value) = Self::header(name, value)?;
        self.check_head_open()?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds a value to header `name`, keeping earlier ones; errors as for
    /// [`set_header`](ResponseWriter::set_header).
    pub fn append_header<K, V>(&mut self, name: K, value: V) -> Result<()>
    where
        K: TryInto<HeaderName>,
        <K as TryInto<HeaderName>>::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        <V as TryInto<HeaderValue>>::Error: Into<http::Error>,
    {
        let (name, value) = Self::header(name, value)?;
        self.check_head_open()?;
        self.headers.append(name, value);
        Ok(())
    }

    fn header<K, V>(name: K, value: V) -> Result<(HeaderName, HeaderValue)>
    where
        K: TryInto<HeaderName>,
        <K as TryInto<HeaderName>>::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        <V as TryInto<HeaderValue>>::Error: Into<http::Error>,
    {
        let name = name.try_into().map_err(Into::into)?;
        let value = value.try_into().map_err(Into::into)?;
        Ok((name, value))
    }

    fn check_head_open(&self) -> Result<()> {
        if self.head_sent {
            return Err(Error::msg(
                "the response head has already been sent: set the status and headers before \
                 the first write",
            ));
        }
        Ok(())
    }

    /// Hands status and headers to the host, once.
    fn send_head(&mut self) {
        if self.head_sent {
            return;
        }
        self.head_sent = true;
        sys::resp_status(i32::from(self.status.as_u16()));
        for (name, value) in &self.headers {
            if sys::resp_header(name.as_str().as_bytes(), value.as_bytes()) != code::OK {
                // Valid for `http`, refused by the host (a header it manages
                // itself, perhaps): the response can still go out.
                let mut message = String::from("the host refused response header `");
                message.push_str(name.as_str());
                message.push('`');
                crate::log::write(crate::log::Level::Warn, &message);
            }
        }
    }

    /// Whether a write found that the client has gone.
    pub(crate) fn client_gone(&self) -> bool {
        self.client_gone
    }

    /// Ends a successful response: sends the head if nothing was written.
    pub(crate) fn finish(&mut self) {
        self.send_head();
    }
}

impl io::Write for ResponseWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.send_head();
        let len = buf.len().min(sys::MAX_LEN);
        match sys::resp_write(&buf[..len]) {
            code::OK => Ok(len),
            code::CLOSED => {
                self.client_gone = true;
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the client has gone",
                ))
            }
            _ => Err(io::Error::other("the host refused the response body")),
        }
    }

    /// Formats the whole message first, so one `write!` is one write (one
    /// piece on the wire) rather than one per formatted argument.
    fn write_fmt(&mut self, args: std::fmt::Arguments<'_>) -> io::Result<()> {
        match args.as_str() {
            Some(text) => self.write_all(text.as_bytes()),
            None => {
                let mut text = String::new();
                text.write_fmt(args)
                    .map_err(|_| io::Error::other("a Display implementation failed"))?;
                self.write_all(text.as_bytes())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseWriter;
    use crate::testing::TestRequest;
    use http::StatusCode;
    use std::io::{ErrorKind, Write};

    #[test]
    fn the_head_goes_with_the_first_write_and_then_freezes() {
        let served = TestRequest::get("/").call(|| {
            let mut out = ResponseWriter::new();
            out.set_status(StatusCode::ACCEPTED).unwrap();
            out.set_header("x-a", "1").unwrap();
            out.append_header("x-a", "2").unwrap();
            assert!(!out.head_sent());
            out.write_all(b"body").unwrap();
            assert!(out.head_sent());
            assert!(out.set_status(StatusCode::OK).is_err());
            assert!(out.set_header("x-b", "1").is_err());
            assert_eq!(out.status(), StatusCode::ACCEPTED);
        });
        assert_eq!(served.status(), StatusCode::ACCEPTED);
        let values: Vec<_> = served.headers().get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert!(served.headers().get("x-b").is_none());
        assert_eq!(served.body(), b"body");
    }

    #[test]
    fn invalid_header_names_and_values_are_errors() {
        TestRequest::get("/").call(|| {
            let mut out = ResponseWriter::new();
            assert!(out.set_header("bad name", "v").is_err());
            assert!(out.set_header("x-ok", "line\nbreak").is_err());
            assert!(out.headers().is_empty());
        });
    }

    #[test]
    fn one_write_macro_is_one_write_on_the_wire() {
        let served = TestRequest::get("/").call(|| {
            let mut out = ResponseWriter::new();
            let (a, b) = (1, "two");
            writeln!(out, "{a} and {b}").unwrap();
            out.write_all(b"").unwrap();
            out.write_all(b"x").unwrap();
        });
        let chunks: Vec<&[u8]> = served.chunks().iter().map(|c| &c.bytes[..]).collect();
        assert_eq!(chunks, [&b"1 and two\n"[..], b"x"]);
    }

    #[test]
    fn writes_fail_with_broken_pipe_once_the_client_has_gone() {
        TestRequest::get("/").disconnect_after(3).call(|| {
            let mut out = ResponseWriter::new();
            out.write_all(b"abc").unwrap();
            let error = out.write_all(b"d").unwrap_err();
            assert_eq!(error.kind(), ErrorKind::BrokenPipe);
        });
    }
}
