//! The host side of the guest ABI: the per-request state a guest's imports
//! work on ([`Ctx`], the `Store`'s data), and one file per capability whose
//! function names are the import names.
//!
//! Every import of the ABI table (`crate::abi::IMPORTS`) is defined in one
//! shared `Linker`, with the table's signature (a test checks each); the
//! loader refuses a module that imports anything else, naming the import.

mod component_config;
mod component_files;
mod component_grants;
mod component_kv;
mod file;
mod guest_log;
mod http;
mod kv;
pub mod memory;
mod ops;
mod request;
mod response;
mod system;
mod var;
mod wasi;
mod wasi_http;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Caller, Linker, Memory, StoreLimits};

pub use ops::MAX_HANDLES;
pub(crate) use ops::{Failure, Ops};

use crate::abi::code;
use crate::site::Policy;

pub use guest_log::MAX_LOG_LINE;
pub(crate) use guest_log::{GuestLog, LogLimits, LogRate};
pub(crate) use request::{RequestBody, RequestInfo};
pub(crate) use response::{HeadLimits, ResponseState};
pub use wasi::WasiState;
pub(crate) use wasi::{
    DRAFT_INTERFACES as WASI_DRAFT_INTERFACES, INTERFACES as WASI_INTERFACES,
    P3_INTERFACES as WASI_P3_INTERFACES,
};
pub(crate) use wasi::{
    add_p2_to_linker as add_wasi_p2_to_linker, add_to_linker as add_wasi_to_linker,
};

/// Everything one request's guest can reach through its imports. One `Ctx`
/// per `Store`, one `Store` per request: nothing leaks between requests.
pub struct Ctx {
    /// Caps this instance's memory and table growth.
    pub(crate) store_limits: StoreLimits,
    /// The guest's exported memory, looked up once after instantiation so
    /// imports do not search exports by name on every call.
    pub(crate) memory: Option<Memory>,
    /// Method, target, headers and route parameters.
    pub(crate) request: RequestInfo,
    /// The request body, read on demand by `req_body_read`.
    pub(crate) body: RequestBody,
    /// Status and headers until the head is sent, then the body channel.
    pub(crate) response: ResponseState,
    /// The handler's URL path, for log lines.
    pub(crate) handler: Arc<str>,
    /// The request's id, for log lines: the guest's lines and the access
    /// line share it.
    pub(crate) request_id: Arc<str>,
    /// What the handler's configuration grants: hosts, stores, mounts.
    pub(crate) policy: Arc<Policy>,
    /// Pending operations and open responses, by handle.
    pub(crate) ops: Ops,
    /// The guest's log lines, within their limits.
    pub(crate) log: GuestLog,
    /// The message of the latest failed call, for `error_message`.
    pub(crate) last_error: Option<String>,
    /// When the host began running this request, for `clock_elapsed_us`.
    pub(crate) started: Instant,
}

impl Ctx {
    /// Records why a call failed (for `error_message`) and returns the code
    /// the guest gets.
    pub(crate) fn fail(&mut self, failure: Failure) -> i32 {
        // A denial is the operator's business (a grant may be missing); the
        // rest is the handler's, which sees the message itself.
        if failure.code == code::DENIED {
            tracing::warn!(handler = %self.handler, request_id = %self.request_id, "denied: {}", failure.message);
        } else {
            tracing::debug!(handler = %self.handler, request_id = %self.request_id, code = failure.code, "{}", failure.message);
        }
        self.last_error = Some(failure.message);
        failure.code
    }
}

/// Defines every `wasmlet` import in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    request::add_to_linker(linker)?;
    response::add_to_linker(linker)?;
    system::add_to_linker(linker)?;
    ops::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    kv::add_to_linker(linker)?;
    file::add_to_linker(linker)?;
    var::add_to_linker(linker)?;
    Ok(())
}

/// Traps now if `buf .. buf + cap` is outside the guest's memory: an async
/// import checks its output buffer before it waits, so a bad pointer traps
/// at the call, not after the wait.
fn check_buffer(caller: &mut Caller<'_, Ctx>, buf: i32, cap: i32) -> wasmtime::Result<()> {
    let (memory, _) = memory_and_ctx(caller)?;
    memory::range(memory.len(), buf, cap)?;
    Ok(())
}

/// The guest's memory and the request state, borrowed together so an import
/// can copy between them.
fn memory_and_ctx<'a>(
    caller: &'a mut Caller<'_, Ctx>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut Ctx)> {
    let Some(memory) = caller.data().memory else {
        wasmtime::bail!(
            "the handler passed a pointer to a host import but exports no `memory`; \
             export its linear memory as `memory`"
        );
    };
    Ok(memory.data_and_store_mut(caller))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_import_of_the_abi_table_is_defined_with_its_signature() {
        let mut module = String::from("(module\n");
        for import in crate::abi::IMPORTS {
            module += &format!(
                "(import \"wasmlet\" \"{}\" {})\n",
                import.name,
                import.wat()
            );
        }
        module += "(memory (export \"memory\") 1))";
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        let module = wasmtime::Module::new(&engine, wat::parse_str(&module).unwrap()).unwrap();
        linker.instantiate_pre(&module).unwrap();
    }
}
