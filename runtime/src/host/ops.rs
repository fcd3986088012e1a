//! The per-request handle table behind every `_begin`/`_end` pair and every
//! HTTP response, plus the two imports that work on any handle or failure:
//! `close` and `error_message`.
//!
//! A `_begin` spawns the operation as its own tokio task, so several run at
//! once while the guest goes on computing (ASP.NET's BeginProcessRequest);
//! the matching `_end` awaits that task (EndProcessRequest). Each task is
//! aborted when its handle is closed or the table is dropped, which happens
//! when the request's `Store` goes away: nothing a request started outlives
//! it.

use std::collections::HashMap;
use std::future::Future;

use bytes::Bytes;

use tokio::task::JoinHandle;
use wasmtime::{Caller, Linker};

use super::memory::write_full_length;
use super::{Ctx, check_buffer, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::capability::http::OutboundResponse;

/// Most handles (pending operations and open responses) one request may hold:
/// each pending one is a task and maybe a connection, so a guest looping over
/// `_begin` must hit a wall long before the host does.
pub const MAX_HANDLES: usize = 64;

/// What a finished operation produced.
pub(crate) enum Value {
    /// An outbound response, head received, body still to read. Boxed: it
    /// is far larger than the other results.
    Response(Box<OutboundResponse>),
    /// Bytes for the guest: a value, a key list, a file chunk.
    Bytes(Vec<u8>),
    /// A bare status: `OK`, or `ABSENT` for a missing key.
    Code(i32),
}

/// A failed operation: the ABI code the guest gets and the message
/// `error_message` gives it.
#[derive(Debug, Clone)]
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

pub(crate) type OpResult = Result<Value, Failure>;

/// An operation read out of guest memory and checked against the grant,
/// ready to run; `Err` is a refusal the guest gets as a code.
pub(super) type Prepared =
    Result<std::pin::Pin<Box<dyn Future<Output = OpResult> + Send>>, Failure>;

/// A `_begin`: starts the prepared operation as its own task and returns its
/// handle, or the refusal's code.
pub(super) fn begin(caller: &mut Caller<'_, Ctx>, kind: Kind, op: Prepared) -> i32 {
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
pub(super) use operation;

/// Runs a prepared operation and waits for it: the form without a handle.
pub(super) async fn once(
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
pub(super) async fn once_handle(
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
pub(super) async fn end_handle(
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

/// Which `_begin` made a handle, so `kv_get_end` cannot end an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Http,
    KvGet,
    KvSet,
    KvDelete,
    KvList,
    FileRead,
}

/// A spawned operation, aborted when dropped.
pub(crate) struct Task(JoinHandle<OpResult>);

impl Task {
    /// Waits for the operation's result.
    pub(crate) async fn finish(mut self) -> OpResult {
        match (&mut self.0).await {
            Ok(result) => result,
            Err(e) => Err(Failure::new(
                code::FAILED,
                format!("the operation failed inside the host: {e}"),
            )),
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Entry {
    Pending(Kind, Task),
    /// Finished, with bytes the guest's buffer was too small for; kept so the
    /// retry with a larger buffer returns at once.
    Done(Kind, OpResult),
    Response(Fetched),
}

/// An outbound response the guest is reading.
pub(crate) struct Fetched {
    pub(crate) response: Box<OutboundResponse>,
    /// The part of the last body chunk the guest's buffer had no room for.
    pub(crate) pending: Bytes,
}

/// What `take` found under a handle.
pub(crate) enum Taken {
    Pending(Task),
    Done(OpResult),
}

/// One request's handles.
#[derive(Default)]
pub(crate) struct Ops {
    /// Handles count up from 1 and are never reused within a request, so a
    /// stale handle can never reach a newer operation.
    last: i32,
    entries: HashMap<i32, Entry>,
}

impl Ops {
    pub(crate) fn room(&self) -> Result<(), Failure> {
        if self.entries.len() >= MAX_HANDLES {
            return Err(Failure::new(
                code::BUSY,
                format!(
                    "this request already holds {MAX_HANDLES} handles; end or close some before starting more"
                ),
            ));
        }
        Ok(())
    }

    fn insert(&mut self, entry: Entry) -> Result<i32, Failure> {
        self.room()?;
        self.last = self.last.checked_add(1).ok_or_else(|| {
            Failure::new(code::BUSY, "this request has used up its handle numbers")
        })?;
        self.entries.insert(self.last, entry);
        Ok(self.last)
    }

    /// Starts `op` as its own task and returns its handle.
    pub(crate) fn begin(
        &mut self,
        kind: Kind,
        op: impl Future<Output = OpResult> + Send + 'static,
    ) -> Result<i32, Failure> {
        // Checked before spawning, so a refused begin starts nothing.
        self.room()?;
        self.insert(Entry::Pending(kind, Task(tokio::spawn(op))))
    }

    /// Keeps an outbound response for `http_status`/`http_read`.
    pub(crate) fn insert_response(
        &mut self,
        response: Box<OutboundResponse>,
    ) -> Result<i32, Failure> {
        self.insert(Entry::Response(Fetched {
            response,
            pending: Bytes::new(),
        }))
    }

    /// Removes the operation `handle` made by a `kind` begin, for its `_end`.
    pub(crate) fn take(&mut self, handle: i32, kind: Kind) -> Result<Taken, Failure> {
        match self.entries.remove(&handle) {
            Some(Entry::Pending(k, task)) if k == kind => Ok(Taken::Pending(task)),
            Some(Entry::Done(k, result)) if k == kind => Ok(Taken::Done(result)),
            Some(other) => {
                let found = match &other {
                    Entry::Pending(k, _) | Entry::Done(k, _) => format!("{k:?}"),
                    Entry::Response(_) => "an HTTP response".to_owned(),
                };
                self.entries.insert(handle, other);
                Err(Failure::new(
                    code::INVALID,
                    format!("handle {handle} is {found}, not a {kind:?} operation"),
                ))
            }
            None => Err(unknown(handle)),
        }
    }

    /// Stores the response an `http_end` received under the operation's
    /// handle, which from then on names the response.
    pub(crate) fn replace_with_response(&mut self, handle: i32, response: Box<OutboundResponse>) {
        self.entries.insert(
            handle,
            Entry::Response(Fetched {
                response,
                pending: Bytes::new(),
            }),
        );
    }

    /// Puts a finished result back under its handle (its bytes did not fit).
    pub(crate) fn keep(&mut self, handle: i32, kind: Kind, result: OpResult) {
        self.entries.insert(handle, Entry::Done(kind, result));
    }

    /// The open response `handle`.
    pub(crate) fn response(&mut self, handle: i32) -> Result<&mut Fetched, Failure> {
        match self.entries.get_mut(&handle) {
            Some(Entry::Response(r)) => Ok(r),
            Some(_) => Err(Failure::new(
                code::INVALID,
                format!(
                    "handle {handle} is an operation, not an HTTP response; call http_end first"
                ),
            )),
            None => Err(unknown(handle)),
        }
    }

    /// Takes the response `handle` out while its body is awaited.
    pub(crate) fn take_response(&mut self, handle: i32) -> Result<Fetched, Failure> {
        self.response(handle)?;
        match self.entries.remove(&handle) {
            Some(Entry::Response(r)) => Ok(r),
            _ => unreachable!("checked just above"),
        }
    }

    /// Puts a response back after a read.
    pub(crate) fn put_response(&mut self, handle: i32, response: Fetched) {
        self.entries.insert(handle, Entry::Response(response));
    }

    /// Releases `handle`; a pending operation is aborted.
    fn close(&mut self, handle: i32) -> bool {
        self.entries.remove(&handle).is_some()
    }
}

fn unknown(handle: i32) -> Failure {
    Failure::new(
        code::INVALID,
        format!(
            "handle {handle} is not open in this request (never made, already ended or closed)"
        ),
    )
}

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "close", close)?;
    linker.func_wrap(MODULE, "error_message", error_message)?;
    Ok(())
}

fn close(mut caller: Caller<'_, Ctx>, handle: i32) -> i32 {
    let ctx = caller.data_mut();
    if ctx.ops.close(handle) {
        code::OK
    } else {
        ctx.fail(unknown(handle))
    }
}

fn error_message(mut caller: Caller<'_, Ctx>, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    match &ctx.last_error {
        Some(message) => Ok(write_full_length(memory, buf, cap, message.as_bytes())?),
        None => Ok(code::ABSENT),
    }
}

/// Waits for the operation `handle` (made by a `kind` begin) to finish.
pub(super) async fn wait(caller: &mut Caller<'_, Ctx>, handle: i32, kind: Kind) -> OpResult {
    match caller.data_mut().ops.take(handle, kind)? {
        Taken::Pending(task) => task.finish().await,
        Taken::Done(result) => result,
    }
}

/// An `_end` for an operation that yields a status or bytes: waits, then
/// hands the result over as [`deliver`] does.
pub(super) async fn end(
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
pub(super) fn deliver(
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
