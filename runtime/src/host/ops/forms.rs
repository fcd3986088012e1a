//! How an operation reaches the guest: the `operation!` macro that registers
//! its once, `_begin` and `_end` imports from one preparing expression, and
//! the functions those imports run (start, wait, hand the result over).

use super::{Failure, Kind, OpResult, Taken, Value};
use crate::abi::code;
use crate::host::memory::write_full_length;
use crate::host::{Ctx, check_buffer, memory_and_ctx};
use wasmtime::Caller;

/// An operation read out of guest memory and checked against the grant,
/// ready to run; `Err` is a refusal the guest gets as a code.
pub(in crate::host) type Prepared =
    Result<std::pin::Pin<Box<dyn Future<Output = OpResult> + Send>>, Failure>;

/// A `_begin`: starts the prepared operation as its own task and returns its
/// handle, or the refusal's code.
pub(in crate::host) fn begin(caller: &mut Caller<'_, Ctx>, kind: Kind, op: Prepared) -> i32 {
    let ctx = caller.data_mut();
    op.and_then(|op| ctx.ops.begin(kind, op))
        .unwrap_or_else(|failure| ctx.fail(failure))
}

/// Registers an operation's three imports from the one expression that
/// reads its arguments and checks its grant (a [`Prepared`]): `NAME` runs it
/// and waits, `NAME_begin` starts it and returns a handle, `NAME_end` waits
/// for a handle. How the result reaches the guest:
/// - `bytes`: written to the guest's buffer, the last two arguments
///   (`buf, cap`) of `NAME` and `NAME_end`, checked before anything waits;
///   `bytes up to LEN` also gives `NAME_begin` a last argument `LEN`, the
///   most bytes to produce, which for `NAME` is `cap`.
/// - `status`: the return value.
/// - `handle`: a response handle (`[ONCE, BEGIN, END]` name the imports);
///   `ONCE` refuses before it starts anything if no handle is free.
macro_rules! operation {
    ($linker:expr, $name:literal, $kind:expr, bytes,
     |$caller:ident $(, $arg:ident: $ty:ty)*| $prepare:expr) => {{
        $crate::host::ops::operation!(@bytes $linker, $name, $kind, buf, cap, |$caller $(, $arg: $ty)*| $prepare);
        $crate::host::ops::operation!(@begin $linker, concat!($name, "_begin"), $kind, |$caller $(, $arg: $ty)*| $prepare);
        $crate::host::ops::operation!(@bytes_end $linker, $name, $kind);
    }};
    ($linker:expr, $name:literal, $kind:expr, bytes up to $len:ident,
     |$caller:ident $(, $arg:ident: $ty:ty)*| $prepare:expr) => {{
        $crate::host::ops::operation!(@bytes $linker, $name, $kind, buf, cap, |$caller $(, $arg: $ty)*| {
            let $len = cap;
            $prepare
        });
        $crate::host::ops::operation!(@begin $linker, concat!($name, "_begin"), $kind, |$caller $(, $arg: $ty)*, $len: i32| $prepare);
        $crate::host::ops::operation!(@bytes_end $linker, $name, $kind);
    }};
    ($linker:expr, $name:literal, $kind:expr, status,
     |$caller:ident $(, $arg:ident: $ty:ty)*| $prepare:expr) => {{
        $linker.func_wrap_async(
            $crate::abi::MODULE,
            $name,
            |mut $caller: Caller<'_, Ctx>, ($($arg,)*): ($($ty,)*)| {
                Box::new(async move {
                    let op = $prepare?;
                    $crate::host::ops::once($caller, op, 0, 0).await
                })
            },
        )?;
        $crate::host::ops::operation!(@begin $linker, concat!($name, "_begin"), $kind, |$caller $(, $arg: $ty)*| $prepare);
        $linker.func_wrap_async(
            $crate::abi::MODULE,
            concat!($name, "_end"),
            |caller: Caller<'_, Ctx>, (op,): (i32,)| {
                Box::new($crate::host::ops::end(caller, op, $kind, 0, 0))
            },
        )?;
    }};
    ($linker:expr, [$once:literal, $begin:literal, $end:literal], $kind:expr, handle,
     |$caller:ident $(, $arg:ident: $ty:ty)*| $prepare:expr) => {{
        $linker.func_wrap_async(
            $crate::abi::MODULE,
            $once,
            |mut $caller: Caller<'_, Ctx>, ($($arg,)*): ($($ty,)*)| {
                Box::new(async move {
                    // The response needs a handle: refuse before starting.
                    if let Err(failure) = $caller.data().ops.room() {
                        return Ok($caller.data_mut().fail(failure));
                    }
                    let op = $prepare?;
                    $crate::host::ops::once_handle($caller, op).await
                })
            },
        )?;
        $crate::host::ops::operation!(@begin $linker, $begin, $kind, |$caller $(, $arg: $ty)*| $prepare);
        $linker.func_wrap_async(
            $crate::abi::MODULE,
            $end,
            |caller: Caller<'_, Ctx>, (op,): (i32,)| {
                Box::new($crate::host::ops::end_handle(caller, op, $kind))
            },
        )?;
    }};
    (@bytes $linker:expr, $name:literal, $kind:expr, $buf:ident, $cap:ident,
     |$caller:ident $(, $arg:ident: $ty:ty)*| $prepare:expr) => {
        $linker.func_wrap_async(
            $crate::abi::MODULE,
            $name,
            |mut $caller: Caller<'_, Ctx>, ($($arg,)* $buf, $cap): ($($ty,)* i32, i32)| {
                Box::new(async move {
                    $crate::host::check_buffer(&mut $caller, $buf, $cap)?;
                    let op = $prepare?;
                    $crate::host::ops::once($caller, op, $buf, $cap).await
                })
            },
        )?;
    };
    (@bytes_end $linker:expr, $name:literal, $kind:expr) => {
        $linker.func_wrap_async(
            $crate::abi::MODULE,
            concat!($name, "_end"),
            |caller: Caller<'_, Ctx>, (op, buf, cap): (i32, i32, i32)| {
                Box::new($crate::host::ops::end(caller, op, $kind, buf, cap))
            },
        )?;
    };
    (@begin $linker:expr, $name:expr, $kind:expr,
     |$caller:ident $(, $arg:ident: $ty:ty)*| $prepare:expr) => {
        $linker.func_wrap(
            $crate::abi::MODULE,
            $name,
            |mut $caller: Caller<'_, Ctx> $(, $arg: $ty)*| {
                let op = $prepare?;
                Ok($crate::host::ops::begin(&mut $caller, $kind, op))
            },
        )?;
    };
}
pub(in crate::host) use operation;

