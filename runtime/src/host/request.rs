//! Request imports: `req_method`, `req_uri`, `req_header`, `req_param` and
//! the async `req_body_read`.

use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderName, Method};
use http_body_util::BodyExt;
use wasmtime::{Caller, Linker};

use super::memory::{read, write_full_length, write_some};
use super::{Ctx, check_buffer, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::request::{BodyReadError, LimitedBody};

/// What the guest can learn about the request, fixed before it runs.
pub(crate) struct RequestInfo {
    pub(crate) method: Method,
    /// Path and query as received.
    pub(crate) target: String,
    pub(crate) headers: HeaderMap,
    /// Route parameters from `[name]` path segments.
    pub(crate) params: Vec<(String, String)>,
}

/// The request body, pulled from the connection only when the guest asks, so
/// a guest that reads slowly slows the client down (backpressure) instead of
/// the host buffering the body. The server's limits apply through
/// [`LimitedBody`]; after a failed read every read fails: a guest that
/// ignores the first failure must not take a cut body for a whole one.
pub(crate) struct RequestBody {
    state: BodyState,
    /// Bytes of the last frame the guest has not taken yet.
    pending: Bytes,
}

enum BodyState {
    Reading(LimitedBody),
    Ended,
    Failed,
}

impl RequestBody {
    /// The body, read under the limits `body` carries.
    pub(crate) fn new(body: LimitedBody) -> Self {
        Self {
            state: BodyState::Reading(body),
            pending: Bytes::new(),
        }
    }

    /// A body already at its end: for an instance tried at load, which has
    /// no request.
    pub(crate) fn ended() -> Self {
        Self {
            state: BodyState::Ended,
            pending: Bytes::new(),
        }
    }

    /// The next non-empty chunk; `None` at the end of the body.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, BodyReadError> {
        loop {
            let body = match &mut self.state {
                BodyState::Reading(body) => body,
                BodyState::Ended => return Ok(None),
                BodyState::Failed => return Err(BodyReadError::AlreadyFailed),
            };
            match body.frame().await {
                Some(Ok(frame)) => {
                    // Trailers carry no body bytes; skip them.
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data));
                    }
                }
                None => self.state = BodyState::Ended,
                Some(Err(e)) => {
                    self.state = BodyState::Failed;
                    return Err(e);
                }
            }
        }
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "req_method", req_method)?;
    linker.func_wrap(MODULE, "req_uri", req_uri)?;
    linker.func_wrap(MODULE, "req_header", req_header)?;
    linker.func_wrap(MODULE, "req_param", req_param)?;
    linker.func_wrap_async(
        MODULE,
        "req_body_read",
        |caller: Caller<'_, Ctx>, (buf, cap): (i32, i32)| Box::new(req_body_read(caller, buf, cap)),
    )?;
    Ok(())
}

fn req_method(mut caller: Caller<'_, Ctx>, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    Ok(write_full_length(
        memory,
        buf,
        cap,
        ctx.request.method.as_str().as_bytes(),
    )?)
}

fn req_uri(mut caller: Caller<'_, Ctx>, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    Ok(write_full_length(
        memory,
        buf,
        cap,
        ctx.request.target.as_bytes(),
    )?)
}

fn req_header(
    mut caller: Caller<'_, Ctx>,
    name: i32,
    name_len: i32,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    let Ok(name) = HeaderName::from_bytes(read(memory, name, name_len)?) else {
        return Ok(code::INVALID);
    };
    let mut values = ctx.request.headers.get_all(&name).iter();
    let Some(first) = values.next() else {
        return Ok(code::ABSENT);
    };
    // The common single-valued header is written without an allocation.
    let Some(second) = values.next() else {
        return Ok(write_full_length(memory, buf, cap, first.as_bytes())?);
    };
    let mut joined = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(value.as_bytes());
    }
    Ok(write_full_length(memory, buf, cap, &joined)?)
}

fn req_param(
    mut caller: Caller<'_, Ctx>,
    name: i32,
    name_len: i32,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    let name = read(memory, name, name_len)?;
    match ctx
        .request
        .params
        .iter()
        .find(|(k, _)| k.as_bytes() == name)
    {
        Some((_, value)) => Ok(write_full_length(memory, buf, cap, value.as_bytes())?),
        None => Ok(code::ABSENT),
    }
}

async fn req_body_read(mut caller: Caller<'_, Ctx>, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    // Check the buffer before waiting on the network: a bad pointer traps now,
    // not after the client has sent its next chunk.
    check_buffer(&mut caller, buf, cap)?;
    if cap == 0 {
        // `0` means "end of body"; a zero-sized read must not look like one.
        return Ok(code::INVALID);
    }
    let body = &mut caller.data_mut().body;
    if body.pending.is_empty() {
        match body.next_chunk().await {
            Ok(Some(chunk)) => body.pending = chunk,
            Ok(None) => return Ok(0),
            // `LimitedBody` logged why, once.
            Err(_) => return Ok(code::BODY),
        }
    }
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    let n = write_some(memory, buf, cap, &ctx.body.pending)?;
    ctx.body.pending.advance(n);
    Ok(n as i32)
}
