//! The `wasmlet` imports, as the ABI page declares them, and safe wrappers
//! around them. This file holds all of the SDK's `unsafe`.
//!
//! Pointers and `usize` lengths are `i32` in wasm32, so the declarations
//! below have exactly the ABI's signatures.

use super::MAX_LEN;

#[link(wasm_import_module = "wasmlet")]
unsafe extern "C" {
    #[link_name = "req_method"]
    fn import_req_method(buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_uri"]
    fn import_req_uri(buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_header"]
    fn import_req_header(name: *const u8, name_len: usize, buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_param"]
    fn import_req_param(name: *const u8, name_len: usize, buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_body_read"]
    fn import_req_body_read(buf: *mut u8, cap: usize) -> i32;
    /// Sets the response status; no pointers, so nothing to uphold.
    pub(crate) safe fn resp_status(code: i32) -> i32;
    #[link_name = "resp_header"]
    fn import_resp_header(
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> i32;
    #[link_name = "resp_write"]
    fn import_resp_write(buf: *const u8, len: usize) -> i32;
    #[link_name = "log"]
    fn import_log(level: i32, msg: *const u8, len: usize);
    /// Waits on a host timer; no pointers, so nothing to uphold.
    pub(crate) safe fn sleep_ms(ms: i64);
}

/// Writes the method into `buf`; returns its full length.
pub(crate) fn req_method(buf: &mut [u8]) -> i32 {
    // SAFETY: the host writes at most `cap` bytes at `buf`, which this
    // function borrows mutably for the call.
    unsafe { import_req_method(buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Writes the request target into `buf`; returns its full length.
pub(crate) fn req_uri(buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_req_uri(buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Writes the value of header `name` into `buf`; its full length, or `ABSENT`.
pub(crate) fn req_header(name: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: the host reads `name_len` bytes at `name` (a live shared
    // borrow) and writes at most `cap` bytes at `buf` (a live mutable one).
    unsafe {
        import_req_header(
            name.as_ptr(),
            name.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Writes the value of route parameter `name` into `buf`; its full length, or
/// `ABSENT`.
pub(crate) fn req_param(name: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_header`.
    unsafe {
        import_req_param(
            name.as_ptr(),
            name.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Reads the next bytes of the request body into `buf`: their count, `0` at
/// the end, negative on error.
pub(crate) fn req_body_read(buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_req_body_read(buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Appends a response header.
pub(crate) fn resp_header(name: &[u8], value: &[u8]) -> i32 {
    // SAFETY: the host only reads the two borrowed slices.
    unsafe {
        import_resp_header(
            name.as_ptr(),
            name.len().min(MAX_LEN),
            value.as_ptr(),
            value.len().min(MAX_LEN),
        )
    }
}

/// Appends `buf` to the response body; the caller keeps `buf` under
/// [`MAX_LEN`] (the writer does).
pub(crate) fn resp_write(buf: &[u8]) -> i32 {
    // SAFETY: the host only reads the borrowed slice.
    unsafe { import_resp_write(buf.as_ptr(), buf.len().min(MAX_LEN)) }
}

/// Sends a log line at `level` (1 error … 4 debug).
pub(crate) fn log(level: i32, message: &[u8]) {
    // SAFETY: the host only reads the borrowed slice.
    unsafe { import_log(level, message.as_ptr(), message.len().min(MAX_LEN)) }
}

/// Logs a panic's message; called from the panic hook.
pub(crate) fn log_panic(message: &str) {
    log(crate::log::Level::Error as i32, message.as_bytes());
}

/// Ends the module with a trap, which the runtime reports as a failed
/// request (or an aborted body, once the head is sent).
pub(crate) fn trap() -> ! {
    core::arch::wasm32::unreachable()
}
