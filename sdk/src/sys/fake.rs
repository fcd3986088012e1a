//! A fake host for native builds, so handlers run under plain `cargo test`.
//!
//! Each thread holds at most one [`Exchange`]: the request a test built and
//! everything the handler did with it. Every import follows its rule on the
//! ABI page (full lengths, `ABSENT`, `HEAD_SENT` after the first write,
//! `CLOSED` once the client has gone), so the SDK above it runs the code it
//! runs in the runtime. Time is virtual: `sleep_ms` advances a clock and
//! returns at once, so a test of a slow handler is fast and exact.
//!
//! The capabilities live in `fake/`: the handle table behind every
//! `_begin`/`_end` (`ops.rs`), outbound HTTP against a test's responder
//! (`upstream.rs`), key-value stores in memory (`kv.rs`) and files in memory
//! (`files.rs`). An outbound request's latency is virtual too: a request
//! begun at `t` and answering after `d` is ready at `t + d`, and its `_end`
//! moves the clock there if it is not yet past it, so begun requests overlap
//! exactly as they do in the runtime.

mod files;
mod kv;
mod ops;
mod upstream;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::code;

pub(crate) use files::{FakeFiles, file_read, file_read_begin, file_read_end, file_size};
pub(crate) use kv::{
    Entry, FakeKv, kv_delete, kv_delete_begin, kv_delete_end, kv_get, kv_get_begin, kv_get_end,
    kv_list, kv_list_begin, kv_list_end, kv_set, kv_set_begin, kv_set_end, store_name,
};
pub(crate) use ops::{Ops, close, error_message};
pub(crate) use upstream::{
    FakeUpstream, http_begin, http_end, http_header, http_headers, http_read, http_send,
    http_status,
};
#[cfg(test)]
pub(crate) use {files::remove_file, ops::open_handles};

/// One request on the fake host, and everything the handler did with it.
pub(crate) struct Exchange {
    /// What `req_method` answers.
    pub(crate) method: String,
    /// What `req_uri` answers: path and query, as received.
    pub(crate) uri: String,
    /// Request headers in arrival order; a name may repeat.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// Route parameters, already percent-decoded as the runtime hands them.
    pub(crate) params: Vec<(String, Vec<u8>)>,
    /// The handler's `[variables]`, as its `wasmlet.toml` files would set them.
    pub(crate) vars: Vec<(String, String)>,
    /// The whole request body.
    pub(crate) body: Vec<u8>,
    /// How much of `body` the handler has read.
    pub(crate) body_read: usize,
    /// The most one `req_body_read` hands out, as a network delivers a body
    /// in pieces; `None` fills the buffer.
    pub(crate) read_chunk: Option<usize>,
    /// The client aborts the upload after this many bytes: reads past it
    /// return `BODY`.
    pub(crate) body_fails_after: Option<usize>,
    /// The client hangs up once this many body bytes were written: later
    /// writes return `CLOSED`.
    pub(crate) disconnect_after: Option<usize>,
    /// The response status; 200 until the handler sets one.
    pub(crate) status: u16,
    /// Response headers in the order the handler appended them.
    pub(crate) response_headers: Vec<(String, Vec<u8>)>,
    /// Whether the first write has happened; status and headers are frozen.
    pub(crate) head_sent: bool,
    /// Body bytes accepted so far; a refused write adds nothing.
    pub(crate) written: usize,
    /// Every accepted `resp_write`, in order.
    pub(crate) writes: Vec<Written>,
    /// Every `log` line: level and message.
    pub(crate) logs: Vec<(i32, String)>,
    /// Virtual time spent in `sleep_ms` and waiting for upstreams.
    pub(crate) clock: Duration,
    /// The wall-clock time the request starts at ([`fake_epoch`] unless the
    /// test sets one).
    pub(crate) wall_start: std::time::SystemTime,
    /// Pending operations and open responses, by handle.
    pub(crate) ops: Ops,
    /// The message of the latest failed call, for `error_message`.
    pub(crate) last_error: Option<String>,
    /// Outbound HTTP: the test's responder and what it was asked.
    pub(crate) upstream: FakeUpstream,
    /// The stores the test granted, and their contents.
    pub(crate) kv: FakeKv,
    /// The mounts the test granted, and their files.
    pub(crate) files: FakeFiles,
}

/// Where the fake host's wall clock starts unless a test sets it
/// (`TestRequest::at`): 2026-01-01 00:00:00 UTC, fixed so that a test's
/// result does not depend on the day it runs.
pub(crate) fn fake_epoch() -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// One accepted `resp_write`.
pub(crate) struct Written {
    /// The virtual time of the write.
    pub(crate) at: Duration,
    /// How much of the request body the handler had read by then, which
    /// shows whether it streams or buffers.
    pub(crate) body_read: usize,
    /// The bytes written.
    pub(crate) bytes: Vec<u8>,
}

