//! Outbound HTTP on the fake host: each request is parsed as the runtime
//! parses it (so a badly encoded request is `INVALID` here too) and handed
//! to the test's responder, whose [`Reply`] is the upstream's answer, its
//! failure, and its latency in virtual time. With no responder, every
//! request is `DENIED`, as it is in the runtime without an `[http]` grant.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};

use super::ops::Slot;
use super::{Exchange, Failure, copy_out, full_len, trap, with};
use crate::code;
use crate::testing::Reply;

/// What a test answers outbound requests with.
pub(crate) type Responder = Box<dyn FnMut(&Request<Vec<u8>>) -> Reply>;

/// The fake upstream of one request.
#[derive(Default)]
pub(crate) struct FakeUpstream {
    /// The test's responder; `None` denies every request.
    pub(crate) responder: Option<Responder>,
    /// Every request the responder answered, in order.
    pub(crate) requests: Vec<Request<Vec<u8>>>,
    /// Reads past this many body bytes fail with `TOO_LARGE`.
    pub(crate) max_response_size: Option<usize>,
    /// The responder panicked (a failing assertion in a test): the test
    /// re-raises it once the handler has stopped.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
}

/// An outbound response as the handler reads it.
pub(crate) struct Fetched {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    /// How much of `body` the handler has read.
    read: usize,
}

/// The request the four byte strings of `http_send` describe.
fn parse(
    method: &[u8],
    url: &[u8],
    headers: &[u8],
    body: &[u8],
) -> Result<Request<Vec<u8>>, Failure> {
    let invalid = |message: String| Failure::new(code::INVALID, message);
    let method = Method::from_bytes(method).map_err(|_| {
        invalid(format!(
            "{:?} is not an HTTP method",
            String::from_utf8_lossy(method)
        ))
    })?;
    let text = String::from_utf8_lossy(url);
    let uri: Uri = text
        .parse()
        .map_err(|error| invalid(format!("{text:?} is not a URL: {error}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(invalid(format!(
            "{text:?} is not an absolute http:// or https:// URL"
        )));
    }
    let mut request = Request::builder().method(method).uri(uri);
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let header = line.iter().position(|&b| b == b':').and_then(|colon| {
            let name = HeaderName::from_bytes(&line[..colon]).ok()?;
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
            Some((name, value))
        });
        let Some((name, value)) = header else {
            return Err(invalid(format!(
                "{:?} is not a `Name: value` header line",
                String::from_utf8_lossy(line)
            )));
        };
        request = request.header(name, value);
    }
    request
        .body(body.to_vec())
        .map_err(|error| invalid(format!("the request is not valid HTTP: {error}")))
}

/// Asks the test's responder about `request`: its answer and its latency.
/// The responder runs outside the exchange's borrow, so it may do anything.
fn ask(request: Request<Vec<u8>>) -> (Result<Fetched, Failure>, Duration) {
    let Some(mut responder) = with(|ex| ex.upstream.responder.take()) else {
        let message = format!(
            "{} is not granted: the test grants no upstream; give the TestRequest one with .upstream(...)",
            request.uri().host().unwrap_or_default()
        );
        return (Err(Failure::new(code::DENIED, message)), Duration::ZERO);
    };
    let reply = match panic::catch_unwind(AssertUnwindSafe(|| responder(&request))) {
        Ok(reply) => reply,
        Err(payload) => {
            with(|ex| ex.upstream.panic = Some(payload));
            trap();
        }
    };
    with(|ex| {
        ex.upstream.responder = Some(responder);
        ex.upstream.requests.push(request);
    });
    let answer = reply.answer.map(|response| {
        let (parts, body) = response.into_parts();
        Fetched {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            read: 0,
        }
    });
    (answer, reply.delay)
}

/// `http_send`: the answer arrives after its latency.
pub(crate) fn http_send(method: &[u8], url: &[u8], headers: &[u8], body: &[u8]) -> i32 {
    let request = match with(|ex| ex.ops.room().and(parse(method, url, headers, body))) {
        Ok(request) => request,
        Err(failure) => return with(|ex| ex.fail(failure)),
    };
    let (answer, delay) = ask(request);
    with(|ex| {
        ex.clock += delay;
        match answer.and_then(|fetched| ex.ops.open(Slot::Response(fetched))) {
            Ok(handle) => handle,
            Err(failure) => ex.fail(failure),
        }
    })
}

