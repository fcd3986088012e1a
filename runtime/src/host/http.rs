//! Outbound HTTP imports: `http_send` (and its `http_begin`/`http_end`
//! pair), then `http_status`, `http_header`, `http_headers` and the async
//! `http_read` on the response handle.
//!
//! The request is checked against the handler's `[http]` grant before
//! anything touches the network; the client behind it
//! ([`crate::capability::http`]) checks every redirect and every resolved
//! address again.

use bytes::{Buf, Bytes};
use http::{HeaderName, Method};
use wasmtime::{Caller, Linker};

use super::memory::{range, read, write_full_length, write_some};
use super::ops::{Failure, Kind, Prepared, Value, operation};
use super::{Ctx, check_buffer, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::capability::http::{
    FetchError, OutboundRequest, format_header_block, parse_header_block,
};

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    operation!(
        linker,
        ["http_send", "http_begin", "http_end"],
        Kind::Http,
        handle,
        |caller, m: i32, ml: i32, u: i32, ul: i32, h: i32, hl: i32, b: i32, bl: i32| {
            prepare(&mut caller, (m, ml, u, ul, h, hl, b, bl))
        }
    );
    linker.func_wrap(MODULE, "http_status", http_status)?;
    linker.func_wrap(MODULE, "http_header", http_header)?;
    linker.func_wrap(MODULE, "http_headers", http_headers)?;
    linker.func_wrap_async(
        MODULE,
        "http_read",
        |caller: Caller<'_, Ctx>, (resp, buf, cap): (i32, i32, i32)| {
            Box::new(http_read(caller, resp, buf, cap))
        },
    )?;
    Ok(())
}

/// Reads the guest's request and checks the grant. `Ok(Err(_))` is a refusal
/// the guest gets as a code; `Err` is a trap (a bad pointer).
fn prepare(
    caller: &mut Caller<'_, Ctx>,
    (method, method_len, url, url_len, headers, headers_len, body, body_len): (
        i32,
        i32,
        i32,
        i32,
        i32,
        i32,
        i32,
        i32,
    ),
) -> wasmtime::Result<Prepared> {
    let (memory, ctx) = memory_and_ctx(caller)?;
    let method = read(memory, method, method_len)?;
    let url = read(memory, url, url_len)?;
    let headers = read(memory, headers, headers_len)?;
    let body = Bytes::copy_from_slice(read(memory, body, body_len)?);
    let Ok(method) = Method::from_bytes(method) else {
        return Ok(Err(Failure::new(
            code::INVALID,
            format!(
                "`{}` is not an HTTP method",
                String::from_utf8_lossy(method)
            ),
        )));
    };
    let Ok(url) = std::str::from_utf8(url) else {
        return Ok(Err(Failure::new(code::INVALID, "the URL is not UTF-8")));
    };
    let headers = match parse_header_block(headers) {
        Ok(headers) => headers,
        Err(e) => return Ok(Err(Failure::new(code::INVALID, e))),
    };
    let Some(client) = ctx.policy.http.clone() else {
        return Ok(Err(Failure::new(
            code::DENIED,
            format!(
                "{url}: outbound HTTP is not granted to {}; {}",
                ctx.handler,
                ctx.policy.grant_hint("[http] allow")
            ),
        )));
    };
    let request = OutboundRequest {
        method,
        url: url.to_owned(),
        headers,
        body,
    };
    // A denial names the file whose `[http]` settings applied, so the
    // operator knows which one to edit.
    let settings_from = ctx.policy.sources.last().cloned();
    Ok(Ok(Box::pin(async move {
        client
            .send(request)
            .await
            .map(|response| Value::Response(Box::new(response)))
            .map_err(|e| {
                let mut failure = fetch_failure(e);
                if failure.code == code::DENIED
                    && let Some(file) = settings_from
                {
                    failure.message =
                        format!("{} (settings from {})", failure.message, file.display());
                }
                failure
            })
    })))
}

/// The ABI code for each way a fetch can fail.
fn fetch_failure(e: FetchError) -> Failure {
    let code = match &e {
        FetchError::Denied(_) => code::DENIED,
        FetchError::Timeout(_) => code::TIMEOUT,
        FetchError::TooLarge { .. } => code::TOO_LARGE,
        FetchError::Invalid(_) => code::INVALID,
        FetchError::Failed(_) => code::FAILED,
    };
    Failure::new(code, e.to_string())
}

fn http_status(mut caller: Caller<'_, Ctx>, resp: i32) -> i32 {
    let ctx = caller.data_mut();
    match ctx.ops.response(resp) {
        Ok(fetched) => i32::from(fetched.response.status.as_u16()),
        Err(failure) => ctx.fail(failure),
    }
}

fn http_header(
    mut caller: Caller<'_, Ctx>,
    resp: i32,
    name: i32,
    name_len: i32,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    let name = read(memory, name, name_len)?;
    range(memory.len(), buf, cap)?;
    let Ok(name) = HeaderName::from_bytes(name) else {
        return Ok(ctx.fail(Failure::new(code::INVALID, "not a valid header name")));
    };
    let fetched = match ctx.ops.response(resp) {
        Ok(fetched) => fetched,
        Err(failure) => return Ok(ctx.fail(failure)),
    };
    let values: Vec<&[u8]> = fetched
        .response
        .headers
        .get_all(&name)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if values.is_empty() {
        return Ok(code::ABSENT);
    }
    Ok(write_full_length(
        memory,
        buf,
        cap,
        &values.join(&b", "[..]),
    )?)
}

fn http_headers(
    mut caller: Caller<'_, Ctx>,
    resp: i32,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    range(memory.len(), buf, cap)?;
    let block = match ctx.ops.response(resp) {
        Ok(fetched) => format_header_block(&fetched.response.headers),
        Err(failure) => return Ok(ctx.fail(failure)),
    };
    Ok(write_full_length(memory, buf, cap, &block)?)
}

async fn http_read(
    mut caller: Caller<'_, Ctx>,
    resp: i32,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    check_buffer(&mut caller, buf, cap)?;
    if cap == 0 {
        // `0` means "end of body"; a zero-sized read must not look like one.
        let failure = Failure::new(
            code::INVALID,
            "http_read needs a buffer of at least one byte",
        );
        return Ok(caller.data_mut().fail(failure));
    }
    let mut fetched = match caller.data_mut().ops.take_response(resp) {
        Ok(fetched) => fetched,
        Err(failure) => return Ok(caller.data_mut().fail(failure)),
    };
    if fetched.pending.is_empty() {
        match fetched.response.chunk().await {
            Ok(Some(chunk)) => fetched.pending = chunk,
            Ok(None) => {
                caller.data_mut().ops.put_response(resp, fetched);
                return Ok(0);
            }
            Err(e) => {
                caller.data_mut().ops.put_response(resp, fetched);
                return Ok(caller.data_mut().fail(fetch_failure(e)));
            }
        }
    }
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    let n = write_some(memory, buf, cap, &fetched.pending)?;
    fetched.pending.advance(n);
    ctx.ops.put_response(resp, fetched);
    Ok(n as i32)
}
