//! The fake host's handle table, as the runtime keeps one per request:
//! handles count up from 1 and are never reused, at most 64 are open, an
//! `_end` releases its operation (unless its bytes did not fit the buffer),
//! and `close` releases anything. Also `close` and `error_message`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::upstream::Fetched;
use super::{Exchange, Failure, copy_out, with};
use crate::code;

/// Most handles open at once, as in the runtime.
const MAX_HANDLES: usize = 64;

/// What an operation produced, for its `_end`.
#[derive(Debug)]
pub(crate) enum Done {
    /// A value, a key list, file bytes: delivered by the full-length rule.
    Bytes(Vec<u8>),
    /// A bare status: `OK`, or `ABSENT` for a missing key.
    Code(i32),
}

/// A finished operation, or its failure.
pub(crate) type Outcome = Result<Done, Failure>;

/// Which `_begin` made an operation, so only its own `_end` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    KvGet,
    KvSet,
    KvDelete,
    KvList,
    FileRead,
}

/// What a handle names.
pub(crate) enum Slot {
    /// An `http_begin`: the upstream's answer, and the virtual time it
    /// arrives.
    Fetch {
        answer: Result<Fetched, Failure>,
        ready_at: Duration,
    },
    /// An outbound response the handler reads.
    Response(Fetched),
    /// A store or file operation, finished at once on the fake host but
    /// pending for the handler until its `_end`.
    Finished(Kind, Outcome),
}

/// One request's handles.
#[derive(Default)]
pub(crate) struct Ops {
    last: i32,
    slots: BTreeMap<i32, Slot>,
    /// Operations closed before their `_end`: cancelled.
    pub(crate) cancelled: usize,
}

impl Ops {
    /// `BUSY` when 64 handles are open.
    pub(crate) fn room(&self) -> Result<(), Failure> {
        if self.slots.len() >= MAX_HANDLES {
            return Err(Failure::new(
                code::BUSY,
                format!(
                    "this request already holds {MAX_HANDLES} handles; end or close some before starting more"
                ),
            ));
        }
        Ok(())
    }

    /// Files `slot` under a new handle.
    pub(crate) fn open(&mut self, slot: Slot) -> Result<i32, Failure> {
        self.room()?;
        self.last += 1;
        self.slots.insert(self.last, slot);
        Ok(self.last)
    }

    /// Takes what `handle` names out of the table.
    pub(crate) fn take(&mut self, handle: i32) -> Result<Slot, Failure> {
        self.slots.remove(&handle).ok_or_else(|| unknown(handle))
    }

    /// Files `slot` under `handle` again.
    pub(crate) fn put(&mut self, handle: i32, slot: Slot) {
        self.slots.insert(handle, slot);
    }

    /// The open response `handle`.
    pub(crate) fn response(&mut self, handle: i32) -> Result<&mut Fetched, Failure> {
        match self.slots.get_mut(&handle) {
            Some(Slot::Response(response)) => Ok(response),
            Some(_) => Err(Failure::new(
                code::INVALID,
                format!(
                    "handle {handle} is an operation, not an HTTP response; call http_end first"
                ),
            )),
            None => Err(unknown(handle)),
        }
    }

    /// How many handles are open.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
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

/// Makes `outcome` the result of a new `kind` operation: its handle, or
/// `BUSY`.
pub(crate) fn begin(ex: &mut Exchange, kind: Kind, outcome: Outcome) -> i32 {
    match ex.ops.open(Slot::Finished(kind, outcome)) {
        Ok(handle) => handle,
        Err(failure) => ex.fail(failure),
    }
}

/// Gives a single call's outcome to the handler: its failure's code, its
/// status, or its bytes by the full-length rule.
pub(crate) fn deliver(ex: &mut Exchange, outcome: Outcome, buf: &mut [u8]) -> i32 {
    match outcome {
        Err(failure) => ex.fail(failure),
        Ok(Done::Code(code)) => code,
        Ok(Done::Bytes(bytes)) => copy_out(&bytes, buf),
    }
}

/// The `_end` of a `kind` operation: its outcome as [`deliver`] gives it,
/// except that bytes longer than `buf` stay under the handle for the retry.
pub(crate) fn end(handle: i32, kind: Kind, buf: &mut [u8]) -> i32 {
    with(|ex| match ex.ops.take(handle) {
        Ok(Slot::Finished(found, Ok(Done::Bytes(bytes)))) if found == kind => {
            let len = copy_out(&bytes, buf);
            if bytes.len() > buf.len() {
                ex.ops
                    .put(handle, Slot::Finished(kind, Ok(Done::Bytes(bytes))));
            }
            len
        }
        Ok(Slot::Finished(found, outcome)) if found == kind => deliver(ex, outcome, buf),
        Ok(other) => {
            ex.ops.put(handle, other);
            ex.fail(Failure::new(
                code::INVALID,
                format!("handle {handle} is not a {kind:?} operation"),
            ))
        }
        Err(failure) => ex.fail(failure),
    })
}

/// `close`.
pub(crate) fn close(handle: i32) -> i32 {
    with(|ex| match ex.ops.take(handle) {
        Ok(Slot::Response(_)) => code::OK,
        Ok(Slot::Fetch { .. } | Slot::Finished(..)) => {
            ex.ops.cancelled += 1;
            code::OK
        }
        Err(failure) => ex.fail(failure),
    })
}

/// `error_message`.
pub(crate) fn error_message(buf: &mut [u8]) -> i32 {
    with(|ex| match &ex.last_error {
        Some(message) => copy_out(message.as_bytes(), buf),
        None => code::ABSENT,
    })
}

/// How many handles the running request holds, for the SDK's own tests.
#[cfg(test)]
pub(crate) fn open_handles() -> usize {
    with(|ex| ex.ops.len())
}