/// `http_begin`: the answer is ready at the current time plus its latency.
pub(crate) fn http_begin(method: &[u8], url: &[u8], headers: &[u8], body: &[u8]) -> i32 {
    let request = match with(|ex| ex.ops.room().and(parse(method, url, headers, body))) {
        Ok(request) => request,
        Err(failure) => return with(|ex| ex.fail(failure)),
    };
    let (answer, delay) = ask(request);
    with(|ex| {
        let ready_at = ex.clock + delay;
        match ex.ops.open(Slot::Fetch { answer, ready_at }) {
            Ok(handle) => handle,
            Err(failure) => ex.fail(failure),
        }
    })
}

/// `http_end`: waits (in virtual time) until the answer is ready; the
/// response then lives under the operation's handle, as in the runtime.
pub(crate) fn http_end(op: i32) -> i32 {
    with(|ex| match ex.ops.take(op) {
        Ok(Slot::Fetch { answer, ready_at }) => {
            ex.clock = ex.clock.max(ready_at);
            match answer {
                Ok(fetched) => {
                    ex.ops.put(op, Slot::Response(fetched));
                    op
                }
                Err(failure) => ex.fail(failure),
            }
        }
        Ok(other) => {
            ex.ops.put(op, other);
            ex.fail(Failure::new(
                code::INVALID,
                format!("handle {op} is not an http_begin operation"),
            ))
        }
        Err(failure) => ex.fail(failure),
    })
}

/// Runs `f` on the open response `resp`; `INVALID` if it is none.
fn on_response(resp: i32, f: impl FnOnce(&mut Fetched) -> i32) -> i32 {
    with(|ex: &mut Exchange| match ex.ops.response(resp) {
        Ok(fetched) => f(fetched),
        Err(failure) => ex.fail(failure),
    })
}

/// `http_status`.
pub(crate) fn http_status(resp: i32) -> i32 {
    on_response(resp, |fetched| i32::from(fetched.status))
}

/// `http_header`: case-insensitive; repeated headers joined by `, `.
pub(crate) fn http_header(resp: i32, name: &[u8], buf: &mut [u8]) -> i32 {
    let Ok(name) = HeaderName::from_bytes(name) else {
        return with(|ex| {
            ex.fail(Failure::new(
                code::INVALID,
                "not a valid header name".to_owned(),
            ))
        });
    };
    on_response(resp, |fetched| {
        let values: Vec<&[u8]> = fetched
            .headers
            .get_all(&name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if values.is_empty() {
            code::ABSENT
        } else {
            copy_out(&values.join(&b", "[..]), buf)
        }
    })
}

/// `http_headers`: `name: value\n` for each header.
pub(crate) fn http_headers(resp: i32, buf: &mut [u8]) -> i32 {
    on_response(resp, |fetched| {
        let mut block = Vec::new();
        for (name, value) in &fetched.headers {
            block.extend_from_slice(name.as_str().as_bytes());
            block.extend_from_slice(b": ");
            block.extend_from_slice(value.as_bytes());
            block.push(b'\n');
        }
        copy_out(&block, buf)
    })
}

/// `http_read`: the body up to the maximum response size, then
/// `TOO_LARGE`; `INVALID` for an empty buffer, whose `0` would read as the
/// end.
pub(crate) fn http_read(resp: i32, buf: &mut [u8]) -> i32 {
    if buf.is_empty() {
        return with(|ex| {
            ex.fail(Failure::new(
                code::INVALID,
                "http_read needs a buffer of at least one byte",
            ))
        });
    }
    let read = with(|ex| {
        let limit = ex.upstream.max_response_size;
        let fetched = ex.ops.response(resp)?;
        let mut end = fetched.body.len();
        if let Some(limit) = limit
            && limit < end
        {
            if fetched.read >= limit {
                return Err(Failure::new(
                    code::TOO_LARGE,
                    format!("the response is larger than max-response-size ({limit} bytes)"),
                ));
            }
            end = limit;
        }
        let n = buf.len().min(end - fetched.read);
        buf[..n].copy_from_slice(&fetched.body[fetched.read..fetched.read + n]);
        fetched.read += n;
        Ok(full_len(n))
    });
    read.unwrap_or_else(|failure| with(|ex| ex.fail(failure)))
}