impl Exchange {
    /// A request with no headers and no body.
    pub(crate) fn new(method: &str, uri: &str) -> Self {
        Self {
            method: method.to_owned(),
            uri: uri.to_owned(),
            headers: Vec::new(),
            params: Vec::new(),
            vars: Vec::new(),
            body: Vec::new(),
            body_read: 0,
            read_chunk: None,
            body_fails_after: None,
            disconnect_after: None,
            status: 200,
            response_headers: Vec::new(),
            head_sent: false,
            written: 0,
            writes: Vec::new(),
            logs: Vec::new(),
            clock: Duration::ZERO,
            wall_start: fake_epoch(),
            ops: Ops::default(),
            last_error: None,
            upstream: FakeUpstream::default(),
            kv: FakeKv::default(),
            files: FakeFiles::default(),
        }
    }

    /// Records why a call failed (for `error_message`); returns its code.
    pub(crate) fn fail(&mut self, failure: Failure) -> i32 {
        self.last_error = Some(failure.message);
        failure.code
    }
}

/// A failed call: the code the guest gets and the message `error_message`
/// gives it.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) code: i32,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Exchange>> = const { RefCell::new(None) };
}

/// The signal `trap` unwinds with; [`run`] catches it.
struct Trap;

/// Runs `entry` (a handler's export) against `exchange` on this thread.
/// Returns the exchange as the handler left it, and what `entry` returned,
/// or the payload it unwound with (a panic, or an explicit trap).
pub(crate) fn run<R>(
    exchange: Exchange,
    entry: impl FnOnce() -> R,
) -> (Exchange, std::thread::Result<R>) {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        assert!(
            current.is_none(),
            "a request is already running on this thread: TestRequest::call cannot nest"
        );
        *current = Some(exchange);
    });
    let result = panic::catch_unwind(AssertUnwindSafe(entry));
    let exchange = CURRENT
        .with(|current| current.borrow_mut().take())
        .expect("the exchange is in place until the handler returns");
    (exchange, result)
}

fn with<R>(f: impl FnOnce(&mut Exchange) -> R) -> R {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let exchange = current.as_mut().expect(
            "no request on this thread: run the handler's export through \
             wasmlet_sdk::testing::TestRequest::call",
        );
        f(exchange)
    })
}

/// A length as the ABI returns it.
fn full_len(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Copies what fits of `value` into `buf`; returns the full length.
fn copy_out(value: &[u8], buf: &mut [u8]) -> i32 {
    let n = value.len().min(buf.len());
    buf[..n].copy_from_slice(&value[..n]);
    full_len(value.len())
}

/// `req_method`.
pub(crate) fn req_method(buf: &mut [u8]) -> i32 {
    with(|ex| copy_out(ex.method.as_bytes(), buf))
}

/// `req_uri`.
pub(crate) fn req_uri(buf: &mut [u8]) -> i32 {
    with(|ex| copy_out(ex.uri.as_bytes(), buf))
}

/// `req_header`: case-insensitive; repeated headers joined by `, `;
/// `INVALID` for a name that is not a valid header name.
pub(crate) fn req_header(name: &[u8], buf: &mut [u8]) -> i32 {
    let Ok(name) = http::HeaderName::from_bytes(name) else {
        return code::INVALID;
    };
    with(|ex| {
        let values: Vec<&[u8]> = ex
            .headers
            .iter()
            .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name.as_str()))
            .map(|(_, value)| value.as_slice())
            .collect();
        if values.is_empty() {
            code::ABSENT
        } else {
            copy_out(&values.join(&b", "[..]), buf)
        }
    })
}

/// `req_param`: names match exactly, as file names in the web root do.
pub(crate) fn req_param(name: &[u8], buf: &mut [u8]) -> i32 {
    with(|ex| {
        match ex
            .params
            .iter()
            .find(|(candidate, _)| candidate.as_bytes() == name)
        {
            Some((_, value)) => copy_out(value, buf),
            None => code::ABSENT,
        }
    })
}

/// `var_get`: the variable's full length, or `ABSENT` when the test set
/// none by that name.
pub(crate) fn var_get(name: &[u8], buf: &mut [u8]) -> i32 {
    with(
        |ex| match ex.vars.iter().rev().find(|(n, _)| n.as_bytes() == name) {
            Some((_, value)) => copy_out(value.as_bytes(), buf),
            None => code::ABSENT,
        },
    )
}

