//! Response imports: `resp_status`, `resp_header` and the async
//! `resp_write`, which sends the head on its first call and then streams.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use wasmtime::{Caller, Linker};

use super::memory::read;
use super::{Ctx, Failure, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::outcome::Outcome;
use crate::request::{BodyError, Incomplete, Respond, Start};

/// Body chunks in flight between a guest and its client. Small, so a guest
/// that writes faster than the client reads is suspended in `resp_write`
/// (backpressure) instead of the host buffering its output.
const BODY_CHANNEL_CHUNKS: usize = 4;

/// The guest's body as the connection receives it. The channel closing ends
/// the body cleanly only if the guest returned normally; any other end (a
/// trap, a timeout, the task dropped) cuts it, so the client can tell the
/// response is incomplete.
struct BodyStream {
    chunks: mpsc::Receiver<Bytes>,
    /// Set by [`ResponseState::finish`] before it closes the channel.
    ended: Arc<OnceLock<Outcome>>,
}

impl Body for BodyStream {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match ready!(this.chunks.poll_recv(cx)) {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            None => Poll::Ready(Incomplete::after(this.ended.get()).map(Err)),
        }
    }
}

/// How big a response head a guest may build: its fields are host memory
/// held for the whole request, and a head past what clients accept would
/// only fail on their side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Most header fields.
    pub(crate) fields: u32,
    /// Most bytes: every field's name and value, plus [`FIELD_FRAMING`].
    pub(crate) bytes: u32,
}

/// What each field adds to the head besides its name and value: `: ` and
/// CRLF on the HTTP/1.1 wire.
const FIELD_FRAMING: usize = 4;

impl HeadLimits {
    /// The server's limits (`--max-response-headers`,
    /// `--max-response-header-size`).
    pub(crate) fn of(config: &crate::Config) -> Self {
        Self {
            fields: config.max_response_headers,
            bytes: config.max_response_header_size,
        }
    }

    /// Why a finished head breaks these limits, if it does: for a
    /// component, whose fields the host only sees once they are set.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| field_size(name.as_str().len(), value.len()))
            .sum();
        if headers.len() > self.fields as usize {
            return Err(format!(
                "the response has {} header fields, more than --max-response-headers ({})",
                headers.len(),
                self.fields
            ));
        }
        if bytes > self.bytes as usize {
            return Err(format!(
                "the response head is {bytes} bytes, more than --max-response-header-size ({})",
                self.bytes
            ));
        }
        Ok(())
    }
}

/// The bytes one field takes in the head.
fn field_size(name: usize, value: usize) -> usize {
    name.saturating_add(value).saturating_add(FIELD_FRAMING)
}

/// The response as the guest builds it.
pub(crate) struct ResponseState {
    status: StatusCode,
    headers: HeaderMap,
    /// Bytes the headers so far take (see [`HeadLimits`]).
    head_bytes: usize,
    limits: HeadLimits,
    /// `Some` until the head is sent.
    start: Option<Respond>,
    /// `Some` once the head is sent and until the client goes away.
    body: Option<mpsc::Sender<Bytes>>,
    /// How the guest ended, set before the body channel closes; see
    /// [`BodyStream`].
    ended: Arc<OnceLock<Outcome>>,
}

impl ResponseState {
    pub(crate) fn new(start: Respond, limits: HeadLimits) -> Self {
        Self {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            head_bytes: 0,
            limits,
            start: Some(start),
            body: None,
            ended: Arc::default(),
        }
    }

    /// The status the guest chose (200 unless it set one).
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// Sends the head now, with a streaming body. False if the client is gone.
    fn send_head(&mut self) -> bool {
        let Some(start) = self.start.take() else {
            return self.body.is_some();
        };
        let (tx, rx) = mpsc::channel(BODY_CHANNEL_CHUNKS);
        let body = BodyStream {
            chunks: rx,
            ended: self.ended.clone(),
        };
        let head = Start::Head(self.head(body.boxed_unsync()));
        if start.send(head).is_ok() {
            self.body = Some(tx);
            true
        } else {
            false
        }
    }