/// Runs a prepared operation and waits for it: the form without a handle.
pub(in crate::host) async fn once(
    mut caller: Caller<'_, Ctx>,
    op: Prepared,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let result = match op {
        Ok(op) => op.await,
        Err(failure) => Err(failure),
    };
    deliver(&mut caller, None, result, buf, cap)
}

/// Runs a prepared operation that yields a response and waits for it: the
/// form without an operation handle (the response gets one).
pub(in crate::host) async fn once_handle(
    mut caller: Caller<'_, Ctx>,
    op: Prepared,
) -> wasmtime::Result<i32> {
    let result = match op {
        Ok(op) => op.await,
        Err(failure) => Err(failure),
    };
    Ok(hand_over(&mut caller, None, result))
}

/// An `_end` for an operation that yields a response: its handle names the
/// response from then on.
pub(in crate::host) async fn end_handle(
    mut caller: Caller<'_, Ctx>,
    op: i32,
    kind: Kind,
) -> wasmtime::Result<i32> {
    let result = wait(&mut caller, op, kind).await;
    Ok(hand_over(&mut caller, Some(op), result))
}

/// Gives the guest a response handle for a finished operation (`op`'s own,
/// or a new one), or the failure's code.
fn hand_over(caller: &mut Caller<'_, Ctx>, op: Option<i32>, result: OpResult) -> i32 {
    let ctx = caller.data_mut();
    match result {
        Ok(Value::Response(response)) => match op {
            Some(handle) => {
                ctx.ops.replace_with_response(handle, response);
                handle
            }
            None => match ctx.ops.insert_response(response) {
                Ok(handle) => handle,
                Err(failure) => ctx.fail(failure),
            },
        },
        Ok(_) => ctx.fail(Failure::new(code::INVALID, "not an HTTP operation")),
        Err(failure) => ctx.fail(failure),
    }
}

/// Waits for the operation `handle` (made by a `kind` begin) to finish.
async fn wait(caller: &mut Caller<'_, Ctx>, handle: i32, kind: Kind) -> OpResult {
    match caller.data_mut().ops.take(handle, kind)? {
        Taken::Pending(task) => task.finish().await,
        Taken::Done(result) => result,
    }
}

/// An `_end` for an operation that yields a status or bytes: waits, then
/// hands the result over as [`deliver`] does.
pub(in crate::host) async fn end(
    mut caller: Caller<'_, Ctx>,
    handle: i32,
    kind: Kind,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    // A bad buffer traps now, not after the operation has finished.
    check_buffer(&mut caller, buf, cap)?;
    let result = wait(&mut caller, handle, kind).await;
    deliver(&mut caller, Some((handle, kind)), result, buf, cap)
}

/// Gives a finished result to the guest: a failure's code (its message kept
/// for `error_message`), a status, or bytes under the full-length rule.
/// Bytes that do not fit stay under `keep`'s handle, so the guest's retry
/// with a larger buffer returns at once instead of redoing the operation.
fn deliver(
    caller: &mut Caller<'_, Ctx>,
    keep: Option<(i32, Kind)>,
    result: OpResult,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    match result {
        Err(failure) => Ok(caller.data_mut().fail(failure)),
        Ok(Value::Code(c)) => Ok(c),
        Ok(Value::Bytes(bytes)) => {
            let (memory, ctx) = memory_and_ctx(caller)?;
            let n = write_full_length(memory, buf, cap, &bytes)?;
            if bytes.len() > cap as u32 as usize
                && let Some((handle, kind)) = keep
            {
                ctx.ops.keep(handle, kind, Ok(Value::Bytes(bytes)));
            }
            Ok(n)
        }
        Ok(Value::Response(_)) => Ok(caller.data_mut().fail(Failure::new(
            code::INVALID,
            "an HTTP operation ends with http_end",
        ))),
    }
}