/// `req_body_read`; `INVALID` for an empty buffer, whose `0` would read as
/// the end of the body.
pub(crate) fn req_body_read(buf: &mut [u8]) -> i32 {
    if buf.is_empty() {
        return code::INVALID;
    }
    with(|ex| {
        let start = ex.body_read;
        let mut end = ex.body.len();
        if let Some(limit) = ex.body_fails_after
            && limit < end
        {
            if start >= limit {
                return code::BODY;
            }
            end = limit;
        }
        let mut n = buf.len().min(end - start);
        if let Some(chunk) = ex.read_chunk {
            n = n.min(chunk);
        }
        buf[..n].copy_from_slice(&ex.body[start..start + n]);
        ex.body_read += n;
        full_len(n)
    })
}

/// `resp_status`.
pub(crate) fn resp_status(status: i32) -> i32 {
    with(|ex| {
        if ex.head_sent {
            return code::HEAD_SENT;
        }
        match u16::try_from(status) {
            // A 1xx is an interim status, which the runtime refuses too.
            Ok(status) if (200..=999).contains(&status) => {
                ex.status = status;
                code::OK
            }
            _ => code::INVALID,
        }
    })
}

/// Headers about the connection rather than the response: the runtime
/// frames the response itself and refuses these with `INVALID`.
const HOST_OWNED: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The runtime's default `--max-response-headers`.
const MAX_RESPONSE_HEADERS: usize = 100;
/// The runtime's default `--max-response-header-size`, counting each field's
/// name and value plus [`FIELD_FRAMING`].
const MAX_RESPONSE_HEAD: usize = 32 << 10;
/// What each field adds besides its name and value (`: ` and CRLF).
const FIELD_FRAMING: usize = 4;

/// `resp_header`: validated as the runtime validates, by the `http` crate,
/// refusing the headers the runtime owns and a head past the runtime's
/// default limits.
pub(crate) fn resp_header(name: &[u8], value: &[u8]) -> i32 {
    with(|ex| {
        if ex.head_sent {
            return code::HEAD_SENT;
        }
        let (Ok(name), Ok(_)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) else {
            return code::INVALID;
        };
        if HOST_OWNED.contains(&name.as_str()) {
            return code::INVALID;
        }
        let field = |name: usize, value: usize| name + value + FIELD_FRAMING;
        let head_bytes: usize = ex
            .response_headers
            .iter()
            .map(|(name, value)| field(name.len(), value.len()))
            .sum::<usize>()
            + field(name.as_str().len(), value.len());
        if ex.response_headers.len() >= MAX_RESPONSE_HEADERS || head_bytes > MAX_RESPONSE_HEAD {
            return code::TOO_LARGE;
        }
        ex.response_headers
            .push((name.as_str().to_owned(), value.to_vec()));
        code::OK
    })
}

/// `resp_write`: the first call sends the head.
pub(crate) fn resp_write(buf: &[u8]) -> i32 {
    with(|ex| {
        ex.head_sent = true;
        if ex.disconnect_after.is_some_and(|limit| ex.written >= limit) {
            return code::CLOSED;
        }
        ex.written += buf.len();
        ex.writes.push(Written {
            at: ex.clock,
            body_read: ex.body_read,
            bytes: buf.to_vec(),
        });
        code::OK
    })
}

/// `log`.
pub(crate) fn log(level: i32, message: &[u8]) {
    let message = String::from_utf8_lossy(message).into_owned();
    with(|ex| ex.logs.push((level, message)));
}

/// Logs a panic's message into the running exchange, if this thread has one;
/// a panic elsewhere (a failing assertion in a test) is none of its business.
pub(crate) fn log_panic(message: &str) {
    // `try_borrow_mut`: the panic may have started inside a borrow.
    let _ = CURRENT.try_with(|current| {
        if let Ok(mut current) = current.try_borrow_mut()
            && let Some(ex) = current.as_mut()
        {
            ex.logs
                .push((crate::log::Level::Error as i32, message.to_owned()));
        }
    });
}

/// `clock_now_ms`: the request's virtual wall clock, [`Exchange::wall_start`]
/// plus the virtual time spent so far.
pub(crate) fn clock_now_ms() -> i64 {
    with(|ex| {
        let now = ex.wall_start + ex.clock;
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        }
    })
}

/// `clock_elapsed_us`: the virtual time spent so far.
pub(crate) fn clock_elapsed_us() -> i64 {
    with(|ex| i64::try_from(ex.clock.as_micros()).unwrap_or(i64::MAX))
}

/// `sleep_ms`: advances the virtual clock.
pub(crate) fn sleep_ms(ms: i64) {
    let ms = u64::try_from(ms).unwrap_or(0);
    with(|ex| ex.clock += Duration::from_millis(ms));
}

/// A trap: unwinds to [`run`] without running the panic hook.
pub(crate) fn trap() -> ! {
    panic::resume_unwind(Box::new(Trap))
}
