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
use super::{Ctx, memory_and_ctx};
use crate::abi::{MODULE, code};
use crate::capability::http::OutboundResponse;

mod forms;
pub(super) use forms::{Prepared, begin, end, end_handle, once, once_handle, operation};

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
