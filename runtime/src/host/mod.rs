//! The host side of the guest ABI: the per-request state a guest's imports
//! work on ([`Ctx`], the `Store`'s data), and one file per capability whose
//! function names are the import names.
//!
//! Every import is defined in one shared `Linker`; a module that imports
//! anything else fails at load time with a message naming the import.

mod file;
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

pub(crate) use request::{RequestBody, RequestInfo};
pub(crate) use response::{BodyStream, ResponseState, Start};
pub use wasi::WasiState;
pub(crate) use wasi::{Identity, add_to_linker as add_wasi_to_linker};

/// Everything one request's guest can reach through its imports. One `Ctx`
/// per `Store`, one `Store` per request: nothing leaks between requests.
pub struct Ctx {
    /// Caps this instance's memory and table growth.
    pub(crate) limits: StoreLimits,
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

/// The name of every import `add_to_linker` defines; the loader names any
/// other import in its error. A test instantiates a module that imports all
/// of them, so the list cannot claim one the linker lacks.
pub const IMPORTS: &[&str] = &[
    "req_method",
    "req_uri",
    "req_header",
    "req_param",
    "req_body_read",
    "resp_status",
    "resp_header",
    "resp_write",
    "log",
    "sleep_ms",
    "clock_now_ms",
    "clock_elapsed_us",
    "error_message",
    "close",
    "http_send",
    "http_begin",
    "http_end",
    "http_status",
    "http_header",
    "http_headers",
    "http_read",
    "kv_get",
    "kv_get_begin",
    "kv_get_end",
    "kv_set",
    "kv_set_begin",
    "kv_set_end",
    "kv_delete",
    "kv_delete_begin",
    "kv_delete_end",
    "kv_list",
    "kv_list_begin",
    "kv_list_end",
    "file_read",
    "file_size",
    "file_read_begin",
    "file_read_end",
    "var_get",
];

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

    /// Every v1 import with the signature `shared/abi-core-v1.md` gives it,
    /// plus the additions in `docs/abi.md`.
    const ALL_IMPORTS: &str = r#"(module
        (import "wasmlet" "req_method" (func (param i32 i32) (result i32)))
        (import "wasmlet" "req_uri" (func (param i32 i32) (result i32)))
        (import "wasmlet" "req_header" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "req_param" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "req_body_read" (func (param i32 i32) (result i32)))
        (import "wasmlet" "resp_status" (func (param i32) (result i32)))
        (import "wasmlet" "resp_header" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "resp_write" (func (param i32 i32) (result i32)))
        (import "wasmlet" "log" (func (param i32 i32 i32)))
        (import "wasmlet" "sleep_ms" (func (param i64)))
        (import "wasmlet" "clock_now_ms" (func (result i64)))
        (import "wasmlet" "clock_elapsed_us" (func (result i64)))
        (import "wasmlet" "error_message" (func (param i32 i32) (result i32)))
        (import "wasmlet" "close" (func (param i32) (result i32)))
        (import "wasmlet" "http_send" (func (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "http_begin" (func (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "http_end" (func (param i32) (result i32)))
        (import "wasmlet" "http_status" (func (param i32) (result i32)))
        (import "wasmlet" "http_header" (func (param i32 i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "http_headers" (func (param i32 i32 i32) (result i32)))
        (import "wasmlet" "http_read" (func (param i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_get" (func (param i32 i32 i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_get_begin" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_get_end" (func (param i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_set" (func (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
        (import "wasmlet" "kv_set_begin" (func (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
        (import "wasmlet" "kv_set_end" (func (param i32) (result i32)))
        (import "wasmlet" "kv_delete" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_delete_begin" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_delete_end" (func (param i32) (result i32)))
        (import "wasmlet" "kv_list" (func (param i32 i32 i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_list_begin" (func (param i32 i32 i32 i32) (result i32)))
        (import "wasmlet" "kv_list_end" (func (param i32 i32 i32) (result i32)))
        (import "wasmlet" "file_read" (func (param i32 i32 i64 i32 i32) (result i32)))
        (import "wasmlet" "file_size" (func (param i32 i32) (result i64)))
        (import "wasmlet" "file_read_begin" (func (param i32 i32 i64 i32) (result i32)))
        (import "wasmlet" "file_read_end" (func (param i32 i32 i32) (result i32)))
        (import "wasmlet" "var_get" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1))"#;

    #[test]
    fn every_listed_import_is_defined_with_the_abi_signature() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        let module = wasmtime::Module::new(&engine, wat::parse_str(ALL_IMPORTS).unwrap()).unwrap();
        linker.instantiate_pre(&module).unwrap();
        let imported: Vec<&str> = module.imports().map(|i| i.name()).collect();
        assert_eq!(
            imported, IMPORTS,
            "IMPORTS lists exactly the defined imports"
        );
    }
}