    /// Ends the response once the guest is done: an empty body if it never
    /// wrote, the status for a failure before the head, or a cut body for a
    /// failure after it.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        match self.start.take() {
            Some(start) => {
                let message = match outcome {
                    Outcome::Completed => Start::Complete(self.head(())),
                    failure => Start::Failed(failure),
                };
                let _ = start.send(message);
            }
            None => {
                let _ = self.ended.set(outcome);
                self.body = None;
            }
        }
    }

    /// The head the guest built, with `body`.
    fn head<B>(&mut self, body: B) -> http::Response<B> {
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = std::mem::take(&mut self.headers);
        response
    }

    /// Whether the head has been sent.
    pub(crate) fn head_sent(&self) -> bool {
        self.start.is_none()
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "resp_status", resp_status)?;
    linker.func_wrap(MODULE, "resp_header", resp_header)?;
    linker.func_wrap_async(
        MODULE,
        "resp_write",
        |caller: Caller<'_, Ctx>, (buf, len): (i32, i32)| Box::new(resp_write(caller, buf, len)),
    )?;
    Ok(())
}

fn resp_status(mut caller: Caller<'_, Ctx>, status: i32) -> i32 {
    let response = &mut caller.data_mut().response;
    if response.head_sent() {
        return code::HEAD_SENT;
    }
    // A 1xx is an interim response, not an answer: hyper cannot send one
    // as the final status (`101` would switch protocols on a connection the
    // guest cannot reach).
    let Some(status) = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| !s.is_informational())
    else {
        return code::INVALID;
    };
    response.status = status;
    code::OK
}

/// Headers that describe the connection rather than the response; the host
/// owns them, and a guest setting them could corrupt the framing.
const HOST_OWNED: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    HeaderName::from_static("keep-alive"),
];

fn resp_header(
    mut caller: Caller<'_, Ctx>,
    name: i32,
    name_len: i32,
    value: i32,
    value_len: i32,
) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    let name = read(memory, name, name_len)?;
    let value = read(memory, value, value_len)?;
    let response = &mut ctx.response;
    if response.head_sent() {
        return Ok(code::HEAD_SENT);
    }
    // Checked before anything is copied: past the limits the guest's bytes
    // never become host memory.
    let head_bytes = response
        .head_bytes
        .saturating_add(field_size(name.len(), value.len()));
    if response.headers.len() >= response.limits.fields as usize
        || head_bytes > response.limits.bytes as usize
    {
        let message = format!(
            "the response head is full: at most {} fields and {} bytes \
             (--max-response-headers, --max-response-header-size)",
            response.limits.fields, response.limits.bytes
        );
        return Ok(ctx.fail(Failure::new(code::TOO_LARGE, message)));
    }
    let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
    else {
        return Ok(code::INVALID);
    };
    if HOST_OWNED.contains(&name) {
        return Ok(code::INVALID);
    }
    ctx.response.headers.append(name, value);
    ctx.response.head_bytes = head_bytes;
    Ok(code::OK)
}

async fn resp_write(mut caller: Caller<'_, Ctx>, buf: i32, len: i32) -> wasmtime::Result<i32> {
    let chunk = {
        let (memory, _) = memory_and_ctx(&mut caller)?;
        Bytes::copy_from_slice(read(memory, buf, len)?)
    };
    let response = &mut caller.data_mut().response;
    if !response.send_head() {
        return Ok(code::CLOSED);
    }
    if chunk.is_empty() {
        return Ok(code::OK);
    }
    let Some(body) = response.body.as_ref() else {
        return Ok(code::CLOSED);
    };
    if body.send(chunk).await.is_err() {
        response.body = None;
        return Ok(code::CLOSED);
    }
    Ok(code::OK)
}
